/// What a bearer token may do.
public enum Role: String, Codable, CaseIterable, Sendable {
    /// Everything, including token management.
    case admin
    /// Publish into the token's namespaces, and read.
    case publisher
    /// Pull, bound to one or more deployment environments.
    case consumer
    /// Ask the verify endpoint only.
    case gate
    /// Record and withdraw advisories, yank and quarantine versions, and read.
    case security
    /// Read-only history, proofs and exports.
    case auditor
}
