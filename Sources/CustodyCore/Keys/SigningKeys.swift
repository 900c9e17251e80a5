import Crypto
import Foundation

/// The elliptic curves of OMS key signatures; each implies its hash (P-256/SHA-256, P-384/SHA-384, P-521/SHA-512).
public enum KeyCurve: String, CaseIterable, Sendable {
    case p256, p384, p521
}

/// An ECDSA private key in the form `model_signing sign key` accepts: PKCS#8 (or SEC1) PEM.
public struct PrivateSigningKey: Sendable {
    enum Storage: Sendable {
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
        case p521(P521.Signing.PrivateKey)
    }

    let storage: Storage

    /// A fresh random key.
    public init(generating curve: KeyCurve) {
        switch curve {
        case .p256: storage = .p256(P256.Signing.PrivateKey())
        case .p384: storage = .p384(P384.Signing.PrivateKey())
        case .p521: storage = .p521(P521.Signing.PrivateKey())
        }
    }

    /// Parses a PEM private key. `source` names the key in error messages (usually its path).
    public init(pem: String, source: String) throws(CustodyError) {
        let label = try PEMLabel(of: pem, source: source)
        switch label {
        case .privateKey, .ecPrivateKey: break
        case .publicKey:
            throw CustodyError(.invalidKey, "\(source): this is a public key; signing needs the private key (PKCS#8 PEM)")
        case .encryptedPrivateKey:
            throw CustodyError(
                .invalidKey, "\(source): encrypted private keys are not supported; decrypt it first (openssl pkcs8)")
        case .other(let name):
            throw CustodyError(.invalidKey, "\(source): expected a PEM private key, found '\(name)'")
        }
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) {
            storage = .p256(key)
        } else if let key = try? P384.Signing.PrivateKey(pemRepresentation: pem) {
            storage = .p384(key)
        } else if let key = try? P521.Signing.PrivateKey(pemRepresentation: pem) {
            storage = .p521(key)
        } else {
            throw CustodyError(.invalidKey, "\(source): not an ECDSA P-256, P-384 or P-521 private key")
        }
    }

    /// Reads and parses a PEM private key file.
    public init(contentsOf path: String) throws(CustodyError) {
        try self.init(pem: try readKeyFile(path), source: path)
    }

    public var curve: KeyCurve {
        switch storage {
        case .p256: .p256
        case .p384: .p384
        case .p521: .p521
        }
    }

    /// PKCS#8 PEM, newline-terminated.
    public var pemRepresentation: String {
        switch storage {
        case .p256(let key): key.pemRepresentation + "\n"
        case .p384(let key): key.pemRepresentation + "\n"
        case .p521(let key): key.pemRepresentation + "\n"
        }
    }

    public var publicKey: PublicVerifyingKey {
        switch storage {
        case .p256(let key): PublicVerifyingKey(storage: .p256(key.publicKey))
        case .p384(let key): PublicVerifyingKey(storage: .p384(key.publicKey))
        case .p521(let key): PublicVerifyingKey(storage: .p521(key.publicKey))
        }
    }

    /// A DER-encoded ECDSA signature over `message`, hashed with the curve's hash.
    public func signature(for message: [UInt8]) throws(CustodyError) -> [UInt8] {
        do {
            switch storage {
            case .p256(let key): return Array(try key.signature(for: message).derRepresentation)
            case .p384(let key): return Array(try key.signature(for: message).derRepresentation)
            case .p521(let key): return Array(try key.signature(for: message).derRepresentation)
            }
        } catch {
            throw CustodyError(.invalidKey, "signing failed: \(error)")
        }
    }
}

/// An ECDSA public key as SubjectPublicKeyInfo PEM.
public struct PublicVerifyingKey: Sendable {
    enum Storage: Sendable {
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case p521(P521.Signing.PublicKey)
    }

    let storage: Storage

    /// Parses a PEM public key. `source` names the key in error messages (usually its path).
    public init(pem: String, source: String) throws(CustodyError) {
        switch try PEMLabel(of: pem, source: source) {
        case .publicKey: break
        case .privateKey, .ecPrivateKey, .encryptedPrivateKey:
            throw CustodyError(.invalidKey, "\(source): this is a private key; verification needs the public key (.pub)")
        case .other(let name):
            throw CustodyError(.invalidKey, "\(source): expected a PEM public key, found '\(name)'")
        }
        if let key = try? P256.Signing.PublicKey(pemRepresentation: pem) {
            storage = .p256(key)
        } else if let key = try? P384.Signing.PublicKey(pemRepresentation: pem) {
            storage = .p384(key)
        } else if let key = try? P521.Signing.PublicKey(pemRepresentation: pem) {
            storage = .p521(key)
        } else {
            throw CustodyError(.invalidKey, "\(source): not an ECDSA P-256, P-384 or P-521 public key")
        }
    }

    /// Reads and parses a PEM public key file.
    public init(contentsOf path: String) throws(CustodyError) {
        try self.init(pem: try readKeyFile(path), source: path)
    }

    init(storage: Storage) { self.storage = storage }

    public var curve: KeyCurve {
        switch storage {
        case .p256: .p256
        case .p384: .p384
        case .p521: .p521
        }
    }

    /// SubjectPublicKeyInfo PEM with 64-column lines and a trailing newline, byte for byte what OpenSSL and
    /// Python's `cryptography` write.
    public var pemRepresentation: String {
        switch storage {
        case .p256(let key): key.pemRepresentation + "\n"
        case .p384(let key): key.pemRepresentation + "\n"
        case .p521(let key): key.pemRepresentation + "\n"
        }
    }

    /// The key hint of a Sigstore bundle: hex SHA-256 of the canonical PEM text, as model-signing computes it.
    public var hint: String { Digest.of(Array(pemRepresentation.utf8)).hex }

    /// Whether `signature` (DER) is this key's ECDSA signature over `message`.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        switch storage {
        case .p256(let key):
            guard let sig = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: message)
        case .p384(let key):
            guard let sig = try? P384.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: message)
        case .p521(let key):
            guard let sig = try? P521.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: message)
        }
    }
}

extension PublicVerifyingKey: Equatable {
    public static func == (lhs: PublicVerifyingKey, rhs: PublicVerifyingKey) -> Bool {
        lhs.pemRepresentation == rhs.pemRepresentation
    }
}

/// The label of the first PEM block in a text, which tells a public key from a private one before any parsing.
enum PEMLabel: Equatable {
    case publicKey, privateKey, ecPrivateKey, encryptedPrivateKey
    case other(String)

    init(of pem: String, source: String) throws(CustodyError) {
        let marker = "-----BEGIN "
        guard let start = pem.range(of: marker),
            let end = pem[start.upperBound...].range(of: "-----")
        else {
            throw CustodyError(.invalidKey, "\(source): not a PEM file (no '-----BEGIN' line)")
        }
        switch pem[start.upperBound..<end.lowerBound] {
        case "PUBLIC KEY": self = .publicKey
        case "PRIVATE KEY": self = .privateKey
        case "EC PRIVATE KEY": self = .ecPrivateKey
        case "ENCRYPTED PRIVATE KEY": self = .encryptedPrivateKey
        case let name: self = .other(String(name))
        }
    }
}

private func readKeyFile(_ path: String) throws(CustodyError) -> String {
    let bytes = try FileIO.contents(of: path, limit: 64 << 10)
    guard let text = String(validating: bytes, as: UTF8.self) else {
        throw CustodyError(.invalidKey, "\(path): not a PEM file (not UTF-8 text)")
    }
    return text
}
