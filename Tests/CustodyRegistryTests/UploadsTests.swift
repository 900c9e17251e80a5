import CustodyCore
import CustodyStorage
import CustodyTestSupport
import Foundation
import Testing

@testable import CustodyRegistry

/// The upload use case over an in-memory store: no HTTP, no files.
@Suite struct UploadsTests {
    let content = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
    var digest: ContentDigest { ContentDigest.of(content) }

    static func uploads(_ store: InMemoryBlobStore, limit: UInt64 = 1 << 20) -> Uploads {
        Uploads(
            blobs: store, index: store, disk: DiskSpace(path: "/", floor: FreeSpace(bytes: 0, percent: nil), probe: { _ in nil }),
            maxBlobSize: limit)
    }

    typealias Body = ChunkedBody

    func chunks(from start: Int = 0) -> [[UInt8]] {
        stride(from: start, to: content.count, by: 10_000).map { Array(content[$0..<min($0 + 10_000, content.count)]) }
    }

    @Test func aBodyIsStoredOnceAndRecorded() async throws {
        let store = InMemoryBlobStore()
        let uploads = Self.uploads(store)
        #expect(try await uploads.receive(digest, from: 0, declaredLength: nil, body: Body(chunks: chunks())) == .created(size: 100_000))
        #expect(try await uploads.storedSize(digest) == 100_000)
        #expect(try await uploads.receive(digest, from: 0, declaredLength: nil, body: Body(chunks: chunks())) == .alreadyStored)
        #expect(try await uploads.offset(of: digest) == nil)
    }

    @Test func aDroppedBodyResumesWhereItStopped() async throws {
        let store = InMemoryBlobStore()
        let uploads = Self.uploads(store)
        await #expect(throws: CustodyError.self) {
            _ = try await uploads.receive(digest, from: 0, declaredLength: 100_000, body: Body(chunks: chunks(), failAfter: 3))
        }
        #expect(try await uploads.offset(of: digest) == 30_000)
        await #expect(throws: CustodyError(.outOfOrder, "the registry holds 30000 bytes of this upload, not 20000; resume from 30000")) {
            _ = try await uploads.receive(digest, from: 20_000, declaredLength: 80_000, body: Body(chunks: chunks(from: 20_000)))
        }
        #expect(
            try await uploads.receive(digest, from: 30_000, declaredLength: 70_000, body: Body(chunks: chunks(from: 30_000)))
                == .created(size: 100_000))
    }

    @Test func aShortBodyIsKeptForAResumeAndSaysWhereFrom() async throws {
        let store = InMemoryBlobStore()
        await #expect(throws: CustodyError(.invalidArgument, "the upload ended after 50000 of 100000 bytes; resume from offset 50000")) {
            _ = try await Self.uploads(store).receive(digest, from: 0, declaredLength: 100_000, body: Body(chunks: Array(chunks().prefix(5))))
        }
        #expect(try await Self.uploads(store).offset(of: digest) == 50_000)
    }

    @Test func overTheLimitOrTheWrongBytesKeepNothing() async throws {
        let store = InMemoryBlobStore()
        await #expect(throws: CustodyError(.tooLarge, "a 100000-byte blob is over the registry's 1000-byte limit")) {
            _ = try await Self.uploads(store, limit: 1000).receive(digest, from: 0, declaredLength: 100_000, body: Body(chunks: chunks()))
        }
        await #expect(throws: CustodyError(.tooLarge, "the blob is over the registry's 50000-byte limit")) {
            _ = try await Self.uploads(store, limit: 50_000).receive(digest, from: 0, declaredLength: nil, body: Body(chunks: chunks()))
        }
        let other = ContentDigest.of([1])
        await #expect(throws: CustodyError.self) {
            _ = try await Self.uploads(store).receive(other, from: 0, declaredLength: nil, body: Body(chunks: chunks()))
        }
        #expect(await store.stagedSize(of: UploadID(resuming: digest)) == nil)
        #expect(await store.stagedSize(of: UploadID(resuming: other)) == nil)
        #expect(try await store.size(of: digest) == nil)
    }
}
