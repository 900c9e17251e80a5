import CustodyCore
import CustodyStorage
import CustodyStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

@testable import CustodyRegistry
@testable import CustodyServer

/// Limits a hostile or unlucky client meets over the router: body limits, failed-authentication floods, full disks.
@Suite struct HardeningTests {
    static func services(
        _ adjust: (inout RegistryConfiguration) -> Void = { _ in },
        disk: @escaping @Sendable (String) -> DiskSpace.Reading? = DiskSpace.statfs
    ) async throws -> (RegistryServices, String, String) {
        let root = NSTemporaryDirectory() + "custody-hardening-" + UUID().uuidString
        var configuration = RegistryConfiguration(home: root + "/Registry", keys: root + "/Keys")
        configuration.port = 0
        adjust(&configuration)
        let (services, secret) = try await RegistryServices.open(configuration, logger: Logger(label: "test"), diskProbe: disk)
        return (services, try #require(secret), root)
    }

    static func events(_ services: RegistryServices, _ type: String) async throws -> [API.Event] {
        var filter = EventFilter()
        filter.types = [type]
        return try await services.database.events(filter)
    }

    /// Every route that takes a request body other than a blob.
    static let bodyRoutes: [(HTTPRequest.Method, String)] = [
        (.post, "/v1/models/acme/m/versions"), (.post, "/v1/tokens"), (.post, "/v1/blobs/missing"), (.post, "/v1/verify"),
        (.post, "/v1/policies/reload"), (.post, "/v1/policies/production/test"), (.post, "/v1/advisories"),
        (.post, "/v1/advisories/x_CUSTODY-2026-0001/withdraw"), (.post, "/v1/models/acme/m/versions/1/status"),
        (.post, "/v1/admission"), (.post, "/v1/gatekeeper?environment=production"), (.delete, "/v1/tokens/1"),
        (.get, "/v1/models"),
    ]

    @Test func everyBodyOverTheLimitIs413NamingIt() async throws {
        let (services, secret, root) = try await Self.services { $0.maxRequestSize = 1024 }
        defer { try? FileManager.default.removeItem(atPath: root) }
        let app = Application(router: buildRouter(services))
        let body = ByteBuffer(repeating: UInt8(ascii: " "), count: 4096)
        try await app.test(.router) { client in
            for (method, uri) in Self.bodyRoutes {
                // Declared: refused before a byte is read.
                try await client.execute(
                    uri: uri, method: method,
                    headers: [.authorization: "Bearer \(secret)", .contentLength: "4096", .contentType: "application/json"],
                    body: body
                ) { response in
                    #expect(response.status == .contentTooLarge, "\(method) \(uri)")
                    #expect(response.headers[.contentType] == "application/problem+json", "\(method) \(uri)")
                    #expect(String(buffer: response.body).contains("1024-byte limit for JSON requests (limits.maxRequestSize)"), "\(method) \(uri)")
                }
            }
            // Undeclared (streamed): refused where the body is read, with the same answer, never a 500.
            for (method, uri) in Self.bodyRoutes where method == .post && !uri.hasSuffix("/reload") && !uri.hasSuffix("/withdraw") {
                try await client.execute(uri: uri, method: method, headers: [.authorization: "Bearer \(secret)"], body: body) { response in
                    #expect(response.status == .contentTooLarge, "\(method) \(uri) streamed: \(String(buffer: response.body))")
                    #expect(String(buffer: response.body).contains("limits.maxRequestSize"), "\(method) \(uri)")
                }
            }
            // A blob upload is bounded by limits.maxBlobSize instead.
            let digest = "sha256:" + String(repeating: "0", count: 64)
            try await client.execute(
                uri: "/v1/blobs/\(digest)", method: .put, headers: [.authorization: "Bearer \(secret)", .contentLength: "4096"], body: body
            ) { response in
                #expect(response.status == .badRequest, "a blob over the JSON limit is read and hashed: \(String(buffer: response.body))")
            }
        }
    }

    @Test func aFloodOfBadTokensIsCountedAndRateLimited() async throws {
        let (services, secret, root) = try await Self.services {
            $0.authFailureBurst = 3
            $0.authFailureWindow = .seconds(3600)
            $0.authFailureDelay = .zero
            $0.decisionRepeatWindow = .seconds(60)
        }
        defer { try? FileManager.default.removeItem(atPath: root) }
        let app = Application(router: buildRouter(services))
        let before = try await services.database.logSize()
        try await app.test(.router) { client in
            var statuses: [Int] = []
            for index in 0..<50 {
                try await client.execute(uri: "/v1/models?page=\(index)", method: .get, headers: [.authorization: "Bearer cst_bogus"]) { response in
                    statuses.append(response.status.code)
                    if response.status == .tooManyRequests {
                        #expect(response.headers[.retryAfter].flatMap { Int($0) }.map { $0 >= 1 } == true)
                        #expect(response.headers[.contentType] == "application/problem+json")
                        #expect(String(buffer: response.body).contains("too many failed authentications"))
                    }
                }
            }
            #expect(statuses.prefix(3).allSatisfy { $0 == 401 })
            #expect(statuses.dropFirst(3).allSatisfy { $0 == 429 })
            // A valid token from the same address is never limited.
            try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer \(secret)"]) { response in
                #expect(response.status == .ok)
            }
            for _ in 0..<20 {
                try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer \(secret)"]) { _ in }
            }
        }
        // The first refusal of each kind is on record before its answer; the rest are counted.
        let denied = try await Self.events(services, "request.denied")
        #expect(denied.count == 2, "\(denied.map(\.detail))")
        #expect(denied.first?.detail?.hasPrefix("GET /v1/models from ") == true)
        #expect(try await Self.events(services, "token.use").count == 1)
        try await services.gate.recorder.writeRepeats(all: true)
        let counted = try await Self.events(services, "request.denied")
        #expect(counted.count == 4)
        #expect(counted.compactMap(\.count).sorted() == [2, 46], "\(counted.map { ($0.detail ?? "", $0.count ?? 1) })")
        #expect(try await Self.events(services, "token.use").map { $0.count ?? 1 } == [1, 20])
        let after = try await services.database.logSize()
        #expect(after - before == 6, "71 requests, 6 leaves")
    }

    @Test func failureBudgetsRefillOnTheInjectedClock() {
        let clock = TestClock()
        let limiter = FailureLimiter(burst: 2, window: .seconds(60), now: { clock.now() })
        #expect(limiter.failure(from: "a") == .allowed)
        #expect(limiter.failure(from: "a") == .allowed)
        #expect(limiter.failure(from: "a") == .limited(retryAfter: 30))
        #expect(limiter.failure(from: "b") == .allowed, "budgets are per address")
        clock.advance(by: .seconds(29))
        #expect(limiter.failure(from: "a") == .limited(retryAfter: 1))
        clock.advance(by: .seconds(1))
        #expect(limiter.failure(from: "a") == .allowed)
        #expect(limiter.failure(from: "a") == .limited(retryAfter: 30))
        #expect(FailureLimiter(burst: 0, window: .seconds(60)).failure(from: "a") == .allowed, "0 turns the limit off")
    }

    @Test func aFullDiskIs507AndNotReady() async throws {
        let free = Mutex<UInt64>(5 << 20)
        let (services, secret, root) = try await Self.services(disk: { _ in
            DiskSpace.Reading(free: free.withLock { $0 }, total: 1 << 30)  // a 1 GiB disk: the floor is 1 % of it
        })
        defer { try? FileManager.default.removeItem(atPath: root) }
        let floor = UInt64((1 << 30) / 100)
        let app = Application(router: buildRouter(services))
        let digest = "sha256:" + String(repeating: "0", count: 64)
        try await app.test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("\(5 << 20) bytes free, below the \(floor)-byte floor"))
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(String(buffer: response.body).contains("custody_free_bytes \(5 << 20)"))
            }
            free.withLock { $0 = floor + (1 << 20) }
            try await client.execute(uri: "/readyz", method: .get) { response in #expect(response.status == .ok) }
            try await client.execute(
                uri: "/v1/blobs/\(digest)", method: .put, headers: [.authorization: "Bearer \(secret)", .contentLength: String(2 << 20)],
                body: ByteBuffer(repeating: 1, count: 2 << 20)
            ) { response in
                #expect(response.status.code == 507)
                #expect(response.headers[.contentType] == "application/problem+json")
                let detail = String(buffer: response.body)
                #expect(detail.contains("the registry has \(floor + (1 << 20)) bytes free and keeps \(floor)"), "\(detail)")
                #expect(detail.contains("a \(2 << 20)-byte blob needs \(2 << 20) more"), "\(detail)")
            }
        }
        let staged = try FileManager.default.contentsOfDirectory(atPath: services.configuration.dataDirectory + "/uploads")
        #expect(staged.isEmpty, "nothing staged: \(staged)")
        // Events still have room: the refusal of a request is recorded as usual.
        #expect(try await services.database.logSize() > 0)
    }

    @Test func staleUploadsExpireOnTheInjectedClock() async throws {
        let root = NSTemporaryDirectory() + "custody-janitor-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let blobs = try FileSystemBlobStore(root: root)
        let directory = root + "/uploads"
        let held = UploadID(resuming: ContentDigest.of(Array("held".utf8)))
        for name in [held.rawValue + ".partial", "x.upload", "README"] {
            #expect(FileManager.default.createFile(atPath: directory + "/" + name, contents: Data(count: 100)))
        }
        let now = Mutex(Date())
        let janitor = UploadJanitor(blobs: blobs, expiry: .seconds(3600), logger: Logger(label: "test"), now: { now.withLock { $0 } })
        #expect(await janitor.sweep() == 0, "fresh uploads stay")
        now.withLock { $0 = $0.addingTimeInterval(7200) }
        let upload = try await blobs.upload(held, resumingAt: 100)
        #expect(await janitor.sweep() == 100, "the old temporary upload goes; the one being received stays")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: directory)) == [held.rawValue + ".partial", "README"])
        await upload.suspend()
        #expect(await janitor.sweep() == 100)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["README"])
    }

    @Test func durationsAndFreeSpaceParse() throws {
        #expect(try RegistryConfiguration.period("30s", source: "t") == .seconds(30))
        #expect(try RegistryConfiguration.period("24h", source: "t") == .seconds(86400))
        #expect(try RegistryConfiguration.period("250ms", source: "t") == .milliseconds(250))
        #expect(try RegistryConfiguration.period("2m", source: "t") == .seconds(120))
        #expect(throws: CustodyError.self) { try RegistryConfiguration.period("0", source: "t") }
        #expect(throws: CustodyError.self) { try RegistryConfiguration.period("soon", source: "t") }
        #expect(try FreeSpace.parse("2GiB", source: "t") == FreeSpace(bytes: 2 << 30, percent: nil))
        #expect(try FreeSpace.parse("5%", source: "t").floor(total: 1000) == 50)
        #expect(FreeSpace.default.floor(total: 120 << 20) == (120 << 20) / 100, "a small volume keeps 1 %")
        #expect(FreeSpace.default.floor(total: 1 << 40) == 1 << 30, "a large one 1 GiB")
        #expect(throws: CustodyError.self) { try FreeSpace.parse("lots", source: "t") }
    }

    @Test func redirectsAreForConsumersWhoseEveryEnvironmentOptedIn() throws {
        typealias Document = RegistryConfiguration.FileDocument.Redirect
        let redirect = try RegistryConfiguration.redirect(Document(environments: ["edge", "lab"], expiry: "90s"), source: "t")
        #expect(redirect.expiry == .seconds(90))
        #expect(redirect.redirects(["edge"]) && redirect.redirects(["edge", "lab"]))
        #expect(!redirect.redirects(["edge", "production"]), "a token that also serves production is proxied")
        #expect(!redirect.redirects([]), "a token of no environment is proxied")
        #expect(try RegistryConfiguration.redirect(Document(environments: ["edge"]), source: "t").expiry == .seconds(300))
        for bad in [Document(environments: []), Document(environments: nil), Document(environments: ["edge"], expiry: "8d")] {
            #expect(throws: CustodyError.self) { try RegistryConfiguration.redirect(bad, source: "t") }
        }
    }
}

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let instant = Mutex(ContinuousClock.now)
    func now() -> ContinuousClock.Instant { instant.withLock { $0 } }
    func advance(by duration: Duration) { instant.withLock { $0 = $0.advanced(by: duration) } }
}
