import CustodyRegistry
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An error in the Hub's own format: `X-Error-Code` and `X-Error-Message` headers (which huggingface_hub turns into
/// `RepositoryNotFoundError`, `RevisionNotFoundError`, `RemoteEntryNotFoundError`, `GatedRepoError` and prints) and
/// a `{"error": …}` body.
struct HubError: HTTPResponseError {
    let status: HTTPResponse.Status
    let code: String?
    let message: String
    /// Added to the answer: `X-Repo-Commit` on an `EntryNotFound`, so that the client records the file as absent.
    var headers: HTTPFields = [:]
    /// `X-Error-Message` when it must differ from the body's message.
    var headerMessage: String?

    init(_ status: HTTPResponse.Status, code: String?, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    init(_ refusal: HubRepository.Refusal) {
        switch refusal {
        case .repositoryNotFound(let text): self.init(.notFound, code: "RepoNotFound", text)
        case .revisionNotFound(let text): self.init(.notFound, code: "RevisionNotFound", text)
        case .entryNotFound(let text): self.init(.notFound, code: "EntryNotFound", text)
        case .gated(let text): self.init(.forbidden, code: "GatedRepo", text)
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        if let code { fields[HubHeaders.errorCode] = code }
        fields[HubHeaders.errorMessage] = HubHeaders.safe(headerMessage ?? message)
        fields[.contentType] = "application/json"
        let body = try JSONSerialization.data(withJSONObject: ["error": message], options: [.sortedKeys, .withoutEscapingSlashes])
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// The Hub's headers, and the paths its clients call.
enum HubHeaders {
    static let errorCode = HTTPField.Name("X-Error-Code")!
    static let errorMessage = HTTPField.Name("X-Error-Message")!
    static let repoCommit = HTTPField.Name("X-Repo-Commit")!
    static let linkedETag = HTTPField.Name("X-Linked-Etag")!
    static let linkedSize = HTTPField.Name("X-Linked-Size")!
    static let warning = HTTPField.Name("X-HF-Warning")!
    static let link = HTTPField.Name("Link")!

    /// A header value from any text: printable ASCII only (others become `?`), at most 2,000 characters.
    static func safe(_ text: String) -> String {
        let scalars = text.unicodeScalars.prefix(2000).map { (0x20...0x7E).contains($0.value) ? Character($0) : "?" }
        return String(scalars)
    }

    /// Whether a path is one the Hub's clients call (`/api/…` or `/{ns}/{name}/resolve/…`): errors on it are answered
    /// in the Hub's format, whatever raised them.
    static func isHubPath(_ path: String) -> Bool {
        if path.hasPrefix("/api/") { return true }
        let parts = path.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0].isEmpty && (parts[3].hasPrefix("resolve/") || parts[3].hasPrefix("info/lfs/"))
    }
}
