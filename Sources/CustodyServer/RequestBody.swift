import CustodyCore
import CustodyRegistry
import CustodyStorage
import Foundation
import Hummingbird
import NIOCore

/// JSON request bodies, read under the one limit every JSON endpoint shares (`limits.maxRequestSize`).
struct JSONBodies: Sendable {
    let limit: Int

    /// The whole body. A `Content-Length` over the limit is refused before a byte is read; a body that grows past it
    /// while streaming is refused when it does. Both answer 413 naming the limit.
    func collect(_ request: Request) async throws -> ByteBuffer {
        if let declared = request.headers[.contentLength].flatMap({ UInt64($0) }), declared > UInt64(limit) {
            throw ProblemResponse.bodyTooLarge(limit: limit, declared: declared)
        }
        do {
            return try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw ProblemResponse.bodyTooLarge(limit: limit, declared: nil)
        }
    }

    /// The body decoded as `T`; 400 naming `what` when it is not of that shape.
    func decode<T: Decodable>(_ request: Request, as type: T.Type, what: String) async throws -> T {
        let bytes = try await collect(request)
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes.readableBytesView))
        } catch {
            throw ProblemResponse(.badRequest, "the \(what) is not valid JSON of the expected shape: \(error)")
        }
    }
}

extension RegistryServices {
    var bodies: JSONBodies { JSONBodies(limit: configuration.maxRequestSize) }

    /// ``JSONBodies/collect(_:)``.
    func jsonBody(_ request: Request) async throws -> ByteBuffer { try await bodies.collect(request) }

    /// ``JSONBodies/decode(_:as:what:)``.
    func jsonBody<T: Decodable>(_ request: Request, as type: T.Type, what: String) async throws -> T {
        try await bodies.decode(request, as: type, what: what)
    }
}

/// Refuses, before routing, any request other than a blob upload whose declared body is over
/// `limits.maxRequestSize`: every endpoint, including those that read no body, answers such a request 413 without
/// reading it. Bodies without a declared length are bounded where they are read (``JSONBodies/collect(_:)``).
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let limit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let declared = request.headers[.contentLength].flatMap({ UInt64($0) }), declared > UInt64(limit),
            !(request.method == .put && (request.uri.path.hasPrefix("/v1/blobs/") || request.uri.path.hasPrefix("/api/custody/lfs/"))),
            // The OCI API's uploads are blob bodies; its manifests have their own limit.
            !OCIHeaders.isOCIPath(request.uri.path)
        {
            throw ProblemResponse.bodyTooLarge(limit: limit, declared: declared)
        }
        return try await next(request, context)
    }
}

extension ProblemResponse {
    /// 413 for a JSON body over `limits.maxRequestSize`. The rest of the body is read and dropped, not stored, so that
    /// a client that sends it all before reading still gets the answer; the idle timeout bounds a client that stalls.
    static func bodyTooLarge(limit: Int, declared: UInt64?) -> ProblemResponse {
        let size = declared.map { "a \($0)-byte request body" } ?? "the request body"
        return ProblemResponse(.contentTooLarge, "\(size) is over the registry's \(limit)-byte limit for JSON requests (limits.maxRequestSize)")
    }
}
