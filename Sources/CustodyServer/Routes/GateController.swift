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
    let gate: GateService
    let curation: Curation
    let policySet: PolicySet
    let access: Access
    let bodies: JSONBodies
    let metrics: RegistryMetrics
    /// Kubernetes namespaces → environments for admission reviews.
    let admission: AdmissionMapping
    /// Image references of this registry (model cars), resolved to model references.
    let images: OCIImageReferences
    /// Re-reads the policies and trusted keys (the composition root's reload, also run on SIGHUP).
    let reloadPolicies: @Sendable (_ actor: String) async throws(CustodyError) -> [String: String]

    var routes: RouteCollection<RegistryContext> {
        let routes = RouteCollection(context: RegistryContext.self)
        routes.post("/v1/verify") { request, context in try await verify(request, context) }
        routes.get("/v1/policies") { request, context in try await policies(request, context) }
        routes.get("/v1/policies/:environment") { request, context in try await policy(request, context) }
        routes.post("/v1/policies/reload") { request, context in try await reload(request, context) }
        routes.post("/v1/policies/:environment/test") { request, context in try await test(request, context) }
        routes.post("/v1/advisories") { request, context in try await addAdvisory(request, context) }
        routes.get("/v1/advisories") { request, context in try await listAdvisories(request, context) }
        routes.get("/v1/advisories/:id") { request, context in try await showAdvisory(request, context) }
        routes.post("/v1/advisories/:id/withdraw") { request, context in try await withdrawAdvisory(request, context) }
        routes.post("/v1/models/:ns/:name/versions/:version/status") { request, context in try await setStatus(request, context) }
        routes.post("/v1/admission") { request, context in try await admission(request, context) }
        routes.post("/v1/gatekeeper") { request, context in try await gatekeeper(request, context) }
        return routes
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
        try await access.authorize(request, context, roles: Self.everyone)
        let ask = try await bodies.decode(request, as: API.VerifyRequest.self, what: "verify request")
        let (model, selector) = try Self.reference(model: ask.model, version: ask.version, digest: ask.digest)
        let now = Date.now
        let ruling = try await gate.ruling(model, selector, environment: ask.environment, now: now)
        try await gate.record(ruling, type: .decision, actor: context.actor, client: context.clientAddress)
        metrics.decisions(allowed: ruling.decision.allowed).increment()
        return .json(ruling.body(at: RFC3339.string(now)))
    }

    func policies(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: Self.everyone)
        let snapshot = policySet.snapshot
        let list = snapshot.policies.sorted { $0.key < $1.key }.map {
            ["environment": $0.key, "digest": $0.value.digest, "description": $0.value.description ?? ""]
        }
        return try .json(["policies": list])
    }

    func policy(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: Self.everyone)
        let environment = try context.parameters.require("environment")
        guard let policy = policySet.snapshot.policies[environment] else {
            throw ProblemResponse(.notFound, "environment \(environment) has no policy")
        }
        return try .json(["environment": environment, "digest": policy.digest, "source": policy.source, "policy": policy.yaml])
    }

    func reload(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [])
        let digests = try await reloadPolicies(context.actor)
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
        try await access.authorize(request, context, roles: [.security, .publisher, .auditor, .gate])
        let environment = try context.parameters.require("environment")
        let ask = try await bodies.decode(request, as: TestRequest.self, what: "policy test request")
        let (model, selector) = try Self.reference(model: ask.model, version: ask.version, digest: ask.digest)
        var draft: Policy?
        if let yaml = ask.policy {
            do { draft = try Policy(name: environment, yaml: yaml, source: "draft policy") } catch {
                throw ProblemResponse(.badRequest, error.description)
            }
        }
        return try .json(try await gate.decide(model, selector, environment: environment, draft: draft))
    }

    // MARK: advisories and version status

    func addAdvisory(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.security])
        let document = Array(try await bodies.collect(request).readableBytesView)
        let added = try await curation.add(osv: document, actor: context.actor)
        return try .json(added, status: added.created ? .created : .ok)
    }

    func listAdvisories(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: Self.everyone)
        return try .json(["advisories": try await curation.advisories()])
    }

    /// `{"osv": <the document as recorded>, "exposure": …}`.
    func showAdvisory(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.security, .auditor, .gate])
        let id = try context.parameters.require("id")
        let advisory = try await curation.advisory(id: id)
        let osv = try JSONSerialization.jsonObject(with: Data(advisory.document))
        let exposure = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(try await curation.exposure(of: advisory)))
        let data = try JSONSerialization.data(withJSONObject: ["osv": osv, "exposure": exposure], options: [.sortedKeys, .withoutEscapingSlashes])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    func withdrawAdvisory(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.security])
        let id = try context.parameters.require("id")
        return try .json(try await curation.withdraw(id: id, actor: context.actor))
    }

    func setStatus(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.security])
        let (model, version) = (try context.modelName(), try context.versionTag())
        let ask = try await bodies.decode(request, as: API.StatusRequest.self, what: "status request")
        return try .json(try await curation.setStatus(model, version: version, to: ask, actor: context.actor))
    }
}
