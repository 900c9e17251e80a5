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

/// Blobs in an S3-compatible bucket, the second implementation of ``BlobStore``. The key of a blob is
/// `PREFIX/blobs/sha256/<hex>`: its bytes, or a *pointer* to them — an object whose user metadata `custody-blob` names
/// the key that holds them (`uploads/<uuid>`) and `custody-size` their size.
///
/// - **Uploads of a known digest** (`/v1`, the Hub API: upload id `sha256-<hex>`) stream as a multipart upload under
///   the final key while hashed (``S3BlobWriter``), completed with `If-None-Match: *` only when the digest matches.
///   A suspended one resumes in this process (its writer and hash state are kept); after a restart it starts again,
///   and the janitor aborts the multipart upload left behind. A local copy (spool) is kept as the blob's cached copy,
///   as for sessions.
/// - **Upload sessions** (OCI: the digest is named only at the end) stream as a multipart upload under a key of their
///   own, `uploads/<uuid>`, while hashed, so that the store ingests the bytes while they arrive instead of after;
///   when the digest matches, the upload is completed and the pointer put at the blob's key with `If-None-Match: *`
///   (a blob stored first by another writer wins, and the session's copy is deleted). Nothing is copied. A marker
///   `pending/<uuid>` (the digest) exists while a session's object is being placed or deleted, so that the janitor
///   finds the object of a daemon that stopped in between. A session smaller than one part is one `PutObject` under
///   the blob's key.
/// - **Reads** are proxied and verified: a blob is downloaded once into the local cache (hashed; one whose bytes are
///   not its digest is refused and not kept) and served from there. A read that reaches the blob's end is served
///   while the download arrives, its last MiB held back until the whole blob was verified (a reader of the whole blob
///   never gets all of a wrong one; the connection ends short); other ranges wait for the verified copy. The cache
///   is bounded (`cacheLimit`): the least recently used blobs go first.
package final class S3BlobStore: BlobStore {
    package let client: S3Client
    package let cache: String
    package let cacheLimit: UInt64
    package let partSize: Int
    /// Where the janitor learns which multipart uploads other daemons are still writing.
    package let ledger: (any UploadLedger)?
    /// The wall clock of the ledger's heartbeats; injected by tests.
    let now: @Sendable () -> Date
    private let sessions = Mutex<[UploadID: Session]>([:])
    /// Blobs being downloaded into the cache, each once however many read it meanwhile.
    private let downloads = Mutex<[ContentDigest: Fetch]>([:])
    /// Small blobs cached since the last eviction.
    private let added = Mutex(0)

    final class Session: @unchecked Sendable {
        /// Streams the bytes to the blob's key, or (a session) to ``staged``.
        let writer: S3BlobWriter
        /// The key of a session's object (`uploads/<uuid>`); nil when the writer streams to the blob's key.
        let staged: String?
        /// A session's local copy, the blob's cached copy once placed.
        let spool: String?
        var received: UInt64 = 0
        var active = false
        var touched = Date()

        init(writer: S3BlobWriter, staged: String?, spool: String?) {
            self.writer = writer
            self.staged = staged
            self.spool = spool
        }
    }

    package init(
        client: S3Client, cache: String, cacheLimit: UInt64 = 64 << 30, partSize: Int = 8 << 20, ledger: (any UploadLedger)? = nil,
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws(CustodyError) {
        self.client = client
        self.cache = cache
        self.cacheLimit = cacheLimit
        self.partSize = partSize
        self.ledger = ledger
        self.now = now
        for directory in [cache + "/blobs", cache + "/uploads"] {
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
                throw CustodyError(.io, "\(directory): cannot create the S3 store's cache: \(error.localizedDescription)")
            }
        }
    }

    static func key(_ digest: ContentDigest) -> String { "blobs/sha256/" + digest.hex }
    /// The marker of a session's object while it is placed or deleted: `pending/<uuid>` for `uploads/<uuid>`.
    static func marker(of staged: String) -> String { "pending/" + staged.dropFirst("uploads/".count) }
    /// The object a pointer names, when `metadata` is a pointer's (only keys of session objects are followed).
    static func pointee(_ metadata: [String: String]) -> String? {
        guard let staged = metadata["custody-blob"], staged.hasPrefix("uploads/"), !staged.contains("..") else { return nil }
        return staged
    }
    func cached(_ digest: ContentDigest) -> String { cache + "/blobs/" + digest.hex }

    static func failure(_ error: S3Error) -> CustodyError {
        error.status == 404 ? CustodyError(.notFound, error.description) : CustodyError(.remote, "the S3 store: \(error.description)")
    }

    // MARK: BlobStore

    package func size(of digest: ContentDigest) async throws(CustodyError) -> UInt64? {
        do throws(S3Error) { return try await locate(digest)?.size } catch { throw Self.failure(error) }
    }

    /// Where the blob's bytes are — its key, or the object its pointer names (`staged`) — and their size; nil when
    /// the blob is not stored.
    func locate(_ digest: ContentDigest) async throws(S3Error) -> (name: String, staged: String?, size: UInt64)? {
        guard let head = try await client.head(Self.key(digest)) else { return nil }
        guard let staged = Self.pointee(head.metadata) else { return (Self.key(digest), nil, head.size) }
        return (staged, staged, head.metadata["custody-size"].flatMap { UInt64($0) } ?? 0)
    }

    package func stagedSize(of id: UploadID) async -> UInt64? {
        sessions.withLock { $0[id]?.received }
    }

    package func upload(_ id: UploadID, resumingAt offset: UInt64) async throws(CustodyError) -> any BlobUpload {
        var replaced: Session?
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
            let fresh: Session
            if id.rawValue.hasPrefix("sha256-") {
                let writer = S3BlobWriter(client: client, name: "blobs/sha256/" + id.rawValue.dropFirst(7), partSize: partSize)
                fresh = Session(writer: writer, staged: nil, spool: cache + "/uploads/" + id.rawValue)
            } else {
                let staged = "uploads/" + UUID().uuidString.lowercased()
                fresh = Session(
                    writer: S3BlobWriter(client: client, name: staged, partSize: partSize), staged: staged,
                    spool: cache + "/uploads/" + id.rawValue)
            }
            fresh.active = true
            replaced = table.updateValue(fresh, forKey: id)
            return fresh
        }
        // Started afresh: what the upload held before is discarded.
        await replaced?.writer.abort()
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
        let path = cached(digest)
        if access(path, R_OK) == 0 {
            utimes(path, nil)
            return .file(path: path, range: range)
        }
        guard let range else { return .file(path: try await local(digest), range: nil) }
        let fetch = fetching(digest)
        let known = await fetch.wait(until: 0)
        switch known.outcome {
        case .failure(let error): throw error
        case .success: return .file(path: path, range: range)
        case nil: break
        }
        // Only a range that ends where the blob ends can hold back the blob's end.
        guard known.size == range.upperBound + 1 else { return .file(path: try await local(digest), range: range) }
        let reader = FetchReader(fetch: fetch, cached: path, from: range.lowerBound, size: range.upperBound + 1)
        return .stream(BlobStream { () throws(CustodyError) in try await reader.next() })
    }

    /// A presigned GET of the object that holds the bytes (a pointer's object, so that the client reads them in one
    /// request). The bytes no longer pass the registry: the client's digest check is the only one.
    package func presignedURL(of digest: ContentDigest, seconds: Int) async throws(CustodyError) -> String? {
        let located: (name: String, staged: String?, size: UInt64)?
        do throws(S3Error) { located = try await locate(digest) } catch { throw Self.failure(error) }
        guard let located else { throw CustodyError(.notFound, "blob \(digest) is not in the registry") }
        return client.presignedGet(located.name, seconds: seconds)
    }

    package func delete(_ digest: ContentDigest) async throws(CustodyError) {
        unlink(cached(digest))
        do throws(S3Error) {
            guard let located = try await locate(digest) else { return }
            guard let staged = located.staged else {
                try await client.delete(Self.key(digest))
                return
            }
            // The marker first, so that a stop between the two deletes leaves the object to the janitor.
            _ = try await client.put(Self.marker(of: staged), Array(digest.hex.utf8), ifAbsent: false)
            try await client.delete(Self.key(digest))
            try await client.delete(staged)
            try await client.delete(Self.marker(of: staged))
        } catch {
            if error.status != 404 { throw Self.failure(error) }
        }
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
            await session.writer.abort()
            if let spool = session.spool { unlink(spool) }
        }
        // Multipart uploads older than the cutoff that nobody is writing: left by a daemon that stopped. This daemon's
        // are its sessions'; other daemons' are in the ledger, where their janitors touch theirs every round.
        var live = Set(await sessionsUploadIDs())
        var count = expired.count
        if let ledger {
            do throws(CustodyError) {
                try await ledger.touchUploads(Array(live), at: now())
                live.formUnion(try await ledger.uploadsTouched(since: cutoff))
            } catch {
                // Another daemon's upload cannot be told from an abandoned one now: none is aborted this round.
                return (count, bytes)
            }
        }
        for prefix in ["blobs/", "uploads/"] {
            guard let uploads = try? await client.multipartUploads(under: prefix) else { continue }
            for upload in uploads where !live.contains(upload.uploadID) {
                guard let initiated = Self.date(upload.initiated), initiated < cutoff else { continue }
                try? await client.abortMultipartUpload(upload.name, uploadID: upload.uploadID)
                count += 1
            }
        }
        count += await sweepMarkers(olderThan: cutoff)
        return (count, bytes)
    }

    /// Markers older than `cutoff` are of a placement or a deletion that stopped half-way: the session's object goes
    /// unless the blob's pointer names it (the placement got that far). Returns how many objects went.
    func sweepMarkers(olderThan cutoff: Date) async -> Int {
        guard let markers = try? await client.list(under: "pending/") else { return 0 }
        var removed = 0
        for marker in markers {
            guard let modified = Self.date(marker.modified), modified < cutoff else { continue }
            let staged = "uploads/" + marker.name.dropFirst("pending/".count)
            do throws(S3Error) {
                let hex = String(decoding: try await client.get(marker.name), as: UTF8.self)
                if let digest = try? ContentDigest(hex: hex), let head = try await client.head(Self.key(digest)),
                    Self.pointee(head.metadata) == staged
                {
                    try await client.delete(marker.name)
                    continue
                }
                try await client.delete(staged)
                try await client.delete(marker.name)
                removed += 1
            } catch {
                continue
            }
        }
        return removed
    }

    /// A time as S3 gives it (ISO 8601, with or without fractional seconds).
    static func date(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: .iso8601) { return date }
        return try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
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
        let writers = sessions.withLock { $0.values.map(\.writer) }
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
        if case .failure(let error) = await fetching(digest).wait(until: .max).outcome { throw error }
        return path
    }

    /// The download of `digest` into the cache: the one running, or a new one.
    func fetching(_ digest: ContentDigest) -> Fetch {
        downloads.withLock { table in
            if let running = table[digest] { return running }
            let fetch = Fetch(partial: cached(digest) + ".partial-" + UUID().uuidString)
            table[digest] = fetch
            Task { [self] in
                let outcome: Result<Void, CustodyError>
                do throws(CustodyError) {
                    try await download(digest, into: fetch)
                    outcome = .success(())
                } catch {
                    outcome = .failure(error)
                }
                _ = downloads.withLock { $0.removeValue(forKey: digest) }
                fetch.finished(outcome)
            }
            return fetch
        }
    }

    private func download(_ digest: ContentDigest, into fetch: Fetch) async throws(CustodyError) {
        let path = cached(digest)
        let got: (digest: ContentDigest, size: UInt64, metadata: [String: String])
        do throws(S3Error) {
            guard let located = try await locate(digest) else { throw S3Error(status: 404, code: "NoSuchKey", message: "") }
            fetch.sized(located.size)
            got = try await client.download(located.name, to: fetch.partial) { fetch.progressed($0) }
        } catch {
            throw error.status == 404 ? CustodyError(.notFound, "blob \(digest) is not in the registry") : Self.failure(error)
        }
        guard got.digest == digest else {
            unlink(fetch.partial)
            throw CustodyError(.io, "the S3 store's object for \(digest) holds bytes that hash to \(got.digest): not served")
        }
        guard rename(fetch.partial, path) == 0 else {
            unlink(fetch.partial)
            throw .io(path, "rename", errno: errno)
        }
        evict()
    }

    /// Counts a copy of `size` bytes just added to the cache: a large one evicts now, small ones in batches. (No
    /// fsync of the copies: one lost in a crash is downloaded again.)
    func didCache(size: UInt64) {
        if size >= UInt64(partSize) { evict() } else { evictLater() }
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

/// One upload into the S3 store: streamed to the blob's key, or (a session) to an object of its own, pointed to when its
/// digest is known.
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
        if let spool = session.spool {
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
        }
        do throws(S3Error) { try await session.writer.append(bytes) } catch { throw S3BlobStore.failure(error) }
        session.received += UInt64(bytes.count)
    }

    func commit(expecting expected: ContentDigest?) async throws(CustodyError) -> (digest: ContentDigest, size: UInt64) {
        defer { store.end(id) }
        let writer = session.writer
        defer { if let spool = session.spool { unlink(spool) } }
        let placed: (digest: ContentDigest, size: UInt64)
        do throws(S3Error) {
            if let staged = session.staged {
                placed = try await place(writer, staged: staged, expecting: expected)
            } else {
                let written = try await writer.complete(expecting: expected)
                placed = (written.digest, written.size)
            }
        } catch {
            throw Self.failure(error)
        }
        // The local copy holds the bytes just verified: it becomes the cached one, which the scan, the shard hasher
        // and this daemon's first pull read instead of fetching them back.
        if let spool = session.spool, rename(spool, store.cached(placed.digest)) == 0 { store.didCache(size: placed.size) }
        return placed
    }

    /// Places a session's bytes under their digest: one `PutObject` at the blob's key when they are smaller than a
    /// part; otherwise the multipart upload is completed under `staged` and the blob's key made a pointer to it.
    private func place(
        _ writer: S3BlobWriter, staged: String, expecting expected: ContentDigest?
    ) async throws(S3Error) -> (digest: ContentDigest, size: UInt64) {
        guard let digest = await writer.digest else { throw S3Error(status: 0, code: "UploadEnded", message: "upload \(id) has ended") }
        if let expected, expected != digest {
            await writer.abort()
            throw S3Error(status: 0, code: "BadDigest", message: "the uploaded bytes hash to \(digest), not \(expected); nothing was kept")
        }
        guard await writer.multipartUploadID != nil else {
            let written = try await writer.complete(expecting: digest, small: { S3BlobStore.key($0) })
            return (digest, written.size)
        }
        // From the marker on, a stop at any step leaves what the janitor needs: the marker names the digest, and the
        // object goes unless the blob's key points to it. A failure below leaves the marker (the pointer may have been
        // stored though its answer was lost), so the janitor decides.
        let marker = S3BlobStore.marker(of: staged)
        _ = try await store.client.put(marker, Array(digest.hex.utf8), ifAbsent: false)
        let written = try await writer.complete(expecting: digest)
        let pointer = try await store.client.put(
            S3BlobStore.key(digest), Array(staged.utf8), ifAbsent: true,
            metadata: [("custody-blob", staged), ("custody-size", String(written.size))])
        if pointer == .alreadyThere {
            // Stored first by another writer: this copy goes (or, if that fails, the janitor's).
            guard (try? await store.client.delete(staged)) != nil else { return (digest, written.size) }
        }
        try? await store.client.delete(marker)
        return (digest, written.size)
    }

    static func failure(_ error: S3Error) -> CustodyError {
        if error.code == "BadDigest" { return CustodyError(.invalidArgument, error.message) }
        return S3BlobStore.failure(error)
    }

    func suspend() async { store.suspend(id) }

    func abort() async {
        store.end(id)
        await session.writer.abort()
        if let spool = session.spool { unlink(spool) }
    }
}

/// A blob being downloaded into the cache, followed by its readers while it arrives: its size once known, how much
/// the partial file holds, and how the download ended.
final class Fetch: Sendable {
    let partial: String
    private struct State {
        var size: UInt64?
        var written: UInt64 = 0
        var outcome: Result<Void, CustodyError>?
        var waiters: [(bytes: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    }
    private let state = Mutex(State())

    init(partial: String) { self.partial = partial }

    func sized(_ size: UInt64) { update { $0.size = size } }
    func progressed(_ written: UInt64) { update { $0.written = written } }
    func finished(_ outcome: Result<Void, CustodyError>) { update { $0.outcome = outcome } }

    /// Waits until the size is known and `bytes` are written, or the download ended; returns what stands then.
    func wait(until bytes: UInt64) async -> (size: UInt64?, written: UInt64, outcome: Result<Void, CustodyError>?) {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                guard state.outcome == nil && (state.size == nil || state.written < bytes) else { return true }
                state.waiters.append((bytes, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
        return state.withLock { ($0.size, $0.written, $0.outcome) }
    }

    private func update(_ change: (inout State) -> Void) {
        let ready = state.withLock { state in
            change(&state)
            let (size, written, ended) = (state.size, state.written, state.outcome != nil)
            let (ready, waiting) = state.waiters.reduce(into: ([CheckedContinuation<Void, Never>](), [(UInt64, CheckedContinuation<Void, Never>)]()))
            {
                if ended || (size != nil && $1.bytes <= written) { $0.0.append($1.continuation) } else { $0.1.append($1) }
            }
            state.waiters = waiting.map { (bytes: $0.0, continuation: $0.1) }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }
}

/// Reads a blob from `offset` to `size` while its ``Fetch`` writes it, a MiB at a time: what is written, except the
/// blob's last MiB (all of a smaller one), which comes only once the download verified the whole blob. One reader.
final class FetchReader: @unchecked Sendable {
    static let chunk: UInt64 = 1 << 20
    let fetch: Fetch
    let cached: String
    let size: UInt64
    private var offset: UInt64
    private var fd: Int32 = -1

    init(fetch: Fetch, cached: String, from offset: UInt64, size: UInt64) {
        self.fetch = fetch
        self.cached = cached
        self.offset = offset
        self.size = size
    }

    deinit { if fd >= 0 { close(fd) } }

    func next() async throws(CustodyError) -> [UInt8]? {
        guard offset < size else { return nil }
        let unverified = size - min(Self.chunk, size)
        while true {
            // Enough for a chunk below the held-back end, or (none being left there) the download's end.
            let wanted = offset + Self.chunk <= unverified ? offset + Self.chunk : UInt64.max
            let now = await fetch.wait(until: wanted)
            if case .failure(let error) = now.outcome { throw error }
            let limit = now.outcome == nil ? min(now.written, unverified) : size
            guard limit > offset else { continue }
            return try read(min(Self.chunk, limit - offset))
        }
    }

    private func read(_ count: UInt64) throws(CustodyError) -> [UInt8] {
        if fd < 0 {
            // The partial file, or — renamed once verified — the cached copy.
            fd = open(fetch.partial, O_RDONLY | O_CLOEXEC)
            if fd < 0 { fd = open(cached, O_RDONLY | O_CLOEXEC) }
            guard fd >= 0 else { throw .io(cached, "open", errno: errno) }
        }
        let (fd, at) = (fd, offset)
        var failed: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: Int(count)) { raw, initialized in
            while initialized < Int(count) {
                let got = pread(fd, raw.baseAddress! + initialized, Int(count) - initialized, off_t(at) + off_t(initialized))
                guard got > 0 else {
                    failed = got == 0 ? EIO : errno
                    break
                }
                initialized += got
            }
        }
        guard failed == 0 else { throw .io(cached, "read", errno: failed) }
        offset += count
        return bytes
    }
}
