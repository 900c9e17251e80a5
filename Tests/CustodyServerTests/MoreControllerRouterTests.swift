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

/// The trust, advisory, operations and remaining audit routes over the router, against the home of
/// ``ControllerRouterTests`` (`acme/m@1` published, default policies): what each answers and what it records.
@Suite struct MoreControllerRouterTests {
    static func body(_ response: TestResponse) -> Data { Data(Array(buffer: response.body)) }

    @Test func trustedKeysAreAddedListedAndRemovedByAdminsOnly() async throws {
        let (services, secret, root) = try await ControllerRouterTests.registry()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let admin: HTTPFields = [.authorization: "Bearer \(secret)", .contentType: "application/json"]
        let key = PrivateSigningKey(generating: .p256).publicKey
        let request = try JSONEncoder().encode(API.TrustAddRequest(name: "ci", publicKey: key.pemRepresentation))
        try await Application(router: buildRouter(services)).test(.router) { client in
            try await client.execute(uri: "/v1/trust", method: .post, headers: admin, body: ByteBuffer(bytes: Array(request))) { response in
                #expect(response.status == .created)
                let decoded = try JSONDecoder().decode(API.TrustedKey.self, from: Self.body(response))
                #expect(decoded.keyHint == key.hint)
            }
            try await client.execute(uri: "/v1/trust", method: .get, headers: admin) { response in
                let decoded = try JSONDecoder().decode(API.TrustList.self, from: Self.body(response))
                #expect(decoded.keys.map(\.name) == ["ci"])
            }
            try await client.execute(uri: "/v1/trust", method: .get, headers: [:]) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/v1/trust/ci", method: .delete, headers: admin) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/trust/ci", method: .delete, headers: admin) { #expect($0.status == .notFound) }
        }
        #expect(try await HardeningTests.events(services, "trust.add").count == 1)
        #expect(try await HardeningTests.events(services, "trust.remove").count == 1)
    }

    @Test func advisoriesAreAddedShownWithdrawnAndGateTheVersion() async throws {
        let (services, secret, root) = try await ControllerRouterTests.registry()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let admin: HTTPFields = [.authorization: "Bearer \(secret)", .contentType: "application/json"]
        let osv = #"""
            {"id": "CUSTODY-2026-0001", "modified": "2026-12-01T00:00:00Z", "summary": "weights exfiltrate prompts",
             "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
             "affected": [{"package": {"ecosystem": "Custody", "name": "acme/m"}, "versions": ["1"]}]}
            """#
        let verify = ByteBuffer(string: #"{"model": "acme/m@1", "environment": "research"}"#)
        try await Application(router: buildRouter(services)).test(.router) { client in
            try await client.execute(uri: "/v1/advisories", method: .post, headers: admin, body: ByteBuffer(string: osv)) { response in
                #expect(response.status == .created)
                let added = try JSONDecoder().decode(API.AdvisoryAdded.self, from: Self.body(response))
                #expect(added.exposure.versions.map(\.version) == ["1"])
            }
            try await client.execute(uri: "/v1/advisories", method: .post, headers: admin, body: ByteBuffer(string: osv)) { response in
                #expect(response.status == .ok, "the same document again changes nothing")
                let decoded = try JSONDecoder().decode(API.AdvisoryAdded.self, from: Self.body(response))
                #expect(decoded.result == "unchanged")
            }
            try await client.execute(uri: "/v1/advisories", method: .post, headers: admin, body: ByteBuffer(string: "{}")) {
                #expect($0.status == .badRequest)
            }
            try await client.execute(uri: "/v1/verify", method: .post, headers: admin, body: verify) { response in
                let decision = try JSONDecoder().decode(API.Decision.self, from: Self.body(response))
                #expect(!decision.allowed)
                #expect(decision.reasons.joined().contains("CUSTODY-2026-0001"))
            }
            try await client.execute(uri: "/v1/advisories/CUSTODY-2026-0001", method: .get, headers: admin) { response in
                let shown = try JSONSerialization.jsonObject(with: Self.body(response)) as? [String: Any]
                #expect((shown?["osv"] as? [String: Any])?["id"] as? String == "CUSTODY-2026-0001")
                #expect(shown?["exposure"] != nil)
            }
            try await client.execute(uri: "/v1/advisories/CUSTODY-2026-0001/withdraw", method: .post, headers: admin) { response in
                let decoded = try JSONDecoder().decode(API.AdvisorySummary.self, from: Self.body(response))
                #expect(decoded.withdrawn != nil)
            }
            try await client.execute(uri: "/v1/advisories/CUSTODY-2026-0001/withdraw", method: .post, headers: admin) {
                #expect($0.status == .conflict)
            }
            try await client.execute(uri: "/v1/advisories/NOPE", method: .get, headers: admin) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/v1/verify", method: .post, headers: admin, body: verify) { response in
                let decision = try JSONDecoder().decode(API.Decision.self, from: Self.body(response))
                #expect(!decision.reasons.joined().contains("CUSTODY-2026-0001"), "a withdrawn advisory no longer denies")
            }
        }
        #expect(try await HardeningTests.events(services, "advisory.add").count == 1, "the unchanged document is not recorded again")
        #expect(try await HardeningTests.events(services, "advisory.withdraw").count == 1)
    }

    @Test func operationsAnswerWithoutAToken() async throws {
        let (services, _, root) = try await ControllerRouterTests.registry()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await Application(router: buildRouter(services)).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect(String(buffer: $0.body) == "ok\n") }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "ready\n")
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(String(buffer: response.body).contains("custody_publishes_total 1"))
            }
            try await client.execute(uri: "/v1/registry", method: .get) { response in
                let info = try JSONDecoder().decode(API.RegistryInfo.self, from: Self.body(response))
                #expect(info.keyHint == services.registryKey.publicKey.hint)
            }
        }
    }

    @Test func lineageExposureAndExportAnswerAuditors() async throws {
        let (services, secret, root) = try await ControllerRouterTests.registry()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let admin: HTTPFields = [.authorization: "Bearer \(secret)", .contentType: "application/json"]
        try await Application(router: buildRouter(services)).test(.router) { client in
            try await client.execute(
                uri: "/v1/verify", method: .post, headers: admin, body: ByteBuffer(string: #"{"model": "acme/m@1", "environment": "production"}"#)
            ) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/v1/audit/lineage/acme/m/1", method: .get, headers: admin) { response in
                let lineage = try JSONDecoder().decode(API.Lineage.self, from: Self.body(response))
                #expect(lineage.reference == "acme/m@1")
                #expect(lineage.upstream.isEmpty && lineage.downstream.isEmpty)
            }
            try await client.execute(uri: "/v1/audit/lineage/acme/m/2", method: .get, headers: admin) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/v1/audit/exposure/acme/m/1", method: .get, headers: admin) { response in
                let exposure = try JSONDecoder().decode(API.VersionExposure.self, from: Self.body(response))
                #expect(exposure.versions.first?.uses.map(\.type) == ["decision"])
                #expect(exposure.environments == ["production"])
            }
            let lines = try await client.execute(uri: "/v1/audit/export?format=csv", method: .get, headers: admin) { response in
                String(buffer: response.body).split(separator: "\n")
            }
            // The export's own token use is recorded before it streams.
            let size = try await services.database.logSize()
            #expect(lines.first == "index,id,at,type,actor,model,version,environment,client,detail,count")
            #expect(lines.count == Int(size) + 1, "a header and one line per event")
            try await client.execute(uri: "/v1/audit/export?format=xml", method: .get, headers: admin) { #expect($0.status == .badRequest) }
        }
    }
}
