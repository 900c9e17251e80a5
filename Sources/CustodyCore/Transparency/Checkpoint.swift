public import Crypto
import Foundation

/// A C2SP signed checkpoint of a transparency log: origin, tree size and root hash, signed with Ed25519 as a
/// signed note (`— <name> <base64(key id ‖ signature)>`).
public struct Checkpoint: Sendable, Hashable {
    /// The log's origin line: its name, and the name of the key that signs it.
    public var origin: String
    /// The number of leaves in the tree.
    public var size: UInt64
    /// The tree's root hash (RFC 6962).
    public var root: [UInt8]

    /// A checkpoint of the tree of `size` leaves whose root is `root`.
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

    /// The signed note: the body, a blank line and one signature line by `key` under `name`.
    public func signed(by key: Curve25519.Signing.PrivateKey, name: String) throws -> String {
        let signature = try key.signature(for: Array(body.utf8))
        let publicKey = Array(key.publicKey.rawRepresentation)
        return body + "\n— \(name) \(Data(Self.keyID(name: name, publicKey: publicKey) + Array(signature)).base64EncodedString())\n"
    }

    /// Parses a signed note and checks a signature by `key` named `name`, and that the checkpoint is of the log
    /// `origin` (by default the key's name, which is the origin a Custody log signs under): a checkpoint of another
    /// log is refused even when the key signed it (C2SP tlog-checkpoint). Throws naming what is wrong.
    public static func verify(
        _ note: String, key: Curve25519.Signing.PublicKey, name: String, origin: String? = nil
    ) throws(CustodyError)
        -> Checkpoint
    {
        let body = try SignedNote.open(Array(note.utf8), verifier: SignedNote.Verifier(name: name, key: key))
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        guard lines.count >= 3, let size = UInt64(lines[1]), let root = Data(base64Encoded: String(lines[2])), root.count == 32 else {
            throw CustodyError(.malformedSignature, "the checkpoint body is not origin, size and base64 root hash")
        }
        let expected = origin ?? name
        guard lines[0] == Substring(expected) else {
            throw CustodyError(.verificationFailed, "the checkpoint is of the log '\(lines[0])', not of '\(expected)'")
        }
        return Checkpoint(origin: String(lines[0]), size: size, root: Array(root))
    }
}

/// C2SP signed notes (Go's `sumdb/note`): text ending in a newline, a blank line, then up to 100 lines
/// `— <name> <base64(4-byte key id ‖ signature)>`. Opening one follows Go's `note.Open`: a malformed note is refused
/// whatever it carries; signatures by other keys are ignored; one by the verifier's name and key id that does not
/// verify refuses the note; a note with none by the verifier is unverified.
public enum SignedNote {
    /// An Ed25519 verifier: the key and the name it signs under.
    public struct Verifier: Sendable {
        /// The name the key signs under.
        public let name: String
        /// The Ed25519 public key.
        public let key: Curve25519.Signing.PublicKey
        /// The key id signature lines carry: ``Checkpoint/keyID(name:publicKey:)``.
        public var id: [UInt8] { Checkpoint.keyID(name: name, publicKey: Array(key.rawRepresentation)) }

        /// A verifier for signatures by `key` under `name`.
        public init(name: String, key: Curve25519.Signing.PublicKey) {
            self.name = name
            self.key = key
        }

        /// Parses verifier key text `<name>+<8 hex key id>+<base64(0x01 ‖ 32-byte Ed25519 key)>`; refuses a name that
        /// is empty or not a valid note name, a key id that does not match, another algorithm or key length.
        public init(parsing text: String) throws(CustodyError) {
            let parts = text.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, SignedNote.isValidName(String(parts[0])), parts[1].count == 8,
                let blob = Data(base64Encoded: String(parts[2])), blob.count == 33, blob.first == 0x01,
                let key = try? Curve25519.Signing.PublicKey(rawRepresentation: blob.dropFirst())
            else { throw CustodyError(.invalidKey, "not a verifier key (name+keyid+base64 of an Ed25519 key)") }
            self.init(name: String(parts[0]), key: key)
            guard Hex.encode(id) == parts[1] else { throw CustodyError(.invalidKey, "the verifier key's id does not match its key") }
        }
    }

    /// A name: non-empty UTF-8 without spaces, `+` or control characters.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.unicodeScalars.contains { $0 == " " || $0 == "+" || $0.value < 0x20 || $0.value == 0x7F }
    }

    /// Checks `note` and returns its text (through its final newline) when the verifier signed it.
    public static func open(_ note: [UInt8], verifier: Verifier) throws(CustodyError) -> String {
        func malformed(_ why: String) -> CustodyError { CustodyError(.malformedSignature, "not a signed note: \(why)") }
        guard let message = String(validating: note, as: UTF8.self) else { throw malformed("not UTF-8") }
        let bytes = Array(message.utf8)
        var split: Int?
        if bytes.count >= 2 {
            for index in stride(from: bytes.count - 2, through: 0, by: -1) where bytes[index] == 0x0A && bytes[index + 1] == 0x0A {
                split = index
                break
            }
        }
        guard let split else { throw malformed("no blank line before the signatures") }
        let text = Array(bytes[...split])
        let signatures = Array(bytes[(split + 2)...])
        guard !signatures.isEmpty, signatures.last == 0x0A else { throw malformed("no signature lines, or no final newline") }
        guard !String(decoding: text, as: UTF8.self).unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\n") || $0.value == 0x7F }) else {
            throw malformed("a control character in the text")
        }
        var verified = false
        var seen = Set<[UInt8]>()
        var count = 0
        for line in signatures.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast() {
            let prefix = Array("— ".utf8)
            guard line.starts(with: prefix) else { throw malformed("a line after the signatures that is not a signature") }
            let rest = String(decoding: line.dropFirst(prefix.count), as: UTF8.self)
            guard let space = rest.firstIndex(of: " ") else { throw malformed("a signature line without a signature") }
            let name = String(rest[..<space])
            let encoded = String(rest[rest.index(after: space)...])
            guard isValidName(name), !encoded.isEmpty, let blob = Data(base64Encoded: encoded), blob.count >= 5 else {
                throw malformed("a signature line that is not '— NAME BASE64'")
            }
            count += 1
            guard count <= 100 else { throw malformed("more than 100 signatures") }
            let id = Array(blob.prefix(4))
            guard name == verifier.name, id == verifier.id else { continue }  // another signer's: ignored
            guard seen.insert(id).inserted else { continue }
            guard verifier.key.isValidSignature(blob.dropFirst(4), for: text) else {
                throw CustodyError(.verificationFailed, "the signature by \(verifier.name) does not verify")
            }
            verified = true
        }
        guard verified else { throw CustodyError(.verificationFailed, "the note carries no signature by the key \(verifier.name)") }
        return String(decoding: text, as: UTF8.self)
    }
}

/// A C2SP tlog-proof (`c2sp.org/tlog-proof@v1`): the entry's index, its inclusion proof and the signed checkpoint the
/// proof leads to. Custody puts the logged event itself (its canonical JSON, the leaf's bytes) in the `extra` line, so
/// that a receipt can be checked with nothing but the log's public key.
public struct TlogProof: Sendable, Equatable {
    /// The first line of every tlog-proof.
    public static let header = "c2sp.org/tlog-proof@v1"
    /// The logged entry's bytes (Custody: the event's leaf encoding).
    public var extra: [UInt8]?
    /// The entry's leaf index, from 0.
    public var index: UInt64
    /// The inclusion proof, leaf to root.
    public var hashes: [[UInt8]]
    /// The signed checkpoint the proof leads to, as text.
    public var checkpoint: String

    /// A proof from its parts.
    public init(extra: [UInt8]?, index: UInt64, hashes: [[UInt8]], checkpoint: String) {
        self.extra = extra
        self.index = index
        self.hashes = hashes
        self.checkpoint = checkpoint
    }

    /// The receipt's text, as `custody audit receipt` writes it.
    public var text: String {
        var out = Self.header + "\n"
        if let extra { out += "extra " + Data(extra).base64EncodedString() + "\n" }
        out += "index \(index)\n"
        for hash in hashes { out += Data(hash).base64EncodedString() + "\n" }
        return out + "\n" + checkpoint
    }

    /// Parses a receipt's text, naming `source` and the first problem when it is not one.
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
