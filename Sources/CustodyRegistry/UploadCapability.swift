package import Crypto
package import CustodyCore
package import Foundation

/// Short-lived capabilities for uploads whose requests carry no credentials: the Hub's LFS clients send no
/// `Authorization` to the upload URLs the batch API hands out, so each URL carries its own permission — one blob
/// (digest and size), one publisher, an expiry — signed with a key that never leaves this process.
package struct UploadCapability: Sendable {
    private let key: SymmetricKey
    package let lifetime: TimeInterval

    package init(key: SymmetricKey = SymmetricKey(size: .bits256), lifetime: TimeInterval = 3600) {
        self.key = key
        self.lifetime = lifetime
    }

    /// What a capability allows.
    package struct Grant: Sendable, Equatable {
        package let digest: ContentDigest
        package let size: UInt64
        package let actor: String
    }

    /// A URL-safe capability to upload `size` bytes of `digest`, for `actor`, until `now + lifetime`.
    package func issue(_ digest: ContentDigest, size: UInt64, actor: String, now: Date = .now) -> String {
        let expiry = Int64((now.timeIntervalSince1970 + lifetime).rounded(.up))
        let payload = Array("\(digest.hex).\(size).\(expiry).\(actor)".utf8)
        let mac = Array(HMAC<SHA256>.authenticationCode(for: payload, using: key))
        return Self.base64URL(payload) + "." + Self.base64URL(mac)
    }

    /// The grant a capability carries; `forbidden` for one that was not issued here, was altered or has expired.
    package func check(_ capability: String, now: Date = .now) throws(CustodyError) -> Grant {
        let parts = capability.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = Self.bytes(base64URL: parts[0]), let mac = Self.bytes(base64URL: parts[1]),
            HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: payload, using: key)
        else { throw CustodyError(.forbidden, "this upload URL was not issued by this registry, or was altered") }
        let fields = String(decoding: payload, as: UTF8.self).split(separator: ".", maxSplits: 3, omittingEmptySubsequences: false)
        guard fields.count == 4, let size = UInt64(fields[1]), let expiry = Int64(fields[2]),
            let digest = try? ContentDigest(parsing: "sha256:" + fields[0])
        else { throw CustodyError(.forbidden, "this upload URL is malformed") }
        guard Double(expiry) > now.timeIntervalSince1970 else {
            throw CustodyError(.forbidden, "this upload URL expired; ask the LFS batch API for a new one")
        }
        return Grant(digest: digest, size: size, actor: String(fields[3]))
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func bytes(base64URL text: Substring) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }
}
