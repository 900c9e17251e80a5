import CustodyCore
import CustodyTestSupport
import Foundation
import Testing

@Suite struct ModelSigningTests {
    let key = PrivateSigningKey(generating: .p256)

    private func makeModel() throws -> Scratch {
        let model = try Scratch()
        try model.write("config.json", "{}")
        try model.write("weights/a.safetensors", pseudoRandomBytes(3000, seed: 1))
        try model.write("weights/b.safetensors", pseudoRandomBytes(10, seed: 2))
        try model.write("empty", [])
        return model
    }

    private func sign(_ model: Scratch, method: SerializationMethod = .files) throws -> String {
        let signing = ModelSigning()
        let signature = model.path + "/model.sig"
        let manifest = try signing.manifest(of: model.path, method: method, signaturePath: signature)
        try PosixFile.writeAtomically(try signing.sign(manifest, with: key).encoded(), to: signature)
        return signature
    }

    @Test(arguments: [SerializationMethod.files, .shards(size: 1024)])
    func signsAndVerifies(method: SerializationMethod) throws {
        let model = try makeModel()
        let signature = try sign(model, method: method)
        let manifest = try ModelSigning().verify(model: model.path, signaturePath: signature, key: key.publicKey)
        #expect(manifest.serialization.ignorePaths.contains("model.sig"))
        let expectedCount = method == .files ? 4 : 1 + 3 + 1
        #expect(manifest.resources.count == expectedCount)
    }

    @Test func shardsNeverChangeTheFilesOrder() throws {
        let model = try makeModel()
        let manifest = try ModelSigning().manifest(of: model.path, method: .shards(size: 1000))
        #expect(
            manifest.resources.map(\.name) == [
                "config.json:0:2", "weights/a.safetensors:0:1000", "weights/a.safetensors:1000:2000",
                "weights/a.safetensors:2000:3000", "weights/b.safetensors:0:10",
            ])
    }

    @Test func reportsEveryChangedMissingAndUnexpectedFile() throws {
        let model = try makeModel()
        let signature = try sign(model)
        try model.write("config.json", "{ }")
        try FileManager.default.removeItem(atPath: model.path + "/empty")
        try model.write("weights/c.bin", "new")
        #expect {
            try ModelSigning().verify(model: model.path, signaturePath: signature, key: key.publicKey)
        } throws: { error in
            let error = error as? CustodyError
            return error?.code == .verificationFailed
                && error?.details == ["changed: config.json", "missing: empty", "unexpected: weights/c.bin"]
        }
        try FileManager.default.removeItem(atPath: model.path + "/weights/c.bin")
        try model.write("config.json", "{}")
        try model.write("empty", [])
        _ = try ModelSigning().verify(model: model.path, signaturePath: signature, key: key.publicKey)
    }

    @Test func ignoreUnsignedToleratesOnlyExtraFiles() throws {
        let model = try makeModel()
        let signature = try sign(model)
        try model.write("README.md", "added later")
        #expect(throws: CustodyError.self) {
            try ModelSigning().verify(model: model.path, signaturePath: signature, key: key.publicKey)
        }
        _ = try ModelSigning().verify(model: model.path, signaturePath: signature, key: key.publicKey, ignoreUnsigned: true)
        try model.write("weights/b.safetensors", "tampered")
        #expect(throws: CustodyError.self) {
            try ModelSigning().verify(model: model.path, signaturePath: signature, key: key.publicKey, ignoreUnsigned: true)
        }
    }

    @Test func aShardSignatureCatchesOneFlippedByte() throws {
        let model = try makeModel()
        let signature = try sign(model, method: .shards(size: 1000))
        var bytes = pseudoRandomBytes(3000, seed: 1)
        bytes[2500] ^= 0x80
        try model.write("weights/a.safetensors", bytes)
        #expect {
            try ModelSigning().verify(model: model.path, signaturePath: signature, key: key.publicKey)
        } throws: { ($0 as? CustodyError)?.details == ["changed: weights/a.safetensors"] }
    }

    @Test func singleFileModelsVerifyUnderAnyName() throws {
        let directory = try Scratch()
        let path = try directory.write("model.gguf", pseudoRandomBytes(5000, seed: 3))
        let signing = ModelSigning()
        let manifest = try signing.manifest(of: path)
        #expect(manifest.modelName == "model.gguf")
        #expect(manifest.resources.map(\.name) == ["."])
        #expect(manifest.rootDigest == ContentDigest.of(manifest.resources[0].digest.bytes))
        let signature = directory.path + "/model.gguf.sig"
        try PosixFile.writeAtomically(try signing.sign(manifest, with: key).encoded(), to: signature)
        let renamed = directory.path + "/renamed.gguf"
        try FileManager.default.moveItem(atPath: path, toPath: renamed)
        _ = try signing.verify(model: renamed, signaturePath: signature, key: key.publicKey)
    }

    @Test func statementRoundTripsThroughItsOwnDecoder() throws {
        let model = try makeModel()
        for method in [SerializationMethod.files, .shards(size: 7)] {
            let manifest = try ModelSigning().manifest(of: model.path, method: method)
            #expect(try OMSStatement.decode(OMSStatement.encode(manifest), source: "s") == manifest)
        }
    }
}
