import Crypto
import CustodyCore
import CustodyStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Prometheus

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Content-addressed blobs: existence checks, streamed and resumable uploads, ranged downloads.
///
/// Upload protocol: `PUT /v1/blobs/sha256:<hex>` carries the blob (or, with `Upload-Offset: N`, its bytes from N on)
/// and is hashed while it is written to a staging file; the digest is checked at the end and only then is the blob
/// placed, atomically. A connection that drops mid-body leaves the received prefix staged: `HEAD /v1/uploads/<digest>`
/// answers how much arrived (`Upload-Offset`), and the client resumes from there.
struct BlobController {
    static let uploadOffset = HTTPField.Name("Upload-Offset")!
    let services: RegistryServices

    func register(on router: Router<RegistryContext>) {
        router.head("/v1/blobs/:digest") { request, context in try await head(request, context) }
        router.get("/v1/blobs/:digest") { request, context in try await download(request, context) }
        router.put("/v1/blobs/:digest") { request, context in try await upload(request, context) }
        router.head("/v1/uploads/:digest") { request, context in try await uploadStatus(request, context) }
        router.post("/v1/blobs/missing") { request, context in try await missing(request, context) }
    }

    /// Which of the listed blobs the registry lacks: one request instead of a HEAD per file, for bundles of many
    /// small files.
    func missing(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.publisher])
        let body = try await services.jsonBody(request)
        let query: API.BlobQuery
        do {
            query = try JSONDecoder().decode(API.BlobQuery.self, from: Data(body.readableBytesView))
        } catch {
            throw Problem(.badRequest, "expected {\"digests\": [\"sha256:…\", …]}")
        }
        var missing: [ContentDigest] = []
        for digest in query.digests where try await storedSize(digest) == nil {
            missing.append(digest)
        }
        return try .json(API.BlobQuery(digests: missing))
    }

    private func digest(_ context: RegistryContext) throws -> ContentDigest {
        let text = try context.parameters.require("digest")
        do throws(CustodyError) { return try ContentDigest(parsing: text) } catch { throw Problem(.badRequest, error.message) }
    }

    func head(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.publisher, .consumer, .auditor])
        let digest = try digest(context)
        guard let size = try await storedSize(digest) else { return Response(status: .notFound) }
        return Response(status: .ok, headers: [.contentLength: String(size), .eTag: "\"\(digest)\"", .acceptRanges: "bytes"])
    }

    /// A blob counts as stored when it is both recorded and on disk.
    private func storedSize(_ digest: ContentDigest) async throws -> UInt64? {
        guard let recorded = try await services.database.blobSize(digest), services.blobs.size(of: digest) == recorded else { return nil }
        return recorded
    }

    func download(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.publisher, .consumer, .auditor, .security])
        let digest = try digest(context)
        try await services.gateBlob(digest, request: request, context: context)
        return try await serve(digest, request, context)
    }

    /// Sends a stored blob, or the byte range the request asks for.
    func serve(_ digest: ContentDigest, _ request: Request, _ context: RegistryContext) async throws -> Response {
        guard let size = try await storedSize(digest), let path = services.blobs.localPath(of: digest) else {
            throw Problem(.notFound, "blob \(digest) is not in the registry")
        }
        var headers: HTTPFields = [.contentType: "application/octet-stream", .eTag: "\"\(digest)\"", .acceptRanges: "bytes"]
        var status = HTTPResponse.Status.ok
        var range: ClosedRange<UInt64>? = size == 0 ? nil : 0...(size - 1)
        if let header = request.headers[.range] {
            guard let requested = ByteRange.parse(header, size: size) else {
                var problem = Problem(.rangeNotSatisfiable, "range '\(header)' is outside the \(size)-byte blob")
                problem.headers[.contentRange] = "bytes */\(size)"
                throw problem
            }
            range = requested
            status = .partialContent
            headers[.contentRange] = "bytes \(requested.lowerBound)-\(requested.upperBound)/\(size)"
        }
        let length = range.map { $0.upperBound - $0.lowerBound + 1 } ?? 0
        headers[.contentLength] = String(length)
        services.metrics.bytesOut.increment(by: Int64(length))
        guard let range else { return Response(status: status, headers: headers, body: .init()) }
        let body = try await FileIO().loadFile(
            path: path, range: Int(range.lowerBound)...Int(range.upperBound), context: context, chunkLength: 1 << 20)
        return Response(status: status, headers: headers, body: body)
    }

    func uploadStatus(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.publisher])
        let digest = try digest(context)
        if try await storedSize(digest) != nil {
            return Response(status: .ok, headers: [Self.uploadOffset: "0", .location: "/v1/blobs/\(digest)"])
        }
        let offset = fileSize(stagingPath(digest)) ?? 0
        return Response(status: .ok, headers: [Self.uploadOffset: String(offset)])
    }

    private func stagingPath(_ digest: ContentDigest) -> String {
        services.blobs.stagingDirectory + "/" + digest.hex + ".partial"
    }

    func upload(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await services.authorize(request, context, roles: [.publisher])
        let digest = try digest(context)
        if try await storedSize(digest) != nil {
            return Response(status: .ok, headers: [.location: "/v1/blobs/\(digest)"])
        }
        var offset: UInt64 = 0
        if let header = request.headers[Self.uploadOffset] {
            guard let value = UInt64(header) else { throw Problem(.badRequest, "Upload-Offset '\(header)' is not a byte count") }
            offset = value
        }
        let limit = services.configuration.maxBlobSize
        let declared = request.headers[.contentLength].flatMap { UInt64($0) }
        if let declared, offset + declared > limit {
            throw Problem(.contentTooLarge, "a \(offset + declared)-byte blob is over the registry's \(limit)-byte limit")
        }

        // A body whose declared length cannot fit is refused before a byte is staged. A resume needs only the rest.
        if let declared {
            let staged = offset > 0 ? fileSize(stagingPath(digest)) ?? 0 : 0
            try services.disk.admit(declared + offset - min(staged, declared + offset), for: "a \(offset + declared)-byte blob")
        }

        let resumable = await services.uploads.claim(digest)
        let staging = resumable ? stagingPath(digest) : services.blobs.stagingDirectory + "/" + UUID().uuidString + ".upload"
        var hasher = SHA256()
        if offset > 0 {
            guard resumable else {
                throw Problem(.conflict, "another upload of \(digest) is in progress; retry later")
            }
            let staged = fileSize(staging) ?? 0
            guard staged == offset else {
                await services.uploads.release(digest, interruptedAt: nil)
                var problem = Problem(.rangeNotSatisfiable, "the registry holds \(staged) bytes of this upload, not \(offset); resume from \(staged)")
                problem.headers[Self.uploadOffset] = String(staged)
                throw problem
            }
            if let saved = await services.uploads.hasher(for: digest, at: offset) {
                hasher = saved
            } else {
                do { hasher = try Self.rehash(staging, length: offset) } catch {
                    await services.uploads.release(digest, interruptedAt: nil)
                    throw error
                }
            }
        }

        let fd = open(staging, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if resumable { await services.uploads.release(digest, interruptedAt: nil) }
            throw CustodyError.io(staging, "create", errno: errno)
        }
        var received: UInt64 = 0
        var failure: (any Error)?
        if offset == 0 { ftruncate(fd, 0) }
        var writeback = EagerWriteback(fd: fd, from: offset)
        var checkedSpaceAt: UInt64 = 0
        // Often enough that a body of unknown length cannot write through the floor between two looks.
        let spaceCheckInterval = min(Self.spaceCheckInterval, max(1 << 20, (services.disk.reading()?.reserve ?? 0) / 2))
        do {
            for try await buffer in request.body {
                received += UInt64(buffer.readableBytes)
                guard offset + received <= limit else {
                    throw Problem(.contentTooLarge, "the blob is over the registry's \(limit)-byte limit")
                }
                // Other writers share the disk: look again every so often, for what this body still needs.
                if received - checkedSpaceAt >= spaceCheckInterval {
                    checkedSpaceAt = received
                    // A body of unknown length must leave room for at least one more interval.
                    try services.disk.admit(
                        declared.map { $0 > received ? $0 - received : 0 } ?? spaceCheckInterval,
                        for: declared == nil ? "the next part of an upload of unknown length" : "the rest of this upload")
                }
                try buffer.withUnsafeReadableBytes { bytes in
                    hasher.update(bufferPointer: bytes)
                    try FileIO.pwriteAll(bytes, to: fd, at: offset + received - UInt64(bytes.count), path: staging)
                }
                writeback.written(upTo: offset + received)
            }
        } catch let error as CustodyError where error.code == .insufficientStorage {
            // A full disk ends the upload for good: the staged bytes go, so that they do not hold the last free space.
            let asked = declared.map { "a \(offset + $0)-byte blob" } ?? "a blob of unknown length"
            let space = services.disk.reading().map { "\($0.reading.free) bytes are free" } ?? "the disk is full"
            failure = Problem(
                .insufficientStorage,
                error.message.hasPrefix("the registry has") ? error.message + "; nothing was kept"
                    : "the registry's disk filled up after \(offset + received) bytes of \(asked); \(space); nothing was kept")
        } catch {
            failure = error
        }
        close(fd)
        let total = offset + received
        services.metrics.bytesIn.increment(by: Int64(received))

        // A body that stopped short (dropped connection, or fewer bytes than declared) stays staged for a resume.
        let cutShort = failure.map { !($0 is Problem) } ?? (declared.map { received < $0 } ?? false)
        if cutShort, resumable {
            await services.uploads.release(digest, interruptedAt: .init(offset: total, hasher: hasher))
            throw failure ?? Problem(.badRequest, "the upload ended after \(received) of \(declared ?? 0) bytes; resume from offset \(total)")
        }
        // From here the staged file is placed or deleted. The claim is held until it is: another upload of the same
        // blob claiming it earlier would open (and truncate) the very file being renamed into the store.
        func discard() async {
            unlink(staging)
            if resumable { await services.uploads.release(digest, interruptedAt: nil) }
        }
        if let failure {
            await discard()
            throw failure
        }
        let actual = try ContentDigest(bytes: Array(hasher.finalize()))
        guard actual == digest else {
            await discard()
            throw Problem(.badRequest, "the uploaded bytes hash to \(actual), not \(digest); nothing was kept")
        }
        do {
            try services.blobs.commit(staged: staging, as: digest)
        } catch {
            await discard()
            throw error
        }
        if resumable { await services.uploads.release(digest, interruptedAt: nil) }
        try await services.database.recordBlob(digest, size: total)
        services.metrics.blobUploads.increment()
        return Response(status: .created, headers: [.location: "/v1/blobs/\(digest)"])
    }

    static let spaceCheckInterval: UInt64 = 64 << 20

    /// The SHA-256 state after the first `length` bytes of a staged file, for resuming after a restart.
    private static func rehash(_ path: String, length: UInt64) throws(CustodyError) -> SHA256 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path, "open", errno: errno) }
        defer { close(fd) }
        var hasher = SHA256()
        try FileIO.hash(fd, path: path, length: length, into: &hasher)
        return hasher
    }
}

func fileSize(_ path: String) -> UInt64? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return UInt64(info.st_size)
}

/// One `Range: bytes=…` request against a resource of `size` bytes (RFC 9110 §14.1.2); multiple ranges are not
/// supported and answered as unsatisfiable.
enum ByteRange {
    static func parse(_ header: String, size: UInt64) -> ClosedRange<UInt64>? {
        guard header.hasPrefix("bytes="), size > 0 else { return nil }
        let spec = header.dropFirst(6)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return nil }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
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
