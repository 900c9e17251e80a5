import CustodyCore
import CustodyStorage
import Testing

@testable import CustodyRegistry

@Suite struct AuthorizerTests {
    static func token(_ role: Role, namespaces: [String] = []) -> TokenRecord {
        TokenRecord(id: "7", name: nil, role: role, namespaces: namespaces, environments: [], expiresAt: nil, revokedAt: nil)
    }

    @Test func noTokenIsUnauthorized() {
        #expect(throws: CustodyError(.unauthorized, "this request needs a bearer token")) { try Authorizer.require(nil, .read) }
    }

    @Test(arguments: Role.allCases)
    func adminMayDoAnythingAndOthersOnlyTheirRoles(role: Role) throws {
        try Authorizer.require(Self.token(.admin), .administer)
        if role == .admin { return }
        #expect(throws: CustodyError(.forbidden, "role \(role.rawValue) may not do this (needs )")) {
            try Authorizer.require(Self.token(role), .administer)
        }
        let readers: Set<Role> = [.publisher, .consumer, .auditor, .security, .gate]
        if readers.contains(role) { try Authorizer.require(Self.token(role), .read) }
    }

    @Test func publishersWriteOnlyIntoTheirNamespaces() throws {
        try Authorizer.require(Self.token(.publisher, namespaces: ["acme"]), .publish(into: "acme"))
        try Authorizer.require(Self.token(.publisher, namespaces: ["*"]), .publish(into: "lab"))
        #expect(throws: CustodyError(.forbidden, "token 7 may not publish into namespace 'lab'")) {
            try Authorizer.require(Self.token(.publisher, namespaces: ["acme"]), .publish(into: "lab"))
        }
        #expect(throws: CustodyError(.forbidden, "role consumer may not do this (needs publisher)")) {
            try Authorizer.require(Self.token(.consumer), .publish(into: "acme"))
        }
    }
}
