import CustodyCore
import CustodyTestSupport
import Foundation
import Testing

@Suite struct FileHasherTests {
    /// Sizes around the mapping threshold and the window size, hashed whole and in unaligned ranges, must give
    /// the same digests as a one-shot SHA-256 of the same bytes, whichever read path the hasher takes.
    @Test(arguments: [1, 2, 3])
    func digestsEqualOneShotSHA256(workers: Int) throws {
        let directory = try Scratch()
        var hasher = FileHasher(workers: workers)
        hasher.mappingThreshold = 4096
        hasher.windowSize = 3 * 4096 + 17
        let sizes = [0, 1, 4095, 4096, 4097, 70_000, 200_003]
        var jobs: [HashJob] = []
        var expected: [ContentDigest] = []
        for (index, size) in sizes.enumerated() {
            let bytes = pseudoRandomBytes(size, seed: UInt64(index))
            let path = try directory.write("f\(index)", bytes)
            jobs.append(HashJob(path: path, range: 0..<UInt64(size)))
            expected.append(ContentDigest.of(bytes))
            if size > 10_000 {
                jobs.append(HashJob(path: path, range: 4099..<UInt64(size - 5)))
                expected.append(ContentDigest.of(Array(bytes[4099..<(size - 5)])))
            }
        }
        #expect(try hasher.digests(of: jobs) == expected)
    }

    @Test func missingFileIsAnIOErrorNamingThePath() throws {
        let path = "/nonexistent/custody/weights.bin"
        #expect {
            try FileHasher().digests(of: [HashJob(path: path, range: 0..<10)])
        } throws: { error in
            let error = error as? CustodyError
            return error?.code == .io && error?.message.contains(path) == true
        }
    }

    @Test func fileShorterThanItsRangeIsRefused() throws {
        let directory = try Scratch()
        let path = try directory.write("short", pseudoRandomBytes(5000, seed: 9))
        for threshold: UInt64 in [1, 1 << 20] {
            var hasher = FileHasher()
            hasher.mappingThreshold = threshold
            #expect(throws: CustodyError.self) { try hasher.digests(of: [HashJob(path: path, range: 0..<6000)]) }
        }
    }
}
