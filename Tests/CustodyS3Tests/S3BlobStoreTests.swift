import AsyncHTTPClient
import CustodyCore
import CustodyRegistry
import CustodyStorage
import CustodyTestSupport
import Foundation
import Synchronization
import Testing

@testable import CustodyS3

/// The S3 blob store behind the upload use case, on SeaweedFS: uploads of a known digest stream to their key and
/// resume in process, sessions stream into an object of their own that the blob's key points to once their digest is
/// known, reads are verified copies, a wrong digest or a tampered object is never served, and the janitor aborts
/// multipart uploads nobody holds and removes what a stopped placement left.
@Suite(.serialized) struct S3BlobStoreTests {
    typealias Body = ChunkedBody

    final class Index: BlobIndex, @unchecked Sendable {
        var sizes: [ContentDigest: UInt64] = [:]
        func blobSize(_ digest: ContentDigest) async throws(CustodyError) -> UInt64? { sizes[digest] }
        func recordBlob(_ digest: ContentDigest, size: UInt64) async throws(CustodyError) { sizes[digest] = size }
        func touchBlob(_ digest: ContentDigest) async throws(CustodyError) {}
        func collectableBlobs(unusedSince cutoff: String, limit: Int) async throws(CustodyError) -> [(digest: ContentDigest, size: UInt64)] { [] }
        func collectBlob(
            _ digest: ContentDigest, unusedSince cutoff: String, deleting: @escaping @Sendable () async throws(CustodyError) -> Void
        ) async throws(CustodyError) -> Bool { false }
    }

    /// The upload ledger as the metadata store keeps it (each daemon's heartbeats), in memory.
    final class Ledger: UploadLedger, Sendable {
        let touched = Mutex<[String: Date]>([:])
        func touchUploads(_ ids: [String], at date: Date) async throws(CustodyError) {
            touched.withLock { table in for id in ids { table[id] = date } }
        }
        func uploadsTouched(since cutoff: Date) async throws(CustodyError) -> Set<String> {
            touched.withLock { table in
                table = table.filter { $0.value >= cutoff }
                return Set(table.keys)
            }
        }
    }

    /// Two daemons on one bucket: B's janitor leaves A's upload in progress alone — however old, while A's janitor
    /// still touches it — and aborts it once nobody did for the expiry (A stopped).
    @Test func anotherDaemonsUploadInProgressIsLeftToIt() async throws {
        let scratch = try Scratch()
        let server = try SeaweedProcess(scratch: scratch)
        let (client, _) = try await S3ClientTests.client(server, prefix: "registry")
        let ledger = Ledger()
        let start = Date()
        // A's clock is two hours ahead: its heartbeats are newer than the first cutoff below, older than the second.
        let a = try S3BlobStore(
            client: client, cache: scratch.path + "/a", partSize: 5 << 20, ledger: ledger, now: { start.addingTimeInterval(7200) })
        let b = try S3BlobStore(client: client, cache: scratch.path + "/b", partSize: 5 << 20, ledger: ledger)
        let upload = try await a.upload(.random(), resumingAt: 0)
        try await upload.append(pseudoRandomBytes(6 << 20, seed: 21))
        let inFlight = try await client.multipartUploads(under: "uploads/")
        try #require(inFlight.count == 1, "the session streams into a multipart upload")

        _ = await a.expireUploads(untouchedSince: start.addingTimeInterval(-3600))
        _ = await b.expireUploads(untouchedSince: start.addingTimeInterval(3600))
        #expect(try await client.multipartUploads(under: "uploads/").map(\.uploadID) == inFlight.map(\.uploadID), "A touched it: kept")
        _ = await b.expireUploads(untouchedSince: start.addingTimeInterval(3 * 3600))
        #expect(try await client.multipartUploads(under: "uploads/").isEmpty, "untouched past the cutoff: aborted")
        await upload.abort()
    }

    @Test func uploadsReadsAndTheJanitor() async throws {
        let scratch = try Scratch()
        let server = try SeaweedProcess(scratch: scratch)
        let (client, _) = try await S3ClientTests.client(server, prefix: "registry")
        let store = try S3BlobStore(client: client, cache: scratch.path + "/cache", partSize: 5 << 20)
        let uploads = Uploads(
            blobs: store, index: Index(), disk: DiskSpace(path: "/", floor: FreeSpace(bytes: 0, percent: nil), probe: { _ in nil }),
            maxBlobSize: 1 << 30)
        let bytes = pseudoRandomBytes(12 << 20, seed: 3)
        let digest = ContentDigest.of(bytes)
        let chunks = stride(from: 0, to: bytes.count, by: 1 << 20).map { Array(bytes[$0..<min($0 + (1 << 20), bytes.count)]) }

        // A dropped body resumes in this process where it stopped; the blob appears only when complete.
        await #expect(throws: CustodyError.self) {
            _ = try await uploads.receive(digest, from: 0, declaredLength: UInt64(bytes.count), body: Body(chunks: chunks, failAfter: 7))
        }
        #expect(try await uploads.offset(of: digest) == 7 << 20)
        #expect(try await store.size(of: digest) == nil)
        let resumed = try await uploads.receive(
            digest, from: 7 << 20, declaredLength: UInt64(bytes.count - (7 << 20)), body: Body(chunks: Array(chunks[7...])))
        #expect(resumed == .created(size: UInt64(bytes.count)))
        #expect(FileManager.default.contents(atPath: store.cached(digest)) == Data(bytes), "kept locally as it went out, resumed or not")
        #expect(try await store.size(of: digest) == UInt64(bytes.count))
        guard case .file(let path, _) = try await store.body(of: digest, range: 0...9) else {
            Issue.record("not a local file")
            return
        }
        #expect(FileManager.default.contents(atPath: path) == Data(bytes), "the verified local copy")

        // The wrong bytes for a digest: refused, nothing visible, no multipart upload left.
        let other = ContentDigest.of([9, 9, 9])
        await #expect(throws: CustodyError.self) {
            _ = try await uploads.receive(other, from: 0, declaredLength: UInt64(bytes.count), body: Body(chunks: chunks))
        }
        #expect(try await store.size(of: other) == nil)
        #expect(try await client.multipartUploads(under: "blobs/").isEmpty)

        // A session (digest named at the end), spooled then placed.
        let small = Array("a model card".utf8)
        let session = try await uploads.startSession()
        _ = try await uploads.appendChunk(session, at: 0, declaredLength: 4, body: Body(chunks: [Array(small[0..<4])]))
        #expect(
            try await uploads.finishSession(
                session, expecting: ContentDigest.of(small), declaredLength: nil, body: Body(chunks: [Array(small[4...])])) == 12)
        #expect(try await client.get("blobs/sha256/" + ContentDigest.of(small).hex) == small)
        #expect(try await store.withLocalFiles([ContentDigest.of(small)]) { paths in FileManager.default.contents(atPath: paths[0]) } == Data(small))

        // A session of several parts, in chunks that are not parts: streamed into an object of its own while it
        // arrives, and the blob's key made a pointer to it; nothing copied, no marker or multipart upload left.
        let large = pseudoRandomBytes((10 << 20) + 3, seed: 5)
        let largeDigest = ContentDigest.of(large)
        func pushSession(_ bytes: [UInt8]) async throws -> UInt64 {
            let id = try await uploads.startSession()
            for (index, chunk) in stride(from: 0, to: bytes.count, by: 3 << 20).enumerated() {
                let part = Array(bytes[chunk..<min(chunk + (3 << 20), bytes.count)])
                _ = try await uploads.appendChunk(id, at: UInt64(index * (3 << 20)), declaredLength: UInt64(part.count), body: Body(chunks: [part]))
            }
            return try await uploads.finishSession(id, expecting: ContentDigest.of(bytes), declaredLength: nil, body: Body(chunks: []))
        }
        #expect(try await pushSession(large) == 10 << 20 + 3)
        let pointer = try #require(try await client.head("blobs/sha256/" + largeDigest.hex))
        let staged = try #require(pointer.metadata["custody-blob"])
        #expect(staged.hasPrefix("uploads/") && pointer.metadata["custody-size"] == String(large.count))
        #expect(try await client.get(staged) == large)
        #expect(try await store.size(of: largeDigest) == UInt64(large.count))
        #expect(try await client.list(under: "pending/").isEmpty)
        #expect(try await client.multipartUploads(under: "uploads/").isEmpty)

        // The same bytes again: the first stored stays, the second copy goes.
        #expect(try await pushSession(large) == 10 << 20 + 3)
        #expect(try await client.head("blobs/sha256/" + largeDigest.hex)?.metadata["custody-blob"] == staged)
        #expect(try await client.list(under: "uploads/").map(\.name) == [staged])

        // A read of the whole blob with no cached copy is served while it downloads (through the pointer), and
        // what it downloaded is the cached copy after.
        unlink(store.cached(largeDigest))
        guard case .stream(let stream) = try await store.body(of: largeDigest, range: 0...UInt64(large.count - 1)) else {
            Issue.record("a cold read of the whole blob is not streamed")
            return
        }
        var streamed: [UInt8] = []
        while let chunk = try await stream.next() { streamed += chunk }
        #expect(streamed == large)
        #expect(FileManager.default.contents(atPath: store.cached(largeDigest)) == Data(large))

        // A read with no cached copy follows the pointer and verifies what it finds.
        unlink(store.cached(largeDigest))
        #expect(try await store.withLocalFiles([largeDigest]) { paths in FileManager.default.contents(atPath: paths[0]) } == Data(large))

        // Wrong bytes for the digest a session names: refused, nothing visible, nothing left in the bucket.
        let wrongSession = try await uploads.startSession()
        _ = try await uploads.appendChunk(wrongSession, at: 0, declaredLength: nil, body: Body(chunks: [pseudoRandomBytes(6 << 20, seed: 8)]))
        await #expect(throws: CustodyError.self) {
            _ = try await uploads.finishSession(wrongSession, expecting: ContentDigest.of([1]), declaredLength: nil, body: Body(chunks: []))
        }
        #expect(try await store.size(of: ContentDigest.of([1])) == nil)
        #expect(try await client.multipartUploads(under: "uploads/").isEmpty)
        #expect(try await client.list(under: "uploads/").map(\.name) == [staged])

        // A placement or deletion that stopped half-way (a daemon killed): the janitor removes an object its marker
        // names unless the blob's pointer names it, and the markers.
        let orphaned = "uploads/" + UUID().uuidString.lowercased()
        _ = try await client.put(orphaned, Array("bytes nobody points to".utf8))
        _ = try await client.put(S3BlobStore.marker(of: orphaned), Array(ContentDigest.of(Array("x".utf8)).hex.utf8))
        _ = try await client.put(S3BlobStore.marker(of: staged), Array(largeDigest.hex.utf8))
        _ = await store.expireUploads(untouchedSince: Date().addingTimeInterval(3600))
        #expect(try await client.list(under: "pending/").isEmpty)
        #expect(try await client.list(under: "uploads/").map(\.name) == [staged], "the pointed-to object stays, the orphan went")
        #expect(try await store.size(of: largeDigest) == UInt64(large.count))

        // Deleting a pointed-to blob deletes both objects.
        try await store.delete(largeDigest)
        #expect(try await store.size(of: largeDigest) == nil)
        #expect(try await client.list(under: "uploads/").isEmpty)
        #expect(try await client.list(under: "pending/").isEmpty)

        // An object whose bytes are not its digest is never served.
        let forged = ContentDigest.of(Array("the real bytes".utf8))
        _ = try await client.put("blobs/sha256/" + forged.hex, Array("tampered".utf8))
        await #expect(throws: CustodyError.self) { _ = try await store.body(of: forged, range: nil) }
        // Streamed, a wrong object ends in an error before its last MiB: a reader never has all of it.
        let forgedLarge = ContentDigest.of(Array("other real bytes".utf8))
        let wrongBytes = pseudoRandomBytes(3 << 20, seed: 13)
        _ = try await client.put("blobs/sha256/" + forgedLarge.hex, wrongBytes)
        guard case .stream(let wrong) = try await store.body(of: forgedLarge, range: 0...UInt64(wrongBytes.count - 1)) else {
            Issue.record("a cold read of the whole blob is not streamed")
            return
        }
        var served = 0
        await #expect(throws: CustodyError.self) {
            while let chunk = try await wrong.next() { served += chunk.count }
        }
        #expect(served <= wrongBytes.count - (1 << 20), "\(served) bytes served of a wrong blob")
        #expect(!FileManager.default.fileExists(atPath: store.cached(forgedLarge)), "not kept")

        // A multipart upload nobody holds (a daemon killed mid-upload) is aborted by the janitor once past the cutoff.
        let orphan = try await client.createMultipartUpload("blobs/sha256/" + String(repeating: "1", count: 64))
        #expect(try await client.multipartUploads(under: "blobs/").contains { $0.uploadID == orphan })
        _ = await store.expireUploads(untouchedSince: Date().addingTimeInterval(3600))
        #expect(try await client.multipartUploads(under: "blobs/").isEmpty)
        #expect(await store.unavailability() == nil)
    }
}
