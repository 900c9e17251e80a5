package import CustodyCore

/// A bearer token as the token store keeps it: never its secret, which is stored only as a hash.
package struct TokenRecord: Sendable, Hashable {
    package var id: String
    package var name: String?
    package var role: Role
    package var namespaces: [String]
    package var environments: [String]
    package var expiresAt: String?
    package var revokedAt: String?

    package init(
        id: String, name: String?, role: Role, namespaces: [String], environments: [String], expiresAt: String?, revokedAt: String?
    ) {
        self.id = id
        self.name = name
        self.role = role
        self.namespaces = namespaces
        self.environments = environments
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// How the token appears in logs and events: never the secret.
    package var actor: String { name.map { "token:\(id) (\($0))" } ?? "token:\(id)" }
}
