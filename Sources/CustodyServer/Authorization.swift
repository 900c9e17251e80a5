import CustodyCore
import CustodyRegistry
import CustodyStorage
import CustodyStore
import Foundation
import Hummingbird
import Logging

/// Resolves `Authorization: Bearer …` into the request's token. A header with an unknown, revoked or expired
/// token is refused here (401); requests without one go on anonymously and are refused by the routes that need a
/// role. Refusals are audit events; secrets never reach a log.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = RegistryContext
    let services: RegistryServices

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else { return try await next(request, context) }
        var context = context
        guard let secret = Self.secret(header, path: request.uri.path) else {
            let accepted = OCIHeaders.isOCIPath(request.uri.path) ? "'Bearer <token>' or 'Basic <user:token>'" : "'Bearer <token>'"
            throw await services.deny(.unauthorized, "the Authorization header must be \(accepted)", request: request, context: context)
        }
        guard let token = try await services.tokens.token(secret: secret) else {
            throw await services.deny(.unauthorized, "unknown token", request: request, context: context)
        }
        context.token = token
        if let revoked = token.revokedAt {
            throw await services.deny(.unauthorized, "token \(token.id) was revoked at \(revoked)", request: request, context: context)
        }
        if let expires = token.expiresAt, let date = try? Date(expires, strategy: .iso8601), date <= .now {
            throw await services.deny(.unauthorized, "token \(token.id) expired at \(expires)", request: request, context: context)
        }
        // Every control-plane use of a token is an event, counted like repeated decisions: one per token, request
        // line and address per repeat window. Blob transfers are not recorded one by one: the publish or pull they
        // belong to is, with the same token. Gate endpoints record their own decision event naming the token, so a
        // token.use event would only repeat it.
        if !Self.isDataPlane(request.uri.path), !Self.recordsItsOwnEvent(request.uri.path) {
            try await services.gate.recorder.record(
                repeatable: NewEvent(
                    type: .tokenUsed, actor: token.actor,
                    detail: "\(request.method.rawValue) \(request.uri.path) from \(context.clientAddress ?? "unknown")"))
        }
        return try await next(request, context)
    }
}

extension AuthenticationMiddleware {
    /// The token secret of an `Authorization` header: `Bearer <token>`, or on the OCI API also `Basic` with the token
    /// as the password (any user name), as `skopeo --creds x:<token>` and `docker login` send it.
    static func secret(_ header: String, path: String) -> String? {
        if header.hasPrefix("Bearer "), header.count > 7 { return String(header.dropFirst(7)) }
        guard OCIHeaders.isOCIPath(path), header.hasPrefix("Basic "),
            let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        let password = String(text[text.index(after: colon)...])
        return password.isEmpty ? nil : password
    }

    static func isDataPlane(_ path: String) -> Bool {
        path.hasPrefix("/v1/blobs/") || path.hasPrefix("/v1/uploads/") || path.hasPrefix("/api/custody/lfs/")
            || (path.hasPrefix("/v2/") && path.contains("/blobs/"))
    }

    static func recordsItsOwnEvent(_ path: String) -> Bool {
        path == "/v1/verify" || path == "/v1/admission" || path == "/v1/gatekeeper"
    }
}

/// Refusals, for every route: requires a role (``Authorizer``), and records each refusal as an event before it is
/// answered.
struct Access: Sendable {
    let recorder: EventRecorder
    let authFailures: FailureLimiter
    let logger: Logger

    /// ``authorize(_:_:roles:namespace:)`` for the common case.
    func require(_ roles: Set<Role>, _ request: Request, _ context: RegistryContext, namespace: String? = nil) async throws {
        try await authorize(request, context, roles: roles, namespace: namespace)
    }

    /// Requires an authenticated token with one of `roles` (admin always passes) and, for a publisher, the
    /// namespace (``Authorizer``); records and throws the refusal otherwise.
    func authorize(_ request: Request, _ context: RegistryContext, roles: Set<Role>, namespace: String? = nil) async throws {
        do {
            try Authorizer.require(context.token, Action(roles: roles, namespace: namespace))
        } catch {
            throw await deny(error.code == .unauthorized ? .unauthorized : .forbidden, error.message, request: request, context: context)
        }
    }

    /// Records a refused request as an event and returns the problem to throw.
    ///
    /// Refusals are counted like repeated decisions: the first of a client's refusals for one reason is written, with
    /// its request line, before the answer; the repeats of each window become one event with their count, whatever
    /// paths they were for. A failed authentication (401) also counts against the address's failure budget: past it
    /// the answer is 429 with `Retry-After`, and those refusals are counted the same way.
    func deny(_ status: HTTPResponse.Status, _ reason: String, request: Request, context: RegistryContext) async -> ProblemResponse {
        let address = context.clientAddress ?? "unknown"
        var problem = ProblemResponse(status, reason)
        var reason = reason
        if status == .unauthorized, case .limited(let retryAfter) = authFailures.failure(from: address) {
            reason = "too many failed authentications from \(address)"
            problem = ProblemResponse(.tooManyRequests, "\(reason); retry in \(retryAfter) s")
            problem.headers[.retryAfter] = String(retryAfter)
            if authFailures.delay > .zero { try? await Task.sleep(for: authFailures.delay) }
        }
        let first = NewEvent(
            type: .requestDenied, actor: context.actor, detail: "\(request.method.rawValue) \(request.uri.path) from \(address): \(reason)",
            client: address)
        let series = NewEvent(type: .requestDenied, actor: context.actor, detail: "from \(address): \(reason)", client: address)
        do {
            if try await recorder.record(repeatable: first, series: series) {
                logger.info("request denied", metadata: ["actor": "\(context.actor)", "status": "\(problem.status.code)", "reason": "\(reason)"])
            }
        } catch {
            logger.error("cannot record a denied request", metadata: ["error": "\(error)"])
        }
        return problem
    }
}

extension Request {
    /// How a pull through a front door is described in its event: `via <door>, user agent '<agent>'` (printable
    /// ASCII, at most 200 characters of the agent).
    func via(_ door: String) -> String {
        let agent = headers[.userAgent].map { HubHeaders.safe(String($0.prefix(200))) } ?? "none"
        return "via \(door), user agent '\(agent)'"
    }
}

extension RegistryServices {
    var access: Access { Access(recorder: gate.recorder, authFailures: authFailures, logger: logger) }

    func authorize(_ request: Request, _ context: RegistryContext, roles: Set<Role>, namespace: String? = nil) async throws {
        try await access.authorize(request, context, roles: roles, namespace: namespace)
    }

    func deny(_ status: HTTPResponse.Status, _ reason: String, request: Request, context: RegistryContext) async -> ProblemResponse {
        await access.deny(status, reason, request: request, context: context)
    }
}
