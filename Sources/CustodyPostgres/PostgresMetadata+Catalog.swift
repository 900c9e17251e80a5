package import CustodyCore
package import CustodyStorage
import Foundation
import PostgresNIO

/// The model catalog on PostgreSQL. A version is one row: its immutable record (files, provenance, signatures, scan)
/// as JSON documents read whole — the gate loads every version of a model at once, one query —, the columns the
/// catalog searches by (bundle digest, source, base models), and its status; `version_blobs` indexes which versions
/// hold which blob. A publish locks its model's row, so two daemons publishing the same version are ordered: the
/// second finds the first's version (the same one, or a conflict).
extension PostgresMetadata: ModelCatalog {
    static let catalogTables: [PostgresQuery] = [
        """
        CREATE TABLE IF NOT EXISTS models (
            id BIGSERIAL PRIMARY KEY, namespace TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (namespace, name)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS versions (
            id BIGSERIAL PRIMARY KEY, model_id BIGINT NOT NULL REFERENCES models (id), version TEXT NOT NULL, bundle_digest TEXT NOT NULL,
            license_id TEXT, license_name TEXT, license_link TEXT, published_by TEXT, created_at TEXT NOT NULL,
            status TEXT NOT NULL, status_reason TEXT, status_by TEXT, status_at TEXT,
            files TEXT NOT NULL, file_count INTEGER NOT NULL, total_size BIGINT NOT NULL, provenance TEXT NOT NULL,
            signatures TEXT NOT NULL, publisher_bundle BYTEA, registry_bundle BYTEA, scan TEXT,
            source_uri TEXT, source_revision TEXT, base_models TEXT NOT NULL,
            UNIQUE (model_id, version)
        )
        """,
        "CREATE INDEX IF NOT EXISTS versions_by_digest ON versions (bundle_digest)",
        "CREATE INDEX IF NOT EXISTS versions_by_source ON versions (lower(source_uri))",
        """
        CREATE TABLE IF NOT EXISTS version_blobs (
            digest TEXT NOT NULL, version_id BIGINT NOT NULL REFERENCES versions (id), PRIMARY KEY (digest, version_id)
        )
        """,
    ]

    /// The columns a version's detail is read from, in this order.
    static let versionColumns =
        "v.id, v.version, v.bundle_digest, v.license_id, v.license_name, v.license_link, v.published_by, v.created_at, v.status, "
        + "v.status_reason, v.status_by, v.status_at, v.files, v.provenance, v.signatures, v.scan"

    package func publishVersion(_ new: NewVersion) async throws(CustodyError) -> PublishOutcome {
        let now = RFC3339.string(.now)
        let document = try VersionDocument(new)
        return try await log.run("publish \(new.model)@\(new.version)") { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query(
                    """
                    INSERT INTO models (namespace, name, created_at) VALUES (\(new.model.namespace), \(new.model.name), \(now))
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
                var modelID: Int64?
                let locked = try await connection.query(
                    "SELECT id FROM models WHERE namespace = \(new.model.namespace) AND name = \(new.model.name) FOR UPDATE", logger: logger)
                for try await id in locked.decode(Int64.self) { modelID = id }
                guard let modelID else { throw CustodyError(.io, "model \(new.model) vanished while being published") }
                let existing = try await Self.details(
                    "WHERE v.model_id = \(modelID) AND v.version = \(new.version)", model: new.model, on: connection, logger: logger)
                if let existing = existing.first {
                    if let conflict = new.conflict(with: existing) { throw conflict }
                    return PublishOutcome.unchanged(existing)
                }
                let digests = Array(Set(new.files.map(\.digest.description)))
                var stored: [String: Int64] = [:]
                // Shared locks on the blobs' records until the version commits: a collector cannot take them meanwhile.
                let sizes = try await connection.query(
                    "SELECT digest, size FROM blobs WHERE digest = ANY(\(digests)) FOR SHARE", logger: logger)
                for try await (digest, size) in sizes.decode((String, Int64).self) { stored[digest] = size }
                for file in new.files {
                    guard let size = stored[file.digest.description] else {
                        throw CustodyError(.invalidArgument, "file '\(file.path)': blob \(file.digest) has not been uploaded")
                    }
                    guard UInt64(size) == file.size else {
                        throw CustodyError(.invalidArgument, "file '\(file.path)': blob \(file.digest) has \(size) bytes, not \(file.size)")
                    }
                }
                var versionID: Int64?
                let inserted = try await connection.query(
                    """
                    INSERT INTO versions (
                        model_id, version, bundle_digest, license_id, license_name, license_link, published_by, created_at, status,
                        files, file_count, total_size, provenance, signatures, publisher_bundle, registry_bundle, scan,
                        source_uri, source_revision, base_models)
                    VALUES (
                        \(modelID), \(new.version), \(new.bundleDigest.description), \(new.license.id), \(new.license.name),
                        \(new.license.link), \(new.publishedBy), \(now), \(API.VersionStatus.State.active.rawValue),
                        \(document.files), \(new.files.count), \(document.totalSize), \(document.provenance), \(document.signatures),
                        \(document.publisherBundle), \(document.registryBundle), \(document.scan),
                        \(new.provenance.source?.uri), \(new.provenance.source?.revision), \(document.baseModels))
                    RETURNING id
                    """, logger: logger)
                for try await id in inserted.decode(Int64.self) { versionID = id }
                guard let versionID else { throw CustodyError(.io, "the new version of \(new.model) has no id") }
                try await connection.query(
                    """
                    INSERT INTO version_blobs (digest, version_id) SELECT digest, \(versionID) FROM UNNEST(\(digests)::TEXT[]) AS digest
                    """, logger: logger)
                try await PostgresLog.insert(new.events, on: connection, logger: logger)
                let created = try await Self.details("WHERE v.id = \(versionID)", model: new.model, on: connection, logger: logger)
                guard let detail = created.first else { throw CustodyError(.io, "the new version \(new.model)@\(new.version) cannot be read") }
                return PublishOutcome.created(detail)
            }
        }
    }

    package func version(
        _ model: ModelName, _ selector: ModelReference.Selector, includeEvents: Bool
    ) async throws(CustodyError) -> API.VersionDetail? {
        let condition: PostgresQuery =
            switch selector {
            case .version(let version):
                "WHERE m.namespace = \(model.namespace) AND m.name = \(model.name) AND v.version = \(version)"
            case .digest(let digest):
                "WHERE m.namespace = \(model.namespace) AND m.name = \(model.name) AND v.bundle_digest = \(digest.description) ORDER BY v.id LIMIT 1"
            }
        let found = try await log.run("read a version of \(model)") { connection, logger in
            try await Self.details(condition, model: model, on: connection, logger: logger)
        }
        guard var detail = found.first else { return nil }
        if includeEvents {
            var filter = EventFilter()
            filter.model = model.description
            filter.version = detail.version
            filter.limit = 10_000
            detail.events = try await log.events(filter)
        }
        return detail
    }

    package func versionDetails(_ model: ModelName) async throws(CustodyError) -> [API.VersionDetail] {
        try await log.run("read the versions of \(model)") { connection, logger in
            try await Self.details(
                "WHERE m.namespace = \(model.namespace) AND m.name = \(model.name) ORDER BY v.id", model: model, on: connection, logger: logger)
        }
    }

    package func registrySignature(_ model: ModelName, version: String) async throws(CustodyError) -> [UInt8]? {
        try await log.run("read the registry signature of \(model)@\(version)") { connection, logger in
            let rows = try await connection.query(
                """
                SELECT v.registry_bundle FROM versions v JOIN models m ON m.id = v.model_id
                WHERE m.namespace = \(model.namespace) AND m.name = \(model.name) AND v.version = \(version)
                """, logger: logger)
            var bundle: [UInt8]?
            for try await value in rows.decode(ByteBuffer?.self) { bundle = value.map { Array($0.readableBytesView) } }
            return bundle
        }
    }

    package func model(_ name: ModelName) async throws(CustodyError) -> API.ModelDetail? {
        try await log.run("read model \(name)") { connection, logger in
            let rows = try await connection.query(
                """
                SELECT m.created_at, v.version, v.bundle_digest, v.created_at, v.file_count, v.total_size
                FROM models m LEFT JOIN versions v ON v.model_id = m.id
                WHERE m.namespace = \(name.namespace) AND m.name = \(name.name) ORDER BY v.id
                """, logger: logger)
            var created: String?
            var versions: [API.VersionSummary] = []
            for try await (modelCreated, version, digest, at, count, size) in rows.decode(
                (String, String?, String?, String?, Int32?, Int64?).self)
            {
                created = modelCreated
                guard let version, let digest, let at, let count, let size else { continue }
                versions.append(
                    API.VersionSummary(
                        version: version, bundleDigest: try Self.digest(digest), createdAt: at, fileCount: Int(count), totalSize: UInt64(size)))
            }
            return created.map { API.ModelDetail(model: name.description, createdAt: $0, versions: versions) }
        }
    }

    package func models() async throws(CustodyError) -> [String] {
        try await log.run("list models") { connection, logger in
            var out: [String] = []
            let rows = try await connection.query("SELECT namespace || '/' || name FROM models ORDER BY namespace, name", logger: logger)
            for try await name in rows.decode(String.self) { out.append(name) }
            return out
        }
    }

    package func setStatus(_ model: ModelName, version: String, _ status: API.VersionStatus) async throws(CustodyError) -> Bool {
        let at = status.at ?? RFC3339.string(.now)
        return try await log.run("set the status of \(model)@\(version)") { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                let rows = try await connection.query(
                    """
                    UPDATE versions v SET status = \(status.state.rawValue), status_reason = \(status.reason), status_by = \(status.by),
                        status_at = \(at)
                    FROM models m WHERE m.id = v.model_id AND m.namespace = \(model.namespace) AND m.name = \(model.name)
                        AND v.version = \(version)
                    RETURNING v.id
                    """, logger: logger)
                var changed = false
                for try await _ in rows.decode(Int64.self) { changed = true }
                if changed { try await PostgresLog.insert([.statusChange(model, version: version, status)], on: connection, logger: logger) }
                return changed
            }
        }
    }

    package func attachPublisherSignature(
        _ model: ModelName, version: String, _ signature: SignatureRecord, actor: String?
    ) async throws(CustodyError) -> Bool {
        let bundle = signature.bundle.map { ByteBuffer(bytes: $0) }
        return try await log.run("attach a signature to \(model)@\(version)") { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                let rows = try await connection.query(
                    """
                    SELECT v.id, v.signatures FROM versions v JOIN models m ON m.id = v.model_id
                    WHERE m.namespace = \(model.namespace) AND m.name = \(model.name) AND v.version = \(version) FOR UPDATE OF v
                    """, logger: logger)
                var found: (Int64, String)?
                for try await row in rows.decode((Int64, String).self) { found = row }
                guard let (id, text) = found else { return false }
                var signatures: [API.SignatureInfo] = try Self.decode(text)
                guard let index = signatures.firstIndex(where: { $0.kind == .publisher && $0.status == .unsigned }) else { return false }
                signatures[index] = API.SignatureInfo(
                    kind: .publisher, status: signature.status, keyName: signature.keyName, keyHint: signature.keyHint)
                let encoded = try Self.encode(signatures)
                try await connection.query(
                    "UPDATE versions SET signatures = \(encoded), publisher_bundle = \(bundle) WHERE id = \(id)", logger: logger)
                try await PostgresLog.insert(
                    [.signatureAttached(model, version: version, signature, actor: actor)], on: connection, logger: logger)
                return true
            }
        }
    }

    package func versionOrder(_ model: ModelName) async throws(CustodyError) -> [(version: String, digest: ContentDigest)]? {
        let rows: [(String?, String?)]? = try await log.run("read the versions of \(model)") { connection, logger in
            let rows = try await connection.query(
                """
                SELECT v.version, v.bundle_digest FROM models m LEFT JOIN versions v ON v.model_id = m.id
                WHERE m.namespace = \(model.namespace) AND m.name = \(model.name) ORDER BY v.id
                """, logger: logger)
            var out: [(String?, String?)]?
            for try await row in rows.decode((String?, String?).self) { out = (out ?? []) + [row] }
            return out
        }
        guard let rows else { return nil }
        var out: [(version: String, digest: ContentDigest)] = []
        for case (let version?, let digest?) in rows { out.append((version, try Self.digest(digest))) }
        return out
    }

    package func versions(holding digest: ContentDigest) async throws(CustodyError) -> [(model: String, version: String)] {
        let key = digest.description
        let rows: [(String, String)] = try await log.run("read the versions holding a blob") { connection, logger in
            var out: [(String, String)] = []
            let files = try await connection.query(
                """
                SELECT m.namespace || '/' || m.name, v.version FROM version_blobs b JOIN versions v ON v.id = b.version_id
                JOIN models m ON m.id = v.model_id WHERE b.digest = \(key) ORDER BY v.id DESC
                """, logger: logger)
            for try await row in files.decode((String, String).self) { out.append(row) }
            // Blobs only OCI manifests hold (configs, archive layers, attached documents) belong to their versions too.
            let oci = try await connection.query(
                """
                SELECT m.repository, m.version FROM oci_references r
                JOIN oci_manifests m ON m.repository = r.repository AND m.digest = r.manifest
                WHERE r.digest = \(key) AND m.version IS NOT NULL ORDER BY m.sequence DESC
                """, logger: logger)
            for try await (repository, version) in oci.decode((String, String?).self) {
                if let version { out.append((repository, version)) }
            }
            return out
        }
        var seen = Set<[String]>()
        return rows.filter { seen.insert([$0.0, $0.1]).inserted }.map { ($0.0, $0.1) }
    }

    package func versions(withBundleDigests digests: [String]) async throws(CustodyError) -> [(model: String, version: String)] {
        guard !digests.isEmpty else { return [] }
        return try await versionPairs(
            "SELECT m.namespace || '/' || m.name, v.version FROM versions v JOIN models m ON m.id = v.model_id WHERE v.bundle_digest = ANY(\(digests)) ORDER BY v.id"
        )
    }

    package func versions(withSources uris: [String]) async throws(CustodyError) -> [(model: String, version: String, revision: String?)] {
        guard !uris.isEmpty else { return [] }
        let lowered = uris.map { $0.lowercased() }
        return try await log.run("find versions by source") { connection, logger in
            let rows = try await connection.query(
                """
                SELECT m.namespace || '/' || m.name, v.version, v.source_revision FROM versions v JOIN models m ON m.id = v.model_id
                WHERE lower(v.source_uri) = ANY(\(lowered)) ORDER BY v.id
                """, logger: logger)
            var out: [(model: String, version: String, revision: String?)] = []
            for try await row in rows.decode((String, String, String?).self) { out.append(row) }
            return out
        }
    }

    package func derivatives(naming names: [String]) async throws(CustodyError) -> [(model: String, version: String, baseModels: [String])] {
        let needles = names.filter { !$0.isEmpty }.map { "%" + PostgresLog.escapeLike($0) + "%" }
        guard !needles.isEmpty else { return [] }
        let rows: [(String, String, String)] = try await log.run("find derivatives") { connection, logger in
            // ILIKE: base models are compared without case, as the SQLite catalog's LIKE does for ASCII.
            let rows = try await connection.query(
                """
                SELECT m.namespace || '/' || m.name, v.version, v.base_models FROM versions v JOIN models m ON m.id = v.model_id
                WHERE v.base_models ILIKE ANY(\(needles)) ORDER BY v.id
                """, logger: logger)
            var out: [(String, String, String)] = []
            for try await row in rows.decode((String, String, String).self) { out.append(row) }
            return out
        }
        return rows.map { ($0.0, $0.1, (try? JSONDecoder().decode([String].self, from: Data($0.2.utf8))) ?? []) }
    }

    // MARK: Support

    private func versionPairs(_ query: PostgresQuery) async throws(CustodyError) -> [(model: String, version: String)] {
        try await log.run("find versions") { connection, logger in
            var out: [(model: String, version: String)] = []
            for try await row in try await connection.query(query, logger: logger).decode((String, String).self) { out.append(row) }
            return out
        }
    }

    /// The details of the versions `condition` selects (a WHERE clause, its binds, maybe an ORDER BY), of one model.
    static func details(
        _ condition: PostgresQuery, model: ModelName, on connection: PostgresConnection, logger: Logger
    ) async throws -> [API.VersionDetail] {
        var query: PostgresQuery = "SELECT "
        query.sql += versionColumns + " FROM versions v JOIN models m ON m.id = v.model_id "
        query.sql += condition.sql
        query.binds = condition.binds
        var out: [API.VersionDetail] = []
        for try await row in try await connection.query(query, logger: logger) {
            let cells = row.makeRandomAccess()
            func text(_ column: Int) throws -> String { try cells[column].decode(String.self) }
            func optional(_ column: Int) throws -> String? { try cells[column].decode(String?.self) }
            let version = try text(1)
            guard let state = API.VersionStatus.State(rawValue: try text(8)) else {
                throw CustodyError(.io, "version \(model)@\(version) has an unknown status '\(try text(8))'")
            }
            let scan: [FileReport]? = try optional(15).map { try decode($0) }
            out.append(
                API.VersionDetail(
                    model: model.description, version: version, bundleDigest: try digest(try text(2)), createdAt: try text(7),
                    publishedBy: try optional(6), files: try decode(try text(12)),
                    license: API.License(id: try optional(3), name: try optional(4), link: try optional(5)),
                    provenance: try decode(try text(13)), signatures: try decode(try text(14)), scan: scan.map { BundleReport(files: $0) },
                    status: API.VersionStatus(state: state, reason: try optional(9), by: try optional(10), at: try optional(11)), events: nil))
        }
        return out
    }

    static func digest(_ text: String) throws(CustodyError) -> ContentDigest {
        do { return try ContentDigest(parsing: text) } catch { throw CustodyError(.io, "a stored digest is malformed: \(text)") }
    }

    static func encode(_ value: some Encodable) throws(CustodyError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return String(decoding: try encoder.encode(value), as: UTF8.self) } catch {
            throw CustodyError(.invalidArgument, "cannot encode a catalog record: \(error)")
        }
    }

    static func decode<T: Decodable>(_ text: String) throws(CustodyError) -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(text.utf8)) } catch {
            throw CustodyError(.io, "a stored catalog record does not decode as \(T.self): \(error)")
        }
    }
}

/// A new version's stored documents.
struct VersionDocument: Sendable {
    let files: String
    let totalSize: Int64
    let provenance: String
    let signatures: String
    let publisherBundle: ByteBuffer?
    let registryBundle: ByteBuffer?
    let scan: String?
    let baseModels: String

    init(_ new: NewVersion) throws(CustodyError) {
        files = try PostgresMetadata.encode(new.files)
        totalSize = Int64(new.files.reduce(UInt64(0)) { $0 + $1.size })
        provenance = try PostgresMetadata.encode(new.provenance)
        let publisher = new.publisherOrUnsigned
        // In kind order, as every catalog lists them.
        signatures = try PostgresMetadata.encode([
            API.SignatureInfo(kind: .publisher, status: publisher.status, keyName: publisher.keyName, keyHint: publisher.keyHint),
            API.SignatureInfo(
                kind: .registry, status: new.registrySignature.status, keyName: new.registrySignature.keyName,
                keyHint: new.registrySignature.keyHint),
        ])
        publisherBundle = publisher.bundle.map { ByteBuffer(bytes: $0) }
        registryBundle = new.registrySignature.bundle.map { ByteBuffer(bytes: $0) }
        scan = try new.scan.map { scan throws(CustodyError) in try PostgresMetadata.encode(scan.files) }
        baseModels = try PostgresMetadata.encode(new.provenance.baseModels)
    }
}
