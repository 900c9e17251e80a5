import ArgumentParser
import CustodyArchive
import CustodyClient
import CustodyCore
import CustodyPolicy
import Foundation

/// The decision, as people read it: the verdict, every check, the obligations and the rollback target.
enum DecisionText {
    static func render(_ decision: API.Decision) -> String {
        var lines = [
            "\(decision.model)@\(decision.version) in \(decision.environment): \(decision.allowed ? "ALLOWED" : "DENIED")",
            "  policy      \(decision.policy.name) \(decision.policy.digest)",
            "  licence     \(decision.licence.licenceClass.rawValue) (\(decision.licence.basis))",
        ]
        if let note = decision.licence.note { lines.append("  note        \(note)") }
        for check in decision.checks {
            let mark =
                switch check.result {
                case .passed: "ok  "
                case .failed: "FAIL"
                case .warning: "warn"
                case .notApplicable: "n/a "
                }
            lines.append("  \(mark)  \(check.check.padding(toLength: 11, withPad: " ", startingAt: 0)) \(check.reason)")
        }
        for obligation in decision.obligations { lines.append("  obligation  \(obligation)") }
        if let rollback = decision.rollback {
            lines.append("  rollback    \(decision.model)@\(rollback.version) (\(rollback.bundleDigest)) is allowed in \(decision.environment)")
        } else if !decision.allowed {
            lines.append("  rollback    no other version of \(decision.model) is allowed in \(decision.environment)")
        }
        return lines.joined(separator: "\n")
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the gate whether a version may run in an environment.",
        discussion: "Exit status: 0 allowed, 1 denied, 2 error. The decision is recorded in the registry's event log.")

    @Argument(help: "NAMESPACE/NAME@VERSION or NAMESPACE/NAME@sha256:<hex>.")
    var reference: String

    @Option(help: "The deployment environment (a policy in the registry's policies/).")
    var env: String

    @Flag(help: "Print the decision as JSON.")
    var json = false

    @OptionGroup var remote: RemoteOptions

    func run() async throws {
        _ = try ModelReference(parsing: reference)
        let decision: API.Decision = try await withClient(remote) { client in
            try await client.post("/v1/verify", body: API.VerifyRequest(model: reference, environment: env))
        }
        if json { try printJSON(decision) } else { print(DecisionText.render(decision)) }
        if !decision.allowed { throw ExitCode(1) }
    }
}

struct AdvisoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "advisory", abstract: "Record, list and withdraw security advisories (OSV JSON).",
        subcommands: [Add.self, Import.self, List.self, Show.self, Withdraw.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record an advisory (or a newer 'modified' of one) and print its exposure: affected versions and who used them.")

        @Argument(help: "An OSV JSON file; models are package ecosystem \"Custody\", name \"ns/name\".")
        var file: String

        @Flag(help: "Print the answer as JSON.")
        var json = false

        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let bytes = try PosixFile.contents(of: file, limit: 1 << 20)
            let added: API.AdvisoryAdded = try await withClient(remote) { client in try await client.post("/v1/advisories", json: bytes) }
            if json { return try printJSON(added) }
            let advisory = added.exposure.advisory
            print("\(added.created ? "recorded" : "updated") \(advisory.id): \(advisory.severity)\(advisory.score.map { " (\($0))" } ?? "")")
            print(ExposureText.render(added.exposure))
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record every OSV advisory in a directory, a .json file or an OSV export .zip (as osv.dev publishes per ecosystem).",
            discussion: """
                Each record is checked on its own: records that name no Custody model or bundle digest are skipped and \
                counted, invalid ones are listed with their reason, the rest are recorded (a record already recorded with \
                the same or a later 'modified' changes nothing, so importing again is harmless). Prints the counts and \
                the exposure of every advisory recorded or updated. Exit status: 0 every record recorded or skipped, 1 \
                some were invalid or refused (the others are recorded), 2 error (unreadable path, no registry).
                """)

        @Argument(help: "A directory of .json records, one .json record, or a .zip of them.")
        var path: String

        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("custody-osv-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            let records = try Self.records(at: path, scratch: scratch)
            var counts = (created: 0, updated: 0, unchanged: 0, skipped: 0, invalid: 0)
            var exposures: [API.AdvisoryAdded] = []
            try await withClient(remote) { client in
                for (name, bytes) in records {
                    switch Self.classify(bytes) {
                    case .foreign:
                        counts.skipped += 1
                        continue
                    case .invalid(let reason):
                        counts.invalid += 1
                        writeStandardError("custody: \(name): \(reason)\n")
                        continue
                    case .valid:
                        break
                    }
                    let added: API.AdvisoryAdded
                    do {
                        added = try await client.post("/v1/advisories", json: bytes)
                    } catch let error as CustodyError where [.invalidArgument, .conflict, .tooLarge].contains(error.code) {
                        counts.invalid += 1
                        writeStandardError("custody: \(name): \(error.message)\n")
                        continue
                    }
                    switch added.result ?? (added.created ? "created" : "updated") {
                    case "created": counts.created += 1
                    case "unchanged": counts.unchanged += 1
                    default: counts.updated += 1
                    }
                    if added.result != "unchanged" { exposures.append(added) }
                }
            }
            for added in exposures {
                let advisory = added.exposure.advisory
                print(
                    "\(added.result == "updated" ? "updated" : "recorded") \(advisory.id): \(advisory.severity)\(advisory.score.map { " (\($0))" } ?? "")"
                )
                print(ExposureText.render(added.exposure))
            }
            print(
                "\(records.count) records: \(counts.created) recorded, \(counts.updated) updated, \(counts.unchanged) unchanged, "
                    + "\(counts.skipped) skipped (no Custody model or digest), \(counts.invalid) invalid")
            if counts.invalid > 0 { throw ExitCode(1) }
        }

        enum Classified {
            case valid, foreign
            case invalid(String)
        }

        /// Checks a record here first, so that foreign ones are counted apart and invalid ones named by file.
        static func classify(_ bytes: [UInt8]) -> Classified {
            do throws(Advisory.Invalid) {
                _ = try Advisory(osv: bytes)
                return .valid
            } catch {
                return error.isForeign ? .foreign : .invalid(error.description)
            }
        }

        /// (name, bytes) of every record, in name order: `*.json` under a directory (recursively), one file, or the
        /// entries of a zip (unpacked with the bundle archive's limits into `scratch`).
        static func records(at path: String, scratch: String) throws(CustodyError) -> [(String, [UInt8])] {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CustodyError(.notFound, "\(path): no such file or directory")
            }
            var root = path
            if !isDirectory.boolValue {
                if path.lowercased().hasSuffix(".zip") {
                    try BundleArchive().extract(path, into: scratch)
                    root = scratch
                } else {
                    return [((path as NSString).lastPathComponent, try PosixFile.contents(of: path, limit: 1 << 20))]
                }
            }
            var records: [(String, [UInt8])] = []
            let enumerator = FileManager.default.enumerator(atPath: root)
            while let relative = enumerator?.nextObject() as? String {
                guard relative.lowercased().hasSuffix(".json") else { continue }
                records.append((relative, try PosixFile.contents(of: root + "/" + relative, limit: 1 << 20)))
            }
            return records.sorted { $0.0 < $1.0 }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List recorded advisories.")
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            struct Answer: Codable { var advisories: [API.AdvisorySummary] }
            let answer: Answer = try await withClient(remote) { client in try await client.get("/v1/advisories") }
            if json { return try printJSON(answer) }
            for advisory in answer.advisories {
                let state = advisory.withdrawn.map { "withdrawn \($0)" } ?? "open"
                print(
                    "\(advisory.id)  \(advisory.severity)\(advisory.score.map { " \($0)" } ?? "")  \(state)  \(advisory.models.joined(separator: ", "))  \(advisory.summary ?? "")"
                )
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an advisory's OSV document and its current exposure (JSON).")
        @Argument(help: "The advisory id.") var id: String
        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let bytes = try await withClient(remote) { client in try await client.bytes("/v1/advisories/\(id)") }
            let object = try JSONSerialization.jsonObject(with: Data(bytes))
            print(
                String(
                    decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]),
                    as: UTF8.self))
        }
    }

    struct Withdraw: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Withdraw an advisory: it stops affecting decisions.")
        @Argument(help: "The advisory id.") var id: String
        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let summary: API.AdvisorySummary = try await withClient(remote) { client in
                try await client.post("/v1/advisories/\(id)/withdraw", body: [String: String]())
            }
            print("withdrew \(summary.id) at \(summary.withdrawn ?? "?")")
        }
    }
}

enum ExposureText {
    static func render(_ exposure: API.Exposure) -> String {
        var lines: [String] = []
        if exposure.versions.isEmpty { lines.append("  no version in this registry is affected") }
        for version in exposure.versions {
            let total = version.uses.reduce(0) { $0 + $1.count }
            lines.append("  \(version.model)@\(version.version)  \(version.bundleDigest)  \(total) use\(total == 1 ? "" : "s")")
            for use in version.uses {
                lines.append(
                    "    \(use.type)\(use.allowed ? "" : " (denied)")  \(use.actor ?? "-")  \(use.environment ?? "ungated")  \(use.client ?? "-")  ×\(use.count)  \(use.first) … \(use.last)"
                )
            }
        }
        if !exposure.environments.isEmpty { lines.append("  environments: \(exposure.environments.joined(separator: ", "))") }
        if !exposure.tokens.isEmpty { lines.append("  tokens: \(exposure.tokens.joined(separator: ", "))") }
        if !exposure.unknownModels.isEmpty {
            lines.append("  not in this registry (matches nothing): \(exposure.unknownModels.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }
}

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Show, test and reload the environments' policies.",
        subcommands: [List.self, Show.self, Test.self, Reload.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the environments and their policy digests.")
        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            struct Answer: Codable { var policies: [[String: String]] }
            let answer: Answer = try await withClient(remote) { client in try await client.get("/v1/policies") }
            for policy in answer.policies { print("\(policy["environment"] ?? "")  \(policy["digest"] ?? "")  \(policy["description"] ?? "")") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print an environment's policy as deployed, with its digest.")
        @Argument(help: "The environment.") var environment: String
        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let answer: [String: String] = try await withClient(remote) { client in try await client.get("/v1/policies/\(environment)") }
            print("# \(environment) \(answer["digest"] ?? "") (\(answer["source"] ?? ""))")
            print(answer["policy"] ?? "", terminator: "")
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate a version against an environment's policy, or a draft of it (--policy), without recording a decision.",
            discussion: "Exit status: 0 allowed, 1 denied, 2 error.")
        @Argument(help: "The environment.") var environment: String
        @Argument(help: "NAMESPACE/NAME@VERSION.") var reference: String
        @Option(help: "A draft policy file to evaluate instead of the deployed one.") var policy: String?
        @Flag(help: "Print the decision as JSON.") var json = false
        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            struct Ask: Encodable {
                var model: String
                var policy: String?
            }
            let draft = try policy.map { path throws(CustodyError) in
                String(decoding: try PosixFile.contents(of: path, limit: 1 << 20), as: UTF8.self)
            }
            let decision: API.Decision = try await withClient(remote) { client in
                try await client.post("/v1/policies/\(environment)/test", body: Ask(model: reference, policy: draft))
            }
            if json { try printJSON(decision) } else { print(DecisionText.render(decision)) }
            if !decision.allowed { throw ExitCode(1) }
        }
    }

    struct Reload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-read the policies (admin); the loaded set stays if any file is invalid.")
        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let answer: [String: [String: String]] = try await withClient(remote) { client in
                try await client.post("/v1/policies/reload", body: [String: String]())
            }
            for (environment, digest) in (answer["policies"] ?? [:]).sorted(by: { $0.key < $1.key }) { print("\(environment)  \(digest)") }
        }
    }
}

/// `custody yank`, `quarantine`, `restore`: a version's status (admin or security). Yanked and quarantined versions
/// fail every policy.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Yank, quarantine or restore a version.",
        discussion: "Yanked and quarantined versions fail every environment's policy; restore makes a version active again.")

    @Argument(help: "yank, quarantine or restore.") var action: String
    @Argument(help: "NAMESPACE/NAME@VERSION.") var reference: String
    @Option(help: "Why (required to yank or quarantine).") var reason: String?
    @OptionGroup var remote: RemoteOptions

    func run() async throws {
        let state: API.VersionStatus.State
        switch action {
        case "yank": state = .yanked
        case "quarantine": state = .quarantined
        case "restore": state = .active
        default: throw CustodyError(.invalidArgument, "action '\(action)' is not yank, quarantine or restore")
        }
        let parsed = try ModelReference(parsing: reference)
        guard case .version(let version) = parsed.selector else { throw CustodyError(.invalidArgument, "name the version by its tag") }
        let status: API.VersionStatus = try await withClient(remote) { client in
            try await client.post(
                "/v1/models/\(parsed.model.namespace)/\(parsed.model.name)/versions/\(version)/status",
                body: API.StatusRequest(state: state, reason: reason))
        }
        print("\(parsed) is \(status.state.rawValue)\(status.reason.map { ": \($0)" } ?? "")")
    }
}
