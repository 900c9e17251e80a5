package import CustodyCore
package import CustodyStorage
import Foundation
import PostgresNIO

/// `custody migrate` into PostgreSQL: another registry's metadata copied in one transaction into an empty database —
/// the log's events, nodes and checkpoints as they are, so that its size and root, and every receipt and checkpoint
/// already handed out, stay valid.
extension PostgresMetadata {
    /// What an import copied.
    package struct ImportCounts: Sendable, Equatable {
        package var rows: [String: Int] = [:]
        package var versions = 0
    }

    /// Copies `versions` and every ``RegistrySnapshot/tables`` table, read a page at a time through `rows` (up to
    /// `limit` rows after the key `after`), into this
    /// database, which must hold no model, token or event (refused otherwise, before anything is written). All or
    /// nothing: one transaction, which also holds the log's head row so that no daemon appends meanwhile.
    package func importRegistry(
        versions: [StoredVersion],
        rows:
            @escaping @Sendable (RegistrySnapshot.Table, _ after: SnapshotValue?, _ limit: Int) async throws(CustodyError) -> [(
                key: SnapshotValue, row: [SnapshotValue]
            )]
    ) async throws(CustodyError) -> ImportCounts {
        var documents: [(StoredVersion, VersionDocument)] = []
        for version in versions { documents.append((version, try VersionDocument(version))) }
        let prepared = documents
        return try await log.run("import a registry") { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                var head: Int64 = -1
                for try await size in try await connection.query("SELECT size FROM log_head WHERE only_row = 1 FOR UPDATE", logger: logger)
                    .decode(Int64.self)
                {
                    head = size
                }
                var used: Int64 = 0
                for try await count in try await connection.query(
                    "SELECT (SELECT COUNT(*) FROM models) + (SELECT COUNT(*) FROM tokens) + (SELECT COUNT(*) FROM events)", logger: logger
                ).decode(Int64.self) {
                    used = count
                }
                guard head == 0, used == 0 else {
                    throw CustodyError(
                        .conflict, "the target database already holds a registry (\(head) events): migrate only into an empty database")
                }
                var counts = ImportCounts()
                for table in RegistrySnapshot.tables {
                    var after: SnapshotValue?
                    let page = ["oci_manifests", "advisories"].contains(table.name) ? 100 : 2_000
                    var copied = 0
                    while true {
                        let batch = try await rows(table, after, page)
                        if batch.isEmpty { break }
                        try await Self.insert(batch.map(\.row), into: table, on: connection, logger: logger)
                        copied += batch.count
                        after = batch.last?.key
                        if batch.count < page { break }
                    }
                    counts.rows[table.name] = copied
                }
                for (stored, document) in prepared {
                    try await Self.insert(stored, document, on: connection, logger: logger)
                    counts.versions += 1
                }
                let events = Int64(counts.rows["events"] ?? 0)
                var highest: Int64 = -1
                for try await value in try await connection.query("SELECT COALESCE(MAX(leaf_index), -1) FROM events", logger: logger)
                    .decode(Int64.self)
                {
                    highest = value
                }
                guard highest + 1 == events else {
                    throw CustodyError(.io, "the copied log has \(events) events but leaf indexes up to \(highest): the source log has a gap")
                }
                try await connection.query("UPDATE log_head SET size = \(events) WHERE only_row = 1", logger: logger)
                return counts
            }
        }
    }

    /// One multi-row INSERT of `rows` (values in the table's column order).
    static func insert(
        _ rows: [[SnapshotValue]], into table: RegistrySnapshot.Table, on connection: PostgresConnection, logger: Logger
    ) async throws {
        var sql = "INSERT INTO \(table.name) (\(table.columns.joined(separator: ", "))) VALUES "
        var binds = PostgresBindings()
        for (index, row) in rows.enumerated() {
            let base = binds.count
            sql += (index == 0 ? "" : ", ") + "(" + (1...row.count).map { "$\(base + $0)" }.joined(separator: ", ") + ")"
            for value in row {
                switch value {
                case .null: binds.appendNull()
                case .integer(let integer): binds.append(integer)
                case .real(let real): binds.append(real)
                case .text(let text): binds.append(text)
                case .blob(let bytes): binds.append(ByteBuffer(bytes: bytes))
                }
            }
        }
        try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
    }

    /// A version with its model, as it was recorded (its status included), without an event: the log is copied whole.
    static func insert(_ stored: StoredVersion, _ document: VersionDocument, on connection: PostgresConnection, logger: Logger) async throws {
        let detail = stored.detail
        let model = try ModelName(parsing: detail.model)
        try await connection.query(
            """
            INSERT INTO models (namespace, name, created_at) VALUES (\(model.namespace), \(model.name), \(stored.modelCreatedAt))
            ON CONFLICT DO NOTHING
            """, logger: logger)
        let status = detail.status ?? API.VersionStatus(state: .active, reason: nil, by: nil, at: nil)
        var versionID: Int64?
        let inserted = try await connection.query(
            """
            INSERT INTO versions (
                model_id, version, bundle_digest, license_id, license_name, license_link, published_by, created_at, status,
                status_reason, status_by, status_at, files, file_count, total_size, provenance, signatures, publisher_bundle,
                registry_bundle, scan, source_uri, source_revision, base_models)
            SELECT id, \(detail.version), \(detail.bundleDigest.description), \(detail.license.id), \(detail.license.name),
                \(detail.license.link), \(detail.publishedBy), \(detail.createdAt), \(status.state.rawValue), \(status.reason), \(status.by),
                \(status.at), \(document.files), \(detail.files.count), \(document.totalSize), \(document.provenance), \(document.signatures),
                \(document.publisherBundle), \(document.registryBundle), \(document.scan), \(detail.provenance.source?.uri),
                \(detail.provenance.source?.revision), \(document.baseModels)
            FROM models WHERE namespace = \(model.namespace) AND name = \(model.name)
            RETURNING id
            """, logger: logger)
        for try await id in inserted.decode(Int64.self) { versionID = id }
        guard let versionID else { throw CustodyError(.io, "cannot import \(detail.model)@\(detail.version)") }
        let digests = Array(Set(detail.files.map(\.digest.description)))
        try await connection.query(
            "INSERT INTO version_blobs (digest, version_id) SELECT digest, \(versionID) FROM UNNEST(\(digests)::TEXT[]) AS digest", logger: logger)
    }
}

extension VersionDocument {
    /// The documents of a version read from another catalog.
    init(_ stored: StoredVersion) throws(CustodyError) {
        let detail = stored.detail
        files = try PostgresMetadata.encode(detail.files)
        totalSize = Int64(detail.files.reduce(UInt64(0)) { $0 + $1.size })
        provenance = try PostgresMetadata.encode(detail.provenance)
        signatures = try PostgresMetadata.encode(detail.signatures)
        publisherBundle = stored.publisherBundle.map { ByteBuffer(bytes: $0) }
        registryBundle = stored.registryBundle.map { ByteBuffer(bytes: $0) }
        scan = try detail.scan.map { scan throws(CustodyError) in try PostgresMetadata.encode(scan.files) }
        baseModels = try PostgresMetadata.encode(detail.provenance.baseModels)
    }
}
