import CustodyCore
import CustodyTestSupport
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
        } throws: { ($0 as? CustodyError)?.message == "junk: not a PEM file (no complete '-----BEGIN' … '-----END' block)" }
        #expect {
            try PublicVerifyingKey(pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", source: "cert.pem")
        } throws: { ($0 as? CustodyError)?.message == "cert.pem: expected a PEM public key, found 'CERTIFICATE'" }
    }

    /// PEM as OpenSSL reads it: the block is found among whatever text surrounds it; several of the kind asked for
    /// are refused, not guessed between.
    @Test func blocksAreFoundAmongSurroundingText() throws {
        let key = PrivateSigningKey(generating: .p384)
        let preamble = "Public Key Information:\n\tPublic Key Algorithm: EC/ECDSA\n\tCurve:\tSECP384R1\n\n"
        let described = try PublicVerifyingKey(pem: preamble + key.publicKey.pemRepresentation + "trailing words\n", source: "pub.pem")
        #expect(described == key.publicKey)
        #expect(described.hint == key.publicKey.hint, "the hint is of the key's own PEM, not of the file")
        let crlf = key.publicKey.pemRepresentation.replacingOccurrences(of: "\n", with: "\r\n")
        #expect(try PublicVerifyingKey(pem: "note\r\n" + crlf, source: "crlf.pem") == key.publicKey)
        // `openssl ecparam -genkey` writes the curve's parameters before the key.
        let parameters = "-----BEGIN EC PARAMETERS-----\nBgUrgQQAIg==\n-----END EC PARAMETERS-----\n"
        #expect(try PrivateSigningKey(pem: preamble + parameters + key.pemRepresentation, source: "k.pem").publicKey == key.publicKey)
        #expect {
            try PublicVerifyingKey(
                pem: key.publicKey.pemRepresentation + PrivateSigningKey(generating: .p256).publicKey.pemRepresentation, source: "two.pem")
        } throws: { ($0 as? CustodyError)?.message == "two.pem: holds 2 public keys; a key file must hold exactly one" }
        #expect {
            try PrivateSigningKey(pem: key.pemRepresentation + key.pemRepresentation, source: "two.key")
        } throws: { ($0 as? CustodyError)?.message == "two.key: holds 2 private keys; a key file must hold exactly one" }
        #expect {
            try PublicVerifyingKey(pem: "-----BEGIN PUBLIC KEY-----\nMHYw\n", source: "cut.pem")
        } throws: { ($0 as? CustodyError)?.message.contains("not a PEM file") == true }
    }

    /// model-transparency's own test keys, as upstream ships them (a certtool text dump before each block).
    @Test(.enabled(if: SharedCorpus.path("model-transparency") != nil))
    func modelTransparencyKeysLoadAsShipped() throws {
        let keys = try #require(SharedCorpus.path("model-transparency")) + "/keys/certificate"
        let publicKey = try PublicVerifyingKey(contentsOf: keys + "/signing-key-pub.pem")
        #expect(publicKey.curve == .p384)
        let privateKey = try PrivateSigningKey(contentsOf: keys + "/signing-key.pem")
        #expect(privateKey.publicKey == publicKey)
        #expect(throws: CustodyError.self) { try PublicVerifyingKey(contentsOf: keys + "/signing-key-cert.pem") }
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
