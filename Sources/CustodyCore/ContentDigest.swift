import Crypto
import Foundation

/// A SHA-256 content digest, written `sha256:<64 lowercase hex digits>`.
///
/// Parsing is strict: one algorithm, one spelling. Anything else (uppercase hex, a missing prefix, a wrong length)
/// is refused, so that two strings naming the same content are always equal as strings too.
public struct ContentDigest: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The only algorithm Custody addresses content by.
    public static let algorithm = "sha256"
    /// The digest's length in bytes.
    public static let byteCount = 32

    /// The 32 raw digest bytes.
    public let bytes: [UInt8]

    /// A digest from its 32 bytes; throws `invalidArgument` for any other count.
    public init(bytes: [UInt8]) throws(CustodyError) {
        guard bytes.count == Self.byteCount else {
            throw CustodyError(.invalidArgument, "a sha256 digest has 32 bytes, not \(bytes.count)")
        }
        self.bytes = bytes
    }

    init(_ digest: SHA256.Digest) {
        self.bytes = Array(digest)
    }

    /// Parses `sha256:<hex>`.
    public init(parsing text: String) throws(CustodyError) {
        let prefix = Self.algorithm + ":"
        guard text.hasPrefix(prefix) else {
            throw CustodyError(.invalidArgument, "digest '\(text)' must start with '\(prefix)'")
        }
        try self.init(hex: text.dropFirst(prefix.count), context: text)
    }

    /// Parses the bare 64-digit lowercase hex form used inside OMS statements.
    public init(hex: some StringProtocol) throws(CustodyError) {
        try self.init(hex: hex, context: String(hex))
    }

    private init(hex: some StringProtocol, context: String) throws(CustodyError) {
        guard hex.utf8.count == Self.byteCount * 2, let bytes = Hex.decode(hex, lowercaseOnly: true) else {
            throw CustodyError(.invalidArgument, "digest '\(context)' must have 64 lowercase hex digits")
        }
        self.bytes = bytes
    }

    /// The digest of `data`.
    public static func of(_ data: [UInt8]) -> ContentDigest {
        ContentDigest(SHA256.hash(data: data))
    }

    /// The 64 lowercase hex digits, without the algorithm prefix.
    public var hex: String { Hex.encode(bytes) }

    /// `sha256:<64 lowercase hex>`.
    public var description: String { "\(Self.algorithm):\(hex)" }

    /// Orders digests by their bytes.
    public static func < (lhs: ContentDigest, rhs: ContentDigest) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}
