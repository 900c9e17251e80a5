import ArgumentParser
import Crypto
import CustodyClient
import CustodyCore
import CustodyStore
import Foundation

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify the registry's tamper-evident event log and print proofs.", subcommands: [Verify.self, Proof.self])

    /// `Keys/log.pub`: the verifier key text `<name>+<hex key id>+<base64(0x01 ‖ Ed25519 key)>`.
    static func logKey(_ path: String) throws(CustodyError) -> (name: String, key: Curve25519.Signing.PublicKey) {
        let text = String(decoding: try FileIO.contents(of: path, limit: 4096), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        // Names cannot contain '+'; the base64 key can.
        let parts = text.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let blob = Data(base64Encoded: String(parts[2])), blob.count == 33, blob.first == 0x01,
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: blob.dropFirst())
        else { throw CustodyError(.invalidKey, "\(path): not a log verifier key (name+keyid+base64 of an Ed25519 key)") }
        let name = String(parts[0])
        guard Hex.encode(Checkpoint.keyID(name: name, publicKey: Array(key.rawRepresentation))) == parts[1] else {
            throw CustodyError(.invalidKey, "\(path): the key id does not match the key")
        }
        return (name, key)
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the log: the latest checkpoint's signature and its consistency with the one seen last time, or (--database) a copy of the database recomputed offline.",
            discussion: """
                Online, the checkpoint seen last time is kept in ~/.config/custody/checkpoints/ per log key; a log \
                that shrank, forked or was rewritten fails. Exit status: 0 consistent, 1 tampering detected, 2 error.
                """)

        @Option(help: "The log's verifier key (default Keys/log.pub).")
        var logKey = "Keys/log.pub"

        @Option(help: "Verify a copy of the registry database offline instead of asking the registry.")
        var database: String?

        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let (name, key) = try Audit.logKey(logKey)
            if let database {
                let report = try LogAudit.verify(database: database, key: key, name: name)
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
                        throw CustodyError(.verificationFailed, "the log shrank from \(previous.size) to \(latest.size) events: history was rewritten")
                    }
                    if latest.size == previous.size {
                        guard latest.root == previous.root else {
                            throw CustodyError(.verificationFailed, "the log forked: size \(latest.size) has another root than last time")
                        }
                    } else {
                        struct Proof: Decodable { var hashes: [String] }
                        let proof: Proof = try await client.get("/v1/audit/proof/consistency?from=\(previous.size)&to=\(latest.size)")
                        let hashes = proof.hashes.compactMap { Data(base64Encoded: $0).map(Array.init) }
                        guard hashes.count == proof.hashes.count,
                            Merkle.verifyConsistency(from: previous.size, to: latest.size, proof: hashes, firstRoot: previous.root, secondRoot: latest.root)
                        else {
                            throw CustodyError(
                                .verificationFailed,
                                "the log at size \(latest.size) is not an extension of the log seen at size \(previous.size): history was rewritten or forked")
                        }
                    }
                    message += ", consistent with size \(previous.size) seen before"
                }
                try FileManager.default.createDirectory(atPath: (statePath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try FileIO.writeAtomically(Array(note.utf8), to: statePath, mode: 0o600)
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

    struct Proof: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a C2SP tlog-proof receipt that an event is in the log: its index, the inclusion proof and the signed checkpoint.")

        @Argument(help: "The event id (as `custody show … --json` lists it).")
        var event: UInt64

        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            guard event > 0 else { throw CustodyError(.invalidArgument, "event ids start at 1") }
            try await withClient(remote) { client in
                let note = String(decoding: try await client.bytes("/v1/audit/checkpoint", limit: 1 << 16), as: UTF8.self)
                let lines = note.split(separator: "\n")
                guard lines.count > 2, let size = UInt64(lines[1]) else { throw CustodyError(.remote, "the registry's checkpoint is malformed") }
                guard event <= size else { throw CustodyError(.notFound, "event \(event) is not in the log (it has \(size) events)") }
                struct Inclusion: Decodable { var hashes: [String] }
                let proof: Inclusion = try await client.get("/v1/audit/proof/inclusion?index=\(event - 1)&size=\(size)")
                print("c2sp.org/tlog-proof@v1\nindex \(event - 1)\n" + proof.hashes.map { $0 + "\n" }.joined() + "\n" + note, terminator: "")
            }
        }
    }
}
