import ArgumentParser
import CustodyClient
import CustodyCore
import CustodyRegistry
import CustodyServer
import CustodyStorage
import CustodyStore
import Foundation

struct TrustCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust", abstract: "Manage the publisher keys the registry trusts (admin).",
        discussion: """
            Every change takes effect at once for new publishes and is a trust.add or trust.remove event in the \
            transparency log. Versions already published keep the verdict recorded when they were published; the \
            gate's signature check says whether their signer is still trusted.
            """,
        subcommands: [Add.self, List.self, Remove.self])

    /// Either a registry home on this machine (`--home` with `--keys`) or a remote registry's admin API.
    struct Target: ParsableArguments {
        @Option(help: "Work directly on the registry home (its database and keys directory) instead of the admin API.")
        var home: String?

        @Option(help: "The keys directory that goes with --home.")
        var keys: String = "Keys"

        @OptionGroup var remote: RemoteOptions

        /// Runs `body` on the home's trusted keys, their changes recorded in its log; nil without `--home`.
        func onStore<T>(_ body: (TrustStore) async throws -> T) async throws -> T? {
            guard let home else { return nil }
            let configuration = try RegistryConfiguration.load(home: home, keys: keys, environment: ProcessInfo.processInfo.environment)
            try? FileManager.default.createDirectory(atPath: configuration.keys + "/trusted", withIntermediateDirectories: true)
            return try await MetadataBackend.withExisting(configuration) { log in
                try await body(TrustStore(directory: configuration.keys + "/trusted", log: log))
            }
        }

        /// Who a change made on the home is recorded as.
        var localActor: String { "local:" + NSUserName() }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Trust a public key (SPKI PEM, as `custody keys generate` writes it).")

        @Argument(help: "The public key file (NAME.pub).")
        var file: String

        @Option(help: "The key's name in signature checks and policies (default: the file name without .pub).")
        var name: String?

        @OptionGroup var target: Target

        func run() async throws {
            let pem = String(decoding: try PosixFile.contents(of: file, limit: 64 << 10), as: UTF8.self)
            let name = name ?? ((file as NSString).lastPathComponent as NSString).deletingPathExtension
            let added: API.TrustedKey
            let actor = target.localActor
            if let key = try await target.onStore({ store in try await store.add(name: name, pem: pem, actor: actor) }) {
                added = API.TrustedKey(name: key.name, keyHint: key.key.hint, publicKey: key.key.pemRepresentation)
            } else {
                added = try await withClient(target.remote) { client in
                    try await client.post("/v1/trust", body: API.TrustAddRequest(name: name, publicKey: pem))
                }
            }
            print("trusted \(added.name) (key hint \(added.keyHint))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the trusted publisher keys.")

        @Flag(help: "Print JSON.")
        var json = false

        @OptionGroup var target: Target

        func run() async throws {
            let keys: [API.TrustedKey]
            if let local = try await target.onStore({ store in try await store.keys() }) {
                keys = local.map { API.TrustedKey(name: $0.name, keyHint: $0.key.hint, publicKey: $0.key.pemRepresentation) }
            } else {
                keys = try await withClient(target.remote) { client in try await client.get("/v1/trust", as: API.TrustList.self) }.keys
            }
            if json { return try printJSON(keys) }
            for key in keys { print("\(key.name)  \(key.keyHint)") }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop trusting a publisher key; new publishes it signed are refused.")

        @Argument(help: "The key's name (from `custody trust list`).")
        var name: String

        @OptionGroup var target: Target

        func run() async throws {
            let actor = target.localActor
            if try await target.onStore({ [name] store in try await store.remove(name: name, actor: actor) }) == nil {
                try await withClient(target.remote) { client in try await client.delete("/v1/trust/\(name)") }
            }
            print("no longer trusted: \(name)")
        }
    }
}
