import CustodyTestSupport
import Foundation
import Testing

/// Every kind of bad input ends in one clear line on stderr and the documented exit status — never a crash.
@Suite struct BadInputTests {
    struct Fixture {
        let scratch: Scratch
        let model: String
        let keys: String
        let signature: String

        init() throws {
            scratch = try Scratch()
            model = try makeInteropModel(in: scratch)
            keys = scratch.path + "/publisher"
            signature = scratch.path + "/model.sig"
            try #require(try Tools.custody("keys", "generate", "--out", keys).status == 0)
            try #require(try Tools.custody("sign", model, "--key", keys + ".key", "--signature", signature).status == 0)
        }
    }

    /// One line, prefixed like every Custody error, naming `needle`.
    func expectOneLineError(_ result: ProcessResult, status: Int32, naming needle: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == status, "exit \(result.status): \(result.stderr)", sourceLocation: sourceLocation)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "expected one line, got: \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.hasPrefix("custody: error: "), sourceLocation: sourceLocation)
        #expect(result.stderr.contains(needle), "\(result.stderr) does not name \(needle)", sourceLocation: sourceLocation)
    }

    @Test func missingKeyFile() throws {
        let f = try Fixture()
        let missing = f.scratch.path + "/nope.key"
        expectOneLineError(try Tools.custody("sign", f.model, "--key", missing), status: 2, naming: "nope.key: cannot open")
        expectOneLineError(try Tools.custody("verify", f.model, "--key", missing, "--signature", f.signature), status: 2, naming: "nope.key")
    }

    @Test func publicKeyGivenAsPrivateKey() throws {
        let f = try Fixture()
        expectOneLineError(try Tools.custody("sign", f.model, "--key", f.keys + ".pub"), status: 2, naming: "this is a public key")
    }

    @Test func privateKeyGivenAsPublicKey() throws {
        let f = try Fixture()
        expectOneLineError(
            try Tools.custody("verify", f.model, "--key", f.keys + ".key", "--signature", f.signature), status: 2,
            naming: "this is a private key")
    }

    @Test func corruptedAndTruncatedSignatures() throws {
        let f = try Fixture()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: f.signature))
        let truncated = f.scratch.path + "/truncated.sig"
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        expectOneLineError(
            try Tools.custody("verify", f.model, "--key", f.keys + ".pub", "--signature", truncated), status: 2,
            naming: "truncated.sig: not a Sigstore bundle")
        let garbage = try f.scratch.write("garbage.sig", "\u{1}\u{2}not json")
        expectOneLineError(
            try Tools.custody("verify", f.model, "--key", f.keys + ".pub", "--signature", garbage), status: 2, naming: "garbage.sig")
        // A flipped signature byte keeps the JSON valid but breaks the ECDSA check: a negative verdict.
        var text = String(decoding: bytes, as: UTF8.self)
        let sigRange = try #require(text.range(of: #""sig":""#))
        let index = text.index(sigRange.upperBound, offsetBy: 10)
        text.replaceSubrange(index...index, with: text[index] == "A" ? "B" : "A")
        let flipped = try f.scratch.write("flipped.sig", text)
        expectOneLineError(
            try Tools.custody("verify", f.model, "--key", f.keys + ".pub", "--signature", flipped), status: 1,
            naming: "does not verify")
    }

    @Test func wrongMediaType() throws {
        let f = try Fixture()
        let text = try String(contentsOfFile: f.signature, encoding: .utf8)
            .replacingOccurrences(of: "application/vnd.dev.sigstore.bundle.v0.3+json", with: "application/json")
        let wrong = try f.scratch.write("wrong-type.sig", text)
        expectOneLineError(
            try Tools.custody("verify", f.model, "--key", f.keys + ".pub", "--signature", wrong), status: 2,
            naming: "media type 'application/json'")
    }

    @Test func signatureByAnotherKey() throws {
        let f = try Fixture()
        let other = f.scratch.path + "/other"
        try #require(try Tools.custody("keys", "generate", "--out", other).status == 0)
        expectOneLineError(
            try Tools.custody("verify", f.model, "--key", other + ".pub", "--signature", f.signature), status: 1,
            naming: "signed by a different key")
    }

    @Test func symlinkInsideTheModel() throws {
        let f = try Fixture()
        try FileManager.default.createSymbolicLink(atPath: f.model + "/link.bin", withDestinationPath: f.model + "/a.b")
        expectOneLineError(try Tools.custody("sign", f.model, "--key", f.keys + ".key"), status: 2, naming: "link.bin: is a symbolic link")
        expectOneLineError(try Tools.custody("digest", f.model), status: 2, naming: "link.bin")
        expectOneLineError(
            try Tools.custody("verify", f.model, "--key", f.keys + ".pub", "--signature", f.signature), status: 2, naming: "link.bin")
    }

    @Test func keysAreNeverOverwritten() throws {
        let f = try Fixture()
        let before = try String(contentsOfFile: f.keys + ".key", encoding: .utf8)
        expectOneLineError(try Tools.custody("keys", "generate", "--out", f.keys), status: 2, naming: "already exists")
        #expect(try String(contentsOfFile: f.keys + ".key", encoding: .utf8) == before)
        let mode = try FileManager.default.attributesOfItem(atPath: f.keys + ".key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func usageErrorsExitWithTwo() throws {
        let result = try Tools.custody("sign")
        #expect(result.status == 2)
        #expect(result.stderr.contains("Missing expected argument"))
        #expect(try Tools.custody("digest", "/nonexistent/model").status == 2)
        #expect(try Tools.custody("sign", ".", "--key", "k", "--method", "blocks").status == 2)
    }
}
