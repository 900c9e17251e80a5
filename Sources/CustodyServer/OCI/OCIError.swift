import CustodyRegistry
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An error in the distribution spec's format: `{"errors":[{"code","message","detail"}]}` as `application/json`,
/// which skopeo, oras and containerd print.
struct OCIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let code: String
    let message: String
    var detail: Any?
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ code: OCIArtifacts.Refusal.Code, _ message: String, detail: Any? = nil) {
        self.status = status
        self.code = code.rawValue
        self.message = message
        self.detail = detail
    }

    init(_ refusal: OCIArtifacts.Refusal) {
        let status: HTTPResponse.Status =
            switch refusal.code {
            case .blobUnknown, .blobUploadUnknown, .manifestUnknown, .nameUnknown: .notFound
            case .unauthorized: .unauthorized
            case .denied: .forbidden
            case .sizeInvalid: .contentTooLarge
            case .tooManyRequests: .tooManyRequests
            case .unsupported, .blobUploadInvalid, .digestInvalid, .manifestBlobUnknown, .manifestInvalid, .nameInvalid: .badRequest
            }
        self.init(status, refusal.code, refusal.message, detail: refusal.detail)
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        fields[OCIHeaders.apiVersion] = "registry/2.0"
        var entry: [String: Any] = ["code": code, "message": message]
        if let detail { entry["detail"] = detail }
        let body = try JSONSerialization.data(withJSONObject: ["errors": [entry]], options: [.sortedKeys, .withoutEscapingSlashes])
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// The distribution API's headers and paths.
enum OCIHeaders {
    static let apiVersion = HTTPField.Name("Docker-Distribution-API-Version")!
    static let contentDigest = HTTPField.Name("Docker-Content-Digest")!
    static let uploadUUID = HTTPField.Name("Docker-Upload-UUID")!
    static let subject = HTTPField.Name("OCI-Subject")!
    static let filtersApplied = HTTPField.Name("OCI-Filters-Applied")!
    static let range = HTTPField.Name("Range")!
    static let link = HTTPField.Name("Link")!
    static let warning = HTTPField.Name("Warning")!

    /// Whether a path is the distribution API's: errors on it are answered in the spec's format.
    static func isOCIPath(_ path: String) -> Bool { path == "/v2" || path.hasPrefix("/v2/") }

    /// The challenge that sends a client for a token: `Bearer realm=<registry>/v2/token,service,scope`.
    static func challenge(_ request: Request, scheme: String) -> String {
        let realm = "\(scheme)://\(request.head.authority ?? "127.0.0.1")/v2/token"
        var value = "Bearer realm=\"\(realm)\",service=\"custody\""
        if let route = try? OCIRoute(path: request.uri.path) {
            let actions = request.method == .get || request.method == .head ? "pull" : "pull,push"
            value += ",scope=\"repository:\(route.name):\(actions)\""
        }
        return value
    }
}

extension ProblemResponse {
    /// The refusal in the spec's format: 401 with a token challenge, 403 `DENIED`, and the nearest code for the rest.
    func ociResponse(from request: Request, context: some RequestContext, scheme: String) throws -> Response {
        let code: OCIArtifacts.Refusal.Code =
            switch status.code {
            case 401: .unauthorized
            case 403: .denied
            case 404: .nameUnknown
            case 413: .sizeInvalid
            case 416: .blobUploadInvalid
            case 429: .tooManyRequests
            default: .unsupported
            }
        var error = OCIError(status, code, detail)
        error.headers = headers
        if status == .unauthorized { error.headers[.wwwAuthenticate] = OCIHeaders.challenge(request, scheme: scheme) }
        return try error.response(from: request, context: context)
    }
}

/// On the distribution API's paths: `Docker-Distribution-API-Version` on every answer, and refusals rendered with the
/// token challenge's absolute realm (which needs the scheme the registry is served with).
struct OCIMiddleware<Context: RequestContext>: RouterMiddleware {
    let scheme: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard OCIHeaders.isOCIPath(request.uri.path) else { return try await next(request, context) }
        do {
            var response = try await next(request, context)
            response.headers[OCIHeaders.apiVersion] = "registry/2.0"
            return response
        } catch var problem as ProblemResponse {
            problem.scheme = scheme
            throw problem
        } catch var error as OCIError where error.status == .unauthorized && error.headers[.wwwAuthenticate] == nil {
            error.headers[.wwwAuthenticate] = OCIHeaders.challenge(request, scheme: scheme)
            throw error
        }
    }
}
