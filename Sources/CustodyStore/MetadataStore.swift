package import CustodyCore
@_exported public import CustodyStorage

/// What the registry needs from its metadata store. ``RegistryDatabase`` (SQLite) implements it; a PostgreSQL
/// store for deployments that outgrow one machine would implement the same methods.
package protocol MetadataStore: Sendable {
    /// The recorded size of a blob, or nil when the registry does not have it.
    func blobSize(_ digest: ContentDigest) async throws(CustodyError) -> UInt64?
    /// Records a blob that was just placed in the blob store (idempotent).
    func recordBlob(_ digest: ContentDigest, size: UInt64) async throws(CustodyError)
    /// Creates a version in one transaction, or finds the identical one already there; different content under
    /// an existing version is a ``CustodyError/Code/conflict``.
    func publishVersion(_ version: NewVersion) async throws(CustodyError) -> PublishOutcome
    func version(
        _ model: ModelName, _ selector: ModelReference.Selector, includeEvents: Bool
    ) async throws(CustodyError)
        -> API.VersionDetail?
    func registrySignature(_ model: ModelName, version: String) async throws(CustodyError) -> [UInt8]?
    func model(_ name: ModelName) async throws(CustodyError) -> API.ModelDetail?
    func models() async throws(CustodyError) -> [String]
    func createToken(_ request: NewToken) async throws(CustodyError) -> API.TokenCreated
    func token(secret: String) async throws(CustodyError) -> TokenRecord?
    func tokens() async throws(CustodyError) -> [API.TokenInfo]
    func revokeToken(id: String) async throws(CustodyError) -> Bool
    func tokenCount() async throws(CustodyError) -> Int
    func recordEvent(_ event: NewEvent) async throws(CustodyError)
    func setStatus(_ model: ModelName, version: String, _ status: API.VersionStatus) async throws(CustodyError) -> Bool
    /// Every version of a model, oldest first, as (version, bundle digest).
    func versionOrder(_ model: ModelName) async throws(CustodyError) -> [(version: String, digest: ContentDigest)]?
    /// The versions (model, version) holding a blob.
    func versions(holding digest: ContentDigest) async throws(CustodyError) -> [(model: String, version: String)]
    func versions(withBundleDigests digests: [String]) async throws(CustodyError) -> [(model: String, version: String)]
    func saveAdvisory(_ advisory: StoredAdvisory, event: NewEvent) async throws(CustodyError) -> AdvisoryWrite
    func advisories() async throws(CustodyError) -> [StoredAdvisory]
    /// Pulls and decisions about these versions, grouped by type, token, environment and client address.
    func uses(of versions: [(model: String, version: String)]) async throws(CustodyError) -> [(model: String, version: String, use: API.Exposure.Use)]
}

/// An advisory as stored: its OSV document and the columns lists and filters need.
package struct StoredAdvisory: Sendable {
    package var id: String
    package var modified: String
    package var withdrawn: String?
    package var severity: String
    package var score: Double?
    package var summary: String?
    package var models: [String]
    package var document: [UInt8]

    package init(
        id: String, modified: String, withdrawn: String?, severity: String, score: Double?, summary: String?, models: [String], document: [UInt8]
    ) {
        self.id = id
        self.modified = modified
        self.withdrawn = withdrawn
        self.severity = severity
        self.score = score
        self.summary = summary
        self.models = models
        self.document = document
    }
}

package enum AdvisoryWrite: Sendable {
    case created, updated, unchanged
}

/// Everything a new version is made of, checked and signed by the server before it reaches the store.
package struct NewVersion: Sendable {
    package var model: ModelName
    package var version: String
    package var bundleDigest: ContentDigest
    /// In OMS resource order.
    package var files: [API.FileEntry]
    package var license: API.License
    package var provenance: API.Provenance
    package var publisherSignature: SignatureRecord?
    package var registrySignature: SignatureRecord
    package var publishedBy: String?
    package var scan: BundleReport?

    package init(
        model: ModelName, version: String, bundleDigest: ContentDigest, files: [API.FileEntry], license: API.License,
        provenance: API.Provenance, publisherSignature: SignatureRecord?, registrySignature: SignatureRecord,
        publishedBy: String?, scan: BundleReport? = nil
    ) {
        self.scan = scan
        self.model = model
        self.version = version
        self.bundleDigest = bundleDigest
        self.files = files
        self.license = license
        self.provenance = provenance
        self.publisherSignature = publisherSignature
        self.registrySignature = registrySignature
        self.publishedBy = publishedBy
    }
}

package struct SignatureRecord: Sendable {
    package var status: String
    package var keyName: String?
    package var keyHint: String?
    package var bundle: [UInt8]?

    package init(status: String, keyName: String?, keyHint: String?, bundle: [UInt8]?) {
        self.status = status
        self.keyName = keyName
        self.keyHint = keyHint
        self.bundle = bundle
    }
}

package enum PublishOutcome: Sendable {
    case created(API.VersionDetail)
    /// The same content was already published under this version: nothing changed.
    case unchanged(API.VersionDetail)
}

package struct NewToken: Sendable {
    package var role: Role
    package var name: String?
    package var namespaces: [String]
    package var environments: [String]
    package var expiresAt: String?

    package init(role: Role, name: String?, namespaces: [String], environments: [String], expiresAt: String?) {
        self.role = role
        self.name = name
        self.namespaces = namespaces
        self.environments = environments
        self.expiresAt = expiresAt
    }
}

/// A token as the server checks it.
package struct NewEvent: Sendable, Hashable {
    package var type: EventKind
    package var actor: String?
    package var model: String?
    package var version: String?
    package var detail: String?
    /// The deployment environment a decision or pull was for.
    package var environment: String?
    /// The client's address, for pulls and decisions.
    package var client: String?
    /// How many identical events this one stands for (repeats of a gate decision).
    package var count: Int64 = 1

    package init(
        type: EventKind, actor: String?, model: String? = nil, version: String? = nil, detail: String? = nil,
        environment: String? = nil, client: String? = nil
    ) {
        self.type = type
        self.actor = actor
        self.model = model
        self.version = version
        self.detail = detail
        self.environment = environment
        self.client = client
    }
}
