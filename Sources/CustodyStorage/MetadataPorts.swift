package import CustodyCore
package import Foundation

// The registry's metadata, by role. The registry core takes each role it uses, nothing wider; a backend implements
// them all (`RegistryDatabase` over SQLite today). Every method either does all it says in one transaction or nothing,
// and reports failures as ``CustodyError``s whose message names what failed.

/// Models and their versions: what was published, its files, signatures, scan, status and lineage.
package protocol ModelCatalog: Sendable {
    /// Creates a version in one transaction with its `publish` event, or finds the identical one already there;
    /// different content under an existing version is a ``CustodyError/Code/conflict``.
    func publishVersion(_ version: NewVersion) async throws(CustodyError) -> PublishOutcome
    /// One version by tag, digest or `latest`, with its events when asked.
    func version(
        _ model: ModelName, _ selector: ModelReference.Selector, includeEvents: Bool
    ) async throws(CustodyError)
        -> API.VersionDetail?
    /// Every version of a model, oldest first, without events.
    func versionDetails(_ model: ModelName) async throws(CustodyError) -> [API.VersionDetail]
    /// The DSSE bundle the registry signed a version with.
    func registrySignature(_ model: ModelName, version: String) async throws(CustodyError) -> [UInt8]?
    func model(_ name: ModelName) async throws(CustodyError) -> API.ModelDetail?
    /// Every model's name, sorted.
    func models() async throws(CustodyError) -> [String]
    /// Sets a version's status and records the change as its event; false when there is no such version.
    func setStatus(_ model: ModelName, version: String, _ status: API.VersionStatus) async throws(CustodyError) -> Bool
    /// Records a publisher signature for a version published without one, with its event, in one transaction;
    /// false when the version has a publisher signature already (or there is no such version).
    func attachPublisherSignature(
        _ model: ModelName, version: String, _ signature: SignatureRecord, actor: String?
    ) async throws(CustodyError) -> Bool
    /// Every version of a model, oldest first, as (version, bundle digest); nil when there is no such model.
    func versionOrder(_ model: ModelName) async throws(CustodyError) -> [(version: String, digest: ContentDigest)]?
    /// The versions (model, version) holding a blob.
    func versions(holding digest: ContentDigest) async throws(CustodyError) -> [(model: String, version: String)]
    /// The versions whose bundle digest is one of these.
    func versions(withBundleDigests digests: [String]) async throws(CustodyError) -> [(model: String, version: String)]
    /// The versions whose provenance names one of these source URIs, with the source revision they name.
    func versions(withSources uris: [String]) async throws(CustodyError) -> [(model: String, version: String, revision: String?)]
    /// The versions whose base models name one of these models.
    func derivatives(naming names: [String]) async throws(CustodyError) -> [(model: String, version: String, baseModels: [String])]
}

/// Bearer tokens, stored only as hashes of their secrets.
package protocol TokenRecords: Sendable {
    /// Creates a token and returns its secret, which is not stored and cannot be read again.
    func createToken(_ request: NewToken) async throws(CustodyError) -> API.TokenCreated
    /// The token whose secret this is, revoked and expired ones included (the caller decides).
    func token(secret: String) async throws(CustodyError) -> TokenRecord?
    func tokens() async throws(CustodyError) -> [API.TokenInfo]
    /// Revokes a token and records it; false when there is no such token.
    func revokeToken(id: String) async throws(CustodyError) -> Bool
    func tokenCount() async throws(CustodyError) -> Int
}

/// Security advisories (OSV documents) as recorded, withdrawn ones included.
package protocol AdvisoryRecords: Sendable {
    /// Stores an advisory with its event in one transaction; an identical one is left alone.
    func saveAdvisory(_ advisory: StoredAdvisory, event: NewEvent) async throws(CustodyError) -> AdvisoryWrite
    func advisories() async throws(CustodyError) -> [StoredAdvisory]
}

/// The event log: events in log order, each a leaf of the Merkle tree whose index the log assigns itself (under its
/// own lock, in the appending transaction), and the signed checkpoints of that tree.
package protocol EventLog: Sendable {
    /// Appends one event.
    func recordEvent(_ event: NewEvent) async throws(CustodyError)
    /// Appends events in order in one transaction. Called by the event recorder from its own thread, never from the
    /// task pool: it may block until the batch is durable.
    func recordEventsBlocking(_ events: [NewEvent]) throws(CustodyError)
    func events(_ filter: EventFilter) async throws(CustodyError) -> [API.Event]
    /// Every event in log order, a page at a time (exports).
    func forEachEvent(after id: Int64, page: Int, _ body: ([API.Event]) async throws -> Void) async throws
    /// Pulls and decisions about these versions, grouped by type, token, environment and client address.
    func uses(
        of versions: [(model: String, version: String)]
    ) async throws(CustodyError)
        -> [(model: String, version: String, use: API.Exposure.Use)]
    func logSize() async throws(CustodyError) -> UInt64
    func logRoot(size: UInt64) async throws(CustodyError) -> [UInt8]
    func inclusionProof(index: UInt64, size: UInt64) async throws(CustodyError) -> (leaf: [UInt8], proof: [[UInt8]])
    func consistencyProof(from: UInt64, to: UInt64) async throws(CustodyError) -> [[UInt8]]
    func latestCheckpoint() async throws(CustodyError) -> (size: UInt64, note: String)?
    func recordCheckpoint(size: UInt64, root: [UInt8], note: String) async throws(CustodyError)
}

/// Heartbeats of an object store's multipart uploads: each daemon records the uploads it is still writing, so that
/// any daemon's janitor aborts only those that nobody touched for the upload expiry (left by a daemon that stopped),
/// never another daemon's long upload.
package protocol UploadLedger: Sendable {
    /// Records `ids` as being written at `date`.
    func touchUploads(_ ids: [String], at date: Date) async throws(CustodyError)
    /// The ids touched at or after `cutoff`; older records are forgotten.
    func uploadsTouched(since cutoff: Date) async throws(CustodyError) -> Set<String>
}

/// Everything the registry keeps besides blobs: one backend implements every role.
package typealias MetadataStore = ModelCatalog & TokenRecords & AdvisoryRecords & EventLog & BlobIndex & OCIRecords & UploadLedger
