import CustodyCore
import CustodyTestSupport
import Foundation
import Testing

@testable import CustodyPolicy

@Suite("CVSS v3 base scores")
struct CVSSTests {
    @Test(arguments: [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 6.5),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.8),
        ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", 7.2),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
    ])
    func scores(vector: String, expected: Double) throws {
        #expect(try CVSS3.baseScore(vector) == expected)
    }

    /// FIRST's calculator on every CVSS 3.0/3.1 base-metric combination (and two vectors with temporal and
    /// environmental metrics), read in place from the shared corpus: every base score and severity equal.
    @Test(.enabled(if: SharedCorpus.path("cvss") != nil)) func everyCorpusVectorScoresAsFIRSTsCalculator() throws {
        let table = try String(contentsOfFile: try #require(SharedCorpus.path("cvss")) + "/vectors.tsv", encoding: .utf8)
        var rows = 0
        var wrong: [String] = []
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: "\t").map(String.init)
            guard fields.count >= 4, let expected = Double(fields[2]) else { continue }
            rows += 1
            do {
                let score = try CVSS3.baseScore(fields[0])
                let severity = Severity(score: score).rawValue
                if score != expected || severity != fields[3].lowercased() {
                    wrong.append("\(fields[0]): \(score) \(severity), FIRST \(expected) \(fields[3])")
                }
            } catch {
                wrong.append("\(fields[0]): \(error)")
            }
        }
        #expect(rows == 5186)
        #expect(wrong.isEmpty, "\(wrong.count) differ, first: \(wrong.prefix(5))")
    }

    @Test func malformedVectorsAreRefused() {
        #expect(throws: CVSS3.Invalid.self) { try CVSS3.baseScore("CVSS:3.1/AV:N/AC:L") }
        #expect(throws: CVSS3.Invalid.self) { try CVSS3.baseScore("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N") }
        #expect(throws: CVSS3.Invalid.self) { try CVSS3.baseScore("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") }
        #expect(Severity(score: 9.8) == .critical)
        #expect(Severity(score: 6.9) == .medium)
        #expect(Severity(score: 7.0) == .high)
    }
}

@Suite("OSV advisories")
struct AdvisoryTests {
    static func osv(
        _ affected: String, severity: String = #""severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]"#
    ) -> [UInt8] {
        Array(#"{"id": "x_CUSTODY-2026-0001", "modified": "2026-11-01T00:00:00Z", \#(severity), "affected": [\#(affected)]}"#.utf8)
    }

    @Test func explicitVersionsRangesAndDigests() throws {
        let order = ["1.0.0", "1.1.0", "2.0.0", "2.1.0"]
        let explicit = try Advisory(osv: Self.osv(#"{"package": {"ecosystem": "Custody", "name": "acme/m"}, "versions": ["1.1.0"]}"#))
        #expect(explicit.severity == .critical && explicit.score == 9.8)
        #expect(explicit.affects(model: "acme/m", version: "1.1.0", digest: "", order: order))
        #expect(!explicit.affects(model: "acme/m", version: "1.0.0", digest: "", order: order))
        #expect(!explicit.affects(model: "acme/other", version: "1.1.0", digest: "", order: order))

        let semver = try Advisory(
            osv: Self.osv(
                #"{"package": {"ecosystem": "Custody", "name": "acme/m"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.1.0"}, {"fixed": "2.1.0"}]}]}"#
            ))
        #expect(order.filter { semver.affects(model: "acme/m", version: $0, digest: "", order: order) } == ["1.1.0", "2.0.0"])

        let ecosystem = try Advisory(
            osv: Self.osv(
                #"{"package": {"ecosystem": "Custody", "name": "acme/m"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": "2.0.0"}]}]}"#
            ))
        #expect(order.filter { ecosystem.affects(model: "acme/m", version: $0, digest: "", order: order) } == ["1.0.0", "1.1.0", "2.0.0"])

        let digest = "sha256:" + String(repeating: "ab", count: 32)
        let byDigest = try Advisory(
            osv: Self.osv(#"{"database_specific": {"digests": ["\#(digest)"]}}"#, severity: #""database_specific": {"severity": "HIGH"}"#))
        #expect(byDigest.severity == .high && byDigest.score == nil)
        #expect(byDigest.affects(model: "any/model", version: "9", digest: digest, order: []))
    }

    /// OSV makes severity optional and also allows it per affected package.
    @Test func severityIsOptionalAndMayBePerPackage() throws {
        let unscored = try Advisory(
            osv: Self.osv(#"{"package": {"ecosystem": "Custody", "name": "acme/m"}, "versions": ["1"]}"#, severity: #""summary": "x""#))
        #expect(unscored.severity == .unknown && unscored.score == nil)
        #expect(unscored.severityBasis.hasPrefix("unscored"))
        let perPackage = try Advisory(
            osv: Self.osv(
                #"{"package": {"ecosystem": "Custody", "name": "acme/m"}, "versions": ["1"], "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}]}, {"package": {"ecosystem": "Custody", "name": "acme/n"}, "versions": ["1"], "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N"}]}"#,
                severity: #""summary": "x""#))
        #expect(perPackage.severity == .high && perPackage.score == 7.5, "the highest of the packages' scores")
        let v4Only = try Advisory(
            osv: Self.osv(
                #"{"package": {"ecosystem": "Custody", "name": "acme/m"}, "versions": ["1"]}"#,
                severity: #""severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]"#))
        #expect(v4Only.severity == .unknown)
    }

    /// The real OSV records of the shared corpus (none names a Custody model): each is either a Custody advisory or
    /// skipped as foreign, never refused for its shape; rewritten for the Custody ecosystem, each is accepted with the
    /// severity its vectors give.
    @Test(.enabled(if: Self.corpus != nil)) func realRecordsAreAcceptedOrSkippedAsForeign() throws {
        let directory = try #require(Self.corpus) + "/records"
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }.sorted()
        #expect(names.count == 11)
        for name in names {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))
            do {
                _ = try Advisory(osv: bytes)
                Issue.record("\(name) names no Custody model, yet was accepted as one")
            } catch {
                #expect(error.isForeign, "\(name): \(error.description)")
            }
            var object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
            let entries = (object["affected"] as? [[String: Any]]) ?? []
            object["affected"] = entries.map { entry -> [String: Any] in
                var entry = entry
                entry["package"] = ["ecosystem": "Custody", "name": "acme/model"]
                entry["ranges"] = ((entry["ranges"] as? [[String: Any]]) ?? []).filter { $0["type"] as? String != "GIT" }
                if (entry["ranges"] as? [Any])?.isEmpty == true, entry["versions"] == nil { entry["versions"] = ["1"] }
                if (entry["versions"] as? [Any])?.isEmpty == true, (entry["ranges"] as? [Any])?.isEmpty != false { entry["versions"] = ["1"] }
                return entry
            }
            let rewritten = Array(try JSONSerialization.data(withJSONObject: object))
            let advisory = try Advisory(osv: rewritten)
            #expect(advisory.severity == (name.hasPrefix("PYSEC-2023-252") ? .high : .unknown), "\(name): \(advisory.severityBasis)")
        }
    }

    static var corpus: String? { SharedCorpus.path("osv") }

    @Test func malformedAdvisoriesNameTheField() {
        func message(_ bytes: [UInt8]) -> String {
            do {
                _ = try Advisory(osv: bytes)
                return "accepted"
            } catch { return error.description }
        }
        #expect(message(Array("{".utf8)).contains("not valid JSON"))
        #expect(message(Array(#"{"id": "x", "affected": []}"#.utf8)).contains("modified"))
        #expect(
            message(Self.osv(#"{"package": {"ecosystem": "custody", "name": "acme/m"}, "versions": ["1"]}"#))
                == "affected[0].package.ecosystem: 'custody' differs only in case from 'Custody', the ecosystem name")
        #expect(
            message(Self.osv(#"{"package": {"ecosystem": "PyPI", "name": "torch"}, "versions": ["1"]}"#)).contains(
                "no entry is for the Custody ecosystem"))
        #expect(
            message(Self.osv(#"{"package": {"ecosystem": "Custody", "name": "Not A Model"}, "versions": ["1"]}"#)).contains(
                "affected[0].package.name"))
        #expect(
            message(
                Self.osv(#"{"package": {"ecosystem": "Custody", "name": "acme/m"}, "ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}"#)
            ).contains("affected[0].ranges[0].type"))
        #expect(message(Self.osv(#"{"package": {"ecosystem": "Custody", "name": "acme/m"}}"#)).contains("list the affected versions"))
    }
}

@Suite("Licence classes")
struct LicenceTests {
    @Test(
        arguments: [
            ("apache-2.0", nil, LicenceClass.permissive), ("MIT", nil, .permissive), ("bsd-3-clause", nil, .permissive),
            ("llama3.1", nil, .conditional), ("gemma", nil, .conditional), ("cc-by-nc-4.0", nil, .research),
            ("cc-by-nc-sa-4.0", nil, .research), ("mrl", nil, .research), ("other", "Llama 3.1 Community License", .conditional),
            ("other", "Some Custom Licence", .unknown), ("weird-1.0", nil, .unknown), (nil, nil, .unknown),
        ] as [(String?, String?, LicenceClass)])
    func classification(id: String?, name: String?, expected: LicenceClass) {
        #expect(LicenceTable.defaults.classify(id: id, name: name).licenceClass == expected)
    }

    /// Every licence id of the Hub's model-card list, and the `license_name` values of the large open-weight families.
    @Test(
        arguments: [
            ("afl-3.0", nil, LicenceClass.permissive), ("artistic-2.0", nil, .permissive), ("bsd", nil, .permissive),
            ("bsd-2-clause", nil, .permissive), ("bsd-3-clause-clear", nil, .permissive), ("cc0-1.0", nil, .permissive),
            ("cc-by-2.0", nil, .permissive), ("cc-by-2.5", nil, .permissive), ("cc-by-3.0", nil, .permissive), ("cc-by-4.0", nil, .permissive),
            ("cc-by-sa-3.0", nil, .permissive), ("cc-by-sa-4.0", nil, .permissive), ("cc-by-nc-2.0", nil, .research),
            ("cc-by-nc-3.0", nil, .research), ("cc-by-nd-4.0", nil, .conditional), ("cc-by-nc-nd-3.0", nil, .research),
            ("cc-by-nc-nd-4.0", nil, .research), ("cc-by-nc-sa-2.0", nil, .research), ("cc-by-nc-sa-3.0", nil, .research),
            ("cdla-sharing-1.0", nil, .permissive), ("cdla-permissive-1.0", nil, .permissive), ("cdla-permissive-2.0", nil, .permissive),
            ("wtfpl", nil, .permissive), ("ecl-2.0", nil, .permissive), ("epl-1.0", nil, .permissive), ("epl-2.0", nil, .permissive),
            ("etalab-2.0", nil, .permissive), ("eupl-1.1", nil, .permissive), ("eupl-1.2", nil, .permissive), ("agpl-3.0", nil, .permissive),
            ("gfdl", nil, .permissive), ("gpl", nil, .permissive), ("gpl-2.0", nil, .permissive), ("gpl-3.0", nil, .permissive),
            ("lgpl", nil, .permissive), ("lgpl-2.1", nil, .permissive), ("lgpl-3.0", nil, .permissive), ("isc", nil, .permissive),
            ("h-research", nil, .research), ("intel-research", nil, .research), ("lppl-1.3c", nil, .permissive), ("ms-pl", nil, .permissive),
            ("apple-ascl", nil, .permissive), ("apple-amlr", nil, .research), ("mpl-2.0", nil, .permissive), ("odc-by", nil, .permissive),
            ("odbl", nil, .permissive), ("openmdw-1.0", nil, .permissive), ("openrail++", nil, .conditional), ("osl-3.0", nil, .permissive),
            ("postgresql", nil, .permissive), ("ofl-1.1", nil, .permissive), ("ncsa", nil, .permissive), ("unlicense", nil, .permissive),
            ("zlib", nil, .permissive), ("pddl", nil, .permissive), ("lgpl-lr", nil, .permissive), ("deepfloyd-if-license", nil, .research),
            ("fair-noncommercial-research-license", nil, .research), ("llama2", nil, .conditional), ("llama3", nil, .conditional),
            ("llama3.2", nil, .conditional), ("llama3.3", nil, .conditional), ("llama4", nil, .conditional), ("c-uda", nil, .research),
            ("openrail", nil, .conditional), ("bigscience-openrail-m", nil, .conditional), ("creativeml-openrail-m", nil, .conditional),
            ("bigscience-bloom-rail-1.0", nil, .conditional), ("bigcode-openrail-m", nil, .conditional), ("mit", nil, .permissive),
            ("bsl-1.0", nil, .permissive), ("cc", nil, .unknown), ("unknown", nil, .unknown),
            // license: other + license_name
            ("other", "deepseek-license", .conditional), ("other", "DeepSeek License", .conditional), ("other", "llama2", .conditional),
            ("other", "llama3", .conditional), ("other", "llama3.1", .conditional), ("other", "Llama 3.2 Community License", .conditional),
            ("other", "llama4", .conditional), ("other", "gemma", .conditional), ("other", "Gemma Terms of Use", .conditional),
            ("other", "qwen", .conditional), ("other", "tongyi-qianwen", .conditional), ("other", "qwen-research", .research),
            ("other", "tongyi-qianwen-research", .research), ("other", "mrl", .research), ("other", "mnpl", .research),
            ("other", "Mistral AI Non-Production License", .research), ("other", "falcon-llm-license", .conditional),
            ("other", "TII Falcon License 2.0", .conditional), ("other", "bigscience-openrail-m", .conditional),
            ("other", "creativeml-openrail-m", .conditional), ("other", "cc-by-nc-4.0", .research), ("other", "cc-by-nc-sa-4.0", .research),
            ("other", "apple-ascl", .permissive), ("other", "Apple Sample Code License", .permissive),
            ("other", "nvidia-open-model-license", .conditional), ("other", "NVIDIA Open Model License Agreement", .conditional),
            ("other", "phi", .permissive), ("other", "mit", .permissive), ("other", "stabilityai-community", .conditional),
        ] as [(String?, String?, LicenceClass)])
    func everyHubLicenceAndFamilyIsInTheTable(id: String?, name: String?, expected: LicenceClass) {
        let classified = LicenceTable.defaults.classify(id: id, name: name)
        #expect(classified.licenceClass == expected, "\(id ?? "-") \(name ?? "-"): \(classified.basis)")
        if expected == .conditional { #expect(!classified.obligations.isEmpty, "a conditional licence names its obligations") }
    }

    /// A research-class licence says which kind it is: non-commercial use, research only, or non-production.
    @Test(
        arguments: [
            ("cc-by-nc-4.0", nil, "non-commercial use only"), ("cc-by-nc-nd-4.0", nil, "no derivatives"),
            ("other", "Qwen Research License Agreement", "research and evaluation only"), ("mrl", nil, "research and evaluation only"),
            ("other", "Mistral AI Non-Production License", "non-production use only"), ("apple-amlr", nil, "research and evaluation only"),
            ("other", "nvidia-oneway-noncommercial-license", "non-commercial use only"),
        ] as [(String?, String?, String)])
    func researchLicencesNameTheirKind(id: String?, name: String?, obligation: String) {
        let classified = LicenceTable.defaults.classify(id: id, name: name)
        #expect(classified.licenceClass == .research)
        #expect(classified.obligations.contains { $0.contains(obligation) }, "\(classified.obligations)")
    }

    @Test func conditionalLicencesCarryObligationsAndTheTableIsData() throws {
        #expect(LicenceTable.defaults.classify(id: "llama3.1", name: nil).obligations.contains { $0.contains("700 million") })
        let override = try LicenceTableFile.parse(
            "licenses:\n  weird-1.0: {class: research}\n  apache-2.0: {class: conditional, obligations: [\"ask legal\"]}\n", source: "licenses.yaml")
        let table = LicenceTable.defaults.merging(override)
        #expect(table.classify(id: "weird-1.0", name: nil).licenceClass == .research)
        #expect(table.classify(id: "apache-2.0", name: nil).obligations == ["ask legal"])
        #expect(LicenceClass.declared("commercial") == [.permissive, .conditional])
        #expect(LicenceClass.declared("restricted") == [.conditional])
        #expect(LicenceClass.declared("research-only") == [.research])
        #expect(LicenceClass.declared("nonsense") == nil)
    }
}

@Suite("Policies")
struct PolicyFileTests {
    static let production = """
        description: production
        checks:
          signature: {}
          licence:
            allowed: [permissive, conditional]
          advisories:
            max_severity: medium
            accepted:
              - id: x_ACCEPTED
                until: 2026-12-31
                reason: mitigated
          provenance:
            required: [source]
          scan:
            max_verdict: clean
          formats:
            deny_pickle_based: true
        """

    @Test func errorsNameFileLineAndField() {
        func error(_ yaml: String) -> String {
            do {
                _ = try Policy(name: "p", yaml: yaml, source: "p.yaml")
                return "accepted"
            } catch { return error.description }
        }
        #expect(
            error("checks:\n  licence:\n    allowed: [permissive, commercial]\n").hasPrefix(
                "p.yaml:3: checks.licence.allowed: 'commercial' is not a licence class"))
        #expect(error("checks:\n  signatures: {}\n").hasPrefix("p.yaml:2: checks.signatures: unknown check"))
        #expect(error("checks:\n  advisories:\n    max_severity: severe\n").contains("p.yaml:3: checks.advisories.max_severity"))
        #expect(error("checks:\n  scan: {max_verdict: clean, mode: maybe}\n").contains("checks.scan.mode: 'maybe' is not deny or warn"))
        #expect(error("checks: [\n").contains("not valid YAML"))
        #expect(
            error("checks:\n  advisories:\n    max_severity: low\n    accepted:\n      - id: X\n        until: someday\n        reason: r\n")
                .contains("p.yaml:6"))
    }

    static func subject(
        licence: String = "apache-2.0", signed: Bool = true, verdict: Verdict = .clean, format: FileFormat = .safetensors,
        source: String? = "https://example.com", advisories: [Advisory] = [], status: API.VersionStatus = .active
    ) throws -> DecisionSubject {
        var report = FileReport(path: "model.bin", size: 1, format: format)
        report.verdict = verdict
        let detail = API.VersionDetail(
            model: "acme/m", version: "1", bundleDigest: try ContentDigest(parsing: "sha256:" + String(repeating: "0", count: 64)),
            createdAt: "2026-11-01T00:00:00Z", files: [], license: API.License(id: licence),
            provenance: API.Provenance(source: source.map { API.Source(uri: $0, revision: nil) }),
            signatures: [API.SignatureInfo(kind: .publisher, status: signed ? .verified : .unsigned, keyName: signed ? "ci" : nil, keyHint: nil)],
            scan: BundleReport(files: [report]))
        return DecisionSubject(
            detail: detail, status: status, licence: LicenceTable.defaults.classify(id: licence, name: nil), advisories: advisories)
    }

    @Test func everyCheckReportsAndDenialsSayWhy() throws {
        let policy = try Policy(name: "production", yaml: Self.production, source: "production.yaml")
        let now = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18
        let good = Evaluator.evaluate(try Self.subject(licence: "llama3.1"), policy: policy, environment: "production", now: now)
        #expect(good.allowed)
        #expect(
            good.checks.map(\.check) == ["status", "signature", "licence", "advisories", "provenance", "namespaces", "scan", "formats", "max_age"])
        #expect(good.checks.first { $0.check == "namespaces" }?.result == .notApplicable)
        #expect(!good.obligations.isEmpty)
        #expect(good.policy.digest.hasPrefix("sha256:"))

        let research = Evaluator.evaluate(try Self.subject(licence: "cc-by-nc-4.0"), policy: policy, environment: "production", now: now)
        #expect(!research.allowed)
        #expect(
            research.reasons == ["licence: licence class research (cc-by-nc-4.0) is not allowed in production (allowed: permissive, conditional)"])

        let unsigned = Evaluator.evaluate(try Self.subject(signed: false, format: .pickle), policy: policy, environment: "production", now: now)
        #expect(Set(unsigned.checks.filter { $0.result == .failed }.map(\.check)) == ["signature", "formats"])

        let advisory = try Advisory(osv: AdvisoryTests.osv(#"{"package": {"ecosystem": "Custody", "name": "acme/m"}, "versions": ["1"]}"#))
        let exposed = Evaluator.evaluate(try Self.subject(advisories: [advisory]), policy: policy, environment: "production", now: now)
        #expect(exposed.reasons.first?.contains("x_CUSTODY-2026-0001 (critical 9.8)") == true)

        var accepted = advisory
        accepted.id = "x_ACCEPTED"
        #expect(Evaluator.evaluate(try Self.subject(advisories: [accepted]), policy: policy, environment: "production", now: now).allowed)
        let later = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15: the acceptance expired
        let expired = Evaluator.evaluate(try Self.subject(advisories: [accepted]), policy: policy, environment: "production", now: later)
        #expect(expired.reasons.first?.contains("acceptance expired on 2026-12-31") == true)

        let yanked = Evaluator.evaluate(
            try Self.subject(status: API.VersionStatus(state: .yanked, reason: "bad weights", by: "token:x")), policy: policy,
            environment: "production", now: now)
        #expect(yanked.reasons == ["status: the version was yanked by token:x: bad weights"])

        // An advisory nobody scored: production's policy says what that means.
        let unscoredAdvisory = try Advisory(
            osv: AdvisoryTests.osv(#"{"package": {"ecosystem": "Custody", "name": "acme/m"}, "versions": ["1"]}"#, severity: #""summary": "x""#))
        let unscored = Evaluator.evaluate(try Self.subject(advisories: [unscoredAdvisory]), policy: policy, environment: "production", now: now)
        #expect(unscored.reasons == ["advisories: open advisory above medium or unscored: x_CUSTODY-2026-0001 (unknown)"], "\(unscored.reasons)")
        for (mode, result) in [("warn", API.Decision.Check.Result.warning), ("ignore", .passed)] {
            let lenient = try Policy(name: "p", yaml: "checks:\n  advisories: {max_severity: medium, unscored: \(mode)}\n", source: "p.yaml")
            let decision = Evaluator.evaluate(try Self.subject(advisories: [unscoredAdvisory]), policy: lenient, environment: "p", now: now)
            #expect(decision.allowed && decision.checks.first { $0.check == "advisories" }?.result == result, "\(mode): \(decision.checks)")
        }
        #expect(throws: Policy.Invalid.self) {
            try Policy(name: "p", yaml: "checks:\n  advisories: {max_severity: medium, unscored: maybe}\n", source: "p.yaml")
        }

        let warnPolicy = try Policy(name: "staging", yaml: "checks:\n  signature: {mode: warn}\n", source: "staging.yaml")
        let warned = Evaluator.evaluate(try Self.subject(signed: false), policy: warnPolicy, environment: "staging", now: now)
        #expect(warned.allowed)
        #expect(warned.warnings.count == 1)
    }

    /// A decision says when time alone could change it, and until then evaluating again answers the same.
    @Test func evaluationsSayWhenTimeChangesThem() throws {
        let policy = try Policy(name: "production", yaml: Self.production, source: "production.yaml")
        let now = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18
        #expect(Evaluator.evaluation(try Self.subject(), policy: policy, environment: "production", now: now).changesAt == nil)

        var accepted = try Advisory(osv: AdvisoryTests.osv(#"{"package": {"ecosystem": "Custody", "name": "acme/m"}, "versions": ["1"]}"#))
        accepted.id = "x_ACCEPTED"
        let subject = try Self.subject(advisories: [accepted])
        let first = Evaluator.evaluation(subject, policy: policy, environment: "production", now: now)
        let expiry = try #require(first.changesAt)
        #expect(first.decision.allowed)
        let justBefore = Evaluator.evaluation(subject, policy: policy, environment: "production", now: expiry.addingTimeInterval(-0.01))
        #expect(justBefore.decision.checks == first.decision.checks)
        #expect(!Evaluator.evaluation(subject, policy: policy, environment: "production", now: expiry).decision.allowed)

        let aging = try Policy(name: "fresh", yaml: "checks:\n  max_age: {days: 30}\n", source: "fresh.yaml")
        let young = Evaluator.evaluation(try Self.subject(), policy: aging, environment: "fresh", now: now)
        let nextDay = try #require(young.changesAt)
        #expect(nextDay > now && nextDay.timeIntervalSince(now) <= 86_400)
        let sameDay = Evaluator.evaluation(try Self.subject(), policy: aging, environment: "fresh", now: nextDay.addingTimeInterval(-1))
        #expect(sameDay.decision.checks == young.decision.checks)
        let older = Evaluator.evaluation(try Self.subject(), policy: aging, environment: "fresh", now: nextDay)
        #expect(older.decision.checks != young.decision.checks)
    }
}
