import CustodyCore
import CustodyStore
import Foundation
import Logging
import Hummingbird

/// Resolves `Authorization: Bearer …` into the request's token. A header with an unknown, revoked or expired
/// token is refused here (401); requests without one go on anonymously and are refused by the routes that need a
/// role. Refusals are audit events; secrets never reach a log.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = RegistryContext
    let services: RegistryServices

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else { return try await next(request, context) }
        var context = context
        guard header.hasPrefix("Bearer "), header.count > 7 else {
            throw await services.deny(.unauthorized, "the Authorization header must be 'Bearer <token>'", request: request, context: context)
        }
        guard let token = try await services.tokens.token(secret: String(header.dropFirst(7))) else {
            throw await services.deny(.unauthorized, "unknown token", request: request, context: context)
        }
        context.token = token
        if let revoked = token.revokedAt {
            throw await services.deny(.unauthorized, "token \(token.id) was revoked at \(revoked)", request: request, context: context)
        }
        if let expires = token.expiresAt, let date = try? Date(expires, strategy: .iso8601), date <= .now {
            throw await services.deny(.unauthorized, "token \(token.id) expired at \(expires)", request: request, context: context)
        }
        // Every control-plane use of a token is an event. Blob transfers are not recorded one by one: the publish or
        // pull they belong to is, with the same token.
        // Gate endpoints record their own decision event naming the token, so a token.use event would only repeat it.
        if !Self.isDataPlane(request.uri.path), !Self.recordsItsOwnEvent(request.uri.path) {
            try await services.gate.recorder.record(
                NewEvent(
                    type: "token.use", actor: token.actor,
                    detail: "\(request.method.rawValue) \(request.uri.path) from \(context.clientAddress ?? "unknown")"))
        }
        return try await next(request, context)
    }
}

extension AuthenticationMiddleware {
    static func isDataPlane(_ path: String) -> Bool {
        path.hasPrefix("/v1/blobs/") || path.hasPrefix("/v1/uploads/")
    }

    static func recordsItsOwnEvent(_ path: String) -> Bool {
        path == "/v1/verify" || path == "/v1/admission" || path == "/v1/gatekeeper"
    }
}

extension RegistryServices {
    /// Requires an authenticated token with one of `roles` (admin always passes) and, for a publisher, the
    /// namespace; records and throws the refusal otherwise.
    func authorize(_ request: Request, _ context: RegistryContext, roles: Set<Role>, namespace: String? = nil) async throws {
        guard let token = context.token else {
            throw await deny(.unauthorized, "this request needs a bearer token", request: request, context: context)
        }
        if token.role == .admin { return }
        guard roles.contains(token.role) else {
            let allowed = roles.map(\.rawValue).sorted().joined(separator: " or ")
            throw await deny(.forbidden, "role \(token.role.rawValue) may not do this (needs \(allowed))", request: request, context: context)
        }
        if let namespace, token.role == .publisher, !token.namespaces.contains(namespace), !token.namespaces.contains("*") {
            throw await deny(
                .forbidden, "token \(token.id) may not publish into namespace '\(namespace)'", request: request, context: context)
        }
    }

    /// Records a refused request as an event and returns the problem to throw.
    func deny(_ status: HTTPResponse.Status, _ reason: String, request: Request, context: RegistryContext) async -> Problem {
        let detail = "\(request.method.rawValue) \(request.uri.path) from \(context.clientAddress ?? "unknown"): \(reason)"
        do {
            try await database.recordEvent(NewEvent(type: "request.denied", actor: context.actor, detail: detail))
        } catch {
            logger.error("cannot record a denied request", metadata: ["error": "\(error)"])
        }
        logger.info("request denied", metadata: ["actor": "\(context.actor)", "status": "\(status.code)", "reason": "\(reason)"])
        return Problem(status, reason)
    }
}
