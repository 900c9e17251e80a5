import Crypto
package import CustodyCore
package import CustodyStorage
package import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Blobs in an S3-compatible bucket: `PREFIX/blobs/sha256/<hex>`, the second implementation of ``BlobStore``.
///
/// - **Uploads of a known digest** (`/v1`, the Hub API: upload id `sha256-<hex>`) stream as a multipart upload under
///   the final key while hashed (``S3BlobWriter``), completed with `If-None-Match: *` only when the digest matches.
///   A suspended one resumes in this process (its writer and hash state are kept); after a restart it starts again,
///   and the janitor aborts the multipart upload left behind.
/// - **Upload sessions** (OCI: the digest is named at the end) are spooled to the local cache directory while hashed,
///   then streamed into their final key when committed.
/// - **Reads** are proxied and verified: a blob is downloaded once into the local cache (hashed; one whose bytes are
///   not its digest is refused and not kept) and served from there. The cache is bounded (`cacheLimit`): the least
///   recently used blobs go first.
package final class S3BlobStore: BlobStore {
    package let client: S3Client
    package let cache: String
    package let cacheLimit: UInt64
    package let partSize: Int
    private let sessions = Mutex<[UploadID: Session]>([:])
    private let downloads = Mutex<[ContentDigest: Task<Void, any Error>]>([:])
    /// Small blobs cached since the last eviction.
    private let added = Mutex(0)

    final class Session: @unchecked Sendable {
        /// One of: a writer streaming to the final key, or a local spool file.
        let writer: S3BlobWriter?
        let spool: String?
        var received: UInt64 = 0
        var hasher = SHA256()
        var active = false
        var touched = Date()

        init(writer: S3BlobWriter?, spool: String?) {
            self.writer = writer
            self.spool = spool
        }
    }

    package init(client: S3Client, cache: String, cacheLimit: UInt64 = 64 << 30, partSize: Int = 8 << 20) throws(CustodyError) {
        self.client = client
        self.cache = cache
        self.cacheLimit = cacheLimit
        self.partSize = partSize
        for directory in [cache + "/blobs", cache + "/uploads"] {
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
                throw CustodyError(.io, "\(directory): cannot create the S3 store's cache: \(error.localizedDescription)")
            }
        }
    }

    static func key(_ digest: ContentDigest) -> String { "blobs/sha256/" + digest.hex }
    func cached(_ digest: ContentDigest) -> String { cache + "/blobs/" + digest.hex }

    static func failure(_ error: S3Error) -> CustodyError {
        error.status == 404 ? CustodyError(.notFound, error.description) : CustodyError(.remote, "the S3 store: \(error.description)")
    }

    // MARK: BlobStore

    package func size(of digest: ContentDigest) async throws(CustodyError) -> UInt64? {
        do throws(S3Error) { return try await client.size(of: Self.key(digest)) } catch { throw Self.failure(error) }
    }

    package func stagedSize(of id: UploadID) async -> UInt64? {
        sessions.withLock { $0[id]?.received }
    }

    package func upload(_ id: UploadID, resumingAt offset: UInt64) async throws(CustodyError) -> any BlobUpload {
        let session: Session = try sessions.withLock { table throws(CustodyError) in
            if let existing = table[id] {
                guard !existing.active else { throw CustodyError(.conflict, "another upload of \(id) is in progress; retry later") }
                if offset > 0 {
                    guard existing.received == offset else {
                        throw CustodyError(
                            .outOfOrder,
                            "the registry holds \(existing.received) bytes of this upload, not \(offset); resume from \(existing.received)")
                    }
                    existing.active = true
                    return existing
                }
            } else if offset > 0 {
                throw CustodyError(.outOfOrder, "the registry holds 0 bytes of this upload, not \(offset); resume from 0")
            }
            let fresh = Session(
                writer: id.rawValue.hasPrefix("sha256-")
                    ? S3BlobWriter(client: client, name: "blobs/sha256/" + id.rawValue.dropFirst(7), partSize: partSize) : nil,
                spool: id.rawValue.hasPrefix("sha256-") ? nil : cache + "/uploads/" + id.rawValue)
            fresh.active = true
            table[id] = fresh
            return fresh
        }
        if offset == 0, let spool = session.spool {
            let fd = open(spool, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                end(id)
                throw .io(spool, "create", errno: errno)
            }
            close(fd)
        }
        return S3Upload(id: id, session: session, store: self)
    }

    package func body(of digest: ContentDigest, range: ClosedRange<UInt64>?) async throws(CustodyError) -> BlobBody {
        .file(path: try await local(digest), range: range)
    }

    package func delete(_ digest: ContentDigest) async throws(CustodyError) {
        do throws(S3Error) { try await client.delete(Self.key(digest)) } catch {
            if error.status != 404 { throw Self.failure(error) }
        }
        unlink(cached(digest))
    }

    package func withLocalFiles<T: Sendable>(
        _ digests: [ContentDigest], _ body: @escaping @Sendable ([String]) throws(CustodyError) -> T
    ) async throws(CustodyError) -> T {
        var paths: [String] = []
        for digest in digests { paths.append(try await local(digest)) }
        let result = Result<T, CustodyError> { () throws(CustodyError) -> T in try body(paths) }
        return try result.get()
    }

    package func expireUploads(untouchedSince cutoff: Date) async -> (count: Int, bytes: UInt64) {
        let expired: [(UploadID, Session)] = sessions.withLock { table in
            let old = table.filter { !$0.value.active && $0.value.touched < cutoff }
            for id in old.keys { table.removeValue(forKey: id) }
            return old.map { ($0.key, $0.value) }
        }
        var bytes: UInt64 = 0
        for (_, session) in expired {
            bytes += session.received
            await session.writer?.abort()
            if let spool = session.spool { unlink(spool) }
        }
        // Multipart uploads no session of this process holds, older than the cutoff: left by a daemon that stopped.
        let live = Set(await sessionsUploadIDs())
        var count = expired.count
        if let uploads = try? await client.multipartUploads(under: "blobs/") {
            for upload in uploads where !live.contains(upload.uploadID) {
                guard let initiated = try? Date(upload.initiated, strategy: .iso8601), initiated < cutoff else { continue }
                try? await client.abortMultipartUpload(upload.name, uploadID: upload.uploadID)
                count += 1
            }
        }
        return (count, bytes)
    }

    package func unavailability() async -> String? {
        do throws(S3Error) {
            _ = try await client.size(of: "blobs/readiness-probe")
            return nil
        } catch {
            return "the S3 store does not answer: \(error.description)"
        }
    }

    // MARK: Sessions

    func sessionsUploadIDs() async -> [String] {
        let writers = sessions.withLock { $0.values.compactMap(\.writer) }
        var ids: [String] = []
        for writer in writers { if let id = await writer.multipartUploadID { ids.append(id) } }
        return ids
    }

    func end(_ id: UploadID) { _ = sessions.withLock { $0.removeValue(forKey: id) } }

    func suspend(_ id: UploadID) {
        sessions.withLock { table in
            table[id]?.active = false
            table[id]?.touched = Date()
        }
    }

    // MARK: Reads

    /// The blob as a local, verified file: from the cache, or downloaded into it (once, however many ask at a time).
    func local(_ digest: ContentDigest) async throws(CustodyError) -> String {
        let path = cached(digest)
        if access(path, R_OK) == 0 {
            utimes(path, nil)
            return path
        }
        let task = downloads.withLock { table -> Task<Void, any Error> in
            if let running = table[digest] { return running }
            let task = Task { [self] in try await fetch(digest) }
            table[digest] = task
            return task
        }
        do {
            try await task.value
        } catch let error as CustodyError {
            _ = downloads.withLock { $0.removeValue(forKey: digest) }
            throw error
        } catch {
            _ = downloads.withLock { $0.removeValue(forKey: digest) }
            throw CustodyError(.io, "\(digest): \(error)")
        }
        _ = downloads.withLock { $0.removeValue(forKey: digest) }
        return path
    }

    private func fetch(_ digest: ContentDigest) async throws(CustodyError) {
        let path = cached(digest)
        let partial = path + ".partial-" + UUID().uuidString
        let got: (digest: ContentDigest, size: UInt64)
        do throws(S3Error) { got = try await client.download(Self.key(digest), to: partial) } catch {
            throw error.status == 404 ? CustodyError(.notFound, "blob \(digest) is not in the registry") : Self.failure(error)
        }
        guard got.digest == digest else {
            unlink(partial)
            throw CustodyError(.io, "the S3 store's object for \(digest) holds bytes that hash to \(got.digest): not served")
        }
        guard rename(partial, path) == 0 else {
            unlink(partial)
            throw .io(path, "rename", errno: errno)
        }
        evict()
    }

    /// Keeps bytes just stored (and so verified) as the cached copy of `digest`; a failure only loses the copy.
    func keep(_ bytes: [UInt8], as digest: ContentDigest) {
        // No fsync: a copy lost in a crash is downloaded again.
        try? Data(bytes).write(to: URL(fileURLWithPath: cached(digest)), options: .atomic)
        evictLater()
    }

    /// Evicts after enough was added since the last eviction (not on every small blob: eviction lists the directory).
    func evictLater() {
        let due = added.withLock { count in
            count += 1
            guard count >= 256 else { return false }
            count = 0
            return true
        }
        if due { evict() }
    }

    /// Deletes the least recently used cached blobs while the cache holds more than its limit.
    func evict() {
        let directory = cache + "/blobs"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        var entries: [(path: String, size: UInt64, used: Int)] = []
        var total: UInt64 = 0
        for name in names where !name.contains(".partial") {
            var info = stat()
            let path = directory + "/" + name
            guard stat(path, &info) == 0 else { continue }
            entries.append((path, UInt64(info.st_size), Int(info.st_mtim.tv_sec)))
            total += UInt64(info.st_size)
        }
        for entry in entries.sorted(by: { $0.used < $1.used }) where total > cacheLimit {
            unlink(entry.path)
            total -= entry.size
        }
    }
}

/// One upload into the S3 store: streamed to its final key, or spooled until its digest is known.
final class S3Upload: BlobUpload, @unchecked Sendable {
    let id: UploadID
    let session: S3BlobStore.Session
    let store: S3BlobStore

    init(id: UploadID, session: S3BlobStore.Session, store: S3BlobStore) {
        self.id = id
        self.session = session
        self.store = store
    }

    var received: UInt64 { get async { session.received } }

    func append(_ chunk: some ContiguousBytes & Sendable) async throws(CustodyError) {
        let bytes = chunk.withUnsafeBytes { Array($0) }
        if let writer = session.writer {
            do throws(S3Error) { try await writer.append(bytes) } catch { throw S3BlobStore.failure(error) }
        } else if let spool = session.spool {
            let fd = open(spool, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw .io(spool, "open", errno: errno) }
            defer { close(fd) }
            let at = session.received
            let failure: CustodyError? = bytes.withUnsafeBytes { raw in
                do throws(CustodyError) {
                    try PosixFile.pwriteAll(raw, to: fd, at: at, path: spool)
                    return nil
                } catch { return error }
            }
            if let failure { throw failure }
            session.hasher.update(data: bytes)
        }
        session.received += UInt64(bytes.count)
    }

    func commit(expecting expected: ContentDigest?) async throws(CustodyError) -> (digest: ContentDigest, size: UInt64) {
        defer { store.end(id) }
        if let writer = session.writer {
            do throws(S3Error) {
                let written = try await writer.complete(expecting: expected)
                // A small blob is kept in the cache as it goes out: the scan and the first pull read it from there.
                if let bytes = await writer.wholeBlob { store.keep(bytes, as: written.digest) }
                return (written.digest, written.size)
            } catch {
                if error.code == "BadDigest" { throw CustodyError(.invalidArgument, error.message) }
                throw S3BlobStore.failure(error)
            }
        }
        guard let spool = session.spool else { throw CustodyError(.io, "upload \(id) has nowhere to write") }
        defer { unlink(spool) }
        let digest = try ContentDigest(bytes: Array(session.hasher.finalize()))
        if let expected, expected != digest {
            throw CustodyError(.invalidArgument, "the uploaded bytes hash to \(digest), not \(expected); nothing was kept")
        }
        // Hashed on its way into the spool (a page-cache copy of what was received): read back part by part, not
        // hashed again.
        let writer = S3BlobWriter(client: store.client, name: S3BlobStore.key(digest), digest: digest, partSize: store.partSize)
        let fd = open(spool, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(spool, "open", errno: errno) }
        defer { close(fd) }
        var offset: UInt64 = 0
        do throws(S3Error) {
            while offset < session.received {
                let size = Int(min(UInt64(store.partSize), session.received - offset))
                var failed: Int32 = 0
                let part = [UInt8](unsafeUninitializedCapacity: size) { raw, initialized in
                    while initialized < size {
                        let count = pread(fd, raw.baseAddress! + initialized, size - initialized, off_t(offset) + off_t(initialized))
                        if count <= 0 {
                            failed = count == 0 ? EIO : errno
                            break
                        }
                        initialized += count
                    }
                }
                guard failed == 0 else {
                    throw S3Error(status: 0, code: "LocalFile", message: "\(spool): read failed (errno \(failed))")
                }
                try await writer.append(part)
                offset += UInt64(size)
            }
            let written = try await writer.complete(expecting: digest)
            // The spooled copy is verified: it becomes the cached one.
            if rename(spool, store.cached(digest)) == 0 { store.evict() }
            return (written.digest, written.size)
        } catch {
            await writer.abort()
            throw S3BlobStore.failure(error)
        }
    }

    func suspend() async { store.suspend(id) }

    func abort() async {
        store.end(id)
        await session.writer?.abort()
        if let spool = session.spool { unlink(spool) }
    }
}
