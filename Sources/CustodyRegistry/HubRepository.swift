package import CustodyCore
package import CustodyStorage
import Synchronization

/// The registry as a Hugging Face Hub sees it, for the Hub-compatible front door: a model is a repository, a version
/// is a commit whose id is derived from its bundle digest, `main` is the newest version the caller may use. No HTTP
/// here: the adapter maps ``Refusal`` to the Hub's error codes.
package struct HubRepository: Sendable {
    package let catalog: Catalog
    package let pulls: Pulls

    package init(catalog: Catalog, pulls: Pulls) {
        self.catalog = catalog
        self.pulls = pulls
    }

    /// A version's commit id: the first 40 hex digits (160 bits) of its bundle digest. Stable (it depends on the
    /// files only), 40 lowercase hex as Hub clients require of an immutable revision, and the same for two tags of one
    /// content, which are the same commit.
    package static func commit(of digest: ContentDigest) -> String { String(digest.hex.prefix(40)) }

    /// Why a lookup is refused, in the Hub's terms.
    package enum Refusal: Error, Sendable, Equatable {
        /// No such model (`RepoNotFound`).
        case repositoryNotFound(String)
        /// No such revision, or one the caller may no longer use: yanked, quarantined or blocked by an advisory
        /// (`RevisionNotFound`, which makes a client stop loading its cached copy).
        case revisionNotFound(String)
        /// No such file in the revision (`EntryNotFound`).
        case entryNotFound(String)
        /// The caller's environments do not allow the version (`GatedRepo`); the message names each policy and
        /// every failed check.
        case gated(String)

        package var message: String {
            switch self {
            case .repositoryNotFound(let text), .revisionNotFound(let text), .entryNotFound(let text), .gated(let text): text
            }
        }
    }

    /// A lookup the gate refused: the refusal to answer, and the decisions behind it (to record as `pull.denied`).
    package struct Denial: Error, Sendable {
        package let refusal: Refusal
        package let denied: Pulls.Denied
        package let version: String
    }

    /// A revision resolved for a caller: the version, its commit id, what the gate made of it, and (for `main`) the
    /// newer versions that were skipped and why.
    package struct Resolved: Sendable {
        package let model: ModelName
        package let version: API.VersionDetail
        package let commit: String
        package let outcome: Pulls.Outcome
        package let skipped: [String]
    }

    /// Resolves `revision` of `model` for `token`: a version tag, a 40-hex commit id, or `main` (also
    /// `refs/heads/main`), which is the newest version the token's environments allow (for a token without
    /// environments: the newest active version).
    package func resolve(_ model: ModelName, revision: String, token: TokenRecord?) async throws -> Resolved {
        // The versions' tags and digests only: a Hub client resolves once per file it fetches, and only the version
        // it gets needs its record.
        guard let order = try await catalog.versionOrder(model), !order.isEmpty else {
            throw Refusal.repositoryNotFound("Repository \(model) is not in this registry")
        }
        let revision = Self.normalize(revision)
        if revision == "main" { return try await resolveMain(model, order, token: token) }
        let named = Self.isCommit(revision) ? order.last { Self.commit(of: $0.digest) == revision } : nil
        guard let tag = (named ?? order.last(where: { $0.version == revision }))?.version else {
            throw Refusal.revisionNotFound("Revision \(revision) of \(model) is not in this registry (a version tag, a commit id or main)")
        }
        let outcome = try await pulls.decide(model, version: tag, token: token)
        if case .denied(let denied) = outcome { throw Denial(refusal: Self.refusal(denied), denied: denied, version: tag) }
        return try await resolved(model, tag, outcome, skipped: [])
    }

    private func resolveMain(
        _ model: ModelName, _ order: [(version: String, digest: ContentDigest)], token: TokenRecord?
    ) async throws -> Resolved {
        var skipped: [String] = []
        var gated: Denial?
        for (tag, _) in order.reversed() {
            let outcome = try await pulls.decide(model, version: tag, token: token)
            switch outcome {
            case .granted(.ungated):
                // Nothing decides for this token: the newest version that is not yanked or quarantined.
                let found = try await resolved(model, tag, outcome, skipped: skipped)
                let state = found.version.status?.state ?? .active
                guard state == .active else {
                    skipped.append("\(tag) is \(state.rawValue)")
                    continue
                }
                return found
            case .granted:
                return try await resolved(model, tag, outcome, skipped: skipped)
            case .denied(let denied):
                skipped.append(denied.message)
                if case .gated = Self.refusal(denied), gated == nil {
                    gated = Denial(refusal: Self.refusal(denied), denied: denied, version: tag)
                }
            }
        }
        if let gated { throw gated }
        throw Refusal.revisionNotFound(
            "No version of \(model) may be used now: " + (skipped.isEmpty ? "none is active" : skipped.joined(separator: " | ")))
    }

    private func resolved(_ model: ModelName, _ tag: String, _ outcome: Pulls.Outcome, skipped: [String]) async throws -> Resolved {
        let version = try await catalog.version(model, .version(tag))
        return Resolved(model: model, version: version, commit: Self.commit(of: version.bundleDigest), outcome: outcome, skipped: skipped)
    }

    /// A denial that revokes the version (it is yanked, quarantined or blocked by an advisory) hides the revision;
    /// any other is a gated repository.
    static func refusal(_ denied: Pulls.Denied) -> Refusal {
        let revoking: Set<String> = ["status", "advisories"]
        let revoked = denied.decisions.contains { decision in
            decision.checks.contains { $0.result == .failed && revoking.contains($0.check) }
        }
        return revoked ? .revisionNotFound(denied.message) : .gated(denied.message)
    }

    package static func normalize(_ revision: String) -> String {
        for prefix in ["refs/heads/", "refs/tags/"] where revision.hasPrefix(prefix) { return String(revision.dropFirst(prefix.count)) }
        return revision
    }

    static func isCommit(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// Which downloads start a pull: a Hub client fetches a snapshot file by file, and a snapshot is one pull, not one per
/// file. The first fetch of a version by a token from an address starts a pull (recorded); later fetches of the same
/// version by the same token and address are part of it while they keep coming within `window` of each other.
package final class PullSessions: Sendable {
    package struct Key: Hashable, Sendable {
        package let actor: String
        package let client: String?
        package let model: String
        package let version: String
        package let allowed: Bool

        package init(actor: String, client: String?, model: String, version: String, allowed: Bool) {
            self.actor = actor
            self.client = client
            self.model = model
            self.version = version
            self.allowed = allowed
        }
    }

    private let window: Duration
    private let now: @Sendable () -> ContinuousClock.Instant
    private let seen = Mutex([Key: ContinuousClock.Instant]())

    package init(window: Duration, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.window = window
        self.now = now
    }

    /// Whether this fetch starts a pull (and so is to be recorded); either way it extends the session.
    package func starts(_ key: Key) -> Bool {
        let now = now()
        return seen.withLock { seen in
            if seen.count > 50_000 { seen = seen.filter { now - $0.value < window } }
            let started = seen[key].map { now - $0 >= window } ?? true
            seen[key] = now
            return started
        }
    }
}
