import Crypto
package import CustodyCore
package import CustodyStorage
import Foundation
import GRDB

extension RegistryDatabase {
    /// Creates a token and returns its secret, which is stored only as a SHA-256 hash.
    package func createToken(_ request: NewToken) async throws(CustodyError) -> API.TokenCreated {
        let secret = TokenSecret.generate()
        let id = TokenSecret.id()
        let hash = TokenSecret.hash(secret)
        let now = Self.now()
        let info = try await write { db in
            let row = TokenRow(
                id: id, name: request.name, secretHash: hash, role: request.role.rawValue, namespaces: try Self.json(request.namespaces),
                environments: try Self.json(request.environments), createdAt: now, expiresAt: request.expiresAt, revokedAt: nil)
            try row.insert(db)
            let scope = request.namespaces.isEmpty ? "" : " namespaces \(request.namespaces.joined(separator: ","))"
            let environments = request.environments.isEmpty ? "" : " environments \(request.environments.joined(separator: ","))"
            try Self.insertEvent(
                db, NewEvent(type: .tokenCreated, actor: nil, detail: "token \(id) role \(request.role.rawValue)\(scope)\(environments)"))
            return try row.info()
        }
        return API.TokenCreated(token: info, secret: secret)
    }

    /// The token whose secret this is, expired and revoked ones included (the caller decides what they may do).
    package func token(secret: String) async throws(CustodyError) -> TokenRecord? {
        let hash = TokenSecret.hash(secret)
        return try await read { db in
            try TokenRow.filter(TokenRow.Columns.secretHash == hash).fetchOne(db)?.record()
        }
    }

    package func tokens() async throws(CustodyError) -> [API.TokenInfo] {
        try await read { db in
            try TokenRow.order(TokenRow.Columns.createdAt, TokenRow.Columns.id).fetchAll(db).map { try $0.info() }
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
}

/// A row of `tokens`: the secret only as its SHA-256 hash, the scopes as JSON arrays.
struct TokenRow: SnakeCaseRecord {
    static let databaseTableName = "tokens"

    enum Columns {
        static let secretHash = Column("secret_hash")
        static let createdAt = Column("created_at")
        static let id = Column("id")
    }

    var id: String
    var name: String?
    var secretHash: String
    var role: String
    var namespaces: String
    var environments: String
    var createdAt: String
    var expiresAt: String?
    var revokedAt: String?

    /// The stored role; a value this build does not know is refused, not read as some other role.
    func storedRole() throws -> Role {
        guard let role = Role(rawValue: role) else { throw CustodyError(.io, "token \(id) has an unknown role '\(role)'") }
        return role
    }

    func record() throws -> TokenRecord {
        TokenRecord(
            id: id, name: name, role: try storedRole(), namespaces: try RegistryDatabase.decode(namespaces),
            environments: try RegistryDatabase.decode(environments), expiresAt: expiresAt, revokedAt: revokedAt)
    }

    func info() throws -> API.TokenInfo {
        API.TokenInfo(
            id: id, name: name, role: try storedRole(), namespaces: try RegistryDatabase.decode(namespaces),
            environments: try RegistryDatabase.decode(environments), createdAt: createdAt, expiresAt: expiresAt, revokedAt: revokedAt)
    }
}
