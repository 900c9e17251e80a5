import CustodyCore
import CustodyRegistry
import CustodyStorage
import CustodyStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOFoundationCompat
import Prometheus

/// Content-addressed blobs: existence checks, streamed and resumable uploads, ranged downloads.
///
/// Upload protocol: `PUT /v1/blobs/sha256:<hex>` carries the blob (or, with `Upload-Offset: N`, its bytes from N on)
/// and is hashed while it is written to a staging file; the digest is checked at the end and only then is the blob
/// placed, atomically. A connection that drops mid-body leaves the received prefix staged: `HEAD /v1/uploads/<digest>`
/// answers how much arrived (`Upload-Offset`), and the client resumes from there.
struct BlobController {
    static let uploadOffset = HTTPField.Name("Upload-Offset")!
    let uploads: Uploads
    let sender: BlobSender
    let gate: PullGate
    let access: Access
    let bodies: JSONBodies
    let metrics: RegistryMetrics

    var routes: RouteCollection<RegistryContext> {
        let routes = RouteCollection(context: RegistryContext.self)
        routes.head("/v1/blobs/:digest") { request, context in try await head(request, context) }
        routes.get("/v1/blobs/:digest") { request, context in try await download(request, context) }
        routes.put("/v1/blobs/:digest") { request, context in try await upload(request, context) }
        routes.head("/v1/uploads/:digest") { request, context in try await uploadStatus(request, context) }
        routes.post("/v1/blobs/missing") { request, context in try await missing(request, context) }
        return routes
    }

    /// Which of the listed blobs the registry lacks: one request instead of a HEAD per file, for bundles of many
    /// small files.
    func missing(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.publisher])
        let body = try await bodies.collect(request)
        let query: API.BlobQuery
        do {
            query = try JSONDecoder().decode(API.BlobQuery.self, from: Data(body.readableBytesView))
        } catch {
            throw ProblemResponse(.badRequest, "expected {\"digests\": [\"sha256:…\", …]}")
        }
        var missing: [ContentDigest] = []
        for digest in query.digests where try await storedSize(digest) == nil {
            missing.append(digest)
        }
        return try .json(API.BlobQuery(digests: missing))
    }

    private func digest(_ context: RegistryContext) throws -> ContentDigest {
        let text = try context.parameters.require("digest")
        do throws(CustodyError) { return try ContentDigest(parsing: text) } catch { throw ProblemResponse(.badRequest, error.message) }
    }

    func head(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.publisher, .consumer, .auditor])
        let digest = try digest(context)
        guard let size = try await storedSize(digest) else { return Response(status: .notFound) }
        return Response(status: .ok, headers: [.contentLength: String(size), .eTag: "\"\(digest)\"", .acceptRanges: "bytes"])
    }

    private func storedSize(_ digest: ContentDigest) async throws -> UInt64? {
        try await uploads.storedSize(digest)
    }

    func download(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.publisher, .consumer, .auditor, .security])
        let digest = try digest(context)
        try await gate.mayFetch(digest, request: request, context: context)
        return try await sender.serve(digest, request, context)
    }

    func uploadStatus(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.publisher])
        let digest = try digest(context)
        guard let offset = try await uploads.offset(of: digest) else {
            return Response(status: .ok, headers: [Self.uploadOffset: "0", .location: "/v1/blobs/\(digest)"])
        }
        return Response(status: .ok, headers: [Self.uploadOffset: String(offset)])
    }

    func upload(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.publisher])
        let digest = try digest(context)
        var offset: UInt64 = 0
        if let header = request.headers[Self.uploadOffset] {
            guard let value = UInt64(header) else { throw ProblemResponse(.badRequest, "Upload-Offset '\(header)' is not a byte count") }
            offset = value
        }
        let declared = request.headers[.contentLength].flatMap { UInt64($0) }
        let outcome: Uploads.Outcome
        do {
            outcome = try await uploads.receive(
                digest, from: offset, declaredLength: declared, body: request.body.map { $0.readableBytesView })
        } catch {
            throw await problem(error, resuming: digest)
        }
        guard case .created = outcome else { return Response(status: .ok, headers: [.location: "/v1/blobs/\(digest)"]) }
        metrics.blobUploads.increment()
        return Response(status: .created, headers: [.location: "/v1/blobs/\(digest)"])
    }

    /// A resume from the wrong offset answers 416 with where the upload stands, so that the client resumes there.
    private func problem(_ error: CustodyError, resuming digest: ContentDigest) async -> any Error {
        guard error.code == .outOfOrder else { return error }
        var problem = ProblemResponse(.rangeNotSatisfiable, error.message)
        problem.headers[Self.uploadOffset] = String((try? await uploads.offset(of: digest)) ?? 0)
        return problem
    }
}

/// Sends blobs, for every route that answers with one: the whole blob or the byte range asked for, from a file or
/// bytes as the blob store hands it out — or, for a consumer whose environments opted in (`storage.redirect`), a
/// `307` to a presigned URL of the store, so that the bytes do not pass the registry. The gate has decided before
/// either: a redirect is given only for what the consumer may pull.
struct BlobSender: Sendable {
    let uploads: Uploads
    let blobs: any BlobStore
    let metrics: RegistryMetrics
    var redirect: RegistryConfiguration.BlobRedirect?

    init(uploads: Uploads, blobs: any BlobStore, metrics: RegistryMetrics, redirect: RegistryConfiguration.BlobRedirect? = nil) {
        (self.uploads, self.blobs, self.metrics, self.redirect) = (uploads, blobs, metrics, redirect)
    }

    init(_ services: RegistryServices) {
        self.init(uploads: services.uploads, blobs: services.blobs, metrics: services.metrics, redirect: services.configuration.blobRedirect)
    }

    /// Sends a stored blob, or the byte range the request asks for.
    /// `extra` headers are added to the answer (and may replace the `ETag`).
    func serve(_ digest: ContentDigest, _ request: Request, _ context: RegistryContext, extra: HTTPFields = [:]) async throws -> Response {
        guard let size = try await uploads.storedSize(digest) else {
            throw ProblemResponse(.notFound, "blob \(digest) is not in the registry")
        }
        var headers: HTTPFields = [.contentType: "application/octet-stream", .eTag: "\"\(digest)\"", .acceptRanges: "bytes"]
        for field in extra { headers[field.name] = field.value }
        let range = try Self.range(request, size: size)
        let status: HTTPResponse.Status = request.headers[.range] == nil ? .ok : .partialContent
        if status == .partialContent, let range { headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)" }
        let length = range.map { $0.upperBound - $0.lowerBound + 1 } ?? 0
        headers[.contentLength] = String(length)
        if let redirect, let token = context.token, token.role == .consumer, redirect.redirects(token.environments),
            let location = try await blobs.presignedURL(of: digest, seconds: Int(redirect.expiry.components.seconds))
        {
            // The URL is a bearer capability until it expires: not cached, not logged. The blob's own headers go
            // with it (`ETag`, the front door's: a Hub client reads the file's size and digest off the redirect).
            metrics.redirects.increment()
            var redirectHeaders: HTTPFields = [.eTag: "\"\(digest)\""]
            for field in extra { redirectHeaders[field.name] = field.value }
            redirectHeaders[.location] = location
            redirectHeaders[.cacheControl] = "no-store"
            redirectHeaders[.contentLength] = "0"
            return Response(status: .temporaryRedirect, headers: redirectHeaders)
        }
        metrics.bytesOut.increment(by: Int64(length))
        switch try await blobs.body(of: digest, range: range) {
        case .file(_, nil), .bytes([]):
            return Response(status: status, headers: headers, body: .init())
        case .file(let path, let range?):
            let body = try await FileIO().loadFile(
                path: path, range: Int(range.lowerBound)...Int(range.upperBound), context: context, chunkLength: 1 << 20)
            return Response(status: status, headers: headers, body: body)
        case .bytes(let bytes):
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        case .stream(let stream):
            // A failure mid-way (bytes that are not the blob's) ends the connection short of its Content-Length.
            return Response(
                status: status, headers: headers,
                body: ResponseBody(contentLength: Int(length)) { writer in
                    while let chunk = try await stream.next() { try await writer.write(ByteBuffer(bytes: chunk)) }
                    try await writer.finish(nil)
                })
        }
    }

    /// Sends `bytes` held in memory (a signature, a document) as a blob would be: whole, or the range asked for.
    func serve(bytes: [UInt8], _ request: Request, extra: HTTPFields = [:]) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/octet-stream", .acceptRanges: "bytes"]
        for field in extra { headers[field.name] = field.value }
        let range = try Self.range(request, size: UInt64(bytes.count))
        let status: HTTPResponse.Status = request.headers[.range] == nil ? .ok : .partialContent
        if status == .partialContent, let range { headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(bytes.count)" }
        let slice = range.map { Array(bytes[Int($0.lowerBound)...Int($0.upperBound)]) } ?? []
        headers[.contentLength] = String(slice.count)
        metrics.bytesOut.increment(by: Int64(slice.count))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: slice)))
    }

    /// The bytes a request asks for: its `Range` (one range; 416 naming the size when it is outside), or all of them
    /// (nil for an empty blob).
    static func range(_ request: Request, size: UInt64) throws -> ClosedRange<UInt64>? {
        guard let header = request.headers[.range] else { return size == 0 ? nil : 0...(size - 1) }
        guard let requested = ByteRange.parse(header, size: size) else {
            var problem = ProblemResponse(.rangeNotSatisfiable, "range '\(header)' is outside the \(size)-byte blob")
            problem.headers[.contentRange] = "bytes */\(size)"
            throw problem
        }
        return requested
    }
}

/// One `Range: bytes=…` request against a resource of `size` bytes (RFC 9110 §14.1.2); multiple ranges are not
/// supported and answered as unsatisfiable.
enum ByteRange {
    static func parse(_ header: String, size: UInt64) -> ClosedRange<UInt64>? {
        guard header.hasPrefix("bytes="), size > 0 else { return nil }
        let spec = header.dropFirst(6)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return nil }
        let first = spec[..<dash]
        let last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            guard let suffix = UInt64(last), suffix > 0 else { return nil }
            return (size - min(suffix, size))...(size - 1)
        }
        guard let start = UInt64(first), start < size else { return nil }
        if last.isEmpty { return start...(size - 1) }
        guard let end = UInt64(last), end >= start else { return nil }
        return start...min(end, size - 1)
    }
}
