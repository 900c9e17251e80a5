import CustodyCore
import CustodyRegistry
import CustodyStorage
import Foundation
import Hummingbird
import NIOCore

/// The transparency log over HTTP: the latest signed checkpoint, inclusion and consistency proofs, events with their
/// leaf index, lineage, exposure, the AI-BOM and the export. Parse, call ``Audit``, encode.
struct AuditController {
    let audit: Audit
    let access: Access

    static let readers: Set<Role> = [.auditor, .security, .gate, .publisher, .consumer]
    static let auditors: Set<Role> = [.auditor, .security]

    var routes: RouteCollection<RegistryContext> {
        let routes = RouteCollection(context: RegistryContext.self)
        routes.get("/v1/audit/checkpoint") { request, context in try await checkpoint(request, context) }
        routes.get("/v1/audit/proof/inclusion") { request, context in try await inclusion(request, context) }
        routes.get("/v1/audit/proof/consistency") { request, context in try await consistency(request, context) }
        routes.get("/v1/audit/events") { request, context in try await events(request, context) }
        routes.get("/v1/audit/lineage/:ns/:name/:version") { request, context in try await lineage(request, context) }
        routes.get("/v1/audit/exposure/:ns/:name/:version") { request, context in try await exposure(request, context) }
        routes.get("/v1/audit/export") { request, context in try await export(request, context) }
        routes.get("/v1/audit/bom/:ns/:name/:version") { request, context in try await bom(request, context) }
        return routes
    }

    /// The newest signed checkpoint (made now if the log grew since the last one).
    func checkpoint(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.require(Self.readers, request, context)
        let note = try await audit.checkpoint()
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: note)))
    }

    func inclusion(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.require(Self.readers, request, context)
        let (index, size) = (try request.number("index"), try request.number("size"))
        return try .json(try await audit.inclusion(index: index, size: size))
    }

    func consistency(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.require(Self.readers, request, context)
        let (from, to) = (try request.number("from"), try request.number("to"))
        return try .json(try await audit.consistency(from: from, to: to))
    }

    /// Events in log order, filtered: `model`, `version`, `type` (comma-separated), `actor` (substring), `environment`,
    /// `since`/`until` (RFC 3339), `after` (an event id, for paging) and `limit` (≤ 10,000). Leaf index = id − 1.
    func events(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.require(Self.auditors, request, context)
        let filter = try Self.filter(request.uri.queryParameters)
        let events = try await audit.events(filter)
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: Audit.eventsDocument(events))))
    }

    static func filter(_ query: Parameters) throws -> EventFilter {
        var filter = EventFilter()
        filter.model = query["model"].map(String.init)
        filter.version = query["version"].map(String.init)
        filter.types = query["type"].map { $0.split(separator: ",").map(String.init) } ?? []
        filter.actor = query["actor"].map(String.init)
        filter.environment = query["environment"].map(String.init)
        filter.since = query["since"].map(String.init)
        filter.until = query["until"].map(String.init)
        if let after = query["after"] {
            guard let value = Int64(after), value >= 0 else { throw ProblemResponse(.badRequest, "'after' must be an event id") }
            filter.after = value
        }
        if let limit = query["limit"] {
            guard let value = Int(limit), value > 0 else { throw ProblemResponse(.badRequest, "'limit' must be a positive number") }
            filter.limit = min(value, 10_000)
        }
        return filter
    }

    /// Base models upstream (from provenance, recursively) and derivatives downstream (versions naming this one).
    func lineage(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.require(Self.auditors, request, context)
        let (model, version) = (try context.modelName(), try context.versionTag())
        return try .json(try await audit.lineage(model, version: version))
    }

    /// Who pulled, or was allowed or denied, this version: every pull, verify and admission decision about it.
    func exposure(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.require(Self.auditors, request, context)
        let (model, version) = (try context.modelName(), try context.versionTag())
        return try .json(try await audit.exposure(model, version: version))
    }

    /// The version as a CycloneDX 1.6 AI-BOM.
    func bom(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.require(Self.auditors.union([.publisher]), request, context)
        let (model, version) = (try context.modelName(), try context.versionTag())
        let document = try await audit.bom(model, version: version)
        return Response(
            status: .ok, headers: [.contentType: "application/vnd.cyclonedx+json; version=1.6"],
            body: .init(byteBuffer: ByteBuffer(bytes: document)))
    }

    /// Every event, streamed as JSON lines or CSV, for SIEMs.
    func export(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.require(Self.auditors, request, context)
        let name = request.uri.queryParameters["format"].map(String.init) ?? "jsonl"
        guard let format = Audit.ExportFormat(rawValue: name) else { throw ProblemResponse(.badRequest, "format must be jsonl or csv") }
        let audit = audit
        let body = ResponseBody { writer in
            try await audit.export(format) { text in try await writer.write(ByteBuffer(string: text)) }
            try await writer.finish(nil)
        }
        let type = format == .csv ? "text/csv; charset=utf-8" : "application/x-ndjson"
        return Response(status: .ok, headers: [.contentType: type], body: body)
    }
}

extension Request {
    /// A query parameter that must be a non-negative integer.
    func number(_ name: String) throws -> UInt64 {
        guard let text = uri.queryParameters[Substring(name)], let value = UInt64(text) else {
            throw ProblemResponse(.badRequest, "query parameter '\(name)' must be a non-negative integer")
        }
        return value
    }
}
