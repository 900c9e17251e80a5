package import CustodyCore
package import CustodyStorage

/// What a request asks to do, as far as authorization goes: the roles that may (admin always may) and, for a
/// publish, the namespace it writes into.
package struct Action: Sendable, Hashable {
    package var roles: Set<Role>
    package var namespace: String?

    package init(roles: Set<Role>, namespace: String? = nil) {
        self.roles = roles
        self.namespace = namespace
    }

    /// Read models, versions, files and signatures.
    package static let read = Action(roles: [.publisher, .consumer, .auditor, .security, .gate])
    /// Token management and policy reloads: admins only.
    package static let administer = Action(roles: [])
    /// Publish a version into `namespace`.
    package static func publish(into namespace: String) -> Action { Action(roles: [.publisher], namespace: namespace) }
}

/// The one authorization rule, pure: no request, no I/O. The adapter records and answers the refusal in its protocol.
package enum Authorizer {
    /// Throws ``CustodyError/Code/unauthorized`` without a token and ``CustodyError/Code/forbidden`` when the token's
    /// role, or a publisher's namespaces, do not allow `action`.
    package static func require(_ token: TokenRecord?, _ action: Action) throws(CustodyError) {
        guard let token else { throw CustodyError(.unauthorized, "this request needs a bearer token") }
        if token.role == .admin { return }
        guard action.roles.contains(token.role) else {
            let allowed = action.roles.map(\.rawValue).sorted().joined(separator: " or ")
            throw CustodyError(.forbidden, "role \(token.role.rawValue) may not do this (needs \(allowed))")
        }
        if let namespace = action.namespace, token.role == .publisher, !token.namespaces.contains(namespace),
            !token.namespaces.contains("*")
        {
            throw CustodyError(.forbidden, "token \(token.id) may not publish into namespace '\(namespace)'")
        }
    }
}
