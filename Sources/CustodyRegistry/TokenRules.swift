package import CustodyCore
package import CustodyStorage
package import Foundation

/// The rules a new token must follow, shared by the admin API and `custody token create --home`.
package enum TokenRules {
    package static func validate(_ request: API.TokenCreateRequest) throws(CustodyError) -> NewToken {
        guard let role = Role(rawValue: request.role) else {
            throw CustodyError(.invalidArgument, "unknown role '\(request.role)' (\(Role.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        if role == .publisher, request.namespaces.isEmpty {
            throw CustodyError(.invalidArgument, "a publisher token needs at least one --namespace")
        }
        if role == .consumer, request.environments.isEmpty {
            throw CustodyError(.invalidArgument, "a consumer token needs at least one --env")
        }
        for namespace in request.namespaces where namespace != "*" {
            _ = try ModelName(namespace: namespace, name: "x")
        }
        if let expires = request.expiresAt, (try? Date(expires, strategy: .iso8601)) == nil {
            throw CustodyError(.invalidArgument, "expiry '\(expires)' is not an RFC 3339 time")
        }
        return NewToken(
            role: role, name: request.name, namespaces: request.namespaces, environments: request.environments, expiresAt: request.expiresAt)
    }
}
