package import CustodyCore

/// An OCI manifest as the registry keeps it: its exact bytes (the digest is theirs), what it is, and what it refers
/// to. A model version's manifest is either the one a client pushed or the one the registry generated for it
/// (deterministically, so its digest is the same on every daemon and every time).
package struct OCIManifestRecord: Sendable, Hashable {
    /// What a manifest is to the registry.
    package enum Kind: String, Sendable, Hashable {
        /// The manifest of a model version (pushed, or generated for a version published another way).
        case model
        /// A document the registry attaches to a version's manifest (its signature, scan report, AI-BOM).
        case attachment
        /// A manifest a client pushed with a `subject` (a signature, an attestation).
        case referrer
        /// A manifest that is not a model, in a namespace configured to store plain artifacts.
        case artifact
    }

    package var repository: String
    package var digest: ContentDigest
    package var mediaType: String
    package var artifactType: String?
    package var subject: ContentDigest?
    package var kind: Kind
    /// The model version it is, or belongs to (its subject's version); nil for plain artifacts.
    package var version: String?
    /// The config and layer digests (blobs) and, for an index, the manifests it lists.
    package var references: [ContentDigest]
    package var annotations: [String: String]
    package var bytes: [UInt8]

    package init(
        repository: String, digest: ContentDigest, mediaType: String, artifactType: String?, subject: ContentDigest?, kind: Kind,
        version: String?, references: [ContentDigest], annotations: [String: String], bytes: [UInt8]
    ) {
        self.repository = repository
        self.digest = digest
        self.mediaType = mediaType
        self.artifactType = artifactType
        self.subject = subject
        self.kind = kind
        self.version = version
        self.references = references
        self.annotations = annotations
        self.bytes = bytes
    }
}

/// The OCI front door's metadata: manifests by repository and digest, tags of plain artifacts, and which blobs each
/// manifest references (so that a blob is served only to a caller allowed a manifest holding it).
package protocol OCIRecords: Sendable {
    /// Stores manifests (and a tag for the first, when given) in one transaction; a manifest already stored under
    /// its repository and digest is left as it is. Every blob the manifests name must still be recorded, checked in
    /// that transaction against the collector (``BlobIndex/collectBlob(_:unusedSince:deleting:)``): otherwise nothing
    /// is stored and the error is ``CustodyError/collectedReference(_:)``.
    func saveOCIManifests(_ records: [OCIManifestRecord], tag: String?) async throws(CustodyError)
    func ociManifest(repository: String, digest: ContentDigest) async throws(CustodyError) -> OCIManifestRecord?
    /// The manifest of a model version (the one recorded with it), or nil when none is recorded yet.
    func ociModelManifest(repository: String, version: String) async throws(CustodyError) -> OCIManifestRecord?
    /// The digest a plain-artifact tag points at.
    func ociTag(repository: String, tag: String) async throws(CustodyError) -> ContentDigest?
    /// Every plain-artifact tag of a repository.
    func ociTags(repository: String) async throws(CustodyError) -> [String]
    /// The manifests whose subject is `subject`, oldest first.
    func ociReferrers(repository: String, subject: ContentDigest) async throws(CustodyError) -> [OCIManifestRecord]
    /// Deletes a manifest that is not a model version's (and the tags pointing at it); false when there is none.
    func deleteOCIManifest(repository: String, digest: ContentDigest) async throws(CustodyError) -> Bool
    /// Deletes a plain-artifact tag; false when there is none.
    func deleteOCITag(repository: String, tag: String) async throws(CustodyError) -> Bool
    /// Whether a manifest of `repository` references the blob (so that it may be mounted from there).
    func ociRepository(_ repository: String, references digest: ContentDigest) async throws(CustodyError) -> Bool
}

extension CustodyError {
    /// A manifest names a blob that is not (or no longer: collected since it was checked) in the registry.
    package static func collectedReference(_ digest: String) -> CustodyError {
        CustodyError(.notFound, "blob \(digest) that the manifest names is no longer in the registry (collected as unused); push it again")
    }
}
