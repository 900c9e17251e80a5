import CustodyCore
import Foundation
import Testing

@Suite struct SigningKeyTests {
    @Test(arguments: KeyCurve.allCases)
    func keysRoundTripThroughPEMAndSign(curve: KeyCurve) throws {
        let key = PrivateSigningKey(generating: curve)
        #expect(key.pemRepresentation.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        let reloaded = try PrivateSigningKey(pem: key.pemRepresentation, source: "k")
        #expect(reloaded.curve == curve)
        let publicKey = try PublicVerifyingKey(pem: key.publicKey.pemRepresentation, source: "p")
        #expect(publicKey == key.publicKey)
        let message = Array("payload".utf8)
        let signature = try reloaded.signature(for: message)
        #expect(publicKey.isValidSignature(signature, for: message))
        #expect(!publicKey.isValidSignature(signature, for: Array("other".utf8)))
        #expect(!PrivateSigningKey(generating: curve).publicKey.isValidSignature(signature, for: message))
    }

    /// model-signing's hint for this key, read from a bundle it wrote.
    @Test func hintMatchesModelSigning() throws {
        let pem = String(decoding: try vector("model-signing-p256.pub"), as: UTF8.self)
        let key = try PublicVerifyingKey(pem: pem, source: "model-signing-p256.pub")
        #expect(key.hint == "61b6fbecc3bb16bcfb84c4a6752bf0f6aaedfd6e05ecd9ead1991c2a399a8acd")
        #expect(key.pemRepresentation == pem)
    }

    @Test func wrongKindsOfKeyAreNamed() throws {
        let key = PrivateSigningKey(generating: .p256)
        #expect {
            try PrivateSigningKey(pem: key.publicKey.pemRepresentation, source: "pub.pem")
        } throws: { ($0 as? CustodyError)?.message == "pub.pem: this is a public key; signing needs the private key (PKCS#8 PEM)" }
        #expect {
            try PublicVerifyingKey(pem: key.pemRepresentation, source: "priv.pem")
        } throws: { ($0 as? CustodyError)?.message.contains("this is a private key") == true }
        #expect {
            try PrivateSigningKey(pem: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", source: "enc.pem")
        } throws: { ($0 as? CustodyError)?.message.contains("encrypted") == true }
        #expect {
            try PrivateSigningKey(pem: "hello", source: "junk")
        } throws: { ($0 as? CustodyError)?.message == "junk: not a PEM file (no '-----BEGIN' line)" }
    }

    @Test func missingKeyFileIsAnIOError() {
        #expect {
            try PrivateSigningKey(contentsOf: "/nonexistent/custody.key")
        } throws: { error in
            let error = error as? CustodyError
            return error?.code == .io && error?.message == "/nonexistent/custody.key: cannot open: No such file or directory"
        }
    }
}
