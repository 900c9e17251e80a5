import ArgumentParser
import CustodyClient
import CustodyCore
import CustodyRegistry
import CustodyServer
import CustodyStorage
import CustodyStore
import Foundation

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage bearer tokens (admin).", subcommands: [Create.self, List.self, Revoke.self])

    /// Either a registry home on this machine (`--home`, for bootstrap and scripts) or a remote registry.
    struct Target: ParsableArguments {
        @Option(help: "Work directly on the registry home's database instead of through the admin API.")
        var home: String?

        @OptionGroup var remote: RemoteOptions

        /// Runs `body` on the home's metadata (SQLite or PostgreSQL, as its configuration says); nil without `--home`.
        func onHome<T>(_ body: (any MetadataStore) async throws -> T) async throws -> T? {
            guard let home else { return nil }
            let configuration = try RegistryConfiguration.load(home: home, keys: "Keys", environment: ProcessInfo.processInfo.environment)
            return try await MetadataBackend.withExisting(configuration, body)
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token; prints its secret once.")

        @Option(help: "admin, publisher, consumer, gate or auditor.")
        var role: String

        @Option(help: "A name for the token (shown in audit events).")
        var name: String?

        @Option(help: "A namespace a publisher may publish into; repeatable ('*' for all).")
        var namespace: [String] = []

        @Option(help: "A deployment environment a consumer pulls for; repeatable.")
        var env: [String] = []

        @Option(help: "Expiry: an RFC 3339 time, or a duration like 90d, 12h, 30m.")
        var expires: String?

        @Flag(help: "Print the token record and secret as JSON.")
        var json = false

        @OptionGroup var target: Target

        func run() async throws {
            let request = API.TokenCreateRequest(
                role: role, name: name, namespaces: namespace, environments: env, expiresAt: try expires.map(Self.expiry))
            let created: API.TokenCreated
            let validated = try TokenRules.validate(request)
            if let local = try await target.onHome({ database in try await database.createToken(validated) }) {
                created = local
            } else {
                created = try await withClient(target.remote) { client in try await client.post("/v1/tokens", body: request) }
            }
            if json { return try printJSON(created) }
            if target.home != nil {
                print(created.secret)
            } else {
                print("token \(created.token.id) (\(created.token.role.rawValue)); secret, shown once:\n\(created.secret)")
            }
        }

        static func expiry(_ text: String) throws(CustodyError) -> String {
            let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
            if let unit = text.last, let seconds = units[unit], let amount = Double(text.dropLast()), amount > 0 {
                return Date.now.addingTimeInterval(amount * seconds).formatted(.iso8601)
            }
            guard (try? Date(text, strategy: .iso8601)) != nil else {
                throw CustodyError(.invalidArgument, "expiry '\(text)' is neither an RFC 3339 time nor a duration like 90d")
            }
            return text
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")

        @Flag(help: "Print JSON.")
        var json = false

        @OptionGroup var target: Target

        func run() async throws {
            let tokens: [API.TokenInfo]
            if let local = try await target.onHome({ database in try await database.tokens() }) {
                tokens = local
            } else {
                let answer: [String: [API.TokenInfo]] = try await withClient(target.remote) { client in try await client.get("/v1/tokens") }
                tokens = answer["tokens"] ?? []
            }
            if json { return try printJSON(tokens) }
            for token in tokens {
                let scope = (token.namespaces.map { "ns:\($0)" } + token.environments.map { "env:\($0)" }).joined(separator: " ")
                let state = token.revokedAt.map { "revoked \($0)" } ?? token.expiresAt.map { "expires \($0)" } ?? "active"
                print(
                    "\(token.id)  \(token.role.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0))  \(token.name ?? "-")  \(scope)  \(state)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token by id.")

        @Argument(help: "The token id (from `custody token list`).")
        var id: String

        @OptionGroup var target: Target

        func run() async throws {
            if let revoked = try await target.onHome({ [id] database in try await database.revokeToken(id: id) }) {
                guard revoked else { throw CustodyError(.notFound, "no active token '\(id)'") }
            } else {
                try await withClient(target.remote) { client in try await client.delete("/v1/tokens/\(id)") }
            }
            print("revoked \(id)")
        }
    }
}
