import CustodyCore
import CustodyStorage
import Foundation
import Testing

@testable import CustodyStore

/// The file-system blob store's upload objects: the digest checked at commit, resumes (in this process and after a
/// restart), one writer per upload, and nothing visible until a commit.
@Suite struct FileSystemBlobStoreTests {
    let root = NSTemporaryDirectory() + "custody-blobs-" + UUID().uuidString
    let content = (0..<(9 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
    var digest: ContentDigest { ContentDigest.of(content) }

    func store() throws -> FileSystemBlobStore { try FileSystemBlobStore(root: root) }

    func chunks(_ range: Range<Int>, size: Int = 256 << 10) -> [[UInt8]] {
        stride(from: range.lowerBound, to: range.upperBound, by: size).map { Array(content[$0..<min($0 + size, range.upperBound)]) }
    }

    @Test func anUploadIsPlacedUnderTheDigestItHashesTo() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let blobs = try store()
        let upload = try await blobs.upload(.random(), resumingAt: 0)
        for chunk in chunks(0..<content.count) { try await upload.append(chunk) }
        #expect(try await blobs.size(of: digest) == nil, "nothing is visible before the commit")
        let placed = try await upload.commit(expecting: digest)
        #expect(placed.digest == digest && placed.size == UInt64(content.count))
        #expect(try await blobs.size(of: digest) == UInt64(content.count))
        guard case .file(let path, let range) = try await blobs.body(of: digest, range: 5...9) else {
            Issue.record("a local store answers with a file")
            return
        }
        #expect(range == 5...9)
        #expect(FileManager.default.contents(atPath: path) == Data(content))
        let read = try await blobs.withLocalFiles([digest]) { paths throws(CustodyError) in try PosixFile.contents(of: paths[0], limit: 16 << 20) }
        #expect(read == content)
    }

    @Test func aWrongDigestKeepsNothing() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let blobs = try store()
        let id = UploadID.random()
        let upload = try await blobs.upload(id, resumingAt: 0)
        try await upload.append(Array("not the content".utf8))
        await #expect(throws: CustodyError.self) { try await upload.commit(expecting: digest) }
        #expect(await blobs.stagedSize(of: id) == nil)
        #expect(try await blobs.size(of: ContentDigest.of(Array("not the content".utf8))) == nil)
    }

    @Test func aSuspendedUploadResumesHereAndAfterARestart() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let id = UploadID(resuming: digest)
        let first = try await store().upload(id, resumingAt: 0)
        for chunk in chunks(0..<(3 << 20)) { try await first.append(chunk) }
        await first.suspend()
        #expect(await (try store()).stagedSize(of: id) == 3 << 20)

        // A resume from anywhere but where it stands is refused, naming the staged count.
        let restarted = try store()
        await #expect(throws: CustodyError(.outOfOrder, "the registry holds 3145728 bytes of this upload, not 1; resume from 3145728")) {
            _ = try await restarted.upload(id, resumingAt: 1)
        }
        // A fresh store has no saved hash state: it rehashes the staged prefix.
        let second = try await restarted.upload(id, resumingAt: 3 << 20)
        #expect(await second.received == 3 << 20)
        for chunk in chunks((3 << 20)..<(6 << 20)) { try await second.append(chunk) }
        await second.suspend()
        // The same store resumes from its saved state.
        let third = try await restarted.upload(id, resumingAt: 6 << 20)
        for chunk in chunks((6 << 20)..<content.count) { try await third.append(chunk) }
        #expect(try await third.commit(expecting: digest).size == UInt64(content.count))
        #expect(await restarted.stagedSize(of: id) == nil)
    }

    @Test func oneWriterPerUpload() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let blobs = try store()
        let id = UploadID(resuming: digest)
        let held = try await blobs.upload(id, resumingAt: 0)
        await #expect(throws: CustodyError.self) { _ = try await blobs.upload(id, resumingAt: 0) }
        await held.abort()
        #expect(await blobs.stagedSize(of: id) == nil, "an aborted upload keeps nothing")
        let again = try await blobs.upload(id, resumingAt: 0)
        await again.abort()
    }

    @Test func uploadIDsAreNamesNotPaths() throws {
        for bad in ["", "../x", ".hidden", "a/b", String(repeating: "a", count: 129), "a b"] {
            #expect(throws: CustodyError.self) { try UploadID(bad) }
        }
        #expect(try UploadID("sha256-" + String(repeating: "0", count: 64)).rawValue.count == 71)
    }
}
