import AsyncHTTPClient
import CustodyCore
import CustodyS3
import CustodyTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Two daemons of one registry on one PostgreSQL and one bucket (the engines `scripts/test-on-engines` starts; the
/// suite's second pass): what one does, the other sees at once — versions, status, the log — and checkpoint signing
/// moves to the survivor when the signer dies.
@Suite(.serialized, .enabled(if: !TestBackend.current.isEmbedded, "needs PostgreSQL and S3: scripts/test-on-engines"))
struct ClusterTests {
    /// Daemons A and B of a registry with the committed policies.
    static func cluster() throws -> (RegistryProcess, RegistryProcess) {
        let scratch = try Scratch()
        let home = scratch.path + "/Registry"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Tools.packageRoot + "/Registry/policies", toPath: home + "/policies")
        let a = try RegistryProcess(scratch: scratch)
        return (a, try RegistryProcess(sharing: a))
    }

    /// Whether `registry` allows `reference` in research now (one decision, over HTTP).
    static func allowed(_ registry: RegistryProcess, _ reference: String) throws -> Bool {
        let body = #"{"model": "\#(reference)", "environment": "research"}"#
        let answer = try registry.http(
            "POST", "/v1/verify", token: registry.adminToken, headers: ["Content-Type": "application/json"], body: Data(body.utf8))
        let decision = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any], "\(answer.body)")
        return try #require(decision["allowed"] as? Bool, "\(answer.body)")
    }

    @Test func whatOneDaemonDoesTheOtherSees() throws {
        let (a, b) = try Self.cluster()
        let model = try GateTests.model(a, "m", salt: "1")
        let published = try a.custody("publish", model, "--name", "acme/m", "--version", "1", "--license", "apache-2.0", "--quiet")
        try #require(published.status == 0, "\(published.stderr)")

        // Published through A, pulled through B: byte-identical, with the registry's signature verified.
        let output = b.scratch.path + "/pulled"
        let pulled = try b.custody(["pull", "acme/m@1", "--output", output, "--registry-key", a.registryPublicKey, "--quiet"])
        #expect(pulled.status == 0, "\(pulled.stderr)")
        var files = try tree(output)
        #expect(files.removeValue(forKey: "model.sig") != nil)
        #expect(files == (try tree(model)))

        // A yank through A: B, which allowed the version a moment ago (and keeps that decision), denies it. Each
        // round measures from A's answer to B's first denial; the worst case is printed (docs/benchmarks.md).
        var worst = Duration.zero
        for round in 1...10 {
            #expect(try Self.allowed(b, "acme/m@1"), "round \(round): allowed before the yank")
            #expect(try a.custody("status", "yank", "acme/m@1", "--reason", "round \(round)").status == 0)
            let yanked = ContinuousClock.now
            while try Self.allowed(b, "acme/m@1") { Thread.sleep(forTimeInterval: 0.005) }
            worst = max(worst, ContinuousClock.now - yanked)
            #expect(try a.custody("status", "restore", "acme/m@1", "--reason", "round \(round)").status == 0)
            while try !Self.allowed(b, "acme/m@1") { Thread.sleep(forTimeInterval: 0.005) }
        }
        print("cluster: yank through A → denied by B, worst of 10 rounds: \(worst)")

        // An advisory recorded through B reaches A's kept decisions the same way.
        #expect(try Self.allowed(a, "acme/m@1"))
        let advisory = b.scratch.path + "/advisory.json"
        try Data(
            #"{"id": "x_CUSTODY-2026-0901", "modified": "2026-12-01T00:00:00Z", "summary": "bad weights", "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}], "affected": [{"package": {"ecosystem": "Custody", "name": "acme/m"}, "versions": ["1"]}]}"#
                .utf8
        ).write(to: URL(fileURLWithPath: advisory))
        let recorded = try b.custody("advisory", "add", advisory)
        #expect(recorded.status == 0, "\(recorded.stderr)")
        while try Self.allowed(a, "acme/m@1") { Thread.sleep(forTimeInterval: 0.005) }
    }

    @Test func theSameBlobPublishedThroughBothIsOneObject() async throws {
        let (a, b) = try Self.cluster()
        let model = a.scratch.path + "/same"
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        try FaultTests.bigFile(model + "/weights.bin", size: 40 << 20)
        let publishers = try [(a, "1"), (b, "2")].map { registry, version in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try Tools.custody)
            process.arguments = ["publish", model, "--name", "acme/same", "--version", version, "--quiet"]
            process.environment = ProcessInfo.processInfo.environment.merging(
                ["CUSTODY_REGISTRY": registry.url, "CUSTODY_TOKEN": a.adminToken]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            let errors = registry.scratch.path + "/publish-\(version).err"
            _ = FileManager.default.createFile(atPath: errors, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
            try process.run()
            return (process, errors)
        }
        for (publisher, errors) in publishers {
            publisher.waitUntilExit()
            #expect(publisher.terminationStatus == 0, "\((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")")
        }
        let client = try Self.bucket(a)
        let objects = try await client.list(under: "blobs/")
        let digest = ContentDigest.of(Array(try Data(contentsOf: URL(fileURLWithPath: model + "/weights.bin"))))
        #expect(objects.filter { $0.name == "blobs/sha256/" + digest.hex }.count == 1, "one object: \(objects.map(\.name))")
        #expect(try await client.multipartUploads(under: "blobs/").isEmpty, "the loser's multipart upload was aborted")
        for (registry, version) in [(b, "1"), (a, "2")] {
            let output = registry.scratch.path + "/pulled-\(version)"
            #expect(
                try registry.custody("pull", "acme/same@\(version)", "--output", output, "--registry-key", a.registryPublicKey, "--quiet")
                    .status == 0)
        }
    }

    @Test func eventsAppendedThroughBothDaemonsMakeOneLogAndSigningMovesOnWhenTheSignerDies() throws {
        let (a, b) = try Self.cluster()
        let logKey = a.keys + "/log.pub"
        let before = try Self.logSize(a)

        // 1,000 events, alternately through A and B, two clients at a time (token creations: each is its event).
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { lane in
            for round in 0..<500 {
                let registry = (round + lane) % 2 == 0 ? a : b
                let body = #"{"role": "auditor", "name": "lane\#(lane)-\#(round)", "namespaces": [], "environments": []}"#
                let answer = try? registry.http(
                    "POST", "/v1/tokens", token: a.adminToken, headers: ["Content-Type": "application/json"], body: Data(body.utf8))
                if answer?.status != 201 { failures.withLock { $0.append(answer?.body ?? "no answer") } }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        // No gap: every event numbered once, in order, each leaf where its number says.
        var ids: [Int] = []
        var after = 0
        while true {
            let page = try a.custody("audit", "log", "--after", String(after), "--limit", "5000", "--json")
            let events = (try JSONSerialization.jsonObject(with: Data(page.stdout.utf8)) as? [String: Any])?["events"] as? [[String: Any]] ?? []
            if events.isEmpty { break }
            ids += events.compactMap { $0["id"] as? Int }
            after = ids.last ?? after
        }
        #expect(ids == Array(1...ids.count), "dense ids")
        #expect(ids.count >= before + 1_000)
        let tokens = (try JSONSerialization.jsonObject(with: Data(try b.custody("token", "list", "--json").stdout.utf8)) as? [[String: Any]]) ?? []
        #expect(tokens.count == 1_001, "the admin token and the 1,000 made")

        // A holds the signer's lease (it started first); both serve its checkpoints and both verify.
        let signed = try Self.waitForCheckpoint(a, size: ids.count)
        #expect(signed >= ids.count)
        for registry in [a, b] {
            let verified = try registry.custody("audit", "verify", "--log-key", logKey)
            #expect(verified.status == 0, "\(verified.stderr)")
        }
        let logsOfB = try String(contentsOfFile: b.scratch.path + "/serve-1.err", encoding: .utf8)
        #expect(!logsOfB.contains("signing log checkpoints"), "only A signs while it lives")

        // A dies; B takes the lease once it expires and signs what is appended after.
        a.stop(signal: SIGKILL)
        #expect(try b.custody("token", "create", "--role", "auditor", "--name", "after").status == 0)
        let size = try Self.logSize(b)
        #expect(try Self.waitForCheckpoint(b, size: size) >= size, "B signs once A's lease has expired")
        let logs = try String(contentsOfFile: b.scratch.path + "/serve-1.err", encoding: .utf8)
        #expect(logs.contains("signing log checkpoints"), "\(logs)")
        let verified = try b.custody("audit", "verify", "--log-key", logKey)
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("consistent with size"), "the checkpoints B signs extend A's: \(verified.stdout)")
    }

    // MARK: Support

    /// How many events the log holds, as `registry` exports them.
    static func logSize(_ registry: RegistryProcess) throws -> Int {
        try registry.custody("audit", "export", "--format", "jsonl").stdout.split(separator: "\n").count
    }

    /// Waits (without a deadline: a lease expiry is an event that comes) until `registry` serves a checkpoint of at
    /// least `size` events; returns its size.
    static func waitForCheckpoint(_ registry: RegistryProcess, size: Int) throws -> Int {
        while registry.process?.isRunning == true {
            let note = try registry.http("GET", "/v1/audit/checkpoint", token: registry.adminToken).body
            let lines = note.split(separator: "\n")
            if lines.count > 1, let signed = Int(lines[1]), signed >= size { return signed }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return 0
    }

    /// The bucket prefix `registry` stores its blobs under.
    static func bucket(_ registry: RegistryProcess) throws -> S3Client {
        let location = try S3Location(parsing: try #require(registry.environment["CUSTODY_BLOBS"]))
        return S3Client(
            location: location, credentials: .init(accessKey: TestBackend.s3AccessKey, secretKey: TestBackend.s3SecretKey),
            http: HTTPClient.shared)
    }
}
