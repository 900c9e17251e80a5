import Crypto
package import CustodyCore
package import CustodyStorage
package import Foundation
package import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Blobs as files: `ROOT/blobs/sha256/ab/abcdef…`, uploads staged as `ROOT/uploads/<upload id>.partial` on the same
/// file system, so that placing one is a rename.
///
/// Every write, sync, rename and whole-file read runs on `pool`, never on the task pool.
package final class FileSystemBlobStore: BlobStore {
    package let root: String
    let pool: NIOThreadPool
    /// Uploads being written now (one writer each), and the hash state of suspended ones, so that resuming in this
    /// process does not rehash what already arrived. After a restart that state is gone and the staged prefix is
    /// rehashed instead.
    private let state = Mutex(UploadTable())

    struct UploadTable {
        var active: Set<UploadID> = []
        var suspended: [UploadID: (offset: UInt64, hasher: SHA256)] = [:]
    }

    package init(root: String, pool: NIOThreadPool = .singleton) throws(CustodyError) {
        self.root = root
        self.pool = pool
        for directory in [root + "/blobs/sha256", root + "/uploads"] {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw CustodyError(.io, "\(directory): cannot create the blob store: \(error.localizedDescription)")
            }
        }
    }

    var stagingDirectory: String { root + "/uploads" }

    func path(of digest: ContentDigest) -> String {
        let hex = digest.hex
        return "\(root)/blobs/sha256/\(hex.prefix(2))/\(hex)"
    }

    func stagingPath(_ id: UploadID) -> String { stagingDirectory + "/" + id.rawValue + ".partial" }

    /// Runs blocking file work on the store's thread pool.
    func offPool<T: Sendable>(_ work: @escaping @Sendable () throws(CustodyError) -> T) async throws(CustodyError) -> T {
        do {
            return try await pool.runIfActive { () throws -> T in try work() }
        } catch let error as CustodyError {
            throw error
        } catch {
            throw CustodyError(.io, "\(root): the blob store's I/O threads are not running: \(error)")
        }
    }

    package func size(of digest: ContentDigest) async throws(CustodyError) -> UInt64? {
        Self.regularFileSize(path(of: digest))
    }

    static func regularFileSize(_ path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return UInt64(info.st_size)
    }

    package func stagedSize(of id: UploadID) async -> UInt64? {
        Self.regularFileSize(stagingPath(id))
    }

    package func body(of digest: ContentDigest, range: ClosedRange<UInt64>?) async throws(CustodyError) -> BlobBody {
        let path = path(of: digest)
        guard access(path, R_OK) == 0 else { throw CustodyError(.notFound, "blob \(digest) is not in the registry") }
        return .file(path: path, range: range)
    }

    /// None: a local directory is reached through the registry only.
    package func presignedURL(of digest: ContentDigest, seconds: Int) async throws(CustodyError) -> String? { nil }

    package func delete(_ digest: ContentDigest) async throws(CustodyError) {
        let path = path(of: digest)
        guard unlink(path) == 0 || errno == ENOENT else { throw .io(path, "unlink", errno: errno) }
    }

    package func withLocalFiles<T: Sendable>(
        _ digests: [ContentDigest], _ body: @escaping @Sendable ([String]) throws(CustodyError) -> T
    ) async throws(CustodyError) -> T {
        let paths = digests.map(path(of:))
        for (digest, path) in zip(digests, paths) where access(path, R_OK) != 0 {
            throw CustodyError(.notFound, "blob \(digest) is missing")
        }
        return try await offPool { () throws(CustodyError) -> T in try body(paths) }
    }

    package func upload(_ id: UploadID, resumingAt offset: UInt64) async throws(CustodyError) -> any BlobUpload {
        let claimed = state.withLock { $0.active.insert(id).inserted }
        guard claimed else { throw CustodyError(.conflict, "another upload of \(id) is in progress; retry later") }
        do {
            return try await openUpload(id, at: offset)
        } catch {
            release(id, suspendedAt: nil)
            throw error
        }
    }

    private func openUpload(_ id: UploadID, at offset: UInt64) async throws(CustodyError) -> FileUpload {
        let path = stagingPath(id)
        let saved = state.withLock { table in table.suspended.removeValue(forKey: id) }
        let (fd, hasher) = try await offPool { () throws(CustodyError) -> (Int32, SHA256) in
            let staged = Self.regularFileSize(path) ?? 0
            if offset > 0, staged != offset {
                throw CustodyError(.outOfOrder, "the registry holds \(staged) bytes of this upload, not \(offset); resume from \(staged)")
            }
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (offset == 0 ? O_TRUNC : 0), 0o600)
            guard fd >= 0 else { throw .io(path, "create", errno: errno) }
            if offset == 0 { return (fd, SHA256()) }
            if let saved, saved.offset == offset { return (fd, saved.hasher) }
            var hasher = SHA256()
            do throws(CustodyError) { try PosixFile.hash(fd, path: path, length: offset, into: &hasher) } catch {
                close(fd)
                throw error
            }
            return (fd, hasher)
        }
        return FileUpload(id: id, path: path, fd: fd, offset: offset, hasher: hasher, store: self)
    }

    /// Ends an upload's claim, keeping its hash state when it was suspended.
    func release(_ id: UploadID, suspendedAt saved: (offset: UInt64, hasher: SHA256)?) {
        state.withLock { table in
            table.active.remove(id)
            table.suspended[id] = saved
        }
    }

    /// Moves a fully written, verified staged file into place (synced first, read-only after).
    func place(_ staged: String, as digest: ContentDigest) throws(CustodyError) {
        let target = path(of: digest)
        let directory = (target as NSString).deletingLastPathComponent
        if mkdir(directory, 0o755) != 0, errno != EEXIST { throw .io(directory, "create", errno: errno) }
        guard rename(staged, target) == 0 else { throw .io(target, "place blob", errno: errno) }
        chmod(target, 0o444)
    }

    package func expireUploads(untouchedSince cutoff: Date) async -> (count: Int, bytes: UInt64) {
        let directory = stagingDirectory
        let active = state.withLock { $0.active }
        let swept = try? await offPool { () throws(CustodyError) -> [(UploadID?, UInt64)] in
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            var swept: [(UploadID?, UInt64)] = []
            // `.upload` is what earlier releases named an upload that could not be resumed.
            for name in names where name.hasSuffix(".partial") || name.hasSuffix(".upload") {
                let path = directory + "/" + name
                var info = stat()
                guard stat(path, &info) == 0, Double(info.st_mtim.tv_sec) < cutoff.timeIntervalSince1970 else { continue }
                let id = try? UploadID(String(name.prefix { $0 != "." }))
                if let id, active.contains(id) { continue }
                guard unlink(path) == 0 else { continue }
                swept.append((id, UInt64(info.st_size)))
            }
            return swept
        }
        guard let swept else { return (0, 0) }
        state.withLock { table in
            for case (let id?, _) in swept where !table.active.contains(id) { table.suspended[id] = nil }
        }
        return (swept.count, swept.reduce(0) { $0 + $1.1 })
    }

    package func unavailability() async -> String? {
        access(stagingDirectory, W_OK) == 0 ? nil : "uploads cannot be staged"
    }
}

/// An upload staged as one file. Chunks are written (and hashed) on the store's thread pool by a drain that runs
/// beside the network reads: whatever has arrived while one batch was written is the next batch, so a hop to the pool
/// costs nothing per read, and nothing received waits in memory for more to come (a client that stalls, a daemon
/// that is killed, still finds every received byte staged).
actor FileUpload: BlobUpload {
    nonisolated let id: UploadID
    private let path: String
    private let store: FileSystemBlobStore
    private var fd: Int32
    private var hasher: SHA256
    /// Bytes on disk.
    private var written: UInt64
    /// How far write-back has been asked for (``EagerWriteback``).
    private var submitted: UInt64
    private var pending: [any ContiguousBytes & Sendable] = []
    private var pendingBytes = 0
    private var inFlightBytes = 0
    private var draining: Task<Void, Never>?
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var failed: CustodyError?

    /// Bytes received but not yet written before the sender is made to wait: bounds the memory an upload holds.
    static let highWater = 4 << 20

    init(id: UploadID, path: String, fd: Int32, offset: UInt64, hasher: SHA256, store: FileSystemBlobStore) {
        self.id = id
        self.path = path
        self.fd = fd
        self.written = offset
        self.submitted = offset
        self.hasher = hasher
        self.store = store
    }

    var received: UInt64 { written + UInt64(inFlightBytes + pendingBytes) }

    func append(_ chunk: some ContiguousBytes & Sendable) async throws(CustodyError) {
        if let failed { throw failed }
        let count = chunk.withUnsafeBytes { $0.count }
        guard count > 0 else { return }
        pending.append(chunk)
        pendingBytes += count
        if draining == nil { draining = Task { await self.drain() } }
        while pendingBytes >= Self.highWater, failed == nil { await progress() }
        if let failed { throw failed }
    }

    /// Suspends until the drain has written a batch (or stopped).
    private func progress() async {
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Suspends until everything received is written, or writing failed.
    private func settle() async {
        while draining != nil { await progress() }
    }

    private func drain() async {
        while !pending.isEmpty, failed == nil {
            let chunks = pending
            let fd = fd
            let path = path
            let start = written
            let hasher = hasher
            let submitted = submitted
            inFlightBytes = pendingBytes
            pending = []
            pendingBytes = 0
            do throws(CustodyError) {
                let (hashed, end, synced) = try await store.offPool { () throws(CustodyError) -> (SHA256, UInt64, UInt64) in
                    try Self.write(chunks, to: fd, at: start, path: path, hasher: hasher, submitted: submitted)
                }
                self.hasher = hashed
                self.written = end
                self.submitted = synced
            } catch {
                failed = error
                pending = []
                pendingBytes = 0
            }
            inFlightBytes = 0
            resumeWaiting()
        }
        draining = nil
        resumeWaiting()
    }

    private func resumeWaiting() {
        let resumed = waiting
        waiting = []
        for continuation in resumed { continuation.resume() }
    }

    /// Hashes and writes one batch at `start`; returns the hash state, the end offset and the write-back position.
    private static func write(
        _ chunks: [any ContiguousBytes & Sendable], to fd: Int32, at start: UInt64, path: String, hasher: SHA256, submitted: UInt64
    ) throws(CustodyError) -> (SHA256, UInt64, UInt64) {
        var hasher = hasher
        var position = start
        for chunk in chunks {
            // `withUnsafeBytes` rethrows untyped: the write's error is carried out by hand.
            let failure = chunk.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> CustodyError? in
                hasher.update(bufferPointer: bytes)
                do throws(CustodyError) {
                    try PosixFile.pwriteAll(bytes, to: fd, at: position, path: path)
                } catch {
                    return error
                }
                position += UInt64(bytes.count)
                return nil
            }
            if let failure { throw failure }
        }
        var writeback = EagerWriteback(fd: fd, from: submitted)
        writeback.written(upTo: position)
        return (hasher, position, writeback.submitted)
    }

    func commit(expecting expected: ContentDigest?) async throws(CustodyError) -> (digest: ContentDigest, size: UInt64) {
        do throws(CustodyError) {
            await settle()
            if let failed { throw failed }
            let digest = try ContentDigest(bytes: Array(hasher.finalize()))
            if let expected, digest != expected {
                throw CustodyError(.invalidArgument, "the uploaded bytes hash to \(digest), not \(expected); nothing was kept")
            }
            let fd = fd
            let path = path
            let store = store
            self.fd = -1
            try await store.offPool { () throws(CustodyError) in
                let synced = fsync(fd) == 0
                close(fd)
                guard synced else { throw .io(path, "sync", errno: errno) }
                try store.place(path, as: digest)
            }
            store.release(id, suspendedAt: nil)
            return (digest, written)
        } catch {
            await abort()
            throw error
        }
    }

    func suspend() async {
        await settle()
        closeFile()
        store.release(id, suspendedAt: failed == nil ? (written, hasher) : nil)
    }

    func abort() async {
        pending = []
        pendingBytes = 0
        // The batch being written must finish before its file descriptor is closed.
        await settle()
        closeFile()
        unlink(path)
        store.release(id, suspendedAt: nil)
    }

    private func closeFile() {
        if fd >= 0 { close(fd) }
        fd = -1
    }
}
