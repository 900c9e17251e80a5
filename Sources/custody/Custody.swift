import ArgumentParser
import CustodyCore
import Foundation

@main
struct Custody: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "custody",
        abstract: "Model artifact supply-chain registry: sign, verify and gate open-weight model bundles.",
        discussion: """
            Exit status: 0 success, 1 a negative verdict (signature mismatch, verification failed), \
            2 a usage or operational error.
            """,
        subcommands: [
            Serve.self, Publish.self, Pull.self, Show.self, Inspect.self, Check.self, AdvisoryCommand.self, PolicyCommand.self, StatusCommand.self,
            Audit.self, Token.self, TrustCommand.self, HubEnv.self, Keys.self, Sign.self, Verify.self, DigestCommand.self, Migrate.self, GC.self,
        ]
    )

    /// Parses and runs a command, mapping every failure to the documented exit statuses: 1 for a negative
    /// verdict, 2 for anything else (ArgumentParser's own usage status, 64, included).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as CustodyError {
            var message = "custody: error: \(error.message)\n"
            for line in error.details { message += "  \(line)\n" }
            writeStandardError(message)
            Foundation.exit(error.code == .verificationFailed ? 1 : 2)
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            guard code != .success else { exit(withError: error) }
            writeStandardError(fullMessage(for: error) + "\n")
            Foundation.exit(2)
        }
    }
}

func writeStandardError(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}
