public import Crypto
import Foundation

/// A C2SP signed checkpoint of a transparency log: origin, tree size and root hash, signed with Ed25519 as a
/// signed note (`— <name> <base64(key id ‖ signature)>`).
public struct Checkpoint: Sendable, Hashable {
    public var origin: String
    public var size: UInt64
    public var root: [UInt8]

    public init(origin: String, size: UInt64, root: [UInt8]) {
        self.origin = origin
        self.size = size
        self.root = root
    }

    /// The signed text: three lines, each ending in a newline.
    public var body: String { "\(origin)\n\(size)\n\(Data(root).base64EncodedString())\n" }

    /// The key id: the first four bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key).
    public static func keyID(name: String, publicKey: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: Array(name.utf8) + [0x0A, 0x01] + publicKey).prefix(4))
    }

    /// The verifier key text: `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
    public static func verifierKey(name: String, publicKey: [UInt8]) -> String {
        "\(name)+\(Hex.encode(keyID(name: name, publicKey: publicKey)))+\(Data([0x01] + publicKey).base64EncodedString())"
    }

    public func signed(by key: Curve25519.Signing.PrivateKey, name: String) throws -> String {
        let signature = try key.signature(for: Array(body.utf8))
        let publicKey = Array(key.publicKey.rawRepresentation)
        return body + "\n— \(name) \(Data(Self.keyID(name: name, publicKey: publicKey) + Array(signature)).base64EncodedString())\n"
    }

    /// Parses a signed note and checks a signature by `key` named `name`; throws naming what is wrong.
    public static func verify(_ note: String, key: Curve25519.Signing.PublicKey, name: String) throws(CustodyError) -> Checkpoint {
        guard let separator = note.range(of: "\n\n") else {
            throw CustodyError(.malformedSignature, "the checkpoint is not a signed note (no blank line before the signatures)")
        }
        let body = String(note[..<separator.lowerBound]) + "\n"
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        guard lines.count >= 3, let size = UInt64(lines[1]), let root = Data(base64Encoded: String(lines[2])), root.count == 32 else {
            throw CustodyError(.malformedSignature, "the checkpoint body is not origin, size and base64 root hash")
        }
        let expectedID = keyID(name: name, publicKey: Array(key.rawRepresentation))
        var verified = false
        for line in note[separator.upperBound...].split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[0] == "—", parts[1] == name, let blob = Data(base64Encoded: String(parts[2])), blob.count == 68 else { continue }
            guard Array(blob.prefix(4)) == expectedID else { continue }
            if key.isValidSignature(blob.dropFirst(4), for: Array(body.utf8)) { verified = true }
        }
        guard verified else {
            throw CustodyError(.verificationFailed, "the checkpoint carries no valid signature by the log key \(name)")
        }
        return Checkpoint(origin: String(lines[0]), size: size, root: Array(root))
    }
}
