import CustodyCore
import CustodyStorage
import Foundation
import GRDB

// The tables' rows as GRDB record types: columns by name through Codable (snake case in SQL, camel case here), read
// and written whole, and every stored vocabulary value checked on the way out: a value this build does not know is
// refused, never read as some other value.

/// Column naming shared by every record type: `bundle_digest` in SQL is `bundleDigest` in Swift.
protocol SnakeCaseRecord: Codable, FetchableRecord, PersistableRecord {}

extension SnakeCaseRecord {
    static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
    static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy { .convertToSnakeCase }
}

/// A row of `versions`: one immutable version of a model, and its current status.
struct VersionRow: SnakeCaseRecord {
    static let databaseTableName = "versions"

    var id: Int64?
    var modelId: Int64
    var version: String
    var bundleDigest: String
    var licenseId: String?
    var licenseName: String?
    var licenseLink: String?
    var publishedBy: String?
    var createdAt: String
    var scanVerdict: String?
    var status: String
    var statusReason: String?
    var statusBy: String?
    var statusAt: String?

    /// The row's id; every row read from the table has one.
    func storedID() throws -> Int64 {
        guard let id else { throw CustodyError(.io, "a version row of \(version) has no id") }
        return id
    }

    func digest() throws -> ContentDigest {
        do { return try ContentDigest(parsing: bundleDigest) } catch {
            throw CustodyError(.io, "version \(version) has a stored bundle digest that does not parse: \(error.message)")
        }
    }

    var license: API.License { API.License(id: licenseId, name: licenseName, link: licenseLink) }

    /// The stored status; a state this build does not know is refused (reading it as `active` would let it through
    /// the gate).
    func storedStatus() throws -> API.VersionStatus {
        guard let state = API.VersionStatus.State(rawValue: status) else {
            throw CustodyError(.io, "version \(version) has an unknown status '\(status)'")
        }
        return API.VersionStatus(state: state, reason: statusReason, by: statusBy, at: statusAt)
    }
}

/// A row of `files`: one file of a version, at its position in the bundle.
struct FileRow: SnakeCaseRecord {
    static let databaseTableName = "files"

    var versionId: Int64
    var path: String
    var size: Int64
    var digest: String
    var position: Int

    func entry() throws -> API.FileEntry {
        API.FileEntry(path: path, size: UInt64(size), digest: try ContentDigest(parsing: digest))
    }
}

/// A row of `signatures`: the publisher's or the registry's signature over a version's manifest.
struct SignatureRow: SnakeCaseRecord {
    static let databaseTableName = "signatures"

    var versionId: Int64
    var kind: String
    var status: String
    var keyName: String?
    var keyHint: String?
    var bundle: Data?

    func info() throws -> API.SignatureInfo {
        guard let kind = API.SignatureInfo.Kind(rawValue: kind), let status = API.SignatureInfo.Status(rawValue: status) else {
            throw CustodyError(.io, "version \(versionId) has a signature of unknown kind or status '\(kind)' / '\(status)'")
        }
        return API.SignatureInfo(kind: kind, status: status, keyName: keyName, keyHint: keyHint)
    }
}

/// A row of `provenance`: what a version was made from; lists and maps are stored as JSON text.
struct ProvenanceRow: SnakeCaseRecord {
    static let databaseTableName = "provenance"

    var versionId: Int64
    var sourceUri: String?
    var sourceRevision: String?
    var pipelineRun: String?
    var baseModels: String
    var datasets: String
    var annotations: String

    init(versionId: Int64, _ provenance: API.Provenance) throws {
        self.versionId = versionId
        sourceUri = provenance.source?.uri
        sourceRevision = provenance.source?.revision
        pipelineRun = provenance.pipelineRun
        baseModels = try RegistryDatabase.json(provenance.baseModels)
        datasets = try RegistryDatabase.json(provenance.datasets)
        annotations = try RegistryDatabase.json(provenance.annotations)
    }

    func provenance() throws -> API.Provenance {
        API.Provenance(
            source: sourceUri == nil && sourceRevision == nil ? nil : API.Source(uri: sourceUri, revision: sourceRevision),
            baseModels: try RegistryDatabase.decode(baseModels), datasets: try RegistryDatabase.decode(datasets),
            pipelineRun: pipelineRun, annotations: try RegistryDatabase.decode(annotations))
    }
}

/// A row of `events`, as the API shows it (its leaf index is the log's, read by the log's own queries).
struct EventRow: Codable, FetchableRecord {
    static let databaseTableName = "events"

    var id: Int64
    var at: String
    var type: String
    var actor: String?
    var model: String?
    var version: String?
    var detail: String?
    var environment: String?
    var client: String?
    var count: Int64?

    var event: API.Event {
        API.Event(
            id: id, at: at, type: type, actor: actor, model: model, version: version, detail: detail, environment: environment,
            client: client, count: count)
    }
}

/// A row of `advisories`: the OSV document as received, and the fields the gate and the listings use.
struct AdvisoryRow: SnakeCaseRecord {
    static let databaseTableName = "advisories"

    var id: String
    var modified: String
    var withdrawn: String?
    var severity: String
    var score: Double?
    var summary: String?
    var models: String
    var document: Data
    var recordedAt: String
    var updatedAt: String

    init(_ advisory: StoredAdvisory, recordedAt: String, updatedAt: String) throws {
        id = advisory.id
        modified = advisory.modified
        withdrawn = advisory.withdrawn
        severity = advisory.severity
        score = advisory.score
        summary = advisory.summary
        models = try RegistryDatabase.json(advisory.models)
        document = Data(advisory.document)
        self.recordedAt = recordedAt
        self.updatedAt = updatedAt
    }

    func stored() throws -> StoredAdvisory {
        StoredAdvisory(
            id: id, modified: modified, withdrawn: withdrawn, severity: severity, score: score, summary: summary,
            models: try RegistryDatabase.decode(models), document: Array(document))
    }
}

/// A row of `models`.
struct ModelRow: SnakeCaseRecord {
    static let databaseTableName = "models"

    var id: Int64
    var namespace: String
    var name: String
    var createdAt: String
}

/// A version as a model's listing shows it: a row of `versions` with its files counted and summed.
struct VersionSummaryRow: Decodable, FetchableRecord {
    static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase

    var version: String
    var bundleDigest: String
    var createdAt: String
    var fileCount: Int
    var totalSize: Int64

    func summary() throws -> API.VersionSummary {
        API.VersionSummary(
            version: version, bundleDigest: try ContentDigest(parsing: bundleDigest), createdAt: createdAt, fileCount: fileCount,
            totalSize: UInt64(totalSize))
    }
}

/// One kind of use of a version, grouped from its `events` rows (see ``RegistryDatabase/uses(of:)``).
struct UseRow: Decodable, FetchableRecord {
    var version: String
    var type: String
    var allowed: Bool
    var actor: String?
    var environment: String?
    var client: String?
    var count: Int
    var first: String
    var last: String

    var use: API.Exposure.Use {
        API.Exposure.Use(
            type: type, allowed: allowed, actor: actor, environment: environment, client: client, count: count, first: first, last: last)
    }
}
