package import CustodyCore
package import CustodyStorage
package import Foundation

/// Garbage collection of blobs: those no version and no OCI manifest references, last written before the grace
/// period, are deleted — each one re-checked and deleted while the index holds its record (``BlobIndex``), so that
/// an upload or a publish racing the collector never ends with a reference to bytes that are gone. A dry run lists
/// what would go and deletes nothing. What a run deleted is one `blob.collect` event.
package struct BlobCollector: Sendable {
    package let index: any BlobIndex
    package let blobs: any BlobStore
    package let log: any EventLog

    package init(index: any BlobIndex, blobs: any BlobStore, log: any EventLog) {
        self.index = index
        self.blobs = blobs
        self.log = log
    }

    package func run(grace: Duration, dryRun: Bool, now: Date, actor: String?) async throws(CustodyError) -> API.GarbageCollection {
        let cutoff = RFC3339.string(now.addingTimeInterval(-Double(grace.components.seconds)))
        let described = Self.describe(grace)
        let candidates = try await index.collectableBlobs(unusedSince: cutoff, limit: 100_000)
        if dryRun {
            return API.GarbageCollection(
                dryRun: true, grace: described, cutoff: cutoff, blobs: candidates.map { .init(digest: $0.digest, size: $0.size) },
                bytes: candidates.reduce(0) { $0 + $1.size })
        }
        var deleted: [API.GarbageCollection.Blob] = []
        for (digest, size) in candidates {
            let store = blobs
            let gone = try await index.collectBlob(digest, unusedSince: cutoff) { () throws(CustodyError) in try await store.delete(digest) }
            if gone { deleted.append(.init(digest: digest, size: size)) }
        }
        let bytes = deleted.reduce(0) { $0 + $1.size }
        if !deleted.isEmpty {
            try await log.recordEvent(
                NewEvent(
                    type: .blobsCollected, actor: actor,
                    detail: "\(deleted.count) unreferenced blobs (\(bytes) bytes) unused since \(cutoff) (grace \(described))"))
        }
        return API.GarbageCollection(dryRun: false, grace: described, cutoff: cutoff, blobs: deleted, bytes: bytes)
    }

    static func describe(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        if seconds % 86400 == 0, seconds > 0 { return "\(seconds / 86400)d" }
        if seconds % 3600 == 0, seconds > 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0, seconds > 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}
