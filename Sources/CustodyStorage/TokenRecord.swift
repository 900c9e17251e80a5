public import CustodyCore

/// A bearer token as the token store keeps it: never its secret, which is stored only as a hash.
public struct TokenRecord: Sendable, Hashable {
    public var id: String
    public var name: String?
    public var role: Role
    public var namespaces: [String]
    public var environments: [String]
    public var expiresAt: String?
    public var revokedAt: String?

    public init(
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
    public var actor: String { name.map { "token:\(id) (\($0))" } ?? "token:\(id)" }
}

