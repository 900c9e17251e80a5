import Crypto
package import CustodyCore
package import CustodyStorage
package import Foundation
import Synchronization

/// A ``BlobStore`` in memory, for fast tests of the registry core: uploads are byte arrays keyed by upload id, a
/// commit checks the digest, local files are spooled to a scratch directory (as a remote store would).
package final class InMemoryBlobStore: BlobStore, BlobIndex {
    struct State {
        var blobs: [ContentDigest: [UInt8]] = [:]
        var recorded: [ContentDigest: UInt64] = [:]
        var staged: [UploadID: [UInt8]] = [:]
        var active: Set<UploadID> = []
    }

    let state = Mutex(State())

    package init() {}

    package func size(of digest: ContentDigest) async throws(CustodyError) -> UInt64? {
        state.withLock { $0.blobs[digest].map { UInt64($0.count) } }
    }

    package func upload(_ id: UploadID, resumingAt offset: UInt64) async throws(CustodyError) -> any BlobUpload {
        try state.withLock { state throws(CustodyError) in
            guard state.active.insert(id).inserted else { throw CustodyError(.conflict, "another upload of \(id) is in progress; retry later") }
            let staged = offset == 0 ? [] : state.staged[id] ?? []
            guard UInt64(staged.count) == offset else {
                state.active.remove(id)
                throw CustodyError(.outOfOrder, "the registry holds \(staged.count) bytes of this upload, not \(offset); resume from \(staged.count)")
            }
            state.staged[id] = staged
        }
        return Upload(id: id, store: self)
    }

    package func stagedSize(of id: UploadID) async -> UInt64? {
        state.withLock { $0.staged[id].map { UInt64($0.count) } }
    }

    package func body(of digest: ContentDigest, range: ClosedRange<UInt64>?) async throws(CustodyError) -> BlobBody {
        guard let bytes = state.withLock({ $0.blobs[digest] }) else { throw CustodyError(.notFound, "blob \(digest) is not in the registry") }
        guard let range else { return .bytes([]) }
        return .bytes(Array(bytes[Int(range.lowerBound)...Int(range.upperBound)]))
    }

    package func withLocalFiles<T: Sendable>(
        _ digests: [ContentDigest], _ body: @escaping @Sendable ([String]) throws(CustodyError) -> T
    ) async throws(CustodyError) -> T {
        let directory = NSTemporaryDirectory() + "custody-spool-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var paths: [String] = []
        for (index, digest) in digests.enumerated() {
            guard let bytes = state.withLock({ $0.blobs[digest] }) else { throw CustodyError(.notFound, "blob \(digest) is missing") }
            let path = directory + "/\(index)"
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            paths.append(path)
        }
        return try body(paths)
    }

    package func expireUploads(untouchedSince cutoff: Date) async -> (count: Int, bytes: UInt64) { (0, 0) }

    package func unavailability() async -> String? { nil }

    package func blobSize(_ digest: ContentDigest) async throws(CustodyError) -> UInt64? {
        state.withLock { $0.recorded[digest] }
    }

    package func recordBlob(_ digest: ContentDigest, size: UInt64) async throws(CustodyError) {
        state.withLock { $0.recorded[digest] = size }
    }

    // The in-memory index knows no references: it is a blob store for tests, not a catalog.
    package func touchBlob(_ digest: ContentDigest) async throws(CustodyError) {}

    package func collectableBlobs(unusedSince cutoff: String, limit: Int) async throws(CustodyError) -> [(digest: ContentDigest, size: UInt64)] {
        []
    }

    package func collectBlob(
        _ digest: ContentDigest, unusedSince cutoff: String, deleting: @escaping @Sendable () async throws(CustodyError) -> Void
    ) async throws(CustodyError) -> Bool { false }

    package func presignedURL(of digest: ContentDigest, seconds: Int) async throws(CustodyError) -> String? { nil }

    package func delete(_ digest: ContentDigest) async throws(CustodyError) {
        _ = state.withLock { $0.blobs.removeValue(forKey: digest) }
    }

    final class Upload: BlobUpload {
        let id: UploadID
        let store: InMemoryBlobStore

        init(id: UploadID, store: InMemoryBlobStore) {
            self.id = id
            self.store = store
        }

        var received: UInt64 { get async { store.state.withLock { UInt64($0.staged[id]?.count ?? 0) } } }

        func append(_ chunk: some ContiguousBytes & Sendable) async throws(CustodyError) {
            let bytes = chunk.withUnsafeBytes { Array($0) }
            store.state.withLock { $0.staged[id, default: []].append(contentsOf: bytes) }
        }

        func commit(expecting expected: ContentDigest?) async throws(CustodyError) -> (digest: ContentDigest, size: UInt64) {
            try store.state.withLock { state throws(CustodyError) in
                let bytes = state.staged.removeValue(forKey: id) ?? []
                state.active.remove(id)
                let digest = ContentDigest.of(bytes)
                if let expected, digest != expected {
                    throw CustodyError(.invalidArgument, "the uploaded bytes hash to \(digest), not \(expected); nothing was kept")
                }
                state.blobs[digest] = bytes
                return (digest, UInt64(bytes.count))
            }
        }

        func suspend() async { _ = store.state.withLock { $0.active.remove(id) } }

        func abort() async {
            store.state.withLock { state in
                state.active.remove(id)
                state.staged[id] = nil
            }
        }
    }
}
