import CustodyCore
import CustodyPolicy
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
        router.get("/v1/audit/lineage/:ns/:name/:version") { request, context in try await lineage(request, context) }
        router.get("/v1/audit/exposure/:ns/:name/:version") { request, context in try await exposure(request, context) }
        router.get("/v1/audit/export") { request, context in try await export(request, context) }
        router.get("/v1/audit/bom/:ns/:name/:version") { request, context in try await bom(request, context) }
    }

    static let readers: Set<Role> = [.auditor, .security, .gate, .publisher, .consumer]

    private func number(_ request: Request, _ name: String) throws -> UInt64 {
        guard let text = request.uri.queryParameters[Substring(name)], let value = UInt64(text) else {
            throw ProblemResponse(.badRequest, "query parameter '\(name)' must be a non-negative integer")
        }
        return value
    }

    /// The newest signed checkpoint (made now if the log grew since the last one).
    func checkpoint(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: Self.readers)
        try await services.log.checkpoint()
        guard let latest = try await services.database.latestCheckpoint() else { throw ProblemResponse(.notFound, "the log has no checkpoint yet") }
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
            throw ProblemResponse(.badRequest, "need index < size <= \(logSize) (the log's size); got index \(index), size \(size)")
        }
        let (leaf, proof) = try await services.database.inclusionProof(index: index, size: size)
        return try .json(
            InclusionProof(
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
            throw ProblemResponse(.badRequest, "need 0 < from <= to <= \(logSize) (the log's size); got from \(from), to \(to)")
        }
        let proof = try await services.database.consistencyProof(from: from, to: to)
        return try .json(ConsistencyProof(from: from, to: to, hashes: proof.map { Data($0).base64EncodedString() }))
    }

    /// Events in log order, filtered: `model`, `version`, `type` (comma-separated), `actor` (substring), `environment`,
    /// `since`/`until` (RFC 3339), `after` (an event id, for paging) and `limit` (≤ 10,000). Leaf index = id − 1.
    func events(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.auditor, .security])
        let query = request.uri.queryParameters
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
        return Self.eventsJSON(try await services.database.events(filter))
    }

    /// `{"events": [...]}` written directly: each event is its canonical JSON (the log leaf), which is both the
    /// documented shape and much faster than a generic encoder for thousands of rows.
    static func eventsJSON(_ events: [API.Event]) -> Response {
        var bytes: [UInt8] = Array(#"{"events":["#.utf8)
        for (index, event) in events.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += EventLeaf.canonicalJSON(event)
        }
        bytes += Array("]}".utf8)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private func reference(_ context: RegistryContext) throws -> (ModelName, String) {
        (try context.modelName(), try context.versionTag())
    }

    /// Base models upstream (from provenance, recursively) and derivatives downstream (versions naming this one).
    func lineage(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.auditor, .security])
        let (model, version) = try reference(context)
        guard try await services.gate.detail(model, version: version) != nil else {
            throw ProblemResponse(.notFound, "\(model)@\(version) is not in the registry")
        }
        var seen = Set<String>()
        let upstream = try await self.upstream(model, version, depth: 0, seen: &seen)
        seen = []
        let downstream = try await self.downstream(model, version, depth: 0, seen: &seen)
        return try .json(API.Lineage(reference: "\(model)@\(version)", upstream: upstream, downstream: downstream))
    }

    private func upstream(_ model: ModelName, _ version: String, depth: Int, seen: inout Set<String>) async throws -> [API.Lineage.Node] {
        guard depth < 8, seen.insert("\(model)@\(version)").inserted,
            let detail = try await services.gate.detail(model, version: version)
        else { return [] }
        var nodes: [API.Lineage.Node] = []
        for base in detail.provenance.baseModels {
            switch try await services.gate.resolveBase(base) {
            case .registry(let baseModel, let resolved, let by):
                let baseDetail = try await services.gate.detail(baseModel, version: resolved)
                let reference = "\(baseModel)@\(resolved)"
                nodes.append(
                    API.Lineage.Node(
                        reference: reference, inRegistry: true, licence: baseDetail?.license.id,
                        children: try await upstream(baseModel, resolved, depth: depth + 1, seen: &seen),
                        namedAs: by == "name" ? nil : base, resolvedBy: by))
            case .external:
                nodes.append(API.Lineage.Node(reference: base, inRegistry: false, licence: nil, children: []))
            case .ambiguous(let candidates):
                nodes.append(
                    API.Lineage.Node(
                        reference: base, inRegistry: false, licence: nil, children: [], resolvedBy: "ambiguous: " + candidates.joined(separator: ", ")
                    ))
            }
        }
        return nodes
    }

    /// Versions whose base models resolve to this one, the inverse of `upstream`: named by registry reference, or by
    /// the Hub id this version was published from (`meta-llama/Llama-3.1-8B-Instruct`, in any case).
    private func downstream(_ model: ModelName, _ version: String, depth: Int, seen: inout Set<String>) async throws -> [API.Lineage.Node] {
        guard depth < 8, seen.insert("\(model)@\(version)").inserted,
            let detail = try await services.gate.detail(model, version: version)
        else { return [] }
        var names = [model.description]
        if let id = detail.provenance.source?.uri.flatMap(GateService.hubID(ofSource:)) { names.append(id) }
        var nodes: [API.Lineage.Node] = []
        let references = [model.description, "\(model)@\(version)", "\(model)@\(detail.bundleDigest)"]
        for derivative in try await services.database.derivatives(naming: names) {
            guard let derivedModel = try? ModelName(parsing: derivative.model) else { continue }
            var namesThis = derivative.baseModels.contains { references.contains($0) }
            var namedAs: String?
            var resolvedBy: String?
            for base in derivative.baseModels where !namesThis {
                // A Hub id: what it resolves to now, the same resolution upstream and the licence use.
                if case .registry(let baseModel, let resolved, let by) = try await services.gate.resolveBase(base),
                    by != "name", baseModel == model, resolved == version
                {
                    namesThis = true
                    namedAs = base
                    resolvedBy = by
                }
            }
            guard namesThis else { continue }
            let derivedDetail = try await services.gate.detail(derivedModel, version: derivative.version)
            nodes.append(
                API.Lineage.Node(
                    reference: "\(derivative.model)@\(derivative.version)", inRegistry: true, licence: derivedDetail?.license.id,
                    children: try await downstream(derivedModel, derivative.version, depth: depth + 1, seen: &seen),
                    namedAs: namedAs, resolvedBy: resolvedBy))
        }
        return nodes
    }

    /// Who pulled, or was allowed or denied, this version: every pull, verify and admission decision about it.
    func exposure(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.auditor, .security])
        let (model, version) = try reference(context)
        guard let detail = try await services.gate.detail(model, version: version) else {
            throw ProblemResponse(.notFound, "\(model)@\(version) is not in the registry")
        }
        let uses = try await services.database.uses(of: [(model.description, version)])
        let affected = API.Exposure.AffectedVersion(
            model: model.description, version: version, bundleDigest: detail.bundleDigest,
            uses: uses.map(\.use))
        struct VersionExposure: Encodable {
            var versions: [API.Exposure.AffectedVersion]
            var environments: [String]
            var tokens: [String]
        }
        return try .json(
            VersionExposure(
                versions: [affected], environments: Set(uses.compactMap(\.use.environment)).sorted(),
                tokens: Set(uses.compactMap(\.use.actor)).sorted()))
    }

    /// The version as a CycloneDX 1.6 AI-BOM.
    func bom(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.auditor, .security, .publisher])
        let (model, version) = try reference(context)
        guard let detail = try await services.gate.detail(model, version: version), let order = try await services.gate.order(model) else {
            throw ProblemResponse(.notFound, "\(model)@\(version) is not in the registry")
        }
        let licence = try await services.gate.effectiveLicence(detail, licences: services.policies.snapshot.licences, depth: 0)
        var bases: [(reference: String, inRegistry: Bool, digest: ContentDigest?)] = []
        for base in detail.provenance.baseModels {
            if let (baseModel, selector) = GateService.reference(base), let baseOrder = try await services.gate.order(baseModel), !baseOrder.isEmpty {
                if let match = VersionOrder.resolve(selector, in: baseOrder) {
                    bases.append(("\(baseModel)@\(match.version)", true, match.digest))
                    continue
                }
            }
            bases.append((base, false, nil))
        }
        let versions = order.map(\.version)
        let advisories = try await services.gate.advisories().filter {
            $0.affects(model: model.description, version: version, digest: detail.bundleDigest.description, order: versions)
        }
        let document = AIBOM.document(detail: detail, licence: licence, bases: bases, advisories: advisories)
        let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted])
        return Response(
            status: .ok, headers: [.contentType: "application/vnd.cyclonedx+json; version=1.6"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Every event, streamed as JSON lines or CSV, for SIEMs.
    func export(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.auditor, .security])
        let format = request.uri.queryParameters["format"].map(String.init) ?? "jsonl"
        guard format == "jsonl" || format == "csv" else { throw ProblemResponse(.badRequest, "format must be jsonl or csv") }
        let database = services.database
        let body = ResponseBody { writer in
            if format == "csv" {
                try await writer.write(ByteBuffer(string: "index,id,at,type,actor,model,version,environment,client,detail,count\n"))
            }
            try await database.forEachEvent { events in
                var text = ""
                for event in events {
                    if format == "jsonl" {
                        text += String(decoding: EventLeaf.canonicalJSON(event), as: UTF8.self) + "\n"
                    } else {
                        let fields = [
                            String(event.id - 1), String(event.id), event.at, event.type, event.actor ?? "", event.model ?? "",
                            event.version ?? "", event.environment ?? "", event.client ?? "", event.detail ?? "",
                            String(event.count ?? 1),
                        ]
                        text += fields.map(Self.csv).joined(separator: ",") + "\n"
                    }
                }
                try await writer.write(ByteBuffer(string: text))
            }
            try await writer.finish(nil)
        }
        let type = format == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson"
        return Response(status: .ok, headers: [.contentType: type], body: body)
    }

    static func csv(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
