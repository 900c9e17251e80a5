import Crypto
import CustodyCore

/// Tracks resumable uploads: at most one writer per blob at a time (a second concurrent upload of the same blob
/// gets its own temporary file and cannot be resumed), and the hash state of an interrupted upload, so that
/// resuming in the same process does not rehash what already arrived. After a restart the state is gone and the
/// received prefix is rehashed from the staged file instead.
actor UploadSessions {
    struct Interrupted {
        let offset: UInt64
        let hasher: SHA256
    }

    private var active: Set<Digest> = []
    private var interrupted: [Digest: Interrupted] = [:]

    /// Claims the resumable staging file of `digest`; false when another upload holds it.
    func claim(_ digest: Digest) -> Bool {
        active.insert(digest).inserted
    }

    /// Releases the claim, keeping `state` for a later resume when the upload was cut short.
    func release(_ digest: Digest, interruptedAt state: Interrupted?) {
        active.remove(digest)
        interrupted[digest] = state
    }

    /// The saved hash state when it covers exactly `offset` bytes.
    func hasher(for digest: Digest, at offset: UInt64) -> SHA256? {
        guard let state = interrupted[digest], state.offset == offset else { return nil }
        return state.hasher
    }
}
