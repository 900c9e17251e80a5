import CustodyCore
import CustodyPolicy
import CustodyRegistry
import CustodyStorage
import CustodyStore
import Foundation
import GRDB
import Testing

@testable import CustodyServer

/// The gate's central invariant, as a seeded property test: whatever sequence of publishes, status changes, advisory
/// adds and withdrawals, policy reloads and clock steps happened — also with requests in flight while they did — the
/// ruling the gate keeps and answers with equals what a gate with empty caches evaluates afresh over the same
/// database, policies and clock, in every field but `evaluatedAt`.
@Suite struct GatePropertyTests {
    /// SplitMix64: small, seeded, the same sequence on every machine.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// One registry home: a database file, a policy directory and a trust directory, and the gate under test.
    final class World: @unchecked Sendable {
        let directory: String
        let database: RegistryDatabase
        let policies: PolicySet
        let trust: TrustStore
        let gate: GateService
        var random: Seeded
        var now = Date(timeIntervalSince1970: 1_800_000_000)
        var versions: [ModelName: [String]] = [:]
        var advisories: [String: (modified: Int, withdrawn: Bool)] = [:]
        var clockTick = 0
        let models = try! ["acme/base", "acme/tune", "lab/other"].map { try ModelName(parsing: $0) }
        let environments = ["production", "research"]
        static let versionLimit = 6
        static let advisoryLimit = 8

        init(seed: UInt64) throws {
            random = Seeded(state: seed)
            directory = NSTemporaryDirectory() + "custody-gate-property-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: directory + "/policies", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: directory + "/trusted", withIntermediateDirectories: true)
            // The registry's schema on an in-memory SQLite: the same SQL, no fsync per step.
            database = try RegistryDatabase(writer: try DatabaseQueue())
            try Self.writePolicies(directory, random: &random, advisoryIDs: [], now: now)
            policies = try PolicySet(directory: directory + "/policies", licencePath: directory + "/licenses.yaml")
            trust = TrustStore(directory: directory + "/trusted", log: database)
            gate = GateService(catalog: database, advisories: database, log: database, policies: policies, trust: trust, repeatWindow: .seconds(30))
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }

        static func writePolicies(_ directory: String, random: inout Seeded, advisoryIDs: [String], now: Date) throws {
            let severities = ["none", "low", "medium", "high", "critical"]
            for environment in ["production", "research"] {
                var yaml = "checks:\n"
                yaml +=
                    "  licence:\n    allowed: [\(["permissive", "permissive, conditional", "permissive, conditional, research"].randomElement(using: &random)!)]\n"
                yaml += "  advisories:\n    max_severity: \(severities.randomElement(using: &random)!)\n"
                yaml += "    unscored: \(["deny", "warn", "ignore"].randomElement(using: &random)!)\n"
                if let id = advisoryIDs.randomElement(using: &random), Bool.random(using: &random) {
                    let until = now.addingTimeInterval(Double(Int.random(in: 1...20, using: &random)) * 86_400)
                    yaml += "    accepted:\n      - {id: \(id), until: \(RFC3339.string(until)), reason: mitigated}\n"
                }
                if Bool.random(using: &random) { yaml += "  max_age:\n    days: \(Int.random(in: 1...30, using: &random))\n" }
                if Bool.random(using: &random) { yaml += "  provenance:\n    required: [source]\n" }
                if Bool.random(using: &random) { yaml += "  scan:\n    max_verdict: clean\n" }
                try yaml.write(toFile: "\(directory)/policies/\(environment).yaml", atomically: true, encoding: .utf8)
            }
        }

        // MARK: steps, each as the registry's own write path does it (the write, then the gate's invalidation)

        func publish() async throws {
            let model = models.randomElement(using: &random)!
            // A bounded world: a few versions per model keep every step's fresh evaluation cheap.
            guard (versions[model]?.count ?? 0) < Self.versionLimit else { return try await setStatus() }
            let version = "\((versions[model]?.count ?? 0) + 1)"
            let digest = ContentDigest.of(Array("\(model)@\(version)".utf8))
            var report = FileReport(path: "model.safetensors", size: 8, format: Bool.random(using: &random) ? .safetensors : .pickle)
            report.verdict = [.clean, .clean, .suspicious, .dangerous].randomElement(using: &random)!
            let base: [String] =
                model.description == "acme/tune"
                ? [["acme/base"], ["acme/base@1"], []].randomElement(using: &random)! : []
            let new = NewVersion(
                model: model, version: version, bundleDigest: digest,
                files: [API.FileEntry(path: "model.safetensors", size: 8, digest: digest)],
                license: API.License(id: ["apache-2.0", "llama3.1", "cc-by-nc-4.0", "weird-1.0"].randomElement(using: &random)!),
                provenance: API.Provenance(
                    source: Bool.random(using: &random) ? API.Source(uri: "https://example.com/\(model)") : nil, baseModels: base),
                publisherSignature: Bool.random(using: &random) ? SignatureRecord(status: .verified, keyName: "ci", keyHint: "k", bundle: nil) : nil,
                registrySignature: SignatureRecord(status: .verified, keyName: "registry", keyHint: nil, bundle: nil),
                publishedBy: "ci", scan: BundleReport(files: [report]))
            try await database.recordBlob(digest, size: 8)
            _ = try await database.publishVersion(new)
            gate.modelChanged(model)
            versions[model, default: []].append(version)
        }

        func setStatus() async throws {
            guard let (model, version) = anyVersion() else { return }
            let state = [API.VersionStatus.State.active, .yanked, .quarantined].randomElement(using: &random)!
            _ = try await database.setStatus(model, version: version, API.VersionStatus(state: state, reason: "r", by: "security"))
            gate.versionChanged(model, version: version)
        }

        func advise() async throws {
            let withdraw = !advisories.isEmpty && Int.random(in: 0..<3, using: &random) == 0
            // A bounded pool of ids: past it, a new record of an existing id is an update.
            let id =
                withdraw
                ? advisories.keys.sorted().randomElement(using: &random)!
                : "x_CUSTODY-2026-\(1000 + Int.random(in: 0..<Self.advisoryLimit, using: &random))"
            let modified = (advisories[id]?.modified ?? 0) + 1
            let model = models.randomElement(using: &random)!
            let scores = ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", nil]
            let score = scores.randomElement(using: &random)!
            var document: [String: Any] = [
                "id": id, "modified": RFC3339.string(Date(timeIntervalSince1970: 1_790_000_000 + Double(modified))),
                "affected": [
                    [
                        "package": ["ecosystem": "Custody", "name": model.description],
                        "versions": (1...3).map(String.init).filter { _ in Bool.random(using: &random) } + ["1"],
                    ]
                ],
            ]
            if let score { document["severity"] = [["type": "CVSS_V3", "score": score]] }
            if withdraw { document["withdrawn"] = RFC3339.string(Date(timeIntervalSince1970: 1_790_000_000 + Double(modified))) }
            let advisory = try Advisory(osv: Array(try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])))
            let stored = StoredAdvisory(
                id: advisory.id, modified: advisory.modified, withdrawn: advisory.withdrawn, severity: advisory.severity.rawValue,
                score: advisory.score, summary: advisory.summary, models: advisory.models.sorted(), document: advisory.document)
            _ = try await database.saveAdvisory(stored, event: NewEvent(type: .advisoryAdded, actor: "security", detail: id))
            try await gate.advisoriesChanged()
            advisories[id] = (modified, withdraw)
        }

        func reloadPolicies() throws {
            try Self.writePolicies(directory, random: &random, advisoryIDs: advisories.keys.sorted(), now: now)
            try policies.reload()
        }

        func stepClock() {
            now = now.addingTimeInterval(Double(Int.random(in: 1...(3 * 86_400), using: &random)))
        }

        func anyVersion() -> (ModelName, String)? {
            let published = models.filter { versions[$0]?.isEmpty == false }
            guard let model = published.randomElement(using: &random) else { return nil }
            return (model, versions[model]!.randomElement(using: &random)!)
        }

        // MARK: the invariant

        /// The kept ruling against a fresh evaluation; nil when they agree.
        func disagreement(_ model: ModelName, _ version: String, _ environment: String, fresh: GateService) async throws -> String? {
            let kept = try await gate.ruling(model, .version(version), environment: environment, now: now)
            let evaluated = try await fresh.ruling(model, .version(version), environment: environment, now: now)
            let (a, b) = (kept.decision(at: "-"), evaluated.decision(at: "-"))
            guard a != b else { return nil }
            return
                "\(model)@\(version) in \(environment): kept \(a.allowed) \(a.checks.map { "\($0.check):\($0.result.rawValue)" }), fresh \(b.allowed) \(b.checks.map { "\($0.check):\($0.result.rawValue)" })"
        }
    }

    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func keptRulingsEqualFreshEvaluations(seed: UInt64) async throws {
        let world = try World(seed: seed)
        try await world.gate.prime()
        let steps = Int(ProcessInfo.processInfo.environment["GATE_STEPS"] ?? "2500")!
        var failures: [String] = []
        for step in 0..<steps where failures.isEmpty {
            let operation = Int.random(in: 0..<100, using: &world.random)
            // Sometimes a request is under way while the registry changes: what it reads must not be kept past the change.
            let inFlight = world.anyVersion().map { target in
                let environment = world.environments.randomElement(using: &world.random)!
                let gate = world.gate
                let now = world.now
                return Task { _ = try? await gate.ruling(target.0, .version(target.1), environment: environment, now: now) }
            }
            switch operation {
            case 0..<20: try await world.publish()
            case 20..<35: try await world.setStatus()
            case 35..<50: try await world.advise()
            case 50..<58: try world.reloadPolicies()
            case 58..<75: world.stepClock()
            default: break
            }
            if Int.random(in: 0..<2, using: &world.random) == 0 { await inFlight?.value } else { inFlight?.cancel() }
            await inFlight?.value
            guard let (model, version) = world.anyVersion() else { continue }
            // A gate with empty caches over the same database, policies, trust and clock: evaluation afresh.
            let fresh = GateService(
                catalog: world.database, advisories: world.database, log: world.database, policies: world.policies, trust: world.trust,
                repeatWindow: .seconds(30))
            for environment in world.environments {
                if let problem = try await world.disagreement(model, version, environment, fresh: fresh) {
                    failures.append("seed \(seed), step \(step) (operation \(operation)): \(problem)")
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.first ?? "")")
    }
}
