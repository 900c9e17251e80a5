/// What an event records. The raw values are written into every log leaf and can never change: a test lists them.
public enum EventKind: String, Codable, CaseIterable, Sendable {
    case publish
    case scan
    case pull
    /// A pull the gate refused.
    case pullDenied = "pull.denied"
    /// A `/v1/verify` answer (repeats within the window are one event with a count).
    case decision
    /// An admission-controller or Gatekeeper answer.
    case admission
    case versionYanked = "version.yanked"
    case versionQuarantined = "version.quarantined"
    case versionRestored = "version.restore"
    case advisoryAdded = "advisory.add"
    case advisoryWithdrawn = "advisory.withdraw"
    case policyLoaded = "policy.load"
    case policyReloadFailed = "policy.reload.failed"
    case trustAdded = "trust.add"
    case trustRemoved = "trust.remove"
    case trustReloadFailed = "trust.reload.failed"
    case tokenCreated = "token.create"
    case tokenRevoked = "token.revoke"
    /// The first use of a token (later uses are not logged).
    case tokenUsed = "token.use"
    /// A request refused for its credentials or its rate.
    case requestDenied = "request.denied"
    /// A publisher's signature attached to a version after it was published (an OCI referrer).
    case signatureAttached = "signature.attach"
    /// Blobs nothing referenced, deleted by garbage collection after their grace period.
    case blobsCollected = "blob.collect"

    /// The event of a status change to `state`.
    public init(statusChangeTo state: API.VersionStatus.State) {
        switch state {
        case .active: self = .versionRestored
        case .yanked: self = .versionYanked
        case .quarantined: self = .versionQuarantined
        }
    }

    /// Uses of a version: what exposure reports count.
    public static let uses: [EventKind] = [.pull, .pullDenied, .decision, .admission]

    /// Answers to questions (verify, admission), which gates ask again and again and are kept as one event with a
    /// count within the repeat window; pulls, which move weights, are always recorded one by one.
    public var isRepeatable: Bool { self == .decision || self == .admission }
}
