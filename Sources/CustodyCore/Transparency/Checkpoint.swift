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

    /// Parses a signed note and checks a signature by `key` named `name`, and that the checkpoint is of the log
    /// `origin` (by default the key's name, which is the origin a Custody log signs under): a checkpoint of another
    /// log is refused even when the key signed it (C2SP tlog-checkpoint). Throws naming what is wrong.
    public static func verify(_ note: String, key: Curve25519.Signing.PublicKey, name: String, origin: String? = nil) throws(CustodyError)
        -> Checkpoint
    {
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
        let expected = origin ?? name
        guard lines[0] == Substring(expected) else {
            throw CustodyError(.verificationFailed, "the checkpoint is of the log '\(lines[0])', not of '\(expected)'")
        }
        return Checkpoint(origin: String(lines[0]), size: size, root: Array(root))
    }
}

/// A C2SP tlog-proof (`c2sp.org/tlog-proof@v1`): the entry's index, its inclusion proof and the signed checkpoint the
/// proof leads to. Custody puts the logged event itself (its canonical JSON, the leaf's bytes) in the `extra` line, so
/// that a receipt can be checked with nothing but the log's public key.
public struct TlogProof: Sendable, Equatable {
    public static let header = "c2sp.org/tlog-proof@v1"
    public var extra: [UInt8]?
    public var index: UInt64
    public var hashes: [[UInt8]]
    public var checkpoint: String

    public init(extra: [UInt8]?, index: UInt64, hashes: [[UInt8]], checkpoint: String) {
        self.extra = extra
        self.index = index
        self.hashes = hashes
        self.checkpoint = checkpoint
    }

    public var text: String {
        var out = Self.header + "\n"
        if let extra { out += "extra " + Data(extra).base64EncodedString() + "\n" }
        out += "index \(index)\n"
        for hash in hashes { out += Data(hash).base64EncodedString() + "\n" }
        return out + "\n" + checkpoint
    }

    public init(parsing text: String, source: String) throws(CustodyError) {
        func bad(_ what: String) -> CustodyError { CustodyError(.malformedSignature, "\(source): not a tlog-proof receipt (\(what))") }
        guard let blank = text.range(of: "\n\n") else { throw bad("no blank line before the checkpoint") }
        var lines = text[..<blank.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)[...]
        guard lines.popFirst() == Substring(Self.header) else { throw bad("the first line is not '\(Self.header)'") }
        if let line = lines.first, line.hasPrefix("extra ") {
            guard let bytes = Data(base64Encoded: String(line.dropFirst(6))) else { throw bad("the extra line is not base64") }
            extra = Array(bytes)
            lines.removeFirst()
        }
        guard let line = lines.popFirst(), line.hasPrefix("index "), let index = UInt64(line.dropFirst(6)) else {
            throw bad("no 'index N' line")
        }
        self.index = index
        hashes = []
        for line in lines {
            guard let hash = Data(base64Encoded: String(line)), hash.count == 32 else { throw bad("a proof line is not a base64 SHA-256 hash") }
            hashes.append(Array(hash))
        }
        checkpoint = String(text[blank.upperBound...])
    }
}
