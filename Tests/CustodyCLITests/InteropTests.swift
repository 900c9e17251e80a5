import CustodyTestSupport
import Foundation
import Testing

/// Custody and the reference implementation (model_signing 1.1.1) accept each other's signatures, and both refuse
/// the same tampering.
@Suite struct InteropTests {
    enum Tamper: String, CaseIterable {
        case flipOneByte, addFile, removeFile
    }

    /// Applies `tamper` to a model (directory or single file).
    static func apply(_ tamper: Tamper, to model: String) throws {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory)
        try #require(exists)
        let target = isDirectory.boolValue ? model + "/nested/one/two/weights.bin" : model
        switch tamper {
        case .flipOneByte:
            var bytes = try Data(contentsOf: URL(fileURLWithPath: target))
            bytes[bytes.count / 2] ^= 0x01
            try bytes.write(to: URL(fileURLWithPath: target))
        case .addFile:
            try Data("extra".utf8).write(to: URL(fileURLWithPath: model + "/a/added.bin"))
        case .removeFile:
            try FileManager.default.removeItem(atPath: model + "/a.b")
        }
    }

    @Test(arguments: ["p256", "p384"], [false, true])
    func modelSigningVerifiesWhatCustodySigns(curve: String, singleFile: Bool) throws {
        let scratch = try Scratch()
        let model = singleFile ? try scratch.write("model.gguf", String(repeating: "GGUF", count: 4096)) : try makeInteropModel(in: scratch)
        let keys = scratch.path + "/publisher"
        try #require(try Tools.custody("keys", "generate", "--out", keys, "--curve", curve).status == 0)
        let signature = scratch.path + "/model.sig"

        let signed = try Tools.custody("sign", model, "--key", keys + ".key", "--signature", signature)
        #expect(signed.status == 0, "\(signed.stderr)")
        let verified = try Tools.modelSigning("verify", "key", model, "--signature", signature, "--public_key", keys + ".pub")
        #expect(verified.status == 0, "model_signing refused: \(verified.stdout) \(verified.stderr)")
        #expect(verified.stdout.contains("Verification succeeded"))
        #expect(try Tools.custody("verify", model, "--key", keys + ".pub", "--signature", signature).status == 0)

        for tamper in singleFile ? [Tamper.flipOneByte] : Tamper.allCases {
            let copy = try scratch.copy(model, to: "tampered-\(tamper)" + (singleFile ? ".gguf" : ""))
            try Self.apply(tamper, to: copy)
            let theirs = try Tools.modelSigning("verify", "key", copy, "--signature", signature, "--public_key", keys + ".pub")
            #expect(theirs.status != 0, "model_signing accepted a model after \(tamper)")
            let ours = try Tools.custody("verify", copy, "--key", keys + ".pub", "--signature", signature)
            #expect(ours.status == 1, "custody: \(tamper): \(ours.stderr)")
        }
    }

    @Test(arguments: ["p256", "p384"], [false, true])
    func custodyVerifiesWhatModelSigningSigns(curve: String, singleFile: Bool) throws {
        let scratch = try Scratch()
        let model = singleFile ? try scratch.write("model.gguf", String(repeating: "GGUF", count: 4096)) : try makeInteropModel(in: scratch)
        let (privateKey, publicKey) = try makePythonKeyPair(curve: curve, in: scratch)
        let signature = scratch.path + "/model.sig"

        let signed = try Tools.modelSigning("sign", "key", model, "--private_key", privateKey, "--signature", signature)
        try #require(signed.status == 0, "model_signing sign failed: \(signed.stderr)")
        let verified = try Tools.custody("verify", model, "--key", publicKey, "--signature", signature)
        #expect(verified.status == 0, "custody refused: \(verified.stderr)")

        // Our bundle digest is the root digest model_signing put in its own statement.
        let digest = try Tools.custody("digest", model)
        #expect(digest.stdout == "sha256:\(try subjectDigest(ofSignature: signature))\n")

        for tamper in singleFile ? [Tamper.flipOneByte] : Tamper.allCases {
            let copy = try scratch.copy(model, to: "tampered-\(tamper)" + (singleFile ? ".gguf" : ""))
            try Self.apply(tamper, to: copy)
            let ours = try Tools.custody("verify", copy, "--key", publicKey, "--signature", signature)
            #expect(ours.status == 1, "custody accepted a model after \(tamper)")
            let theirs = try Tools.modelSigning("verify", "key", copy, "--signature", signature, "--public_key", publicKey)
            #expect(theirs.status != 0, "model_signing accepted a model after \(tamper)")
        }
    }

    /// The default `model.sig` inside the model directory is left out of the model by both tools.
    @Test func aSignatureInsideTheModelIsNotPartOfIt() throws {
        let scratch = try Scratch()
        let model = try makeInteropModel(in: scratch)
        let keys = scratch.path + "/publisher"
        try #require(try Tools.custody("keys", "generate", "--out", keys).status == 0)
        #expect(try Tools.custody("sign", model, "--key", keys + ".key").status == 0)
        #expect(FileManager.default.fileExists(atPath: model + "/model.sig"))
        let theirs = try Tools.modelSigning("verify", "key", model, "--signature", model + "/model.sig", "--public_key", keys + ".pub")
        #expect(theirs.status == 0, "\(theirs.stdout) \(theirs.stderr)")
        #expect(try Tools.custody("verify", model, "--key", keys + ".pub").status == 0)
        let digest = try Tools.custody("digest", model).stdout
        #expect(digest == "sha256:\(try subjectDigest(ofSignature: model + "/model.sig"))\n")
    }

    @Test func custodyReportsWhichFilesDiffer() throws {
        let scratch = try Scratch()
        let model = try makeInteropModel(in: scratch)
        let keys = scratch.path + "/publisher"
        try #require(try Tools.custody("keys", "generate", "--out", keys).status == 0)
        #expect(try Tools.custody("sign", model, "--key", keys + ".key").status == 0)
        for tamper in Tamper.allCases { try Self.apply(tamper, to: model) }
        let result = try Tools.custody("verify", model, "--key", keys + ".pub")
        #expect(result.status == 1)
        #expect(result.stderr.contains("1 changed, 1 missing, 1 unexpected"))
        #expect(result.stderr.contains("changed: nested/one/two/weights.bin"))
        #expect(result.stderr.contains("missing: a.b"))
        #expect(result.stderr.contains("unexpected: a/added.bin"))
    }
}
