import ArgumentParser
import Crypto
import CustodyClient
import CustodyCore
import CustodyServer
import CustodyStorage
import CustodyStore
import Foundation

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Query, export and verify the registry's tamper-evident event log.",
        subcommands: [Log.self, History.self, Lineage.self, Exposure.self, Export.self, Bom.self, Verify.self, VerifyReceipt.self, Proof.self])

    /// `Keys/log.pub`: the verifier key text `<name>+<hex key id>+<base64(0x01 ‖ Ed25519 key)>`.
    static func logKey(_ path: String) throws(CustodyError) -> (name: String, key: Curve25519.Signing.PublicKey) {
        let text = String(decoding: try PosixFile.contents(of: path, limit: 4096), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            let verifier = try SignedNote.Verifier(parsing: text)
            return (verifier.name, verifier.key)
        } catch {
            throw CustodyError(error.code, "\(path): \(error.message)")
        }
    }

    /// One line per event: index, time, type (with `×N` for repeats counted into one event), actor, model@version,
    /// environment, client, detail.
    static func line(_ event: API.Event) -> String {
        let subject = event.model.map { $0 + (event.version.map { "@" + $0 } ?? "") } ?? "-"
        let type = event.type + (event.count.map { " ×\($0)" } ?? "")
        return
            "\(event.id - 1)\t\(event.at)\t\(type)\t\(event.actor ?? "-")\t\(subject)\t\(event.environment ?? "-")\t\(event.client ?? "-")\t\(event.detail ?? "")"
    }

    struct Events: Codable { var events: [API.Event] }

    static func query(_ items: [(String, String?)]) -> String {
        let pairs = items.compactMap { name, value in
            value.map { "\(name)=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? $0)" }
        }
        return pairs.isEmpty ? "" : "?" + pairs.joined(separator: "&")
    }

    struct Log: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Events, filtered, oldest first (role auditor): index, time, type, actor, model@version, environment, client, detail.")
        @Option(help: "NAMESPACE/NAME.") var model: String?
        @Option(help: "A version tag (with --model).") var version: String?
        @Option(help: "Event types, comma-separated (publish, pull, pull.denied, decision, admission, advisory.add, …).") var type: String?
        @Option(help: "Actor (token id or name), substring.") var actor: String?
        @Option(help: "Deployment environment.") var env: String?
        @Option(help: "From this time (RFC 3339).") var since: String?
        @Option(help: "Up to this time (RFC 3339).") var until: String?
        @Option(help: "Only events after this event id (paging).") var after: Int?
        @Option(help: "At most this many events (≤ 10,000).") var limit = 1000
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let path =
                "/v1/audit/events"
                + Audit.query([
                    ("model", model), ("version", version), ("type", type), ("actor", actor), ("environment", env), ("since", since),
                    ("until", until), ("after", after.map(String.init)), ("limit", String(limit)),
                ])
            let answer: Events = try await withClient(remote) { client in try await client.get(path) }
            if json { return try printJSON(answer) }
            for event in answer.events { print(Audit.line(event)) }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A model's timeline: every event about it, in order.")
        @Argument(help: "NAMESPACE/NAME.") var model: String
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let name = try ModelName(parsing: model)
            var all: [API.Event] = []
            try await withClient(remote) { client in
                var after: Int64 = 0
                while true {
                    let page: Events = try await client.get(
                        "/v1/audit/events" + Audit.query([("model", name.description), ("after", String(after)), ("limit", "10000")]))
                    all += page.events
                    guard page.events.count == 10_000, let last = page.events.last else { break }
                    after = last.id
                }
            }
            if json { return try printJSON(Events(events: all)) }
            for event in all { print(Audit.line(event)) }
        }
    }

    struct Lineage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Base models upstream and derivatives downstream of a version, as trees.")
        @Argument(help: "NAMESPACE/NAME@VERSION.") var reference: String
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let parsed = try ModelReference(parsing: reference)
            guard case .version(let version) = parsed.selector else { throw CustodyError(.invalidArgument, "name the version by its tag") }
            let answer: API.Lineage = try await withClient(remote) { client in
                try await client.get("/v1/audit/lineage/\(parsed.model.namespace)/\(parsed.model.name)/\(version)")
            }
            if json { return try printJSON(answer) }
            func render(_ nodes: [API.Lineage.Node], _ indent: String, _ arrow: String) {
                for node in nodes {
                    let licence = node.licence.map { " (\($0))" } ?? ""
                    let named = node.namedAs.map { "  [named \($0), resolved by \(node.resolvedBy ?? "?")]" } ?? ""
                    let outside = node.inRegistry ? "" : node.resolvedBy.map { "  [\($0)]" } ?? "  [not in this registry]"
                    print("\(indent)\(arrow) \(node.reference)\(licence)\(named)\(outside)")
                    render(node.children, indent + "    ", arrow)
                }
            }
            print(answer.reference)
            print("  upstream (base models)")
            if answer.upstream.isEmpty { print("    none") }
            render(answer.upstream, "    ", "↑")
            print("  downstream (derived versions)")
            if answer.downstream.isEmpty { print("    none") }
            render(answer.downstream, "    ", "↓")
        }
    }

    struct Exposure: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Which environments, tokens and client addresses pulled or were admitted with an advisory's versions, or one version.")
        @Argument(help: "An advisory id, or NAMESPACE/NAME@VERSION.") var subject: String
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let exposure: API.Exposure
            if subject.contains("/") {
                let parsed = try ModelReference(parsing: subject)
                guard case .version(let version) = parsed.selector else { throw CustodyError(.invalidArgument, "name the version by its tag") }
                let answer: API.VersionExposure = try await withClient(remote) { client in
                    try await client.get("/v1/audit/exposure/\(parsed.model.namespace)/\(parsed.model.name)/\(version)")
                }
                exposure = API.Exposure(
                    advisory: API.AdvisorySummary(
                        id: "-", modified: "-", withdrawn: nil, summary: nil, severity: "-", score: nil, models: [parsed.model.description]),
                    versions: answer.versions, unknownModels: [], environments: answer.environments, tokens: answer.tokens)
            } else {
                struct Answer: Codable { var exposure: API.Exposure }
                let answer: Answer = try await withClient(remote) { client in try await client.get("/v1/advisories/\(subject)") }
                exposure = answer.exposure
            }
            if json { return try printJSON(exposure) }
            print(ExposureText.render(exposure))
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stream every event to standard output as JSON lines (each line a log leaf) or CSV.")
        @Option(help: "jsonl or csv.") var format = "jsonl"
        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            guard format == "jsonl" || format == "csv" else { throw CustodyError(.invalidArgument, "format must be jsonl or csv") }
            try await withClient(remote) { client in
                try await client.stream("/v1/audit/export?format=\(format)") { chunk in FileHandle.standardOutput.write(Data(chunk)) }
            }
        }
    }

    struct Bom: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a version's AI-BOM (CycloneDX 1.6 JSON).")
        @Argument(help: "NAMESPACE/NAME@VERSION.") var reference: String
        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let parsed = try ModelReference(parsing: reference)
            guard case .version(let version) = parsed.selector else { throw CustodyError(.invalidArgument, "name the version by its tag") }
            let bytes = try await withClient(remote) { client in
                try await client.bytes("/v1/audit/bom/\(parsed.model.namespace)/\(parsed.model.name)/\(version)")
            }
            print(String(decoding: bytes, as: UTF8.self))
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Check the log: the latest checkpoint's signature and its consistency with the one seen last time, or (--database) a copy of the database recomputed offline.",
            discussion: """
                Online, the checkpoint seen last time is kept in ~/.config/custody/checkpoints/ per log key; a log \
                that shrank, forked or was rewritten fails. Exit status: 0 consistent, 1 tampering detected, 2 error.
                """)

        @Option(help: "The log's verifier key (default Keys/log.pub).")
        var logKey = "Keys/log.pub"

        @Option(
            help:
                "Verify a copy of the registry database offline instead of asking the registry: a SQLite file, or a postgres://user@host/database URL (a restored dump; password from CUSTODY_POSTGRES_PASSWORD or PGPASSWORD)."
        )
        var database: String?

        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let (name, key) = try Audit.logKey(logKey)
            if let database {
                let report =
                    database.hasPrefix("postgres://") || database.hasPrefix("postgresql://")
                    ? try await MetadataBackend.auditPostgres(database, environment: ProcessInfo.processInfo.environment, key: key, name: name)
                    : try LogAudit.verify(database: database, key: key, name: name)
                if let index = report.firstBadIndex {
                    throw CustodyError(.verificationFailed, "the log does not match the events: first bad index \(index): \(report.problem ?? "")")
                }
                print("log verified offline: \(report.events) events, \(report.checkpoints) signed checkpoints up to size \(report.latestSignedSize)")
                return
            }
            // A log is known by its key, not by the address it is reached at.
            let statePath = Self.statePath(for: "\(name)+\(Hex.encode(Checkpoint.keyID(name: name, publicKey: Array(key.rawRepresentation))))")
            try await withClient(remote) { client in
                let note = String(decoding: try await client.bytes("/v1/audit/checkpoint", limit: 1 << 16), as: UTF8.self)
                let latest = try Checkpoint.verify(note, key: key, name: name)
                var message = "log verified: size \(latest.size), root \(Data(latest.root).base64EncodedString())"
                if let previousNote = try? String(contentsOfFile: statePath, encoding: .utf8) {
                    let previous = try Checkpoint.verify(previousNote, key: key, name: name)
                    if latest.size < previous.size {
                        throw CustodyError(
                            .verificationFailed, "the log shrank from \(previous.size) to \(latest.size) events: history was rewritten")
                    }
                    if latest.size == previous.size {
                        guard latest.root == previous.root else {
                            throw CustodyError(.verificationFailed, "the log forked: size \(latest.size) has another root than last time")
                        }
                    } else {
                        let proof: API.ConsistencyProof = try await client.get("/v1/audit/proof/consistency?from=\(previous.size)&to=\(latest.size)")
                        let hashes = proof.hashes.compactMap { Data(base64Encoded: $0).map(Array.init) }
                        guard hashes.count == proof.hashes.count,
                            Merkle.verifyConsistency(
                                from: previous.size, to: latest.size, proof: hashes, firstRoot: previous.root, secondRoot: latest.root)
                        else {
                            throw CustodyError(
                                .verificationFailed,
                                "the log at size \(latest.size) is not an extension of the log seen at size \(previous.size): history was rewritten or forked"
                            )
                        }
                    }
                    message += ", consistent with size \(previous.size) seen before"
                }
                try FileManager.default.createDirectory(atPath: (statePath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try PosixFile.writeAtomically(Array(note.utf8), to: statePath, mode: 0o600)
                print(message)
            }
        }

        static func statePath(for log: String) -> String {
            let environment = ProcessInfo.processInfo.environment
            let base = environment["XDG_CONFIG_HOME"] ?? (NSHomeDirectory() + "/.config")
            let safe = log.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }
            return base + "/custody/checkpoints/" + String(safe)
        }
    }

    struct VerifyReceipt: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify-receipt",
            abstract: "Check a receipt (DIR.receipt from a pull, or `custody audit proof`) offline, with nothing but the log's key.",
            discussion: """
                Checks the checkpoint's signature and origin, hashes the event the receipt carries as a leaf, and folds                 the inclusion proof to the checkpoint's root (RFC 9162 §2.1.3.2). Prints the event. Exit status: 0                 verified, 1 the receipt does not prove what it says, 2 error (unreadable, not a receipt).
                """)

        @Argument(help: "The receipt file.")
        var receipt: String

        @Option(help: "The log's verifier key (default Keys/log.pub).")
        var logKey = "Keys/log.pub"

        @Flag(help: "Print the event as JSON.")
        var json = false

        func run() throws {
            let (name, key) = try Audit.logKey(logKey)
            let text = String(decoding: try PosixFile.contents(of: receipt, limit: 1 << 20), as: UTF8.self)
            let proof = try TlogProof(parsing: text, source: receipt)
            let checkpoint = try Checkpoint.verify(proof.checkpoint, key: key, name: name)
            guard let leaf = proof.extra else {
                throw CustodyError(.malformedSignature, "\(receipt): the receipt carries no event (no 'extra' line) to check")
            }
            guard proof.index < checkpoint.size else {
                throw CustodyError(.verificationFailed, "\(receipt): index \(proof.index) is outside the checkpoint's \(checkpoint.size) entries")
            }
            guard
                Merkle.verifyInclusion(
                    leafHash: Merkle.leafHash(leaf), index: proof.index, size: checkpoint.size, proof: proof.hashes, root: checkpoint.root)
            else {
                throw CustodyError(
                    .verificationFailed,
                    "\(receipt): the event at index \(proof.index) is not in the log at size \(checkpoint.size): the proof does not lead to the signed root"
                )
            }
            let event = try? JSONDecoder().decode(API.Event.self, from: Data(leaf))
            guard let event, EventLeaf.canonicalJSON(event) == leaf, event.id == Int64(proof.index) + 1 else {
                throw CustodyError(.verificationFailed, "\(receipt): the logged entry is not the canonical event for index \(proof.index)")
            }
            if json { return print(String(decoding: leaf, as: UTF8.self)) }
            let subject = event.model.map { " " + $0 + (event.version.map { "@" + $0 } ?? "") } ?? ""
            print("receipt verified: event \(event.id) (\(event.type)\(subject)) at \(event.at) by \(event.actor ?? "-")")
            print("in the log \(checkpoint.origin) at size \(checkpoint.size), root \(Data(checkpoint.root).base64EncodedString())")
        }
    }

    struct Proof: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a C2SP tlog-proof receipt that an event is in the log: its index, the inclusion proof and the signed checkpoint.")

        @Argument(help: "An event id (as `custody show … --json` lists it), or NAMESPACE/NAME@VERSION for its publish event.")
        var event: String

        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let receipt = try await withClient(remote) { client in
                if event.contains("/") {
                    let parsed = try ModelReference(parsing: event)
                    guard case .version(let version) = parsed.selector else { throw CustodyError(.invalidArgument, "name the version by its tag") }
                    return try await client.publishReceipt(of: parsed.model, version: version)
                }
                guard let id = UInt64(event) else { throw CustodyError(.invalidArgument, "'\(event)' is not an event id or NAMESPACE/NAME@VERSION") }
                return try await client.receipt(forEvent: id)
            }
            print(receipt, terminator: "")
        }
    }
}
