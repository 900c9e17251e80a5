package import CustodyCore
package import Foundation

/// Content-addressed blob storage, as the registry core sees it: what a second backend (an object store) implements.
///
/// Nothing here hands out a place to write to. Bytes arrive through a ``BlobUpload`` keyed by an ``UploadID`` (the
/// digest is known only at the end, as with OCI pushes and S3 multipart uploads); they are read back as a
/// ``BlobBody`` (a local file range, or bytes), or as a presigned URL for a client that can reach the store itself; code that needs
/// the bytes as a file (the scanner, the shard hasher) asks for ``withLocalFiles(_:_:)``.
package protocol BlobStore: Sendable {
    /// The stored blob's size, or nil when it is not stored.
    func size(of digest: ContentDigest) async throws(CustodyError) -> UInt64?

    /// Opens the upload `id` for writing from `offset`: 0 starts it afresh (discarding anything staged under that
    /// id), a larger offset resumes it and must equal what is staged (``CustodyError/Code/outOfOrder`` otherwise,
    /// naming the staged count). At most one writer holds an upload at a time: a second is ``CustodyError/Code/conflict``.
    func upload(_ id: UploadID, resumingAt offset: UInt64) async throws(CustodyError) -> any BlobUpload

    /// How many bytes of the upload `id` are staged, or nil when there is no such upload.
    func stagedSize(of id: UploadID) async -> UInt64?

    /// The bytes of a stored blob (`range` inclusive, nil for the whole blob); ``CustodyError/Code/notFound`` when
    /// it is not stored.
    func body(of digest: ContentDigest, range: ClosedRange<UInt64>?) async throws(CustodyError) -> BlobBody

    /// Runs `body` off the task pool with a local, readable file for each of `digests`, in order: the stored files
    /// themselves when the store is local, spooled copies when it is remote.
    func withLocalFiles<T: Sendable>(
        _ digests: [ContentDigest], _ body: @escaping @Sendable ([String]) throws(CustodyError) -> T
    ) async throws(CustodyError) -> T

    /// Deletes staged uploads not written since `cutoff`, except those being written now; returns how many went and
    /// the bytes they held.
    func expireUploads(untouchedSince cutoff: Date) async -> (count: Int, bytes: UInt64)

    /// Why the store cannot take uploads now, or nil when it can (readiness).
    func unavailability() async -> String?

    /// A URL that fetches the blob's bytes straight from the store, without credentials, for `seconds` (a presigned
    /// object-store URL; a `Range` header may be added); nil when the store has none to give (a local directory).
    /// ``CustodyError/Code/notFound`` when the blob is not stored.
    func presignedURL(of digest: ContentDigest, seconds: Int) async throws(CustodyError) -> String?

    /// Deletes a stored blob (garbage collection, under ``BlobIndex/collectBlob(_:unusedSince:deleting:)``); one that
    /// is not there is no error.
    func delete(_ digest: ContentDigest) async throws(CustodyError)
}

/// One upload in progress: it hashes what it is given as it writes it and owns its staging state (a file, or a
/// multipart upload). Exactly one of ``commit(expecting:)``, ``suspend()`` or ``abort()`` ends it.
package protocol BlobUpload: Sendable {
    var id: UploadID { get }
    /// The bytes written so far, including those of earlier attempts it resumed.
    var received: UInt64 { get async }
    /// Appends bytes in order.
    func append(_ chunk: some ContiguousBytes & Sendable) async throws(CustodyError)
    /// Places the bytes under their digest, atomically; when `expected` is given and differs, nothing is kept and
    /// the error names both digests. Placing a blob that is already stored keeps the stored copy.
    func commit(expecting expected: ContentDigest?) async throws(CustodyError) -> (digest: ContentDigest, size: UInt64)
    /// Stops writing but keeps what arrived, so that the upload can resume from ``received``.
    func suspend() async
    /// Stops writing and discards what arrived.
    func abort() async
}

/// How a stored blob is read.
package enum BlobBody: Sendable, Equatable {
    /// A byte range (inclusive; nil for an empty blob) of a local file.
    case file(path: String, range: ClosedRange<UInt64>?)
    /// Bytes held in memory (small blobs, test stores).
    case bytes([UInt8])
    /// The bytes of the range as they arrive (a blob being fetched from a remote store and verified on the way).
    case stream(BlobStream)
}

/// Bytes given while they arrive: ``next()`` returns the next chunk, nil after the last, and throws when the bytes
/// turn out not to be the blob's — the stream holds back its end until they were verified, so a reader of the whole
/// range never gets every byte of a wrong blob. One reader, in order.
package final class BlobStream: Sendable, Equatable {
    private let read: @Sendable () async throws(CustodyError) -> [UInt8]?

    package init(_ read: @escaping @Sendable () async throws(CustodyError) -> [UInt8]?) {
        self.read = read
    }

    package func next() async throws(CustodyError) -> [UInt8]? { try await read() }

    package static func == (left: BlobStream, right: BlobStream) -> Bool { left === right }
}

/// Names an upload: a client-visible session for OCI and multipart uploads, `sha256-<hex>` for the resumable
/// `/v1` upload of one digest. Letters, digits, `-`, `_` and `.`, at most 128, never starting with a dot.
package struct UploadID: Hashable, Sendable, CustomStringConvertible {
    package let rawValue: String

    package init(_ rawValue: String) throws(CustodyError) {
        let allowed = rawValue.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x5F || byte == 0x2E
        }
        guard allowed, (1...128).contains(rawValue.utf8.count), !rawValue.hasPrefix(".") else {
            throw CustodyError(.invalidArgument, "'\(rawValue)' is not an upload id (letters, digits, '-', '_', '.'; at most 128)")
        }
        self.rawValue = rawValue
    }

    /// The resumable upload of one digest (`/v1/blobs/<digest>`).
    package init(resuming digest: ContentDigest) {
        rawValue = "sha256-" + digest.hex
    }

    /// A fresh, unguessable id.
    package static func random() -> UploadID {
        // A UUID's text is always a valid id.
        try! UploadID(UUID().uuidString.lowercased())
    }

    package var description: String { rawValue }
}

/// The metadata side of blobs: which blobs the registry has accepted, and their sizes. A blob counts as stored only
/// when it is both recorded here and present in the ``BlobStore`` with that size.
///
/// Garbage collection deletes blobs nothing references (no version's files, no OCI manifest) whose record was last
/// written before a cutoff (the grace period). An upload of a blob touches its record *before* it places the bytes,
/// and the collector re-checks references and the record's time and deletes the bytes while holding the record, so
/// an upload or a publish racing the collector either keeps the blob or finds it gone and stores it again — never a
/// version or record without its bytes.
package protocol BlobIndex: Sendable {
    func blobSize(_ digest: ContentDigest) async throws(CustodyError) -> UInt64?
    /// Records a placed blob, or refreshes the record's time when it exists.
    func recordBlob(_ digest: ContentDigest, size: UInt64) async throws(CustodyError)
    /// Refreshes the record's time, when there is one (an upload about to place the bytes).
    func touchBlob(_ digest: ContentDigest) async throws(CustodyError)
    /// Blobs no version or OCI manifest references, recorded (or touched) last before `cutoff` (RFC 3339), oldest first.
    func collectableBlobs(unusedSince cutoff: String, limit: Int) async throws(CustodyError) -> [(digest: ContentDigest, size: UInt64)]
    /// In one transaction holding the blob's record: when it is still unreferenced and not written since `cutoff`,
    /// runs `deleting` (which deletes the bytes) and removes the record; true when it did.
    func collectBlob(
        _ digest: ContentDigest, unusedSince cutoff: String, deleting: @escaping @Sendable () async throws(CustodyError) -> Void
    ) async throws(CustodyError) -> Bool
}
