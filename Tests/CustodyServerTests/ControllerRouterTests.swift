import CustodyCore
import CustodyRegistry
import CustodyStorage
import CustodyStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import CustodyServer

/// The gate, audit and token routes over the router, against a registry home with one published version and the
/// default policies: what each answers and what it records.
@Suite struct ControllerRouterTests {
    /// A home with the repository's default policies and `acme/m@1` published by the admin token.
    static func registry() async throws -> (RegistryServices, String, String) {
        let (services, secret, root) = try await HardeningTests.services { configuration in
            try? FileManager.default.createDirectory(atPath: configuration.home, withIntermediateDirectories: true)
            let defaults = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("Registry/policies").path
            try? FileManager.default.copyItem(atPath: defaults, toPath: configuration.policiesDirectory)
        }
        let weights = Array("weights".utf8)
        let digest = ContentDigest.of(weights)
        try await services.database.recordBlob(digest, size: UInt64(weights.count))
        let upload = try await services.blobs.upload(.random(), resumingAt: 0)
        try await upload.append(weights)
        _ = try await upload.commit(expecting: digest)
        _ = try await services.publishing.publish(
            API.PublishRequest(
                version: "1", files: [API.FileEntry(path: "weights.bin", size: UInt64(weights.count), digest: digest)],
                license: API.License(id: "apache-2.0"), provenance: nil, signature: nil),
            model: try ModelName(parsing: "acme/m"), publishedBy: "token:admin")
        return (services, secret, root)
    }

    static func json(_ value: String) -> ByteBuffer { ByteBuffer(string: value) }

    @Test func verifyDecidesRecordsAndNamesUnknowns() async throws {
        let (services, secret, root) = try await Self.registry()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let headers: HTTPFields = [.authorization: "Bearer \(secret)", .contentType: "application/json"]
        try await Application(router: buildRouter(services)).test(.router) { client in
            try await client.execute(
                uri: "/v1/verify", method: .post, headers: headers, body: Self.json(#"{"model": "acme/m@1", "environment": "production"}"#)
            ) { response in
                #expect(response.status == .ok)
                let decision = try JSONDecoder().decode(API.Decision.self, from: Data(Array(buffer: response.body)))
                #expect(!decision.allowed, "unsigned, no provenance: production denies")
                #expect(decision.checks.contains { $0.check == "signature" && $0.result == .failed })
            }
            try await client.execute(
                uri: "/v1/verify", method: .post, headers: headers, body: Self.json(#"{"model": "acme/m@1", "environment": "moon"}"#)
            ) { response in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body).contains("environment moon has no policy"))
            }
            try await client.execute(uri: "/v1/policies", method: .get, headers: headers) { response in
                #expect(String(buffer: response.body).contains("production"))
            }
        }
        let decisions = try await HardeningTests.events(services, "decision")
        #expect(decisions.count == 1 && decisions.first?.detail?.hasPrefix("denied by policy production") == true)
    }

    @Test func statusChangesAreRecordedAndGateTheVersion() async throws {
        let (services, secret, root) = try await Self.registry()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let headers: HTTPFields = [.authorization: "Bearer \(secret)", .contentType: "application/json"]
        let research = Self.json(#"{"model": "acme/m@1", "environment": "research"}"#)
        try await Application(router: buildRouter(services)).test(.router) { client in
            // A decision kept before the change must not outlive it: the change feed drops it.
            try await client.execute(uri: "/v1/verify", method: .post, headers: headers, body: research) { response in
                let decision = try JSONDecoder().decode(API.Decision.self, from: Data(Array(buffer: response.body)))
                #expect(!decision.reasons.joined().contains("yanked"))
            }
            try await client.execute(
                uri: "/v1/models/acme/m/versions/1/status", method: .post, headers: headers,
                body: Self.json(#"{"state": "yanked", "reason": "bad weights"}"#)
            ) { #expect($0.status == .ok, "\(String(buffer: $0.body))") }
            try await client.execute(uri: "/v1/verify", method: .post, headers: headers, body: research) { response in
                let decision = try JSONDecoder().decode(API.Decision.self, from: Data(Array(buffer: response.body)))
                #expect(!decision.allowed)
                #expect(decision.reasons.joined().contains("yanked"))
            }
        }
        #expect(try await HardeningTests.events(services, "version.yanked").count == 1)
    }

    @Test func auditAnswersCheckpointsProofsAndEvents() async throws {
        let (services, secret, root) = try await Self.registry()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try await services.log.checkpoint()
        let headers: HTTPFields = [.authorization: "Bearer \(secret)"]
        let size = try await services.database.logSize()
        try await Application(router: buildRouter(services)).test(.router) { client in
            try await client.execute(uri: "/v1/audit/checkpoint", method: .get, headers: headers) { response in
                #expect(response.status == .ok)
                let lines = String(buffer: response.body).split(separator: "\n")
                #expect(lines.first == "custody.localhost/log")
                #expect(lines.dropFirst().first.flatMap { UInt64($0) }.map { $0 >= size } == true, "the note names the log size")
            }
            try await client.execute(uri: "/v1/audit/proof/inclusion?index=0&size=\(size)", method: .get, headers: headers) {
                #expect($0.status == .ok, "\(String(buffer: $0.body))")
            }
            try await client.execute(uri: "/v1/audit/proof/inclusion?index=\(size)&size=\(size)", method: .get, headers: headers) {
                #expect($0.status == .badRequest)
            }
            try await client.execute(uri: "/v1/audit/events?type=publish", method: .get, headers: headers) { response in
                #expect(String(buffer: response.body).contains("\"type\":\"publish\""))
            }
            try await client.execute(uri: "/v1/audit/bom/acme/m/1", method: .get, headers: headers) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("CycloneDX"))
            }
        }
    }

    @Test func tokensAreCreatedListedAndRevokedByAdminsOnly() async throws {
        let (services, secret, root) = try await HardeningTests.services()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let admin: HTTPFields = [.authorization: "Bearer \(secret)", .contentType: "application/json"]
        try await Application(router: buildRouter(services)).test(.router) { client in
            var created: API.TokenCreated?
            try await client.execute(
                uri: "/v1/tokens", method: .post, headers: admin,
                body: Self.json(#"{"role": "auditor", "name": "books", "namespaces": [], "environments": []}"#)
            ) { response in
                #expect(response.status == .created, "\(String(buffer: response.body))")
                created = try JSONDecoder().decode(API.TokenCreated.self, from: Data(Array(buffer: response.body)))
            }
            let token = try #require(created)
            try await client.execute(uri: "/v1/tokens", method: .get, headers: [.authorization: "Bearer \(token.secret)"]) {
                #expect($0.status == .forbidden, "an auditor may not list tokens")
            }
            try await client.execute(uri: "/v1/tokens/\(token.token.id)", method: .delete, headers: admin) {
                #expect($0.status == .noContent || $0.status == .ok)
            }
            try await client.execute(uri: "/v1/audit/events", method: .get, headers: [.authorization: "Bearer \(token.secret)"]) {
                #expect($0.status == .unauthorized, "a revoked token is refused")
            }
        }
        #expect(try await HardeningTests.events(services, "token.revoke").count == 1)
    }
}
