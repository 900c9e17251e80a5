package import Crypto
package import CustodyCore
package import CustodyStorage
package import Foundation
package import Logging
import Synchronization

/// Signs checkpoints of the event log: after appends, within `interval`, a C2SP signed note over the current size
/// and root, with the Ed25519 key `Keys/log.key`.
///
/// Daemons that share a log take turns through `lease`: only its holder signs (renewing it every round), so that
/// checkpoints grow one after another; when the holder stops renewing, another daemon takes over once it expires.
package final class CheckpointSigner: Sendable {
    package let log: any EventLog
    package let key: Curve25519.Signing.PrivateKey
    package let origin: String
    package let logger: Logger
    package let lease: (any SigningLease)?
    /// Whether this daemon held the lease at the last look.
    private let holding = Mutex(false)
    package static let interval = Duration.milliseconds(500)

    package init(log: any EventLog, key: Curve25519.Signing.PrivateKey, origin: String, logger: Logger, lease: (any SigningLease)? = nil) {
        self.log = log
        self.key = key
        self.origin = origin
        self.logger = logger
        self.lease = lease
    }

    /// The verifier key text (`name+keyid+base64`) that `Keys/log.pub` holds.
    package var verifierKey: String { Checkpoint.verifierKey(name: origin, publicKey: Array(key.publicKey.rawRepresentation)) }

    /// Signs a checkpoint when the log grew since the last one (when this daemon holds the lease, if there is one);
    /// returns the size the latest checkpoint covers.
    @discardableResult
    package func checkpoint() async throws -> UInt64 {
        if let lease {
            let held = try await lease.acquire()
            if holding.withLock({ $0 }) != held {
                holding.withLock { $0 = held }
                logger.notice(held ? "signing log checkpoints" : "another daemon signs log checkpoints")
            }
            guard held else { return try await log.latestCheckpoint()?.size ?? 0 }
        }
        let size = try await log.logSize()
        if let latest = try await log.latestCheckpoint(), latest.size >= size { return latest.size }
        let root = try await log.logRoot(size: size)
        let note = try Checkpoint(origin: origin, size: size, root: root).signed(by: key, name: origin)
        try await log.recordCheckpoint(size: size, root: root, note: note)
        return size
    }

    /// Runs until cancelled, checkpointing the appends of each interval.
    package func run() async {
        while !Task.isCancelled {
            do { try await checkpoint() } catch {
                logger.error("cannot sign a log checkpoint", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: Self.interval)
        }
    }

    /// The last round at shutdown: signs what was appended (when this daemon may) and gives the lease up.
    package func finish() async {
        _ = try? await checkpoint()
        if holding.withLock({ $0 }) { try? await lease?.release() }
    }

    /// Loads `Keys/log.key` (base64 of the Ed25519 seed, mode 0600) or creates it with `Keys/log.pub`.
    package static func loadOrCreateKey(in directory: String, origin: String, logger: Logger) throws(CustodyError) -> Curve25519.Signing.PrivateKey {
        let privatePath = directory + "/log.key"
        let publicPath = directory + "/log.pub"
        let key: Curve25519.Signing.PrivateKey
        if FileManager.default.fileExists(atPath: privatePath) {
            let text = String(decoding: try PosixFile.contents(of: privatePath, limit: 4096), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard let seed = Data(base64Encoded: text), let parsed = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
                throw CustodyError(.invalidKey, "\(privatePath): not a base64 Ed25519 private key")
            }
            key = parsed
        } else {
            key = Curve25519.Signing.PrivateKey()
            try PosixFile.writeAtomically(
                Array((key.rawRepresentation.base64EncodedString() + "\n").utf8), to: privatePath, mode: 0o600, exclusive: true)
            logger.notice("generated the transparency log key", metadata: ["public": "\(publicPath)"])
        }
        let verifier = Checkpoint.verifierKey(name: origin, publicKey: Array(key.publicKey.rawRepresentation)) + "\n"
        if (try? PosixFile.contents(of: publicPath, limit: 4096)) != Array(verifier.utf8) {
            try PosixFile.writeAtomically(Array(verifier.utf8), to: publicPath, mode: 0o644)
        }
        return key
    }
}
