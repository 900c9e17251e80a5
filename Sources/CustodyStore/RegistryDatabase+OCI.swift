package import CustodyCore
package import CustodyStorage
import Foundation
import GRDB

/// A row of `oci_manifests`.
struct OCIManifestRow: SnakeCaseRecord {
    static let databaseTableName = "oci_manifests"

    var repository: String
    var digest: String
    var mediaType: String
    var artifactType: String?
    var subject: String?
    var kind: String
    var version: String?
    var annotations: String
    var bytes: Data
    var createdAt: String

    init(_ record: OCIManifestRecord, at createdAt: String) throws {
        repository = record.repository
        digest = record.digest.description
        mediaType = record.mediaType
        artifactType = record.artifactType
        subject = record.subject?.description
        kind = record.kind.rawValue
        version = record.version
        annotations = String(decoding: try JSONEncoder.sorted.encode(record.annotations), as: UTF8.self)
        bytes = Data(record.bytes)
        self.createdAt = createdAt
    }

    func record(references: [String]) throws -> OCIManifestRecord {
        guard let kind = OCIManifestRecord.Kind(rawValue: kind) else {
            throw CustodyError(.io, "the stored OCI manifest \(digest) of \(repository) has an unknown kind '\(kind)'")
        }
        return OCIManifestRecord(
            repository: repository, digest: try ContentDigest(parsing: digest), mediaType: mediaType, artifactType: artifactType,
            subject: try subject.map { try ContentDigest(parsing: $0) }, kind: kind, version: version,
            references: try references.map { try ContentDigest(parsing: $0) },
            annotations: try JSONDecoder().decode([String: String].self, from: Data(annotations.utf8)), bytes: Array(bytes))
    }
}

extension JSONEncoder {
    fileprivate static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

extension RegistryDatabase {
    package func saveOCIManifests(_ records: [OCIManifestRecord], tag: String?) async throws(CustodyError) {
        try await write { db in
            // In the write transaction, which the collector's excludes: the blobs named must still be recorded (a
            // manifest that lists other manifests names them, in the repository or in this batch).
            var missing = Set(records.flatMap { $0.references.map(\.description) }).subtracting(records.map(\.digest.description))
            if !missing.isEmpty {
                let names = Array(missing)
                let marks = names.map { _ in "?" }.joined(separator: ", ")
                missing.subtract(
                    try String.fetchAll(db, sql: "SELECT digest FROM blobs WHERE digest IN (\(marks))", arguments: StatementArguments(names)))
            }
            for record in records where !missing.isEmpty {
                let names = Array(missing)
                let marks = names.map { _ in "?" }.joined(separator: ", ")
                missing.subtract(
                    try String.fetchAll(
                        db, sql: "SELECT digest FROM oci_manifests WHERE repository = ? AND digest IN (\(marks))",
                        arguments: StatementArguments([record.repository] + names)))
            }
            if let gone = missing.sorted().first { throw CustodyError.collectedReference(gone) }
            let now = Self.now()
            for record in records {
                let key = record.digest.description
                let stored = try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM oci_manifests WHERE repository = ? AND digest = ?", arguments: [record.repository, key])
                guard stored != true else { continue }
                try OCIManifestRow(record, at: now).insert(db)
                for reference in Set(record.references.map(\.description)) {
                    try db.execute(
                        sql: "INSERT OR IGNORE INTO oci_references (repository, manifest, digest) VALUES (?, ?, ?)",
                        arguments: [record.repository, key, reference])
                }
            }
            if let tag, let first = records.first {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO oci_tags (repository, tag, digest) VALUES (?, ?, ?)",
                    arguments: [first.repository, tag, first.digest.description])
            }
        }
    }

    package func ociManifest(repository: String, digest: ContentDigest) async throws(CustodyError) -> OCIManifestRecord? {
        let key = digest.description
        return try await read { db in
            try Self.manifest(db, sql: "repository = ? AND digest = ?", [repository, key]).first
        }
    }

    package func ociModelManifest(repository: String, version: String) async throws(CustodyError) -> OCIManifestRecord? {
        try await read { db in
            try Self.manifest(db, sql: "repository = ? AND version = ? AND kind = 'model' ORDER BY rowid LIMIT 1", [repository, version]).first
        }
    }

    package func ociTag(repository: String, tag: String) async throws(CustodyError) -> ContentDigest? {
        let text = try await read { db in
            try String.fetchOne(db, sql: "SELECT digest FROM oci_tags WHERE repository = ? AND tag = ?", arguments: [repository, tag])
        }
        guard let text else { return nil }
        return try ContentDigest(parsing: text)
    }

    package func ociTags(repository: String) async throws(CustodyError) -> [String] {
        try await read { db in
            try String.fetchAll(db, sql: "SELECT tag FROM oci_tags WHERE repository = ? ORDER BY tag", arguments: [repository])
        }
    }

    package func ociReferrers(repository: String, subject: ContentDigest) async throws(CustodyError) -> [OCIManifestRecord] {
        let key = subject.description
        return try await read { db in
            try Self.manifest(db, sql: "repository = ? AND subject = ? ORDER BY rowid", [repository, key])
        }
    }

    package func deleteOCIManifest(repository: String, digest: ContentDigest) async throws(CustodyError) -> Bool {
        let key = digest.description
        return try await write { db in
            try db.execute(
                sql: "DELETE FROM oci_manifests WHERE repository = ? AND digest = ? AND kind IN ('referrer', 'artifact')",
                arguments: [repository, key])
            guard db.changesCount > 0 else { return false }
            try db.execute(sql: "DELETE FROM oci_references WHERE repository = ? AND manifest = ?", arguments: [repository, key])
            try db.execute(sql: "DELETE FROM oci_tags WHERE repository = ? AND digest = ?", arguments: [repository, key])
            return true
        }
    }

    package func deleteOCITag(repository: String, tag: String) async throws(CustodyError) -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM oci_tags WHERE repository = ? AND tag = ?", arguments: [repository, tag])
            return db.changesCount > 0
        }
    }

    package func ociRepository(_ repository: String, references digest: ContentDigest) async throws(CustodyError) -> Bool {
        let key = digest.description
        let model = try? ModelName(parsing: repository)
        return try await read { db in
            if try Bool.fetchOne(
                db, sql: "SELECT 1 FROM oci_references WHERE repository = ? AND digest = ? LIMIT 1", arguments: [repository, key]) == true
            {
                return true
            }
            guard let model else { return false }
            return try Bool.fetchOne(
                db,
                sql: """
                    SELECT 1 FROM files f JOIN versions v ON v.id = f.version_id JOIN models m ON m.id = v.model_id
                    WHERE m.namespace = ? AND m.name = ? AND f.digest = ? LIMIT 1
                    """,
                arguments: [model.namespace, model.name, key]) == true
        }
    }

    private static func manifest(_ db: Database, sql condition: String, _ arguments: [String]) throws -> [OCIManifestRecord] {
        try OCIManifestRow.fetchAll(db, sql: "SELECT * FROM oci_manifests WHERE \(condition)", arguments: StatementArguments(arguments)).map {
            row in
            let references = try String.fetchAll(
                db, sql: "SELECT digest FROM oci_references WHERE repository = ? AND manifest = ?", arguments: [row.repository, row.digest])
            return try row.record(references: references)
        }
    }
}
