package import CustodyCore

/// A stored value as one backend hands it to another (``RegistrySnapshot``): the types both SQL engines share.
package enum SnapshotValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

/// What a registry's metadata is made of, as `custody migrate` copies it from one backend to another. Tables whose
/// rows mean the same on every backend travel as rows (``tables``): blobs, tokens (their secrets' hashes), advisories,
/// the log — events with their leaf indexes, the Merkle nodes, the checkpoints — and the OCI records. The catalog,
/// which each backend lays out its own way, travels as its records (``StoredVersion``).
package enum RegistrySnapshot {
    /// A table copied row by row, in this order, with the columns both backends have (in this order).
    package struct Table: Sendable {
        package let name: String
        package let columns: [String]
        /// The column rows are read in order of (unique and increasing), so that they can be paged.
        package let key: String
    }

    package static let tables: [Table] = [
        Table(name: "blobs", columns: ["digest", "size", "created_at"], key: "digest"),
        Table(
            name: "tokens",
            columns: ["id", "name", "secret_hash", "role", "namespaces", "environments", "created_at", "expires_at", "revoked_at"], key: "id"),
        Table(
            name: "advisories",
            columns: ["id", "modified", "withdrawn", "severity", "score", "summary", "models", "document", "recorded_at", "updated_at"],
            key: "id"),
        Table(
            name: "events", columns: ["id", "leaf_index", "at", "type", "actor", "model", "version", "detail", "environment", "client", "count"],
            key: "leaf_index"),
        Table(name: "log_tree", columns: ["position", "hash"], key: "position"),
        Table(name: "checkpoints", columns: ["size", "root", "note", "created_at"], key: "size"),
        Table(
            name: "oci_manifests",
            columns: ["repository", "digest", "media_type", "artifact_type", "subject", "kind", "version", "annotations", "bytes", "created_at"],
            key: "rowid"),
        Table(name: "oci_references", columns: ["repository", "manifest", "digest"], key: "repository || ' ' || manifest || ' ' || digest"),
        Table(name: "oci_tags", columns: ["repository", "tag", "digest"], key: "repository || ' ' || tag"),
    ]
}

/// A version as the catalog keeps it, with what its detail does not show: the signature bundles.
package struct StoredVersion: Sendable {
    package var detail: API.VersionDetail
    /// When its model was first published.
    package var modelCreatedAt: String
    package var publisherBundle: [UInt8]?
    package var registryBundle: [UInt8]?

    package init(detail: API.VersionDetail, modelCreatedAt: String, publisherBundle: [UInt8]?, registryBundle: [UInt8]?) {
        self.detail = detail
        self.modelCreatedAt = modelCreatedAt
        self.publisherBundle = publisherBundle
        self.registryBundle = registryBundle
    }
}
