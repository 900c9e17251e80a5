public import ArgumentParser
import CustodyCore

/// The `--curve` values are the curve names.
extension KeyCurve: ExpressibleByArgument {}

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage signing keys.", subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate an ECDSA key pair: PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (SPKI PEM).")

        @Option(help: "Path prefix of the two key files.")
        var out: String

        @Option(help: "Elliptic curve.")
        var curve: KeyCurve = .p256

        func run() throws {
            let key = PrivateSigningKey(generating: curve)
            try PosixFile.writeAtomically(Array(key.pemRepresentation.utf8), to: out + ".key", mode: 0o600, exclusive: true)
            try PosixFile.writeAtomically(Array(key.publicKey.pemRepresentation.utf8), to: out + ".pub", mode: 0o644, exclusive: true)
            print("wrote \(out).key (private, 0600) and \(out).pub (\(curve.rawValue))")
        }
    }
}
