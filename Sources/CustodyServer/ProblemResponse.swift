package import CustodyCore
import CustodyRegistry
import CustodyStorage
import Foundation
import HTTPTypes
package import Hummingbird
import Logging
import NIOCore

extension HTTPResponse.Status {
    /// RFC 4918's 507: the registry cannot store what was asked for until space is freed.
    static let insufficientStorage = HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")
}

/// An error rendered as RFC 9457 `application/problem+json`.
package struct ProblemResponse: HTTPResponseError {
    package let status: HTTPResponse.Status
    package let detail: String
    package var headers: HTTPFields = [:]
    /// Gate decisions behind a refusal, carried in the body.
    package var decisions: [API.Decision]?
    /// How the client reached the registry, for the absolute URLs some protocols' errors carry.
    package var scheme = "http"

    package init(_ status: HTTPResponse.Status, _ detail: String) {
        self.status = status
        self.detail = detail
    }

    package init(_ error: CustodyError) {
        let status: HTTPResponse.Status =
            switch error.code {
            case .invalidArgument, .malformedSignature, .invalidModel, .invalidKey: .badRequest
            case .verificationFailed: .unprocessableContent
            case .notFound: .notFound
            case .conflict: .conflict
            case .outOfOrder: .rangeNotSatisfiable
            case .unauthorized: .unauthorized
            case .forbidden: .forbidden
            case .tooLarge: .contentTooLarge
            case .insufficientStorage: .insufficientStorage
            case .unavailable: .serviceUnavailable
            case .io, .remote: .internalServerError
            }
        let detail = ([error.message] + error.details).joined(separator: "; ")
        self.init(status, status == .internalServerError ? "internal error" : detail)
        if status == .serviceUnavailable { headers[.retryAfter] = "1" }
    }

    package func response(from request: Request, context: some RequestContext) throws -> Response {
        if HubHeaders.isHubPath(request.uri.path) { return try hubResponse(from: request, context: context) }
        if OCIHeaders.isOCIPath(request.uri.path) { return try ociResponse(from: request, context: context, scheme: scheme) }
        let problem = API.Problem(status: status.code, title: status.reasonPhrase, detail: detail, decisions: decisions)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var fields = headers
        fields[.contentType] = "application/problem+json"
        if status == .unauthorized { fields[.wwwAuthenticate] = #"Bearer realm="custody""# }
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(problem))))
    }
}

extension ProblemResponse {
    /// The refusal in the Hub's format, for its clients: a refused token is "Invalid credentials in Authorization
    /// header", which huggingface_hub reports as such rather than as a missing repository.
    func hubResponse(from request: Request, context: some RequestContext) throws -> Response {
        var error = HubError(status, code: nil, detail)
        error.headers = headers
        if status == .unauthorized, request.headers[.authorization] != nil {
            error.headerMessage = "Invalid credentials in Authorization header"
        }
        return try error.response(from: request, context: context)
    }
}

/// Turns every error escaping a handler into problem+json: Custody's own errors by their code, Hummingbird's HTTP
/// errors by their status, anything else as a 500 whose cause is logged but not shown.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as ProblemResponse {
            throw problem
        } catch let error as HubError {
            throw error
        } catch let error as OCIError {
            throw error
        } catch let refusal as OCIArtifacts.Refusal {
            throw OCIError(refusal)
        } catch let error as CustodyError {
            if error.code == .io || error.code == .remote || error.code == .unavailable {
                context.logger.error("request failed", metadata: ["error": "\(error.message)", "path": "\(request.uri.path)"])
            }
            throw ProblemResponse(error)
        } catch is NIOTooManyBytesError {
            // A body read under a limit other than the JSON one: still the client's to fix, never a 500.
            throw ProblemResponse(.contentTooLarge, "the request body is over the registry's limit for this endpoint")
        } catch let error as HTTPError {
            throw ProblemResponse(error.status, error.body ?? error.status.reasonPhrase)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            throw ProblemResponse(.internalServerError, "internal error")
        }
    }
}
