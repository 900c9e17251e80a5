import Crypto
package import CustodyCore
package import CustodyStorage
import Foundation
import GRDB

extension RegistryDatabase {
    /// Creates a token and returns its secret, which is stored only as a SHA-256 hash.
    package func createToken(_ request: NewToken) async throws(CustodyError) -> API.TokenCreated {
        let secret = "cst_" + Self.randomURLSafe(byteCount: 32)
        let id = Self.randomHex(byteCount: 6)
        let hash = Self.secretHash(secret)
        let now = Self.now()
        let info = API.TokenInfo(
            id: id, name: request.name, role: request.role.rawValue, namespaces: request.namespaces,
            environments: request.environments, createdAt: now, expiresAt: request.expiresAt, revokedAt: nil)
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO tokens (id, name, secret_hash, role, namespaces, environments, created_at, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    id, request.name, hash, request.role.rawValue, try Self.json(request.namespaces),
                    try Self.json(request.environments), now, request.expiresAt,
                ])
            let scope = request.namespaces.isEmpty ? "" : " namespaces \(request.namespaces.joined(separator: ","))"
            let environments = request.environments.isEmpty ? "" : " environments \(request.environments.joined(separator: ","))"
            try Self.insertEvent(
                db, NewEvent(type: .tokenCreated, actor: nil, detail: "token \(id) role \(request.role.rawValue)\(scope)\(environments)"))
        }
        return API.TokenCreated(token: info, secret: secret)
    }

    /// The token whose secret this is, expired and revoked ones included (the caller decides what they may do).
    package func token(secret: String) async throws(CustodyError) -> TokenRecord? {
        let hash = Self.secretHash(secret)
        return try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM tokens WHERE secret_hash = ?", arguments: [hash]).map { row in
                TokenRecord(
                    id: row["id"], name: row["name"], role: Role(rawValue: row["role"]) ?? .consumer,
                    namespaces: try Self.decode(row["namespaces"]), environments: try Self.decode(row["environments"]),
                    expiresAt: row["expires_at"], revokedAt: row["revoked_at"])
            }
        }
    }

    package func tokens() async throws(CustodyError) -> [API.TokenInfo] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM tokens ORDER BY created_at, id").map { row in
                API.TokenInfo(
                    id: row["id"], name: row["name"], role: row["role"], namespaces: try Self.decode(row["namespaces"]),
                    environments: try Self.decode(row["environments"]), createdAt: row["created_at"],
                    expiresAt: row["expires_at"], revokedAt: row["revoked_at"])
            }
        }
    }

    package func revokeToken(id: String) async throws(CustodyError) -> Bool {
        try await write { db in
            try db.execute(sql: "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", arguments: [Self.now(), id])
            guard db.changesCount > 0 else { return false }
            try Self.insertEvent(db, NewEvent(type: .tokenRevoked, actor: nil, detail: "token \(id)"))
            return true
        }
    }

    package func tokenCount() async throws(CustodyError) -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tokens") ?? 0 }
    }

    static func secretHash(_ secret: String) -> String {
        ContentDigest.of(Array(secret.utf8)).hex
    }

    static func randomURLSafe(byteCount: Int) -> String {
        Data(randomBytes(byteCount)).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func randomHex(byteCount: Int) -> String {
        randomBytes(byteCount).map { String(format: "%02x", $0) }.joined()
    }

    private static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}
