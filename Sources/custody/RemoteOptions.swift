import ArgumentParser
import CustodyClient
import CustodyCore
import Foundation

/// `--registry`, `--token` and `--ca-cert`, shared by every command that talks to a registry.
struct RemoteOptions: ParsableArguments {
    @Option(help: "Registry URL (default: $CUSTODY_REGISTRY or http://127.0.0.1:8080).")
    var registry: String?

    @Option(help: "Bearer token (default: $CUSTODY_TOKEN). Prefer the environment: arguments are visible to other users.")
    var token: String?

    @Option(help: "PEM file of CA certificates to trust for an HTTPS registry.")
    var caCert: String?

    func client() throws(CustodyError) -> RegistryClient {
        let environment = ProcessInfo.processInfo.environment
        return try RegistryClient(
            baseURL: registry ?? environment["CUSTODY_REGISTRY"] ?? "http://127.0.0.1:8080",
            token: token ?? environment["CUSTODY_TOKEN"], caCertificate: caCert)
    }
}

/// Runs `body` with a client and always shuts the client down.
func withClient<T>(_ options: RemoteOptions, _ body: (RegistryClient) async throws -> T) async throws -> T {
    let client = try options.client()
    do {
        let result = try await body(client)
        await client.shutdown()
        return result
    } catch {
        await client.shutdown()
        throw error
    }
}

func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

func writeStandardOutput(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}
