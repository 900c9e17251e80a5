import CustodyCore
import Foundation
import Testing

/// Bundles written by the reference implementation, checked byte for byte with Custody's verifier.
@Suite struct OMSVectorTests {
    let key: PublicVerifyingKey

    init() throws {
        key = try PublicVerifyingKey(pem: String(decoding: try vector("model-signing-p256.pub"), as: UTF8.self), source: "pub")
    }

    @Test func verifiesAFilesSignatureFromModelSigning() throws {
        let bundle = try SigstoreBundle(decoding: try vector("model-signing-1.1.1-p256-files.sig"), source: "files.sig")
        let manifest = try ModelSigning().signedManifest(of: bundle, key: key, source: "files.sig")
        #expect(manifest.modelName == "m1")
        #expect(manifest.serialization.method == .files)
        #expect(manifest.serialization.ignorePaths.sorted() == ModelTree.defaultIgnorePaths.sorted())
        #expect(manifest.resources.map(\.name) == [".hid/f", "a/b/x.bin", "a-b", "a.b", "empty"])
        #expect(manifest.resources[1].digest == ContentDigest.of(Array("hi\n".utf8)))
        #expect(manifest.rootDigest.hex == "b6e9069a5da483e8c3762bfec8793a02a77882751699b0ab9c27f51feb345e8b")
    }

    @Test func verifiesAShardsSignatureWithAFloatShardSize() throws {
        let bundle = try SigstoreBundle(decoding: try vector("model-signing-1.1.1-p256-shards.sig"), source: "shards.sig")
        let manifest = try ModelSigning().signedManifest(of: bundle, key: key, source: "shards.sig")
        #expect(manifest.serialization.method == .shards(size: 1000))
        #expect(manifest.resources.map(\.name) == ["w.bin:0:1000", "w.bin:1000:2000", "w.bin:2000:2500", "y:0:2"])
        #expect(manifest.resources.map(\.filePath) == ["w.bin", "w.bin", "w.bin", "y"])
        #expect(manifest.resources[3].digest == ContentDigest.of(Array("x\n".utf8)))
    }

    /// Bundles from model-signing < 1.1 carry the PEM as `rawBytes` instead of a hint; `keyid` may be null or absent.
    @Test(arguments: [#""keyid":null"#, ""])
    func acceptsOlderVerificationMaterialAndKeyIDs(keyid: String) throws {
        var text = String(decoding: try vector("model-signing-1.1.1-p256-files.sig"), as: UTF8.self)
        let raw = Data(key.pemRepresentation.utf8).base64EncodedString()
        text = text.replacingOccurrences(
            of: #""hint":"61b6fbecc3bb16bcfb84c4a6752bf0f6aaedfd6e05ecd9ead1991c2a399a8acd""#,
            with: #""rawBytes":"\#(raw)","keyDetails":"PKIX_ECDSA_P256_SHA_256""#)
        text = text.replacingOccurrences(of: #","keyid":"""#, with: keyid.isEmpty ? "" : "," + keyid)
        #expect(!text.contains("hint"))
        let bundle = try SigstoreBundle(decoding: Array(text.utf8), source: "old.sig")
        #expect(bundle.keyHint == nil && bundle.rawPublicKey != nil)
        _ = try ModelSigning().signedManifest(of: bundle, key: key, source: "old.sig")
    }

    @Test func refusesAnotherMediaType() throws {
        let text = String(decoding: try vector("model-signing-1.1.1-p256-files.sig"), as: UTF8.self)
            .replacingOccurrences(of: "bundle.v0.3+json", with: "bundle.v0.2+json")
        #expect {
            try SigstoreBundle(decoding: Array(text.utf8), source: "m.sig")
        } throws: { error in
            let error = error as? CustodyError
            return error?.code == .malformedSignature && error?.message.contains("media type") == true
        }
    }

    @Test func refusesTruncatedBundles() throws {
        let bytes = try vector("model-signing-1.1.1-p256-files.sig")
        for length in [0, 10, bytes.count / 2, bytes.count - 1] {
            #expect(throws: CustodyError.self) { try SigstoreBundle(decoding: Array(bytes.prefix(length)), source: "t") }
        }
    }

    @Test func refusesAKeyThatDidNotSign() throws {
        let bundle = try SigstoreBundle(decoding: try vector("model-signing-1.1.1-p256-files.sig"), source: "files.sig")
        let other = PrivateSigningKey(generating: .p256).publicKey
        #expect {
            try ModelSigning().signedManifest(of: bundle, key: other, source: "files.sig")
        } throws: { error in
            let error = error as? CustodyError
            return error?.code == .verificationFailed && error?.message.contains("different key") == true
        }
        var hintless = bundle
        hintless.keyHint = nil
        #expect {
            try ModelSigning().signedManifest(of: hintless, key: other, source: "files.sig")
        } throws: { ($0 as? CustodyError)?.code == .verificationFailed }
    }

    @Test func refusesAModifiedPayload() throws {
        var bundle = try SigstoreBundle(decoding: try vector("model-signing-1.1.1-p256-files.sig"), source: "files.sig")
        bundle.payload[bundle.payload.count / 2] ^= 1
        #expect {
            try ModelSigning().signedManifest(of: bundle, key: key, source: "files.sig")
        } throws: { ($0 as? CustodyError)?.code == .verificationFailed }
    }

    @Test func refusesAStatementWhoseSubjectDigestIsNotItsResources() throws {
        let signer = PrivateSigningKey(generating: .p256)
        let resource = Resource(name: "w", algorithm: "sha256", digest: ContentDigest.of([1]))
        let manifest = ModelManifest(modelName: "m", serialization: SerializationParameters(), resources: [resource])
        var payload = String(decoding: OMSStatement.encode(manifest), as: UTF8.self)
        payload = payload.replacingOccurrences(of: manifest.rootDigest.hex, with: ContentDigest.of([2]).hex)
        let bytes = Array(payload.utf8)
        let bundle = SigstoreBundle(
            keyHint: signer.publicKey.hint, payloadType: OMSStatement.payloadType, payload: bytes,
            signature: try signer.signature(for: DSSE.pae(payloadType: OMSStatement.payloadType, payload: bytes)))
        #expect {
            try ModelSigning().signedManifest(of: bundle, key: signer.publicKey, source: "s")
        } throws: { ($0 as? CustodyError)?.message.contains("is not the digest of the listed resources") == true }
    }
}
