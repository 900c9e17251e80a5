import CustodyCore
import CustodyStore
import Foundation
import Hummingbird
import NIOCore

/// The transparency log: the latest signed checkpoint, inclusion and consistency proofs, and events with their
/// leaf index.
struct AuditController {
    let services: RegistryServices

    func register(on router: Router<RegistryContext>) {
        router.get("/v1/audit/checkpoint") { request, context in try await checkpoint(request, context) }
        router.get("/v1/audit/proof/inclusion") { request, context in try await inclusion(request, context) }
        router.get("/v1/audit/proof/consistency") { request, context in try await consistency(request, context) }
        router.get("/v1/audit/events") { request, context in try await events(request, context) }
    }

    static let readers: Set<Role> = [.auditor, .security, .gate, .publisher, .consumer]

    private func number(_ request: Request, _ name: String) throws -> UInt64 {
        guard let text = request.uri.queryParameters[Substring(name)], let value = UInt64(text) else {
            throw Problem(.badRequest, "query parameter '\(name)' must be a non-negative integer")
        }
        return value
    }

    /// The newest signed checkpoint (made now if the log grew since the last one).
    func checkpoint(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: Self.readers)
        try await services.log.checkpoint()
        guard let latest = try await services.database.latestCheckpoint() else { throw Problem(.notFound, "the log has no checkpoint yet") }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: latest.note)))
    }

    struct InclusionProof: Codable {
        var index: UInt64
        var size: UInt64
        var leafHash: String
        var hashes: [String]
    }

    func inclusion(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: Self.readers)
        let index = try number(request, "index")
        let size = try number(request, "size")
        let logSize = try await services.database.logSize()
        guard index < size, size <= logSize else {
            throw Problem(.badRequest, "need index < size <= \(logSize) (the log's size); got index \(index), size \(size)")
        }
        let (leaf, proof) = try await services.database.inclusionProof(index: index, size: size)
        return try .json(InclusionProof(
            index: index, size: size, leafHash: Data(leaf).base64EncodedString(), hashes: proof.map { Data($0).base64EncodedString() }))
    }

    struct ConsistencyProof: Codable {
        var from: UInt64
        var to: UInt64
        var hashes: [String]
    }

    func consistency(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: Self.readers)
        let from = try number(request, "from")
        let to = try number(request, "to")
        let logSize = try await services.database.logSize()
        guard from > 0, from <= to, to <= logSize else {
            throw Problem(.badRequest, "need 0 < from <= to <= \(logSize) (the log's size); got from \(from), to \(to)")
        }
        let proof = try await services.database.consistencyProof(from: from, to: to)
        return try .json(ConsistencyProof(from: from, to: to, hashes: proof.map { Data($0).base64EncodedString() }))
    }

    /// Events in log order from leaf index `after` (exclusive), at most `limit` (≤ 10,000); each with its index.
    func events(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.auditor, .security])
        let after = request.uri.queryParameters["after"].flatMap { Int64($0) } ?? 0
        let limit = min(request.uri.queryParameters["limit"].flatMap { Int($0) } ?? 1000, 10_000)
        let events = try await services.database.events(after: after, limit: limit)
        return try .json(["events": events])
    }
}
