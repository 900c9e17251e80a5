package import CustodyCore
package import CustodyStorage
package import Foundation
package import Logging

/// Receiving blobs, for every front door: the size limit, the free-space floor, resumable uploads and the digest
/// check, over a ``BlobStore``'s upload objects. Nothing here knows HTTP: an adapter hands over the body as a
/// sequence of byte chunks and maps the outcome and the errors to its protocol.
package struct Uploads: Sendable {
    package let blobs: any BlobStore
    package let index: any BlobIndex
    package let disk: DiskSpace
    package let maxBlobSize: UInt64
    /// Counts received bytes (metrics).
    package let counted: @Sendable (UInt64) -> Void

    package init(
        blobs: any BlobStore, index: any BlobIndex, disk: DiskSpace, maxBlobSize: UInt64,
        counted: @escaping @Sendable (UInt64) -> Void = { _ in }
    ) {
        self.blobs = blobs
        self.index = index
        self.disk = disk
        self.maxBlobSize = maxBlobSize
        self.counted = counted
    }

    /// Often enough that a body of unknown length cannot write through the floor between two looks.
    static let spaceCheckInterval: UInt64 = 64 << 20

    /// The blob's size when it is both recorded and stored with that size.
    package func storedSize(_ digest: ContentDigest) async throws(CustodyError) -> UInt64? {
        guard let recorded = try await index.blobSize(digest), try await blobs.size(of: digest) == recorded else { return nil }
        return recorded
    }

    /// Where the resumable upload of `digest` stands: nil when the blob is already stored.
    package func offset(of digest: ContentDigest) async throws(CustodyError) -> UInt64? {
        if try await storedSize(digest) != nil { return nil }
        return await blobs.stagedSize(of: UploadID(resuming: digest)) ?? 0
    }

    package enum Outcome: Sendable, Equatable {
        /// The blob was stored before this body was read.
        case alreadyStored
        case created(size: UInt64)
    }

    /// Receives the bytes of `digest` from `offset` on (a resume when above 0). `declaredLength` is the body's
    /// length when the client announced it. A body that ends early or whose stream fails is kept for a resume
    /// (``offset(of:)``); any other failure keeps nothing.
    package func receive<Body: AsyncSequence & Sendable>(
        _ digest: ContentDigest, from offset: UInt64, declaredLength declared: UInt64?, body: Body
    ) async throws(CustodyError) -> Outcome where Body.Element: ContiguousBytes & Sendable {
        if try await storedSize(digest) != nil { return .alreadyStored }
        let limit = maxBlobSize
        if let declared, offset + declared > limit {
            throw CustodyError(.tooLarge, "a \(offset + declared)-byte blob is over the registry's \(limit)-byte limit")
        }
        // A body whose declared length cannot fit is refused before a byte is staged. A resume needs only the rest.
        if let declared {
            let staged = offset > 0 ? await blobs.stagedSize(of: UploadID(resuming: digest)) ?? 0 : 0
            try disk.admit(declared + offset - min(staged, declared + offset), for: "a \(offset + declared)-byte blob")
        }
        let (upload, resumable) = try await open(digest, at: offset)
        let received: UInt64
        do throws(ReceiveFailure) {
            received = try await write(body, to: upload, from: offset, declared: declared)
        } catch let failure {
            counted(failure.received)
            switch failure.reason {
            case .refused(let error):
                await upload.abort()
                throw error
            case .bodyFailed where resumable:
                await upload.suspend()
                throw CustodyError(.io, "the upload's body failed after \(offset + failure.received) bytes; resume from there")
            case .bodyFailed:
                await upload.abort()
                throw CustodyError(.io, "the upload's body failed after \(offset + failure.received) bytes; nothing was kept")
            }
        }
        counted(received)
        let total = offset + received
        if let declared, received < declared {
            if resumable {
                await upload.suspend()
                throw CustodyError(.invalidArgument, "the upload ended after \(received) of \(declared) bytes; resume from offset \(total)")
            }
            await upload.abort()
            throw CustodyError(.invalidArgument, "the upload ended after \(received) of \(declared) bytes; nothing was kept")
        }
        // Touched before the bytes are placed, so that a collector deciding on this blob now keeps it or finishes first.
        try await index.touchBlob(digest)
        let placed = try await upload.commit(expecting: digest)
        try await index.recordBlob(digest, size: placed.size)
        return .created(size: placed.size)
    }

    /// Receives one part of a multipart upload of `digest`, `size` bytes in all: the part's bytes start at `offset`
    /// and must follow what is staged (in order; a repeat or a gap is `outOfOrder`). The part that completes the
    /// blob commits it, digest checked; a blob whose bytes are not its digest is not kept. Returns the bytes staged
    /// so far (`size` once the blob is stored).
    package func receivePart<Body: AsyncSequence & Sendable>(
        _ digest: ContentDigest, size: UInt64, from offset: UInt64, declaredLength declared: UInt64?, body: Body
    ) async throws(CustodyError) -> UInt64 where Body.Element: ContiguousBytes & Sendable {
        if try await storedSize(digest) != nil { return size }
        guard size <= maxBlobSize else { throw CustodyError(.tooLarge, "a \(size)-byte blob is over the registry's \(maxBlobSize)-byte limit") }
        if let declared {
            guard offset + declared <= size else { throw CustodyError(.invalidArgument, "the part ends past the blob's \(size) bytes") }
            try disk.admit(declared, for: "a \(declared)-byte part")
        }
        let upload = try await blobs.upload(UploadID(resuming: digest), resumingAt: offset)
        let received: UInt64
        do throws(ReceiveFailure) {
            received = try await write(body, to: upload, from: offset, declared: declared)
        } catch let failure {
            counted(failure.received)
            if case .refused(let error) = failure.reason {
                await upload.abort()
                throw error
            }
            await upload.suspend()
            throw CustodyError(.io, "the part's body failed after \(offset + failure.received) bytes; send the part again")
        }
        counted(received)
        let total = offset + received
        guard total >= size else {
            await upload.suspend()
            return total
        }
        guard total == size else {
            await upload.abort()
            throw CustodyError(.invalidArgument, "the parts hold \(total) bytes, not the blob's \(size); nothing was kept")
        }
        // Touched before the bytes are placed, so that a collector deciding on this blob now keeps it or finishes first.
        try await index.touchBlob(digest)
        let placed = try await upload.commit(expecting: digest)
        try await index.recordBlob(digest, size: placed.size)
        return placed.size
    }

    // MARK: Upload sessions (OCI): bytes arrive under an upload id, the digest is named at the end.

    /// Starts an upload session: an empty staged upload under a fresh id.
    package func startSession() async throws(CustodyError) -> UploadID {
        let id = UploadID.random()
        let upload = try await blobs.upload(id, resumingAt: 0)
        await upload.suspend()
        return id
    }

    /// How many bytes the session holds, or nil when there is no such session.
    package func sessionSize(_ id: UploadID) async -> UInt64? {
        await blobs.stagedSize(of: id)
    }

    /// Appends a chunk that starts at `offset` (nil: wherever the session stands) to a session: a chunk that does not
    /// start where the staged bytes end is ``CustodyError/Code/outOfOrder`` and changes nothing. Returns the bytes
    /// staged after it. A body that fails keeps what arrived, so that the client can go on from there.
    package func appendChunk<Body: AsyncSequence & Sendable>(
        _ id: UploadID, at offset: UInt64?, declaredLength declared: UInt64?, body: Body
    ) async throws(CustodyError) -> UInt64 where Body.Element: ContiguousBytes & Sendable {
        guard let staged = await blobs.stagedSize(of: id) else { throw CustodyError(.notFound, "upload \(id) is not in progress") }
        if let offset, offset != staged {
            throw CustodyError(.outOfOrder, "the upload holds \(staged) bytes; a chunk starting at \(offset) is out of order")
        }
        if let declared {
            guard staged + declared <= maxBlobSize else {
                throw CustodyError(.tooLarge, "a \(staged + declared)-byte blob is over the registry's \(maxBlobSize)-byte limit")
            }
            try disk.admit(declared, for: "a \(declared)-byte chunk")
        }
        let upload = try await blobs.upload(id, resumingAt: staged)
        do throws(ReceiveFailure) {
            let received = try await write(body, to: upload, from: staged, declared: declared)
            counted(received)
            await upload.suspend()
            return staged + received
        } catch let failure {
            counted(failure.received)
            if case .refused(let error) = failure.reason {
                await upload.abort()
                throw error
            }
            await upload.suspend()
            throw CustodyError(.io, "the chunk's body failed after \(staged + failure.received) bytes")
        }
    }

    /// Ends a session with an optional last chunk and places the blob under `digest`; bytes that are not that digest
    /// are not kept (and the session ends). A session that holds nothing yet is a monolithic upload of `digest`.
    package func finishSession<Body: AsyncSequence & Sendable>(
        _ id: UploadID, expecting digest: ContentDigest, declaredLength declared: UInt64?, body: Body
    ) async throws(CustodyError) -> UInt64 where Body.Element: ContiguousBytes & Sendable {
        // A session that holds nothing and whose bytes come with their digest (`POST`, then `PUT ?digest=` with the
        // body, as oras and curl push): the bytes go where those of a known digest go — on S3 streamed into their
        // key while hashed, instead of staged and then copied there.
        if await blobs.stagedSize(of: id) == 0 {
            _ = try await cancelSession(id)
            switch try await receive(digest, from: 0, declaredLength: declared, body: body) {
            case .created(let size): return size
            case .alreadyStored:
                guard let size = try await storedSize(digest) else { throw CustodyError(.notFound, "blob \(digest) went while it was put") }
                return size
            }
        }
        let staged = try await appendChunk(id, at: nil, declaredLength: declared, body: body)
        let upload = try await blobs.upload(id, resumingAt: staged)
        // Touched before the bytes are placed, so that a collector deciding on this blob now keeps it or finishes first.
        try await index.touchBlob(digest)
        let placed = try await upload.commit(expecting: digest)
        try await index.recordBlob(digest, size: placed.size)
        return placed.size
    }

    /// Ends a session and discards what it holds; false when there was none.
    package func cancelSession(_ id: UploadID) async throws(CustodyError) -> Bool {
        guard let staged = await blobs.stagedSize(of: id) else { return false }
        await (try await blobs.upload(id, resumingAt: staged)).abort()
        return true
    }

    /// Stores a small document held in memory (a generated manifest's config or attachment) as a blob.
    package func store(_ bytes: [UInt8]) async throws(CustodyError) -> ContentDigest {
        let digest = ContentDigest.of(bytes)
        _ = try await receive(digest, from: 0, declaredLength: UInt64(bytes.count), body: OneChunk(bytes: bytes))
        return digest
    }

    /// The resumable upload of `digest`; when another request is writing it, a fresh one of its own that cannot be
    /// resumed (a resume of a held upload is a conflict).
    private func open(_ digest: ContentDigest, at offset: UInt64) async throws(CustodyError) -> (any BlobUpload, resumable: Bool) {
        do {
            return (try await blobs.upload(UploadID(resuming: digest), resumingAt: offset), true)
        } catch  where error.code == .conflict {
            guard offset == 0 else { throw CustodyError(.conflict, "another upload of \(digest) is in progress; retry later") }
            return (try await blobs.upload(.random(), resumingAt: 0), false)
        }
    }

    private struct ReceiveFailure: Error {
        enum Reason {
            /// The registry refused the rest (a limit, the disk): nothing is kept.
            case refused(CustodyError)
            /// The body's stream failed (the connection dropped): what arrived may be resumed.
            case bodyFailed
        }
        let reason: Reason
        let received: UInt64
    }

    private func write<Body: AsyncSequence>(
        _ body: Body, to upload: any BlobUpload, from offset: UInt64, declared: UInt64?
    ) async throws(ReceiveFailure) -> UInt64 where Body.Element: ContiguousBytes & Sendable {
        let limit = maxBlobSize
        var received: UInt64 = 0
        var checkedSpaceAt: UInt64 = 0
        let interval = min(Self.spaceCheckInterval, max(1 << 20, (disk.reading()?.reserve ?? 0) / 2))
        var iterator = body.makeAsyncIterator()
        while true {
            let next: Body.Element?
            do { next = try await iterator.next() } catch { throw ReceiveFailure(reason: .bodyFailed, received: received) }
            guard let chunk = next else { return received }
            do throws(CustodyError) {
                received += UInt64(chunk.withUnsafeBytes { $0.count })
                guard offset + received <= limit else {
                    throw CustodyError(.tooLarge, "the blob is over the registry's \(limit)-byte limit")
                }
                // Other writers share the disk: look again every so often, for what this body still needs.
                if received - checkedSpaceAt >= interval {
                    checkedSpaceAt = received
                    // A body of unknown length must leave room for at least one more interval.
                    try disk.admit(
                        declared.map { $0 > received ? $0 - received : 0 } ?? interval,
                        for: declared == nil ? "the next part of an upload of unknown length" : "the rest of this upload")
                }
                try await upload.append(chunk)
            } catch  where error.code == .insufficientStorage {
                // A full disk ends the upload for good: the staged bytes go, so that they do not hold the last free space.
                throw ReceiveFailure(reason: .refused(full(error, offset: offset, received: received, declared: declared)), received: received)
            } catch {
                throw ReceiveFailure(reason: .refused(error), received: received)
            }
        }
    }

    private func full(_ error: CustodyError, offset: UInt64, received: UInt64, declared: UInt64?) -> CustodyError {
        if error.message.hasPrefix("the registry has") { return CustodyError(.insufficientStorage, error.message + "; nothing was kept") }
        let asked = declared.map { "a \(offset + $0)-byte blob" } ?? "a blob of unknown length"
        let space = disk.reading().map { "\($0.reading.free) bytes are free" } ?? "the disk is full"
        return CustodyError(
            .insufficientStorage,
            "the registry's disk filled up after \(offset + received) bytes of \(asked); \(space); nothing was kept")
    }
}

/// Deletes staged uploads nobody has touched for `expiry` (`limits.uploadExpiry`): an upload cut short and never
/// resumed must not hold disk space for good. One being received now is never deleted, however old its file.
package struct UploadJanitor: Sendable {
    package let blobs: any BlobStore
    package let expiry: Duration
    package let logger: Logger
    /// The wall clock that staged files' modification times are compared with; injected by tests.
    package let now: @Sendable () -> Date

    package init(blobs: any BlobStore, expiry: Duration, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.blobs = blobs
        self.expiry = expiry
        self.logger = logger
        self.now = now
    }

    /// Deletes every expired staged upload; returns how many bytes it freed.
    @discardableResult
    package func sweep() async -> UInt64 {
        let seconds = Double(expiry.components.seconds) + Double(expiry.components.attoseconds) / 1e18
        let (count, bytes) = await blobs.expireUploads(untouchedSince: now().addingTimeInterval(-seconds))
        if count > 0 {
            logger.notice("expired staged uploads deleted", metadata: ["count": "\(count)", "bytes": "\(bytes)"])
        }
        return bytes
    }

    /// Sweeps every `expiry / 4` (at least once a minute, at most once a second) until cancelled.
    package func run() async {
        let period = min(max(expiry / 4, .seconds(1)), .seconds(60))
        while !Task.isCancelled {
            await sweep()
            try? await Task.sleep(for: period)
        }
    }
}

/// A body of one chunk held in memory.
package struct OneChunk: AsyncSequence, Sendable {
    package typealias Element = [UInt8]
    let bytes: [UInt8]

    package init(bytes: [UInt8]) { self.bytes = bytes }

    package struct AsyncIterator: AsyncIteratorProtocol {
        var bytes: [UInt8]?
        package mutating func next() async -> [UInt8]? {
            defer { bytes = nil }
            return bytes
        }
    }

    package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(bytes: bytes.isEmpty ? nil : bytes) }
}
