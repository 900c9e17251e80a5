import CustodyCore
import Foundation
import Testing

@testable import CustodyArchive

@Suite struct BundleArchiveTests {
    @Test(arguments: [("a/b", "a/b"), ("./a//b/", "a/b"), ("./", nil)] as [(String, String?)])
    func entryNamesAreNormalised(raw: String, expected: String?) throws {
        #expect(try BundleArchive.relativeName(raw, archive: "t") == expected)
    }

    @Test(arguments: ["/etc/passwd", "../x", "a/../../x", "a/.."])
    func escapingNamesAreRefused(raw: String) {
        #expect(throws: CustodyError.self) { try BundleArchive.relativeName(raw, archive: "t") }
    }

    @Test func linksResolveInsideTheBundleOnly() {
        #expect(BundleArchive.resolve("weights.bin", from: "dir/link") == "dir/weights.bin")
        #expect(BundleArchive.resolve("../weights.bin", from: "dir/link") == "weights.bin")
        #expect(BundleArchive.resolve("../../etc/passwd", from: "dir/link") == nil)
        #expect(BundleArchive.resolve("..", from: "link") == nil)
    }

    /// A real tar made by the system's tar, with an in-bundle symlink that becomes a copy.
    @Test func extractsATarWithAnInBundleLink() throws {
        let scratch = NSTemporaryDirectory() + "custody-archive-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try FileManager.default.createDirectory(atPath: scratch + "/src/sub", withIntermediateDirectories: true)
        try Data("weights".utf8).write(to: URL(fileURLWithPath: scratch + "/src/sub/w.bin"))
        try Data().write(to: URL(fileURLWithPath: scratch + "/src/empty"))
        try FileManager.default.createSymbolicLink(atPath: scratch + "/src/alias.bin", withDestinationPath: "sub/w.bin")
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tar.arguments = ["tar", "-czf", scratch + "/m.tar.gz", "-C", scratch + "/src", "."]
        try tar.run()
        tar.waitUntilExit()
        try #require(tar.terminationStatus == 0)

        try BundleArchive().extract(scratch + "/m.tar.gz", into: scratch + "/out")
        let files = try ModelTree.files(at: scratch + "/out", allowSymlinks: false, ignorePaths: [])
        #expect(files.map(\.name) == ["alias.bin", "empty", "sub/w.bin"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: scratch + "/out/alias.bin")) == Data("weights".utf8))
    }

    @Test func aNonArchiveIsAClearError() throws {
        let path = NSTemporaryDirectory() + "custody-not-an-archive-" + UUID().uuidString + ".tar"
        try Data("just text".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect {
            try BundleArchive().extract(path, into: path + ".out")
        } throws: { ($0 as? CustodyError)?.code == .invalidArgument }
        #expect(!FileManager.default.fileExists(atPath: path + ".out"), "nothing left behind")
    }
}
