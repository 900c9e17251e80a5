import AsyncHTTPClient
import Crypto
package import CustodyCore
import Foundation
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension RegistryClient {
    /// Whether the registry already holds this blob.
    package func hasBlob(_ digest: ContentDigest) async throws(CustodyError) -> Bool {
        let response = try await execute(request("/v1/blobs/\(digest)", method: .HEAD), accept: [404])
        return response.status == .ok
    }

    /// Uploads the file at `path` as blob `digest`, resuming where an interrupted upload stopped: after a failure
    /// the registry is asked how much it holds and the rest is sent, up to `attempts` times.
    package func uploadBlob(
        _ digest: ContentDigest, from path: String, size: UInt64, attempts: Int = 5, progress: (@Sendable (Int) -> Void)? = nil
    ) async throws(CustodyError) {
        var offset = try await uploadOffset(digest)
        var lastError: CustodyError?
        for attempt in 0..<attempts {
            if attempt > 0 {
                try? await Task.sleep(for: .milliseconds(200 << min(attempt, 5)))
                // After a conflict another client is sending this blob right now, however long it takes: send it
                // whole beside that upload (the registry stages the two apart and keeps one) rather than wait.
                offset = lastError?.code == .conflict ? 0 : try await uploadOffset(digest)
            }
            do {
                try await put(digest, from: path, range: offset..<size, progress: progress)
                return
            } catch {
                // The registry's own verdicts (wrong digest, too large, forbidden, no disk space) are final. Transport
                // failures retry, and so does a conflict: another client is resuming the same blob.
                guard error.code == .remote || error.code == .conflict else { throw error }
                lastError = error
            }
        }
        throw lastError ?? CustodyError(.remote, "uploading \(digest) failed")
    }

    /// One `PUT` of the bytes `range` of a file: with sendfile(2) over plain HTTP, streamed through the HTTP client
    /// over HTTPS.
    private func put(
        _ digest: ContentDigest, from path: String, range: Range<UInt64>, progress: (@Sendable (Int) -> Void)?
    )
        async throws(CustodyError)
    {
        let blobPath = "/v1/blobs/\(digest)"
        var headers = [("Content-Type", "application/octet-stream")]
        if range.lowerBound > 0 { headers.append(("Upload-Offset", String(range.lowerBound))) }
        if let url = URL(string: baseURL), url.scheme == "http", let host = url.host {
            if let token { headers.append(("Authorization", "Bearer \(token)")) }
            let response = try await SendfileUpload.put(
                host: host, port: url.port ?? 80, path: blobPath, headers: headers, file: path, range: range, progress: progress)
            guard (200..<300).contains(response.status) else {
                throw Self.failure(status: response.status, reason: response.reason, body: response.body, method: "PUT", path: blobPath)
            }
            return
        }
        var request = request(blobPath, method: .PUT)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .stream(FileChunks(path: path, range: range, progress: progress), length: .known(Int64(range.count)))
        _ = try await execute(request, timeout: .hours(24))
    }

    /// How many bytes of an interrupted upload of `digest` the registry holds.
    func uploadOffset(_ digest: ContentDigest) async throws(CustodyError) -> UInt64 {
        let response = try await execute(request("/v1/uploads/\(digest)", method: .HEAD))
        return response.headers.first(name: "Upload-Offset").flatMap { UInt64($0) } ?? 0
    }

    /// Downloads blob `digest` into `path`, hashing while writing. A partial file already at `path` (from an
    /// interrupted pull) is rehashed and continued with a range request. Bytes that do not hash to `digest` are
    /// deleted and reported: a corrupted blob is never kept as good.
    package func downloadBlob(
        _ digest: ContentDigest, size: UInt64, to path: String, progress: (@Sendable (Int) -> Void)? = nil
    ) async throws(CustodyError) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(path, "create", errno: errno) }
        defer { close(fd) }
        var hasher = SHA256()
        var offset = try Self.rehash(fd, path: path, into: &hasher, limit: size)
        progress?(Int(offset))
        // Large blobs over plain HTTP are read on a socket of their own; small ones keep the HTTP client's pooled
        // connections (a pull of 10,000 small files would otherwise open 10,000 connections and threads).
        if size - offset >= SocketDownload.minimumSize, let url = URL(string: baseURL), url.scheme == "http", let host = url.host {
            let blobPath = "/v1/blobs/\(digest)"
            let headers = [("User-Agent", "custody")] + (token.map { [("Authorization", "Bearer \($0)")] } ?? [])
            let state = DownloadState(hasher: hasher)
            let start = offset
            let outcome = try await Self.onThread { () throws(CustodyError) in
                try SocketDownload.fetch(
                    host: host, port: url.port ?? 80, path: blobPath, headers: headers, offset: start, size: size, into: fd, file: path,
                    hasher: &state.hasher, progress: progress)
            }
            switch outcome {
            case .complete:
                hasher = state.hasher
                offset = size
            case .refused(let refusal) where refusal.status >= 300 && !Self.redirects.contains(refusal.status):
                throw Self.failure(status: refusal.status, reason: refusal.reason, body: refusal.body, method: "GET", path: blobPath)
            case .refused:
                // A body this reader does not take (chunked by a proxy, a range ignored) or a redirect to the blob
                // store (`storage.redirect`): the HTTP client's path below follows it — without the token, which
                // is for the registry only — and reports what fails. Nothing was written or hashed.
                break
            }
        }
        if offset < size {
            var request = request("/v1/blobs/\(digest)")
            if offset > 0 { request.headers.add(name: "Range", value: "bytes=\(offset)-") }
            let response = try await execute(request, timeout: .hours(24))
            if offset > 0, response.status != .partialContent {
                throw CustodyError(.remote, "the registry ignored the range request for \(digest)")
            }
            do {
                for try await buffer in response.body {
                    guard offset + UInt64(buffer.readableBytes) <= size else {
                        throw CustodyError(.verificationFailed, "blob \(digest): the registry sent more than \(size) bytes")
                    }
                    try buffer.withUnsafeReadableBytes { bytes in
                        hasher.update(bufferPointer: bytes)
                        try PosixFile.pwriteAll(bytes, to: fd, at: offset, path: path)
                    }
                    offset += UInt64(buffer.readableBytes)
                    progress?(buffer.readableBytes)
                }
            } catch let error as CustodyError {
                throw error
            } catch {
                throw CustodyError(.remote, "downloading \(digest) was interrupted after \(offset) of \(size) bytes: \(Self.describe(error))")
            }
        }
        guard offset == size else {
            throw CustodyError(.remote, "blob \(digest): the registry sent \(offset) of \(size) bytes")
        }
        let actual = try ContentDigest(bytes: Array(hasher.finalize()))
        guard actual == digest else {
            unlink(path)
            throw CustodyError(.verificationFailed, "blob \(digest) is corrupted: the registry sent bytes that hash to \(actual); nothing was kept")
        }
    }

    /// Redirects the HTTP client follows (to another origin without the `Authorization` header).
    static let redirects: Set<Int> = [301, 302, 303, 307, 308]

    /// The hasher of a download running on a thread of its own.
    private final class DownloadState: @unchecked Sendable {
        var hasher: SHA256
        init(hasher: SHA256) { self.hasher = hasher }
    }

    /// Runs blocking I/O on a thread of its own: neither the task pool nor an event loop waits behind it.
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws(CustodyError) -> T) async throws(CustodyError) -> T {
        let result: Result<T, CustodyError> = await withCheckedContinuation { continuation in
            let thread = Thread {
                do throws(CustodyError) { continuation.resume(returning: .success(try body())) } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        return try result.get()
    }

    /// Hashes what an earlier attempt left in the file; returns its length (truncating anything beyond `limit`).
    private static func rehash(_ fd: Int32, path: String, into hasher: inout SHA256, limit: UInt64) throws(CustodyError) -> UInt64 {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .io(path, "stat", errno: errno) }
        var length = UInt64(info.st_size)
        if length > limit {
            ftruncate(fd, 0)
            length = 0
        }
        try PosixFile.hash(fd, path: path, length: length, into: &hasher)
        return length
    }
}

/// The bytes `range` of a file as 1 MiB buffers, read lazily so that an upload never holds more than one chunk.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    let range: Range<UInt64>
    let progress: (@Sendable (Int) -> Void)?

    final class Handle: @unchecked Sendable {
        let fd: Int32
        init(_ fd: Int32) { self.fd = fd }
        deinit { if fd >= 0 { close(fd) } }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: Handle
        let path: String
        var position: UInt64
        let end: UInt64
        let progress: (@Sendable (Int) -> Void)?

        mutating func next() async throws -> ByteBuffer? {
            guard position < end else { return nil }
            guard handle.fd >= 0 else { throw CustodyError.io(path, "open", errno: ENOENT) }
            let want = Int(Swift.min(1 << 20, end - position))
            var buffer = ByteBufferAllocator().buffer(capacity: want)
            let fd = handle.fd
            let start = position
            let got = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { pointer in
                Swift.max(0, pread(fd, pointer.baseAddress, want, off_t(start)))
            }
            guard got > 0 else { throw CustodyError(.io, "\(path): file shrank while it was being uploaded") }
            position += UInt64(got)
            progress?(got)
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(
            handle: Handle(open(path, O_RDONLY | O_CLOEXEC)), path: path, position: range.lowerBound, end: range.upperBound,
            progress: progress)
    }
}
