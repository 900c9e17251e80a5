import CustodyCore
import CustodyTestSupport
import Foundation
import Testing

@Suite struct ModelTreeTests {
    @Test func listsEveryRegularFileIncludingHiddenOnesInResourceOrder() throws {
        let model = try Scratch()
        for name in ["a-b", "a/b", "a.b", ".hidden", "deep/er/x", "empty", ".git/config", ".gitignore", "sub/.git/keep"] {
            try model.write(name, name)
        }
        let files = try ModelTree.files(at: model.path, allowSymlinks: false, ignorePaths: ModelTree.defaultIgnorePaths)
        // Only the top-level git paths are ignored, as in model-signing.
        #expect(files.map(\.name) == [".hidden", "a/b", "a-b", "a.b", "deep/er/x", "empty", "sub/.git/keep"])
        #expect(files.first { $0.name == "empty" }?.size == 5)
    }

    @Test func ignorePathsCoverDirectoriesAndAreNormalised() throws {
        let model = try Scratch()
        try model.write("keep", "k")
        try model.write("cache/a/b", "x")
        try model.write("model.sig", "s")
        let files = try ModelTree.files(at: model.path, allowSymlinks: false, ignorePaths: ["./cache/", "model.sig"])
        #expect(files.map(\.name) == ["keep"])
    }

    @Test func symlinksAreRefusedNamingThePath() throws {
        let model = try Scratch()
        let target = try model.write("weights", "w")
        try FileManager.default.createSymbolicLink(atPath: model.path + "/link", withDestinationPath: target)
        #expect {
            try ModelTree.files(at: model.path, allowSymlinks: false, ignorePaths: [])
        } throws: { error in
            let error = error as? CustodyError
            return error?.code == .invalidModel && error?.message.contains("/link") == true
                && error?.message.contains("symbolic link") == true
        }
        let allowed = try ModelTree.files(at: model.path, allowSymlinks: true, ignorePaths: [])
        #expect(allowed.map(\.name) == ["link", "weights"])
    }

    @Test func specialFilesAreRefused() throws {
        let model = try Scratch()
        #expect(mkfifo(model.path + "/pipe", 0o600) == 0)
        #expect(throws: CustodyError.self) { try ModelTree.files(at: model.path, allowSymlinks: true, ignorePaths: []) }
    }

    @Test func aSingleFileModelIsNamedDot() throws {
        let model = try Scratch()
        let path = try model.write("model.gguf", "GGUF")
        let files = try ModelTree.files(at: path, allowSymlinks: false, ignorePaths: [])
        #expect(files == [ModelFile(name: ".", path: path, size: 4)])
    }
}
