package import AsyncHTTPClient
import Crypto
package import CustodyCore
package import Foundation
import FoundationXML
package import NIOCore
import NIOHTTP1

/// Where blobs live in an S3-compatible store: `s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1`.
/// Requests are path-style (`endpoint/bucket/key`), which every S3-compatible server answers.
package struct S3Location: Sendable, Equatable {
    package var endpoint: String
    package var bucket: String
    package var prefix: String
    package var region: String

    package init(endpoint: String, bucket: String, prefix: String = "", region: String = "us-east-1") {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.bucket = bucket
        self.prefix = prefix
        self.region = region
    }

    /// Parses an `s3://` URL; the error names what is wrong with it.
    package init(parsing text: String) throws(S3Error) {
        guard let components = URLComponents(string: text), components.scheme == "s3", let bucket = components.host, !bucket.isEmpty else {
            throw S3Error.invalid("'\(text)' is not an s3://bucket[/prefix]?endpoint=…&region=… URL")
        }
        let items = components.queryItems ?? []
        guard let endpoint = items.first(where: { $0.name == "endpoint" })?.value, let url = URL(string: endpoint),
            url.scheme == "http" || url.scheme == "https", url.host != nil
        else { throw S3Error.invalid("'\(text)' needs ?endpoint=http(s)://host:port, the S3 server to use") }
        let prefix = components.path.split(separator: "/").joined(separator: "/")
        self.init(
            endpoint: endpoint, bucket: bucket, prefix: prefix, region: items.first(where: { $0.name == "region" })?.value ?? "us-east-1")
    }

    /// The object key of `name` under the prefix.
    package func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "/" + name }
}

/// A refusal or failure of the S3 server, with its code (`NoSuchKey`, `PreconditionFailed`, …) and message.
package struct S3Error: Error, Sendable, Equatable, CustomStringConvertible {
    package var status: Int
    package var code: String
    package var message: String

    package init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    static func invalid(_ message: String) -> S3Error { S3Error(status: 0, code: "InvalidConfiguration", message: message) }

    package var description: String { status == 0 ? message : "S3 \(status) \(code): \(message)" }
}

/// The S3 operations the blob store needs, over AsyncHTTPClient, SigV4-signed (the payload's SHA-256 is signed, so
/// the server checks the bytes too). No retries here: the caller decides what may be repeated.
package final class S3Client: Sendable {
    package let location: S3Location
    let signer: SigV4
    let http: HTTPClient
    /// The clock requests are signed with; injected by tests.
    let now: @Sendable () -> Date

    package init(location: S3Location, credentials: SigV4.Credentials, http: HTTPClient, now: @escaping @Sendable () -> Date = { Date() }) {
        self.location = location
        self.signer = SigV4(credentials: credentials, region: location.region)
        self.http = http
        self.now = now
    }

    // MARK: Objects

    package enum Written: Sendable, Equatable {
        case created
        /// `If-None-Match: *` found the key already there (another writer stored it first).
        case alreadyThere
    }

    /// `PutObject`; with `ifAbsent`, only when the key is not there yet. `metadata` becomes the object's user metadata
    /// (`x-amz-meta-<name>`: lower-case names, ASCII values).
    package func put(
        _ name: String, _ bytes: [UInt8], ifAbsent: Bool = true, metadata: [(name: String, value: String)] = []
    ) async throws(S3Error) -> Written {
        let headers = (ifAbsent ? [("If-None-Match", "*")] : []) + metadata.map { ("x-amz-meta-" + $0.name, $0.value) }
        let response = try await send("PUT", name, body: bytes, headers: headers)
        if response.status == 412 { return .alreadyThere }
        try Self.check(response, expecting: [200])
        return .created
    }

    /// An object's size and user metadata (names without `x-amz-meta-`, lower-case).
    package struct Head: Sendable, Equatable {
        package let size: UInt64
        package let metadata: [String: String]
    }

    /// The object's size and metadata, or nil when there is none.
    package func head(_ name: String) async throws(S3Error) -> Head? {
        let response = try await send("HEAD", name)
        if response.status == 404 { return nil }
        try Self.check(response, expecting: [200])
        return Head(size: response.headers.first(name: "Content-Length").flatMap { UInt64($0) } ?? 0, metadata: Self.metadata(response.headers))
    }

    /// The object's size, or nil when there is none.
    package func size(of name: String) async throws(S3Error) -> UInt64? {
        try await head(name)?.size
    }

    static func metadata(_ headers: HTTPHeaders) -> [String: String] {
        var found: [String: String] = [:]
        for (name, value) in headers where name.lowercased().hasPrefix("x-amz-meta-") {
            found[String(name.lowercased().dropFirst("x-amz-meta-".count))] = value
        }
        return found
    }

    /// The object's bytes (`range` inclusive), read whole (at most 64 MiB).
    package func get(_ name: String, range: ClosedRange<UInt64>? = nil) async throws(S3Error) -> [UInt8] {
        let response = try await send("GET", name, headers: range.map { [("Range", "bytes=\($0.lowerBound)-\($0.upperBound)")] } ?? [])
        try Self.check(response, expecting: range == nil ? [200] : [206])
        return response.body
    }

    /// Streams the whole object into `file` (created 0600, replaced), hashing it; returns its digest, size and user
    /// metadata. `progress` is told how many bytes the file holds after each write. Nothing is left at `file` when
    /// the read fails.
    package func download(
        _ name: String, to file: String, progress: (@Sendable (UInt64) -> Void)? = nil
    ) async throws(S3Error) -> (digest: ContentDigest, size: UInt64, metadata: [String: String]) {
        let path = "/\(location.bucket)/\(location.key(name))"
        let signed = signer.sign(SigV4.Request(method: "GET", path: path, headers: [("Host", host)]), at: now())
        var request = HTTPClientRequest(url: location.endpoint + SigV4.encode(path, keepingSlash: true))
        for (header, value) in signed.headers { request.headers.add(name: header, value: value) }
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw S3Error(status: 0, code: "LocalFile", message: "\(file): cannot create (errno \(errno))") }
        var hasher = SHA256()
        var size: UInt64 = 0
        var metadata: [String: String] = [:]
        do {
            defer { close(fd) }
            let response = try await http.execute(request, timeout: .hours(1))
            metadata = Self.metadata(response.headers)
            guard response.status.code == 200 else {
                let body = try await response.body.collect(upTo: 1 << 20)
                try Self.check(
                    Answer(status: Int(response.status.code), headers: response.headers, body: Array(body.readableBytesView)), expecting: [200])
                throw S3Error(status: Int(response.status.code), code: "Unexpected", message: "GET \(path)")
            }
            for try await buffer in response.body {
                try buffer.withUnsafeReadableBytes { bytes throws(S3Error) in
                    hasher.update(bufferPointer: bytes)
                    var done = 0
                    while done < bytes.count {
                        let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(size) + off_t(done))
                        guard n > 0 else { throw S3Error(status: 0, code: "LocalFile", message: "\(file): write failed (errno \(errno))") }
                        done += n
                    }
                }
                size += UInt64(buffer.readableBytes)
                progress?(size)
            }
        } catch {
            unlink(file)
            if let error = error as? S3Error { throw error }
            throw S3Error(status: 0, code: "Unreachable", message: "GET \(location.endpoint)\(path) failed: \(error)")
        }
        do throws(CustodyError) { return (try ContentDigest(bytes: Array(hasher.finalize())), size, metadata) } catch {
            throw S3Error(status: 0, code: "Digest", message: error.message)
        }
    }

    /// Deletes the object (idempotent).
    package func delete(_ name: String) async throws(S3Error) {
        let response = try await send("DELETE", name)
        try Self.check(response, expecting: [200, 204])
    }

    /// Keys (without the prefix), sizes and last-modified times (ISO 8601, as S3 gives them) of the objects under
    /// `under`, every page.
    package func list(under: String = "") async throws(S3Error) -> [(name: String, size: UInt64, modified: String)] {
        var out: [(String, UInt64, String)] = []
        var token: String?
        repeat {
            var query: [(name: String, value: String)] = [("list-type", "2"), ("prefix", location.key(under))]
            if let token { query.append(("continuation-token", token)) }
            let response = try await send("GET", nil, query: query)
            try Self.check(response, expecting: [200])
            let document = XMLValues(response.body)
            let keys = document.values("Key")
            let sizes = document.values("Size")
            let modified = document.values("LastModified")
            for (index, (key, size)) in zip(keys, sizes).enumerated() {
                out.append((strip(key), UInt64(size) ?? 0, index < modified.count ? modified[index] : ""))
            }
            token = document.values("IsTruncated").first == "true" ? document.values("NextContinuationToken").first : nil
        } while token != nil
        return out
    }

    // MARK: Multipart uploads

    package func createMultipartUpload(_ name: String) async throws(S3Error) -> String {
        let response = try await send("POST", name, query: [("uploads", "")])
        try Self.check(response, expecting: [200])
        guard let id = XMLValues(response.body).values("UploadId").first, !id.isEmpty else {
            throw S3Error(status: response.status, code: "MalformedResponse", message: "CreateMultipartUpload answered no UploadId")
        }
        return id
    }

    /// Uploads part `number` (1–10,000) and returns its ETag.
    package func uploadPart(_ name: String, uploadID: String, number: Int, _ bytes: [UInt8]) async throws(S3Error) -> String {
        let response = try await send("PUT", name, query: [("partNumber", String(number)), ("uploadId", uploadID)], body: bytes)
        try Self.check(response, expecting: [200])
        guard let etag = response.headers.first(name: "ETag") else {
            throw S3Error(status: response.status, code: "MalformedResponse", message: "UploadPart answered no ETag")
        }
        return etag
    }

    /// Completes the upload from its parts' ETags, in order; with `ifAbsent`, only when the key is not there yet.
    /// A `200` whose body is an `<Error>` is a failure, as S3 may answer.
    package func completeMultipartUpload(
        _ name: String, uploadID: String, parts: [String], ifAbsent: Bool = true
    ) async throws(S3Error) -> Written {
        let body =
            "<CompleteMultipartUpload>"
            + parts.enumerated().map { "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\(Self.escape($0.element))</ETag></Part>" }.joined()
            + "</CompleteMultipartUpload>"
        let response = try await send(
            "POST", name, query: [("uploadId", uploadID)], body: Array(body.utf8), headers: ifAbsent ? [("If-None-Match", "*")] : [])
        if response.status == 412 { return .alreadyThere }
        try Self.check(response, expecting: [200])
        let document = XMLValues(response.body)
        if let code = document.values("Code").first, document.root == "Error" {
            throw S3Error(status: response.status, code: code, message: document.values("Message").first ?? "")
        }
        return .created
    }

    package func abortMultipartUpload(_ name: String, uploadID: String) async throws(S3Error) {
        let response = try await send("DELETE", name, query: [("uploadId", uploadID)])
        if response.status == 404 { return }
        try Self.check(response, expecting: [200, 204])
    }

    /// The multipart uploads in progress under `under`: key (without the prefix), upload id, when it began.
    package func multipartUploads(under: String = "") async throws(S3Error) -> [(name: String, uploadID: String, initiated: String)] {
        let response = try await send("GET", nil, query: [("uploads", ""), ("prefix", location.key(under))])
        try Self.check(response, expecting: [200])
        let document = XMLValues(response.body)
        return zip(document.values("Key"), zip(document.values("UploadId"), document.values("Initiated"))).map {
            (strip($0.0), $0.1.0, $0.1.1)
        }
    }

    // MARK: Presigning

    /// A URL that GETs the object without credentials for `seconds` (a `Range` header may be added).
    package func presignedGet(_ name: String, seconds: Int) -> String {
        let path = "/\(location.bucket)/\(location.key(name))"
        let request = SigV4.Request(method: "GET", path: path, headers: [("Host", host)], payloadHash: SigV4.unsignedPayload)
        let (query, _) = signer.presign(request, at: now(), expires: seconds)
        let text = query.map { SigV4.encode($0.name, keepingSlash: false) + "=" + SigV4.encode($0.value, keepingSlash: false) }
            .joined(separator: "&")
        return location.endpoint + SigV4.encode(path, keepingSlash: true) + "?" + text
    }

    // MARK: Requests

    struct Answer {
        let status: Int
        let headers: HTTPHeaders
        let body: [UInt8]
    }

    var host: String {
        let url = URL(string: location.endpoint)
        let port = url?.port.map { ":\($0)" } ?? ""
        return (url?.host ?? "") + port
    }

    /// Sends a signed request for object `name` (nil: the bucket itself) and reads the whole answer (bounded: S3's
    /// answers to these operations are small, except GETs the caller sized).
    func send(
        _ method: String, _ name: String?, query: [(name: String, value: String)] = [], body: [UInt8] = [],
        headers extra: [(String, String)] = []
    ) async throws(S3Error) -> Answer {
        let path = "/\(location.bucket)" + (name.map { "/" + location.key($0) } ?? "")
        let payloadHash = SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined()
        var headers: [(name: String, value: String)] = [("Host", host)] + extra.map { (name: $0.0, value: $0.1) }
        if !body.isEmpty || method == "PUT" || method == "POST" { headers.append(("Content-Length", String(body.count))) }
        let signed = signer.sign(SigV4.Request(method: method, path: path, query: query, headers: headers, payloadHash: payloadHash), at: now())
        let queryText = query.map { SigV4.encode($0.name, keepingSlash: false) + "=" + SigV4.encode($0.value, keepingSlash: false) }
            .joined(separator: "&")
        var request = HTTPClientRequest(url: location.endpoint + SigV4.encode(path, keepingSlash: true) + (queryText.isEmpty ? "" : "?" + queryText))
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in (headers + signed.headers) where name != "Host" { request.headers.add(name: name, value: value) }
        if !body.isEmpty { request.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            let response = try await http.execute(request, timeout: .seconds(300))
            let bytes = method == "HEAD" ? ByteBuffer() : try await response.body.collect(upTo: 64 << 20)
            return Answer(status: Int(response.status.code), headers: response.headers, body: Array(bytes.readableBytesView))
        } catch {
            throw S3Error(status: 0, code: "Unreachable", message: "\(method) \(location.endpoint)\(path) failed: \(error)")
        }
    }

    static func check(_ answer: Answer, expecting statuses: Set<Int>) throws(S3Error) {
        guard !statuses.contains(answer.status) else { return }
        let document = XMLValues(answer.body)
        throw S3Error(
            status: answer.status, code: document.values("Code").first ?? "HTTP\(answer.status)", message: document.values("Message").first ?? "")
    }

    func strip(_ key: String) -> String {
        location.prefix.isEmpty ? key : String(key.dropFirst(location.prefix.count + 1))
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// The text of every element of an XML answer by name, in document order (S3's answers are flat enough for that),
/// read with FoundationXML's parser.
final class XMLValues: NSObject, XMLParserDelegate {
    private var found: [String: [String]] = [:]
    private var text = ""
    private(set) var root: String?

    init(_ bytes: [UInt8]) {
        super.init()
        guard !bytes.isEmpty else { return }
        let parser = XMLParser(data: Data(bytes))
        parser.delegate = self
        parser.parse()
    }

    func values(_ name: String) -> [String] { found[name] ?? [] }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String]
    ) {
        if root == nil { root = elementName }
        text = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        found[elementName, default: []].append(text)
        text = ""
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
