import AsyncHTTPClient
import Crypto
package import CustodyCore
import CustodyPolicy
package import CustodyRegistry
import CustodyS3
package import CustodyStorage
package import CustodyStore
import Foundation
package import Logging
import Prometheus

/// Everything a running registry holds: configuration, stores, keys, metrics. Built once at start-up by
/// ``open(_:logger:)`` and shared by every request.
package final class RegistryServices: Sendable {
    package let configuration: RegistryConfiguration
    /// The metadata backend (SQLite, or PostgreSQL shared with other daemons) and what comes with it.
    package let backend: MetadataBackend
    /// The catalog, tokens, advisories, OCI records and the log.
    package var database: any MetadataStore { backend.store }
    package let blobs: any BlobStore
    package let registryKey: PrivateSigningKey
    /// The publisher keys trusted now (`Keys/trusted/`), live.
    package let trust: TrustStore
    let policies: PolicySet
    let gate: GateService
    let tokens: TokenCache
    let log: CheckpointSigner
    /// What auditors ask: checkpoints, proofs, events, lineage, exposure, the AI-BOM.
    var audit: Audit { Audit(gate: gate, catalog: database, log: database, signer: log, policies: policies) }
    /// What the security team records: advisories and version status.
    var curation: Curation { Curation(gate: gate, catalog: database, records: database, log: database, changes: changes) }
    /// What is in the registry: models, versions, the registry's signatures.
    var catalog: Catalog { Catalog(catalog: database, gate: gate) }
    /// Creates, lists and revokes tokens.
    var tokenAdmin: Tokens { Tokens(records: database, cache: tokens) }
    /// Turns publish requests into signed, recorded versions.
    let publishing: PublishService
    let metrics = RegistryMetrics()
    /// Where writes announce what they changed; the gate's caches listen.
    let changes: any ChangeFeed
    /// Receives blobs: limits, free space, resumable upload objects.
    let uploads: Uploads
    /// Hub downloads that belong to one pull (a snapshot is fetched file by file).
    let pullSessions: PullSessions
    /// Signs the upload URLs the Hub's LFS batch API hands out (their uploads carry no credentials).
    let uploadCapabilities = UploadCapability()
    /// Which token started each OCI upload session.
    let ociUploads = OCIUploadOwners()
    /// Model versions as OCI artifacts, and pushed artifacts as versions.
    var ociArtifacts: OCIArtifacts {
        OCIArtifacts(
            records: database, catalog: catalog, uploads: uploads, publishing: publishing, audit: audit,
            plainNamespaces: configuration.ociPlainNamespaces, maxManifestSize: configuration.ociMaxManifestSize,
            spool: configuration.dataDirectory + "/tmp")
    }
    /// Failed authentications per client address.
    let authFailures: FailureLimiter
    /// Open connections, for the connection cap and `/metrics`.
    let connections = ConnectionCounts()
    /// Free space where blobs and the database live.
    let disk: DiskSpace
    /// Deletes staged uploads past `limits.uploadExpiry`.
    var uploadJanitor: UploadJanitor {
        UploadJanitor(blobs: blobs, expiry: configuration.uploadExpiry, logger: logger)
    }
    let logger: Logger

    init(
        configuration: RegistryConfiguration, backend: MetadataBackend, blobs: any BlobStore, registryKey: PrivateSigningKey,
        policies: PolicySet, logKey: Curve25519.Signing.PrivateKey, logger: Logger,
        diskProbe: @escaping @Sendable (String) -> DiskSpace.Reading? = DiskSpace.statfs
    ) {
        let database = backend.store
        self.disk = DiskSpace(path: configuration.dataDirectory, floor: configuration.minFreeSpace, probe: diskProbe)
        self.log = CheckpointSigner(
            log: database, key: logKey, origin: configuration.logOrigin, logger: logger, lease: backend.signingLease)
        self.policies = policies
        // The one writer of events outside the transactions that change what they record (a publish, a status, a token).
        let recorder = EventRecorder(log: database, repeatWindow: configuration.decisionRepeatWindow)
        let trust = TrustStore(directory: configuration.keys + "/trusted", log: database, recorder: recorder)
        let gate = GateService(catalog: database, advisories: database, recorder: recorder, policies: policies, trust: trust)
        // Every invalidation of the gate's kept decisions comes through the change feed (in process, or shared by
        // the daemons of one PostgreSQL), but the trusted keys: they are this host's files, noticed (synchronously)
        // while a decision is being made.
        let changes = backend.makeChangeFeed()
        changes.subscribe { change throws(CustodyError) in try await gate.apply(change) }
        self.changes = changes
        trust.onChange { gate.trustChanged() }
        self.trust = trust
        self.gate = gate
        self.tokens = TokenCache(records: database)
        self.pullSessions = PullSessions(window: configuration.pullSessionWindow)
        self.authFailures = FailureLimiter(
            burst: configuration.authFailureBurst, window: configuration.authFailureWindow, delay: configuration.authFailureDelay)
        self.configuration = configuration
        self.backend = backend
        self.blobs = blobs
        let metrics = self.metrics
        self.uploads = Uploads(
            blobs: blobs, index: database, disk: disk, maxBlobSize: configuration.maxBlobSize,
            counted: { metrics.bytesIn.increment(by: Int64($0)) })
        self.registryKey = registryKey
        self.publishing = PublishService(
            blobs: blobs, catalog: database, gate: gate, policies: policies, trust: trust, registryKey: registryKey, metrics: metrics,
            changes: changes, refusing: configuration.scanRefuse)
        self.logger = logger
    }

    /// Opens the registry home, creating on first start the data directory, the database, the registry key pair
    /// (`Keys/registry.key`, mode 0600, and `Keys/registry.pub`) and an admin token. Returns the admin token's secret
    /// when one was created: it is shown once and stored only hashed.
    package static func open(
        _ configuration: RegistryConfiguration, logger: Logger
    ) async throws(CustodyError)
        -> (RegistryServices, adminSecret: String?)
    {
        try await open(configuration, logger: logger, diskProbe: DiskSpace.statfs)
    }

    /// ``open(_:logger:)`` with the file system's free space read by `diskProbe` (tests stand in a full disk).
    static func open(
        _ configuration: RegistryConfiguration, logger: Logger, diskProbe: @escaping @Sendable (String) -> DiskSpace.Reading?
    ) async throws(CustodyError) -> (RegistryServices, adminSecret: String?) {
        let data = configuration.dataDirectory
        do {
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try FileManager.default.createDirectory(atPath: configuration.keys + "/trusted", withIntermediateDirectories: true)
        } catch {
            throw CustodyError(.io, "cannot create \(data) or \(configuration.keys): \(error.localizedDescription)")
        }
        let backend = try await MetadataBackend.open(configuration, logger: logger)
        do throws(CustodyError) {
            return try await open(configuration, backend: backend, logger: logger, diskProbe: diskProbe)
        } catch {
            backend.close()
            throw error
        }
    }

    private static func open(
        _ configuration: RegistryConfiguration, backend: MetadataBackend, logger: Logger,
        diskProbe: @escaping @Sendable (String) -> DiskSpace.Reading?
    ) async throws(CustodyError) -> (RegistryServices, adminSecret: String?) {
        let data = configuration.dataDirectory
        let database = backend.store
        let blobs = try openBlobs(configuration, cache: data + "/s3-cache", ledger: database, logger: logger)
        let registryKey = try loadOrCreateRegistryKey(in: configuration.keys, logger: logger)
        let logKey = try CheckpointSigner.loadOrCreateKey(in: configuration.keys, origin: configuration.logOrigin, logger: logger)
        // A policy that does not load stops the start: a gate must not run without the rules it was given.
        let policies = try PolicySet(directory: configuration.policiesDirectory, licencePath: configuration.licenceTablePath)
        let services = RegistryServices(
            configuration: configuration, backend: backend, blobs: blobs, registryKey: registryKey,
            policies: policies, logKey: logKey, logger: logger, diskProbe: diskProbe)
        try await services.recordLoaded(policies.snapshot, actor: "registry")
        var adminSecret: String?
        if try await database.tokenCount() == 0 {
            let created = try await database.createToken(
                NewToken(role: .admin, name: "admin", namespaces: [], environments: [], expiresAt: nil))
            adminSecret = created.secret
        }
        // Keys put into Keys/trusted/ while the daemon was stopped are recorded now; a key that does not load stops the
        // start, as a policy does.
        try await services.trust.reload(actor: "registry")
        // Other daemons' changes are heard from before the gate keeps anything, so none can be missed.
        await backend.startListening()
        try await services.gate.prime()
        return (services, adminSecret)
    }

    /// Re-reads the policies, the licence table and the trusted keys; on an error the loaded set stays in force and the
    /// error says where. Each loaded policy is recorded with its digest, each change of trust as its event.
    func reloadPolicies(actor: String) async throws(CustodyError) -> [String: String] {
        let snapshot: PolicySet.Snapshot
        do {
            snapshot = try policies.reload()
        } catch {
            try? await gate.recorder.record(NewEvent(type: .policyReloadFailed, actor: actor, detail: error.message))
            logger.error("policy reload failed; the loaded policies stay in force", metadata: ["error": "\(error.message)"])
            throw error
        }
        let digests = try await recordLoaded(snapshot, actor: actor)
        logger.notice("policies reloaded", metadata: ["environments": "\(digests.keys.sorted().joined(separator: ","))"])
        // The trusted keys reload with the policies: a key file added or removed by hand is recorded now.
        do {
            try await trust.reload(actor: actor)
        } catch {
            try? await gate.recorder.record(NewEvent(type: .trustReloadFailed, actor: actor, detail: error.message))
            logger.error("trusted keys reload failed; the loaded keys stay trusted", metadata: ["error": "\(error.message)"])
            throw error
        }
        return digests
    }

    /// Records each loaded policy with its digest; returns the digests by environment.
    @discardableResult
    func recordLoaded(_ snapshot: PolicySet.Snapshot, actor: String) async throws(CustodyError) -> [String: String] {
        var digests: [String: String] = [:]
        for (environment, policy) in snapshot.policies.sorted(by: { $0.key < $1.key }) {
            digests[environment] = policy.digest
            try await gate.recorder.record(
                NewEvent(
                    type: .policyLoaded, actor: actor, detail: "\(environment) \(policy.digest) from \(policy.source)", environment: environment))
        }
        return digests
    }

    /// The blob store the configuration names; an S3 store keeps its local copies under `cache` and the heartbeats of
    /// its multipart uploads in `ledger` (nil: a one-off process, such as a migration, whose janitor never runs).
    package static func openBlobs(
        _ configuration: RegistryConfiguration, cache: String, ledger: (any UploadLedger)?, logger: Logger
    ) throws(CustodyError) -> any BlobStore {
        switch configuration.blobStorage {
        case .filesystem:
            return try FileSystemBlobStore(root: configuration.dataDirectory)
        case .s3(let location):
            guard let credentials = configuration.s3Credentials else { throw CustodyError(.invalidArgument, "S3 storage needs credentials") }
            let client = S3Client(location: location, credentials: credentials.signing, http: HTTPClient.shared)
            logger.notice(
                "blobs in S3", metadata: ["bucket": "\(location.bucket)", "prefix": "\(location.prefix)", "endpoint": "\(location.endpoint)"])
            return try S3BlobStore(client: client, cache: cache, cacheLimit: configuration.s3CacheLimit, ledger: ledger)
        }
    }

    static func loadOrCreateRegistryKey(in directory: String, logger: Logger) throws(CustodyError) -> PrivateSigningKey {
        let privatePath = directory + "/registry.key"
        let publicPath = directory + "/registry.pub"
        let key: PrivateSigningKey
        if FileManager.default.fileExists(atPath: privatePath) {
            key = try PrivateSigningKey(contentsOf: privatePath)
        } else {
            key = PrivateSigningKey(generating: .p256)
            try PosixFile.writeAtomically(Array(key.pemRepresentation.utf8), to: privatePath, mode: 0o600, exclusive: true)
            logger.notice("generated the registry signing key", metadata: ["public": "\(publicPath)"])
        }
        let publicPEM = Array(key.publicKey.pemRepresentation.utf8)
        if (try? PosixFile.contents(of: publicPath, limit: 64 << 10)) != publicPEM {
            try PosixFile.writeAtomically(publicPEM, to: publicPath, mode: 0o644)
        }
        return key
    }
}
