import ArgumentParser
import CustodyCore
import CustodyServer
import Foundation
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the registry daemon.",
        discussion: """
            Reads HOME/custody.yaml; CUSTODY_* environment variables and these flags override it. The first start on an \
            empty home creates the data directory, the registry signing key pair in the keys directory and an admin \
            token, printed once. Stops gracefully on SIGTERM or SIGINT.
            """)

    @Option(help: "The registry home (custody.yaml, policies/, data/).")
    var home = "Registry"

    @Option(help: "The keys directory (trusted/*.pub, registry.key|.pub).")
    var keys = "Keys"

    @Option(help: "HOST:PORT to listen on (default 127.0.0.1:8080; port 0 picks a free one).")
    var listen: String?

    @Option(help: "PEM certificate chain for HTTPS.")
    var tlsCert: String?

    @Option(help: "PEM private key for HTTPS.")
    var tlsKey: String?

    func run() async throws {
        var configuration = try RegistryConfiguration.load(home: home, keys: keys, environment: ProcessInfo.processInfo.environment)
        if let listen { try configuration.setListen(listen, source: "--listen") }
        if let tlsCert { configuration.tlsCertificate = tlsCert }
        if let tlsKey { configuration.tlsKey = tlsKey }
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "custody")
        let (services, adminSecret) = try await RegistryServices.open(configuration, logger: logger)
        if let adminSecret {
            writeStandardOutput("admin token (shown once; only its hash is stored): \(adminSecret)\n")
        }
        let scheme = configuration.tlsCertificate == nil ? "http" : "https"
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        try await runRegistry(services) { port in
            writeStandardOutput("custody registry listening on \(scheme)://\(host):\(port)\n")
        }
    }
}
