import CustodyCore
import CustodyPolicy
import CustodyRegistry
import CustodyStorage
import CustodyStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Prometheus

/// The deployment gate: verify, policies, advisories, version status, Kubernetes admission and Gatekeeper.
struct GateController {
    let services: RegistryServices
    var gate: GateService { services.gate }

    func register(on router: Router<RegistryContext>) {
        router.post("/v1/verify") { request, context in try await verify(request, context) }
        router.get("/v1/policies") { request, context in try await policies(request, context) }
        router.get("/v1/policies/:environment") { request, context in try await policy(request, context) }
        router.post("/v1/policies/reload") { request, context in try await reload(request, context) }
        router.post("/v1/policies/:environment/test") { request, context in try await test(request, context) }
        router.post("/v1/advisories") { request, context in try await addAdvisory(request, context) }
        router.get("/v1/advisories") { request, context in try await listAdvisories(request, context) }
        router.get("/v1/advisories/:id") { request, context in try await showAdvisory(request, context) }
        router.post("/v1/advisories/:id/withdraw") { request, context in try await withdrawAdvisory(request, context) }
        router.post("/v1/models/:ns/:name/versions/:version/status") { request, context in try await setStatus(request, context) }
        router.post("/v1/admission") { request, context in try await admission(request, context) }
        router.post("/v1/gatekeeper") { request, context in try await gatekeeper(request, context) }
    }

    static let everyone: Set<Role> = [.gate, .consumer, .publisher, .security, .auditor]

    /// `model` as `ns/name`, `ns/name@version` or `ns/name@sha256:…`, with `version` / `digest` as alternatives.
    static func reference(model: String, version: String?, digest: String?) throws(CustodyError) -> (ModelName, ModelReference.Selector) {
        let (name, named) = try ModelReference.parse(allowingBareName: model)
        if let named {
            guard version == nil, digest == nil else {
                throw CustodyError(.invalidArgument, "give the version either in 'model' or in 'version'/'digest', not both")
            }
            return (name, named)
        }
        switch (version, digest) {
        case (let version?, nil):
            try VersionTag.validate(version)
            return (name, .version(version))
        case (nil, let digest?):
            return (name, .digest(try ContentDigest(parsing: digest)))
        default:
            throw CustodyError(.invalidArgument, "name exactly one of 'version' or 'digest'")
        }
    }

    // MARK: verify and policies

    func verify(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: Self.everyone)
        let ask = try await services.jsonBody(request, as: API.VerifyRequest.self, what: "verify request")
        let (model, selector) = try Self.reference(model: ask.model, version: ask.version, digest: ask.digest)
        let now = Date.now
        let ruling = try await gate.ruling(model, selector, environment: ask.environment, now: now)
        try await gate.record(ruling, type: .decision, actor: context.actor, client: context.clientAddress)
        services.metrics.decisions(allowed: ruling.decision.allowed).increment()
        return .json(ruling.body(at: RFC3339.string(now)))
    }

    func policies(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: Self.everyone)
        let snapshot = services.policies.snapshot
        let list = snapshot.policies.sorted { $0.key < $1.key }.map {
            ["environment": $0.key, "digest": $0.value.digest, "description": $0.value.description ?? ""]
        }
        return try .json(["policies": list])
    }

    func policy(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: Self.everyone)
        let environment = try context.parameters.require("environment")
        guard let policy = services.policies.snapshot.policies[environment] else {
            throw ProblemResponse(.notFound, "environment \(environment) has no policy")
        }
        return try .json(["environment": environment, "digest": policy.digest, "source": policy.source, "policy": policy.yaml])
    }

    func reload(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [])
        let digests = try await services.reloadPolicies(actor: context.actor)
        return try .json(["policies": digests])
    }

    struct TestRequest: Decodable {
        var model: String
        var version: String?
        var digest: String?
        /// A draft policy (YAML); without one the deployed policy is evaluated.
        var policy: String?
    }

    /// Evaluates a draft policy (or the deployed one) without recording a decision.
    func test(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.security, .publisher, .auditor, .gate])
        let environment = try context.parameters.require("environment")
        let ask = try await services.jsonBody(request, as: TestRequest.self, what: "policy test request")
        let (model, selector) = try Self.reference(model: ask.model, version: ask.version, digest: ask.digest)
        var draft: Policy?
        if let yaml = ask.policy {
            do { draft = try Policy(name: environment, yaml: yaml, source: "draft policy") } catch {
                throw ProblemResponse(.badRequest, error.description)
            }
        }
        return try .json(try await gate.decide(model, selector, environment: environment, draft: draft))
    }

    // MARK: advisories

    func addAdvisory(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.security])
        let bytes = Array(try await services.jsonBody(request).readableBytesView)
        let advisory: Advisory
        do { advisory = try Advisory(osv: bytes) } catch { throw ProblemResponse(.badRequest, "invalid OSV advisory: \(error.description)") }
        let write = try await save(advisory, actor: context.actor, kind: .advisoryAdded)
        let exposure = try await exposure(of: advisory)
        let result =
            switch write {
            case .created: "created"
            case .updated: "updated"
            case .unchanged: "unchanged"
            }
        return try .json(
            API.AdvisoryAdded(created: write == .created, result: result, exposure: exposure), status: write == .created ? .created : .ok)
    }

    private func save(_ advisory: Advisory, actor: String, kind: EventKind) async throws(CustodyError) -> AdvisoryWrite {
        let stored = StoredAdvisory(
            id: advisory.id, modified: advisory.modified, withdrawn: advisory.withdrawn, severity: advisory.severity.rawValue,
            score: advisory.score, summary: advisory.summary, models: advisory.models.sorted(), document: advisory.document)
        let detail =
            "\(advisory.id): \(advisory.severity.rawValue) (\(advisory.severityBasis)), models \(advisory.models.sorted().joined(separator: ", "))"
            + (advisory.withdrawn.map { ", withdrawn \($0)" } ?? "")
        let write = try await services.database.saveAdvisory(stored, event: NewEvent(type: kind, actor: actor, detail: detail))
        try await services.changes.announce(.advisories)
        return write
    }

    func summary(_ advisory: Advisory) -> API.AdvisorySummary {
        API.AdvisorySummary(
            id: advisory.id, modified: advisory.modified, withdrawn: advisory.withdrawn, summary: advisory.summary,
            severity: advisory.severity.rawValue, score: advisory.score, models: advisory.models.sorted())
    }

    /// The versions an advisory affects and every pull and decision about them.
    func exposure(of advisory: Advisory) async throws(CustodyError) -> API.Exposure {
        var affected: [(model: String, version: String, digest: ContentDigest)] = []
        var unknown: [String] = []
        for name in advisory.models.sorted() {
            guard let model = try? ModelName(parsing: name), let order = try await gate.order(model) else {
                unknown.append(name)
                continue
            }
            let versions = order.map(\.version)
            for entry in order where advisory.affects(model: name, version: entry.version, digest: entry.digest.description, order: versions) {
                affected.append((name, entry.version, entry.digest))
            }
        }
        let digests = advisory.affected.flatMap(\.digests).sorted()
        for match in try await services.database.versions(withBundleDigests: digests)
        where !affected.contains(where: { $0.model == match.model && $0.version == match.version }) {
            if let model = try? ModelName(parsing: match.model), let order = try await gate.order(model),
                let entry = order.first(where: { $0.version == match.version })
            {
                affected.append((match.model, match.version, entry.digest))
            }
        }
        let uses = try await services.database.uses(of: affected.map { ($0.model, $0.version) })
        let versions = affected.map { item in
            API.Exposure.AffectedVersion(
                model: item.model, version: item.version, bundleDigest: item.digest,
                uses: uses.filter { $0.model == item.model && $0.version == item.version }.map(\.use))
        }
        return API.Exposure(
            advisory: summary(advisory), versions: versions, unknownModels: unknown,
            environments: Set(uses.compactMap(\.use.environment)).sorted(), tokens: Set(uses.compactMap(\.use.actor)).sorted())
    }

    private func stored(_ context: RegistryContext) async throws -> Advisory {
        let id = try context.parameters.require("id")
        guard let stored = try await services.database.advisories().first(where: { $0.id == id }) else {
            throw ProblemResponse(.notFound, "advisory \(id) is not recorded")
        }
        do { return try Advisory(osv: stored.document) } catch { throw CustodyError(.io, "stored advisory \(id) no longer parses: \(error)") }
    }

    func listAdvisories(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: Self.everyone)
        let list = try await services.database.advisories().map {
            API.AdvisorySummary(
                id: $0.id, modified: $0.modified, withdrawn: $0.withdrawn, summary: $0.summary, severity: $0.severity, score: $0.score,
                models: $0.models)
        }
        return try .json(["advisories": list])
    }

    func showAdvisory(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.security, .auditor, .gate])
        let advisory = try await stored(context)
        let osv = try JSONSerialization.jsonObject(with: Data(advisory.document))
        let exposure = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(try await exposure(of: advisory)))
        let data = try JSONSerialization.data(withJSONObject: ["osv": osv, "exposure": exposure], options: [.sortedKeys, .withoutEscapingSlashes])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    func withdrawAdvisory(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.security])
        let advisory = try await stored(context)
        guard advisory.withdrawn == nil else {
            throw ProblemResponse(.conflict, "advisory \(advisory.id) was already withdrawn on \(advisory.withdrawn!)")
        }
        guard var document = try JSONSerialization.jsonObject(with: Data(advisory.document)) as? [String: Any] else {
            throw CustodyError(.io, "stored advisory \(advisory.id) is not an object")
        }
        let now = Date.now.formatted(.iso8601)
        document["withdrawn"] = now
        document["modified"] = now
        let bytes = Array(try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes]))
        let withdrawn: Advisory
        do { withdrawn = try Advisory(osv: bytes) } catch { throw CustodyError(.io, "cannot withdraw \(advisory.id): \(error)") }
        _ = try await save(withdrawn, actor: context.actor, kind: .advisoryWithdrawn)
        return try .json(summary(withdrawn))
    }

    // MARK: version status

    func setStatus(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.security])
        let model = try context.modelName()
        let version = try context.versionTag()
        let ask = try await services.jsonBody(request, as: API.StatusRequest.self, what: "status request")
        if ask.state != .active, (ask.reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw ProblemResponse(.badRequest, "a \(ask.state.rawValue) version needs a reason")
        }
        let status = API.VersionStatus(state: ask.state, reason: ask.reason, by: context.actor, at: RFC3339.string(Date.now))
        guard try await services.database.setStatus(model, version: version, status) else {
            throw ProblemResponse(.notFound, "\(model)@\(version) is not in the registry")
        }
        try await services.changes.announce(.status(model, version: version))
        return try .json(status)
    }
}
