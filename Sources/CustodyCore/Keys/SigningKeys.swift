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
    public init(pem text: String, source: String) throws(CustodyError) {
        let blocks = PEMBlock.all(in: text)
        let keys = blocks.filter { $0.label == "PRIVATE KEY" || $0.label == "EC PRIVATE KEY" }
        guard keys.count <= 1 else {
            throw CustodyError(.invalidKey, "\(source): holds \(keys.count) private keys; a key file must hold exactly one")
        }
        guard let block = keys.first else {
            if blocks.contains(where: { $0.label == "ENCRYPTED PRIVATE KEY" }) {
                throw CustodyError(.invalidKey, "\(source): encrypted private keys are not supported; decrypt it first (openssl pkcs8)")
            }
            if blocks.contains(where: { $0.label == "PUBLIC KEY" }) {
                throw CustodyError(.invalidKey, "\(source): this is a public key; signing needs the private key (PKCS#8 PEM)")
            }
            throw PEMBlock.missing("private key", blocks: blocks, source: source)
        }
        let pem = block.text
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

    /// The key's curve.
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

    /// The public half.
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
    public init(pem text: String, source: String) throws(CustodyError) {
        let blocks = PEMBlock.all(in: text)
        let keys = blocks.filter { $0.label == "PUBLIC KEY" }
        guard keys.count <= 1 else {
            throw CustodyError(.invalidKey, "\(source): holds \(keys.count) public keys; a key file must hold exactly one")
        }
        guard let block = keys.first else {
            if blocks.contains(where: { $0.label.hasSuffix("PRIVATE KEY") }) {
                throw CustodyError(.invalidKey, "\(source): this is a private key; verification needs the public key (.pub)")
            }
            throw PEMBlock.missing("public key", blocks: blocks, source: source)
        }
        let pem = block.text
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

    /// The key's curve.
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
    public var hint: String { ContentDigest.of(Array(pemRepresentation.utf8)).hex }

    /// Whether `signature` (DER) is this key's ECDSA signature over the SHA-256 of `message`, whatever the curve (how
    /// model_signing 0.2 signed).
    public func isValidSignature(_ signature: [UInt8], sha256Of message: [UInt8]) -> Bool {
        let digest = SHA256.hash(data: message)
        switch storage {
        case .p256(let key):
            guard let sig = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: digest)
        case .p384(let key):
            guard let sig = try? P384.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: digest)
        case .p521(let key):
            guard let sig = try? P521.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: digest)
        }
    }

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
    /// Keys are equal when their SPKI encodings are.
    public static func == (lhs: PublicVerifyingKey, rhs: PublicVerifyingKey) -> Bool {
        lhs.pemRepresentation == rhs.pemRepresentation
    }
}

/// PEM blocks as OpenSSL finds them: `-----BEGIN LABEL-----` … `-----END LABEL-----` anywhere in a text, with any
/// text around and between them (certtool writes a description before the key; `openssl ecparam -genkey` an
/// `EC PARAMETERS` block before it). The block text is handed to the key parser as it stands.
struct PEMBlock: Equatable {
    var label: String
    var text: String

    static func all(in text: String) -> [PEMBlock] {
        var blocks: [PEMBlock] = []
        var open: (label: String, lines: [Substring])?
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("-----BEGIN "), trimmed.hasSuffix("-----"), trimmed.count > 16 {
                open = (String(trimmed.dropFirst(11).dropLast(5)), [Substring(trimmed)])
            } else if let block = open {
                open!.lines.append(Substring(trimmed))
                if trimmed == "-----END \(block.label)-----" {
                    blocks.append(PEMBlock(label: block.label, text: open!.lines.joined(separator: "\n") + "\n"))
                    open = nil
                }
            }
        }
        return blocks
    }

    /// The error for a text with no block of the kind asked for, naming what it has instead.
    static func missing(_ kind: String, blocks: [PEMBlock], source: String) -> CustodyError {
        guard !blocks.isEmpty else {
            return CustodyError(.invalidKey, "\(source): not a PEM file (no complete '-----BEGIN' … '-----END' block)")
        }
        let found = blocks.map { "'\($0.label)'" }.joined(separator: ", ")
        return CustodyError(.invalidKey, "\(source): expected a PEM \(kind), found \(found)")
    }
}

private func readKeyFile(_ path: String) throws(CustodyError) -> String {
    let bytes = try PosixFile.contents(of: path, limit: 64 << 10)
    guard let text = String(validating: bytes, as: UTF8.self) else {
        throw CustodyError(.invalidKey, "\(path): not a PEM file (not UTF-8 text)")
    }
    return text
}
