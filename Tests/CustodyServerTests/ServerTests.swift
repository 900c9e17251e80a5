import CustodyCore
import CustodyPolicy
import CustodyRegistry
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import CustodyServer

@Suite struct ServerTests {
    static func services() async throws -> (RegistryServices, String, String) {
        let root = NSTemporaryDirectory() + "custody-server-" + UUID().uuidString
        var configuration = RegistryConfiguration(home: root + "/Registry", keys: root + "/Keys")
        configuration.port = 0
        let (services, secret) = try await RegistryServices.open(configuration, logger: Logger(label: "test"))
        return (services, try #require(secret), root)
    }

    @Test func healthAndProblemsOverTheRouter() async throws {
        let (services, secret, root) = try await Self.services()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let app = Application(router: buildRouter(services))
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/v1/models", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.contentType] == "application/problem+json")
                #expect(String(buffer: response.body).contains("needs a bearer token"))
            }
            try await client.execute(uri: "/v1/models/Bad_Name/x", method: .get, headers: [.authorization: "Bearer \(secret)"]) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/v1/models/acme/none", method: .get, headers: [.authorization: "Bearer \(secret)"]) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(String(buffer: response.body).contains("custody_http_requests_total"))
            }
        }
        let permissions = try FileManager.default.attributesOfItem(atPath: root + "/Keys/registry.key")[.posixPermissions] as? Int
        #expect(permissions == 0o600)
    }

    @Test(
        arguments: [
            ("bytes=0-9", 100, 0...9), ("bytes=90-", 100, 90...99), ("bytes=-10", 100, 90...99), ("bytes=50-500", 100, 50...99),
        ] as [(String, UInt64, ClosedRange<UInt64>)])
    func rangesAreParsed(header: String, size: UInt64, expected: ClosedRange<UInt64>) {
        #expect(ByteRange.parse(header, size: size) == expected)
    }

    @Test(arguments: ["bytes=100-", "bytes=5-2", "bytes=0-1,3-4", "items=0-1", "bytes=-0"])
    func unsatisfiableRangesAreRefused(header: String) {
        #expect(ByteRange.parse(header, size: 100) == nil)
    }

    @Test func sizesAndListenAddressesParse() throws {
        #expect(try ByteSize.parse("1TiB", source: "t") == 1 << 40)
        #expect(try ByteSize.parse("512 MiB", source: "t") == 512 << 20)
        #expect(throws: CustodyError.self) { try ByteSize.parse("lots", source: "t") }
        var configuration = RegistryConfiguration()
        try configuration.setListen("[::1]:9000", source: "t")
        #expect(configuration.host == "::1" && configuration.port == 9000)
        #expect(throws: CustodyError.self) { try configuration.setListen("localhost", source: "t") }
    }

    @Test func modelCardsFillLicenceAndProvenance() throws {
        let card = "---\nlicense: other\nlicense_name: llama3.1\nbase_model:\n  - meta-llama/Llama-3.1-8B\ndatasets: acme/chat\n---\n# Model\n"
        let front = try #require(ModelCard.frontMatter(of: card))
        let fields = try ModelCard.parse(front)
        #expect(fields.license == "other" && fields.licenseName == "llama3.1")
        #expect(fields.baseModels == ["meta-llama/Llama-3.1-8B"])
        #expect(fields.datasets == ["acme/chat"])
        #expect(ModelCard.frontMatter(of: "# No front matter\n") == nil)
    }

    /// A kept decision answers with exactly the bytes the JSON encoder writes for it at the time of the answer,
    /// whatever its strings hold.
    @Test func keptDecisionsAnswerWithTheEncodersBytes() throws {
        let digest = try ContentDigest(parsing: "sha256:" + String(repeating: "ab", count: 32))
        let tricky = #"quote " backslash \ slash / "evaluatedAt":"2020-01-01T00:00:00Z" unicode é \u{1}"#
        for allowed in [true, false] {
            let decision = API.Decision(
                allowed: allowed, environment: "production", policy: .init(name: "production", digest: "sha256:00"),
                model: "acme/m", version: "1.0", bundleDigest: digest,
                checks: [.init(check: "licence", result: allowed ? .passed : .failed, reason: tricky)],
                licence: LicenceClassification(licenceClass: .conditional, basis: tricky, obligations: ["attribution"], note: allowed ? nil : tricky),
                obligations: ["attribution"], rollback: allowed ? nil : .init(version: "0.9", bundleDigest: digest),
                evaluatedAt: "2026-11-29T17:00:00Z")
            let ruling = try Ruling(Evaluation(decision: decision, changesAt: nil), policies: 1)
            for time in ["2026-11-29T17:00:01Z", "2031-01-01T00:00:00Z"] {
                let expected = try Response.encoder().encode(ruling.decision(at: time))
                #expect(Array(ruling.body(at: time).readableBytesView) == Array(expected))
            }
            #expect(
                ruling.eventDetail.hasPrefix(allowed ? "allowed by policy production sha256:00" : "denied by policy production sha256:00: licence: "))
        }
    }
}
