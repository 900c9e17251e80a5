import ArgumentParser
import CustodyClient
import CustodyCore
import Foundation

/// `custody hf-env`: the environment variables that point an inference host's Hugging Face clients
/// (huggingface_hub, transformers, vLLM, TGI) at this registry, with a new consumer token bound to the environments
/// whose policies are to decide its downloads.
struct HubEnv: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hf-env",
        abstract: "Print HF_ENDPOINT and HF_TOKEN lines for a Hugging Face client, with a new consumer token (admin).",
        discussion: """
            Creates a consumer token bound to the --env environments and prints shell lines to paste into an inference \
            host: `eval "$(custody hf-env --env production)"`. Downloads through them are decided by those environments' \
            policies and recorded as pulls. HF_HUB_DISABLE_XET=1 is set because the registry speaks LFS, not Xet.
            """)

    @Option(help: "A deployment environment whose policy decides the host's downloads; repeatable.")
    var env: [String]

    @Option(help: "A name for the token (shown in audit events).")
    var name: String?

    @Option(help: "Expiry: an RFC 3339 time, or a duration like 90d, 12h, 30m.")
    var expires: String?

    @Option(help: "The registry URL the host reaches (default: the --registry this command uses).")
    var endpoint: String?

    @OptionGroup var remote: RemoteOptions

    func validate() throws {
        guard !env.isEmpty else { throw ValidationError("name at least one --env whose policy decides the host's downloads") }
    }

    func run() async throws {
        let request = API.TokenCreateRequest(
            role: "consumer", name: name ?? "hf-" + env.joined(separator: "-"), namespaces: [], environments: env,
            expiresAt: try expires.map(Token.Create.expiry))
        let created: API.TokenCreated = try await withClient(remote) { client in try await client.post("/v1/tokens", body: request) }
        let url = endpoint ?? remote.registry ?? ProcessInfo.processInfo.environment["CUSTODY_REGISTRY"] ?? "http://127.0.0.1:8080"
        print(Self.lines(endpoint: url, secret: created.secret, token: created.token).joined(separator: "\n"))
    }

    static func lines(endpoint: String, secret: String, token: API.TokenInfo) -> [String] {
        let trimmed = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        return [
            "# Custody consumer token \(token.id) for \(token.environments.joined(separator: ", ")); the secret is shown once.",
            "export HF_ENDPOINT=\(shellQuoted(trimmed))",
            "export HF_TOKEN=\(shellQuoted(secret))",
            "export HF_HUB_DISABLE_XET=1",
            "export HF_HUB_DISABLE_TELEMETRY=1",
        ]
    }

    static func shellQuoted(_ text: String) -> String {
        text.allSatisfy { $0.isLetter || $0.isNumber || "-_./:@".contains($0) } ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
