package import CustodyCore
import Foundation

/// Token secrets as every metadata backend makes and keeps them: `cst_` and 32 random bytes URL-safe base64, stored
/// only as their SHA-256, ids of 6 random bytes in hex. One definition, so that a token made on one backend is found
/// on another after a migration.
package enum TokenSecret {
    package static func generate() -> String { "cst_" + urlSafe(randomBytes(32)) }

    package static func hash(_ secret: String) -> String { ContentDigest.of(Array(secret.utf8)).hex }

    package static func id() -> String { randomBytes(6).map { String(format: "%02x", $0) }.joined() }

    static func urlSafe(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}
