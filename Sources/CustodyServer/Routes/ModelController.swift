import CustodyCore
import CustodyRegistry
import CustodyStorage
import CustodyStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus

/// Models and versions: publish, read, the registry signature, and file downloads by path.
struct ModelController {
    let services: RegistryServices

    var routes: RouteCollection<RegistryContext> {
        let routes = RouteCollection(context: RegistryContext.self)
        routes.get("/v1/models") { request, context in try await list(request, context) }
        routes.get("/v1/models/:ns/:name") { request, context in try await model(request, context) }
        routes.get("/v1/models/:ns/:name/versions") { request, context in try await model(request, context) }
        routes.post("/v1/models/:ns/:name/versions") { request, context in try await publish(request, context) }
        routes.get("/v1/models/:ns/:name/versions/:version") { request, context in try await version(request, context) }
        routes.get("/v1/models/:ns/:name/versions/:version/signature") { request, context in try await signature(request, context) }
        routes.get("/v1/models/:ns/:name/versions/:version/files/**") { request, context in try await file(request, context) }
        return routes
    }

    private static let readers: Set<Role> = [.publisher, .consumer, .auditor, .security, .gate]

    private func modelName(_ context: RegistryContext) throws -> ModelName { try context.modelName() }

    private func selector(_ context: RegistryContext) throws -> ModelReference.Selector { try context.selector() }

    private func versionDetail(_ context: RegistryContext, events: Bool = false) async throws -> (ModelName, API.VersionDetail) {
        let name = try modelName(context)
        let selector = try selector(context)
        guard let detail = try await services.database.version(name, selector, includeEvents: events) else {
            throw ProblemResponse(.notFound, "\(ModelReference(model: name, selector: selector)) is not in the registry")
        }
        return (name, detail)
    }

    func list(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: Self.readers)
        return try .json(["models": try await services.database.models()])
    }

    func model(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: Self.readers)
        let name = try modelName(context)
        guard let detail = try await services.database.model(name) else { throw ProblemResponse(.notFound, "model \(name) is not in the registry") }
        return try .json(detail)
    }

    func version(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: Self.readers)
        var (_, detail) = try await versionDetail(context, events: request.uri.queryParameters["events"] == "true")
        if !detail.provenance.baseModels.isEmpty {
            var resolutions: [API.BaseModelResolution] = []
            for base in detail.provenance.baseModels {
                switch try await services.gate.resolveBase(base) {
                case .registry(let model, let version, let by): resolutions.append(.init(named: base, resolved: "\(model)@\(version)", by: by))
                case .external: resolutions.append(.init(named: base, resolved: nil, by: nil))
                case .ambiguous(let candidates):
                    resolutions.append(.init(named: base, resolved: nil, by: "ambiguous: " + candidates.joined(separator: ", ")))
                }
            }
            detail.baseModelResolutions = resolutions
        }
        return try .json(detail)
    }

    func publish(_ request: Request, _ context: RegistryContext) async throws -> Response {
        let name = try modelName(context)
        try await services.authorize(request, context, roles: [.publisher], namespace: name.namespace)
        let body = try await services.jsonBody(request)
        let publish: API.PublishRequest
        do {
            publish = try JSONDecoder().decode(API.PublishRequest.self, from: Data(body.readableBytesView))
        } catch {
            throw ProblemResponse(.badRequest, "the publish request is not valid JSON of the expected shape: \(error)")
        }
        let outcome = try await services.publishing.publish(publish, model: name, publishedBy: context.actor)
        switch outcome {
        case .created(let detail):
            services.logger.info("published", metadata: ["model": "\(name)", "version": "\(detail.version)", "actor": "\(context.actor)"])
            return try .json(API.PublishResponse(created: true, version: detail), status: .created)
        case .unchanged(let detail):
            return try .json(API.PublishResponse(created: false, version: detail))
        }
    }

    /// The registry's OMS bundle over the version's files. Fetching it starts a pull, so it is recorded as one.
    func signature(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: Self.readers)
        let (name, detail) = try await versionDetail(context)
        guard let bundle = try await services.database.registrySignature(name, version: detail.version) else {
            throw ProblemResponse(.notFound, "\(name)@\(detail.version) has no registry signature")
        }
        _ = try await services.gatePull(name, version: detail.version, fetching: "bundle \(detail.bundleDigest)", context: context)
        return Response(
            status: .ok, headers: [.contentType: "application/vnd.dev.sigstore.bundle.v0.3+json"],
            body: .init(byteBuffer: ByteBuffer(bytes: bundle)))
    }

    /// A file of a version by its path: the same bytes as its blob. Fetching a file by path is a pull of the version,
    /// recorded as one (a client that reads files by path may never ask for the signature).
    func file(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: Self.readers)
        let (name, detail) = try await versionDetail(context)
        let path = context.parameters.getCatchAll().joined(separator: "/")
        guard let entry = detail.files.first(where: { $0.path == path }) else {
            throw ProblemResponse(.notFound, "\(name)@\(detail.version) has no file '\(path)'")
        }
        _ = try await services.gatePull(name, version: detail.version, fetching: "file \(path)", context: context)
        return try await BlobController(services: services).serve(entry.digest, request, context)
    }
}

/// Tokens: create, list, revoke. Admin only.
struct TokenController {
    let services: RegistryServices

    var routes: RouteCollection<RegistryContext> {
        let routes = RouteCollection(context: RegistryContext.self)
        routes.post("/v1/tokens") { request, context in try await create(request, context) }
        routes.get("/v1/tokens") { request, context in try await list(request, context) }
        routes.delete("/v1/tokens/:id") { request, context in try await revoke(request, context) }
        return routes
    }

    func create(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [])
        let create = try await services.jsonBody(request, as: API.TokenCreateRequest.self, what: "token request")
        let created = try await services.database.createToken(try TokenRules.validate(create))
        services.logger.info("token created", metadata: ["id": "\(created.token.id)", "role": "\(created.token.role)", "actor": "\(context.actor)"])
        return try .json(created, status: .created)
    }

    func list(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [])
        return try .json(["tokens": try await services.database.tokens()])
    }

    func revoke(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [])
        let id = try context.parameters.require("id")
        guard try await services.database.revokeToken(id: id) else { throw ProblemResponse(.notFound, "no active token '\(id)'") }
        services.tokens.invalidate()
        return Response(status: .noContent)
    }
}

/// Trusted publisher keys: list, add, remove. Admin only; every change is a `trust.add` / `trust.remove` event.
struct TrustController {
    let services: RegistryServices

    var routes: RouteCollection<RegistryContext> {
        let routes = RouteCollection(context: RegistryContext.self)
        routes.get("/v1/trust") { request, context in try await list(request, context) }
        routes.post("/v1/trust") { request, context in try await add(request, context) }
        routes.delete("/v1/trust/:name") { request, context in try await remove(request, context) }
        return routes
    }

    func list(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [])
        return try .json(API.TrustList(keys: try await services.trust.keys().map(\.api)))
    }

    func add(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [])
        let ask = try await services.jsonBody(request, as: API.TrustAddRequest.self, what: "trust request ({\"name\", \"publicKey\"})")
        let key = try await services.trust.add(name: ask.name, pem: ask.publicKey, actor: context.actor)
        services.logger.notice("publisher key trusted", metadata: ["name": "\(key.name)", "hint": "\(key.key.hint)", "actor": "\(context.actor)"])
        return try .json(key.api, status: .created)
    }

    func remove(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [])
        let key = try await services.trust.remove(name: try context.parameters.require("name"), actor: context.actor)
        services.logger.notice(
            "publisher key no longer trusted", metadata: ["name": "\(key.name)", "hint": "\(key.key.hint)", "actor": "\(context.actor)"])
        return try .json(key.api)
    }
}

extension TrustStore.TrustedKey {
    var api: API.TrustedKey { API.TrustedKey(name: name, keyHint: key.hint, publicKey: key.pemRepresentation) }
}
