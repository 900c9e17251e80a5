import Crypto
import CustodyCore
import Foundation
import Logging

/// Tracks resumable uploads: at most one writer per blob at a time (a second concurrent upload of the same blob
/// gets its own temporary file and cannot be resumed), and the hash state of an interrupted upload, so that
/// resuming in the same process does not rehash what already arrived. After a restart the state is gone and the
/// received prefix is rehashed from the staged file instead.
actor UploadSessions {
    struct Interrupted {
        let offset: UInt64
        let hasher: SHA256
    }

    private var active: Set<ContentDigest> = []
    private var interrupted: [ContentDigest: Interrupted] = [:]

    /// Claims the resumable staging file of `digest`; false when another upload holds it.
    func claim(_ digest: ContentDigest) -> Bool {
        active.insert(digest).inserted
    }

    /// Releases the claim, keeping `state` for a later resume when the upload was cut short.
    func release(_ digest: ContentDigest, interruptedAt state: Interrupted?) {
        active.remove(digest)
        interrupted[digest] = state
    }

    /// Whether an upload of `digest` is being received now.
    func isActive(_ digest: String) -> Bool {
        active.contains { $0.hex == digest }
    }

    /// Forgets the saved hash state of an upload whose staged file was deleted.
    func forget(_ hex: String) {
        interrupted = interrupted.filter { $0.key.hex != hex }
    }

    /// The saved hash state when it covers exactly `offset` bytes.
    func hasher(for digest: ContentDigest, at offset: UInt64) -> SHA256? {
        guard let state = interrupted[digest], state.offset == offset else { return nil }
        return state.hasher
    }
}

/// Deletes staged uploads nobody has touched for `expiry` (`limits.uploadExpiry`): an upload cut short and never
/// resumed must not hold disk space for good. One being received now is never deleted, however old its file.
struct UploadJanitor: Sendable {
    let directory: String
    let expiry: Duration
    let sessions: UploadSessions
    let logger: Logger
    /// The wall clock that file modification times are compared with; injected by tests.
    let now: @Sendable () -> Date

    /// Deletes every expired staged file; returns how many bytes it freed.
    @discardableResult
    func sweep() async -> UInt64 {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let cutoff = now().addingTimeInterval(-expiry.seconds)
        var freed: UInt64 = 0
        var count = 0
        for name in names where name.hasSuffix(".partial") || name.hasSuffix(".upload") {
            let path = directory + "/" + name
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                let modified = attributes[.modificationDate] as? Date, modified < cutoff
            else { continue }
            let hex = String(name.prefix { $0 != "." })
            if name.hasSuffix(".partial"), await sessions.isActive(hex) { continue }
            guard unlink(path) == 0 else { continue }
            if name.hasSuffix(".partial") { await sessions.forget(hex) }
            freed += (attributes[.size] as? UInt64) ?? 0
            count += 1
        }
        if count > 0 {
            logger.notice("expired staged uploads deleted", metadata: ["count": "\(count)", "bytes": "\(freed)"])
        }
        return freed
    }

    /// Sweeps every `expiry / 4` (at least once a minute, at most once a second) until cancelled.
    func run() async {
        let period = min(max(expiry / 4, .seconds(1)), .seconds(60))
        while !Task.isCancelled {
            await sweep()
            try? await Task.sleep(for: period)
        }
    }
}
