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
    let catalog: Catalog
    let publishing: PublishService
    let gate: PullGate
    let sender: BlobSender
    let access: Access
    let bodies: JSONBodies
    let logger: Logger

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

    private func versionDetail(_ context: RegistryContext) async throws -> (ModelName, API.VersionDetail) {
        let name = try modelName(context)
        let selector = try selector(context)
        return (name, try await catalog.version(name, selector))
    }

    func list(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: Self.readers)
        return try .json(["models": try await catalog.models()])
    }

    func model(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: Self.readers)
        return try .json(try await catalog.model(try modelName(context)))
    }

    func version(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: Self.readers)
        let (name, selector) = (try modelName(context), try selector(context))
        let events = request.uri.queryParameters["events"] == "true"
        return try .json(try await catalog.versionResolvingBases(name, selector, events: events))
    }

    func publish(_ request: Request, _ context: RegistryContext) async throws -> Response {
        let name = try modelName(context)
        try await access.authorize(request, context, roles: [.publisher], namespace: name.namespace)
        let publish = try await bodies.decode(request, as: API.PublishRequest.self, what: "publish request")
        let outcome = try await publishing.publish(publish, model: name, publishedBy: context.actor)
        switch outcome {
        case .created(let detail):
            logger.info("published", metadata: ["model": "\(name)", "version": "\(detail.version)", "actor": "\(context.actor)"])
            return try .json(API.PublishResponse(created: true, version: detail), status: .created)
        case .unchanged(let detail):
            return try .json(API.PublishResponse(created: false, version: detail))
        }
    }

    /// The registry's OMS bundle over the version's files. Fetching it starts a pull, so it is recorded as one.
    func signature(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: Self.readers)
        let (name, detail) = try await versionDetail(context)
        let bundle = try await catalog.registrySignature(name, version: detail.version)
        _ = try await gate.grant(name, version: detail.version, fetching: "bundle \(detail.bundleDigest)", context: context)
        return Response(
            status: .ok, headers: [.contentType: "application/vnd.dev.sigstore.bundle.v0.3+json"],
            body: .init(byteBuffer: ByteBuffer(bytes: bundle)))
    }

    /// A file of a version by its path: the same bytes as its blob. Fetching a file by path is a pull of the version,
    /// recorded as one (a client that reads files by path may never ask for the signature).
    func file(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: Self.readers)
        let (name, detail) = try await versionDetail(context)
        let path = context.parameters.getCatchAll().joined(separator: "/")
        guard let entry = detail.files.first(where: { $0.path == path }) else {
            throw ProblemResponse(.notFound, "\(name)@\(detail.version) has no file '\(path)'")
        }
        _ = try await gate.grant(name, version: detail.version, fetching: "file \(path)", context: context)
        return try await sender.serve(entry.digest, request, context)
    }
}

/// Tokens: create, list, revoke. Admin only.
struct TokenController {
    let tokens: Tokens
    let access: Access
    let bodies: JSONBodies
    let logger: Logger

    var routes: RouteCollection<RegistryContext> {
        let routes = RouteCollection(context: RegistryContext.self)
        routes.post("/v1/tokens") { request, context in try await create(request, context) }
        routes.get("/v1/tokens") { request, context in try await list(request, context) }
        routes.delete("/v1/tokens/:id") { request, context in try await revoke(request, context) }
        return routes
    }

    func create(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [])
        let create = try await bodies.decode(request, as: API.TokenCreateRequest.self, what: "token request")
        let created = try await tokens.create(create)
        logger.info("token created", metadata: ["id": "\(created.token.id)", "role": "\(created.token.role)", "actor": "\(context.actor)"])
        return try .json(created, status: .created)
    }

    func list(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [])
        return try .json(["tokens": try await tokens.list()])
    }

    func revoke(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [])
        let id = try context.parameters.require("id")
        try await tokens.revoke(id: id)
        return Response(status: .noContent)
    }
}

/// Trusted publisher keys: list, add, remove. Admin only; every change is a `trust.add` / `trust.remove` event.
struct TrustController {
    let trust: TrustStore
    let access: Access
    let bodies: JSONBodies
    let logger: Logger

    var routes: RouteCollection<RegistryContext> {
        let routes = RouteCollection(context: RegistryContext.self)
        routes.get("/v1/trust") { request, context in try await list(request, context) }
        routes.post("/v1/trust") { request, context in try await add(request, context) }
        routes.delete("/v1/trust/:name") { request, context in try await remove(request, context) }
        return routes
    }

    func list(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [])
        return try .json(API.TrustList(keys: try await trust.keys().map(\.api)))
    }

    func add(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [])
        let ask = try await bodies.decode(request, as: API.TrustAddRequest.self, what: "trust request ({\"name\", \"publicKey\"})")
        let key = try await trust.add(name: ask.name, pem: ask.publicKey, actor: context.actor)
        logger.notice("publisher key trusted", metadata: ["name": "\(key.name)", "hint": "\(key.key.hint)", "actor": "\(context.actor)"])
        return try .json(key.api, status: .created)
    }

    func remove(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [])
        let key = try await trust.remove(name: try context.parameters.require("name"), actor: context.actor)
        logger.notice(
            "publisher key no longer trusted", metadata: ["name": "\(key.name)", "hint": "\(key.key.hint)", "actor": "\(context.actor)"])
        return try .json(key.api)
    }
}

extension TrustStore.TrustedKey {
    var api: API.TrustedKey { API.TrustedKey(name: name, keyHint: key.hint, publicKey: key.pemRepresentation) }
}
