package import CustodyCore
package import CustodyStorage
import Foundation
import PostgresNIO

/// The OCI front door's records on PostgreSQL: manifests by repository and digest (exact bytes), what each references,
/// and plain-artifact tags.
extension PostgresMetadata: OCIRecords {
    static let ociTables: [PostgresQuery] = [
        """
        CREATE TABLE IF NOT EXISTS oci_manifests (
            repository TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL, artifact_type TEXT, subject TEXT,
            kind TEXT NOT NULL CHECK (kind IN ('model', 'attachment', 'referrer', 'artifact')), version TEXT, annotations TEXT NOT NULL,
            bytes BYTEA NOT NULL, created_at TEXT NOT NULL, sequence BIGSERIAL, PRIMARY KEY (repository, digest)
        )
        """,
        "CREATE INDEX IF NOT EXISTS oci_manifests_by_version ON oci_manifests (repository, version, kind)",
        "CREATE INDEX IF NOT EXISTS oci_manifests_by_subject ON oci_manifests (repository, subject) WHERE subject IS NOT NULL",
        "CREATE TABLE IF NOT EXISTS oci_references (repository TEXT NOT NULL, manifest TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (repository, manifest, digest))",
        "CREATE INDEX IF NOT EXISTS oci_references_by_digest ON oci_references (digest)",
        "CREATE TABLE IF NOT EXISTS oci_tags (repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (repository, tag))",
    ]

    package func saveOCIManifests(_ records: [OCIManifestRecord], tag: String?) async throws(CustodyError) {
        let now = RFC3339.string(.now)
        var rows: [(OCIManifestRecord, String)] = []
        for record in records { rows.append((record, try Self.annotations(record.annotations))) }
        let prepared = rows
        try await log.run("save OCI manifests") { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                // The blobs named must still be recorded, and their records are held (shared) until this commits: a
                // collector that holds one first deletes it before this reads (and the push fails), one that comes
                // after finds the reference (a manifest that lists other manifests names them, in the repository or
                // in this batch).
                var missing = Set(prepared.flatMap { $0.0.references.map(\.description) }).subtracting(prepared.map { $0.0.digest.description })
                if !missing.isEmpty {
                    for try await digest in try await connection.query(
                        "SELECT digest FROM blobs WHERE digest = ANY(\(Array(missing))) FOR SHARE", logger: logger
                    ).decode(String.self) { missing.remove(digest) }
                }
                if !missing.isEmpty {
                    for try await digest in try await connection.query(
                        "SELECT digest FROM oci_manifests WHERE repository = ANY(\(Array(Set(prepared.map { $0.0.repository })))) AND digest = ANY(\(Array(missing)))",
                        logger: logger
                    ).decode(String.self) { missing.remove(digest) }
                }
                if let gone = missing.sorted().first { throw CustodyError.collectedReference(gone) }
                for (record, annotations) in prepared {
                    let inserted = try await connection.query(
                        """
                        INSERT INTO oci_manifests (repository, digest, media_type, artifact_type, subject, kind, version, annotations, bytes, created_at)
                        VALUES (\(record.repository), \(record.digest.description), \(record.mediaType), \(record.artifactType),
                                \(record.subject?.description), \(record.kind.rawValue), \(record.version), \(annotations),
                                \(ByteBuffer(bytes: record.bytes)), \(now))
                        ON CONFLICT DO NOTHING RETURNING digest
                        """, logger: logger)
                    var fresh = false
                    for try await _ in inserted.decode(String.self) { fresh = true }
                    guard fresh else { continue }
                    for reference in Set(record.references.map(\.description)) {
                        try await connection.query(
                            """
                            INSERT INTO oci_references (repository, manifest, digest) VALUES (\(record.repository), \(record.digest.description), \(reference))
                            ON CONFLICT DO NOTHING
                            """, logger: logger)
                    }
                }
                if let tag, let first = prepared.first?.0 {
                    try await connection.query(
                        """
                        INSERT INTO oci_tags (repository, tag, digest) VALUES (\(first.repository), \(tag), \(first.digest.description))
                        ON CONFLICT (repository, tag) DO UPDATE SET digest = EXCLUDED.digest
                        """, logger: logger)
                }
            }
        }
    }

    package func ociManifest(repository: String, digest: ContentDigest) async throws(CustodyError) -> OCIManifestRecord? {
        try await manifests("WHERE repository = \(repository) AND digest = \(digest.description)").first
    }

    package func ociModelManifest(repository: String, version: String) async throws(CustodyError) -> OCIManifestRecord? {
        try await manifests("WHERE repository = \(repository) AND version = \(version) AND kind = 'model' ORDER BY sequence LIMIT 1").first
    }

    package func ociTag(repository: String, tag: String) async throws(CustodyError) -> ContentDigest? {
        let text: String? = try await log.run("read an OCI tag") { connection, logger in
            var found: String?
            for try await value in try await connection.query(
                "SELECT digest FROM oci_tags WHERE repository = \(repository) AND tag = \(tag)", logger: logger
            ).decode(String.self) { found = value }
            return found
        }
        guard let text else { return nil }
        return try ContentDigest(parsing: text)
    }

    package func ociTags(repository: String) async throws(CustodyError) -> [String] {
        try await log.run("read OCI tags") { connection, logger in
            var tags: [String] = []
            for try await value in try await connection.query(
                "SELECT tag FROM oci_tags WHERE repository = \(repository) ORDER BY tag COLLATE \"C\"", logger: logger
            ).decode(String.self) { tags.append(value) }
            return tags
        }
    }

    package func ociReferrers(repository: String, subject: ContentDigest) async throws(CustodyError) -> [OCIManifestRecord] {
        try await manifests("WHERE repository = \(repository) AND subject = \(subject.description) ORDER BY sequence")
    }

    package func deleteOCIManifest(repository: String, digest: ContentDigest) async throws(CustodyError) -> Bool {
        let key = digest.description
        return try await log.run("delete an OCI manifest") { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                let deleted = try await connection.query(
                    """
                    DELETE FROM oci_manifests WHERE repository = \(repository) AND digest = \(key) AND kind IN ('referrer', 'artifact')
                    RETURNING digest
                    """, logger: logger)
                var found = false
                for try await _ in deleted.decode(String.self) { found = true }
                guard found else { return false }
                try await connection.query("DELETE FROM oci_references WHERE repository = \(repository) AND manifest = \(key)", logger: logger)
                try await connection.query("DELETE FROM oci_tags WHERE repository = \(repository) AND digest = \(key)", logger: logger)
                return true
            }
        }
    }

    package func deleteOCITag(repository: String, tag: String) async throws(CustodyError) -> Bool {
        try await log.run("delete an OCI tag") { connection, logger in
            var found = false
            for try await _ in try await connection.query(
                "DELETE FROM oci_tags WHERE repository = \(repository) AND tag = \(tag) RETURNING tag", logger: logger
            ).decode(String.self) { found = true }
            return found
        }
    }

    /// Whether a manifest of `repository` references the blob. (Versions' own files are the catalog's, which is not
    /// on PostgreSQL yet.)
    package func ociRepository(_ repository: String, references digest: ContentDigest) async throws(CustodyError) -> Bool {
        try await log.run("read OCI references") { connection, logger in
            var found = false
            for try await _ in try await connection.query(
                "SELECT 1::BIGINT FROM oci_references WHERE repository = \(repository) AND digest = \(digest.description) LIMIT 1", logger: logger
            ).decode(Int64.self) { found = true }
            return found
        }
    }

    private func manifests(_ clause: PostgresQuery) async throws(CustodyError) -> [OCIManifestRecord] {
        var query: PostgresQuery =
            "SELECT repository, digest, media_type, artifact_type, subject, kind, version, annotations, bytes FROM oci_manifests "
        query.sql += clause.sql
        query.binds = clause.binds
        let statement = query
        return try await log.run("read OCI manifests") { connection, logger in
            var rows: [(String, String, String, String?, String?, String, String?, String, ByteBuffer)] = []
            for try await row in try await connection.query(statement, logger: logger).decode(
                (String, String, String, String?, String?, String, String?, String, ByteBuffer).self)
            {
                rows.append(row)
            }
            var out: [OCIManifestRecord] = []
            for (repository, digest, mediaType, artifactType, subject, kind, version, annotations, bytes) in rows {
                var references: [ContentDigest] = []
                for try await value in try await connection.query(
                    "SELECT digest FROM oci_references WHERE repository = \(repository) AND manifest = \(digest)", logger: logger
                ).decode(String.self) { references.append(try ContentDigest(parsing: value)) }
                guard let kind = OCIManifestRecord.Kind(rawValue: kind) else {
                    throw CustodyError(.io, "the stored OCI manifest \(digest) of \(repository) has an unknown kind '\(kind)'")
                }
                out.append(
                    OCIManifestRecord(
                        repository: repository, digest: try ContentDigest(parsing: digest), mediaType: mediaType, artifactType: artifactType,
                        subject: try subject.map { try ContentDigest(parsing: $0) }, kind: kind, version: version, references: references,
                        annotations: try JSONDecoder().decode([String: String].self, from: Data(annotations.utf8)),
                        bytes: Array(bytes.readableBytesView)))
            }
            return out
        }
    }

    static func annotations(_ value: [String: String]) throws(CustodyError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return String(decoding: try encoder.encode(value), as: UTF8.self) } catch {
            throw CustodyError(.invalidArgument, "cannot encode annotations")
        }
    }
}
