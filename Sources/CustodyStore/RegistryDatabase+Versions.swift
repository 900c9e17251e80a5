package import CustodyCore
package import CustodyStorage
package import Foundation
import GRDB
import Synchronization

extension RegistryDatabase {
    // MARK: UploadLedger

    package func touchUploads(_ ids: [String], at date: Date) async throws(CustodyError) {
        guard !ids.isEmpty else { return }
        let seconds = Int64(date.timeIntervalSince1970)
        try await write { db in
            for id in ids {
                try db.execute(
                    sql:
                        "INSERT INTO upload_heartbeats (upload_id, touched_at) VALUES (?, ?) ON CONFLICT (upload_id) DO UPDATE SET touched_at = excluded.touched_at",
                    arguments: [id, seconds])
            }
        }
    }

    package func uploadsTouched(since cutoff: Date) async throws(CustodyError) -> Set<String> {
        let seconds = Int64(cutoff.timeIntervalSince1970)
        return try await write { db in
            try db.execute(sql: "DELETE FROM upload_heartbeats WHERE touched_at < ?", arguments: [seconds])
            return Set(try String.fetchAll(db, sql: "SELECT upload_id FROM upload_heartbeats"))
        }
    }

    package func blobSize(_ digest: ContentDigest) async throws(CustodyError) -> UInt64? {
        let key = digest.description
        return try await read { db in
            try Int64.fetchOne(db, sql: "SELECT size FROM blobs WHERE digest = ?", arguments: [key]).map { UInt64($0) }
        }
    }

    package func recordBlob(_ digest: ContentDigest, size: UInt64) async throws(CustodyError) {
        let key = digest.description
        try await write { db in
            try db.execute(
                sql:
                    "INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?) ON CONFLICT (digest) DO UPDATE SET created_at = excluded.created_at",
                arguments: [key, Int64(size), Self.now()])
        }
    }

    package func touchBlob(_ digest: ContentDigest) async throws(CustodyError) {
        let key = digest.description
        try await write { db in try db.execute(sql: "UPDATE blobs SET created_at = ? WHERE digest = ?", arguments: [Self.now(), key]) }
    }

    /// Blobs no version file and no OCI manifest references.
    static let unreferenced = """
        NOT EXISTS (SELECT 1 FROM files f WHERE f.digest = b.digest) AND NOT EXISTS (SELECT 1 FROM oci_references r WHERE r.digest = b.digest)
        """

    package func collectableBlobs(unusedSince cutoff: String, limit: Int) async throws(CustodyError) -> [(digest: ContentDigest, size: UInt64)] {
        let rows: [(String, Int64)] = try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT digest, size FROM blobs b WHERE created_at < ? AND \(Self.unreferenced) ORDER BY created_at LIMIT ?",
                arguments: [cutoff, limit]
            ).map { ($0["digest"], $0["size"]) }
        }
        var out: [(digest: ContentDigest, size: UInt64)] = []
        for (text, size) in rows {
            guard let digest = try? ContentDigest(parsing: text) else { throw CustodyError(.io, "a stored blob digest is malformed: \(text)") }
            out.append((digest, UInt64(size)))
        }
        return out
    }

    package func collectBlob(
        _ digest: ContentDigest, unusedSince cutoff: String, deleting: @escaping @Sendable () async throws(CustodyError) -> Void
    ) async throws(CustodyError) -> Bool {
        let key = digest.description
        // The bytes go inside the write transaction: every other writer (an upload touching the record, a publish)
        // waits for it, so none can place or reference the blob between the check and the deletion.
        return try await write { db in
            guard
                try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM blobs b WHERE digest = ? AND created_at < ? AND \(Self.unreferenced)", arguments: [key, cutoff]) == true
            else { return false }
            try Self.waitFor(deleting)
            try db.execute(sql: "DELETE FROM blobs WHERE digest = ?", arguments: [key])
            return true
        }
    }

    /// Runs async work from the database's writer queue (off the task pool), waiting for it.
    static func waitFor(_ work: @escaping @Sendable () async throws(CustodyError) -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<CustodyError?>(nil)
        Task {
            do throws(CustodyError) { try await work() } catch { outcome.withLock { $0 = error } }
            done.signal()
        }
        done.wait()
        if let error = outcome.withLock({ $0 }) { throw error }
    }

    package func publishVersion(_ new: NewVersion) async throws(CustodyError) -> PublishOutcome {
        try await write { db in
            let modelID = try Self.modelID(db, new.model, create: true)!
            if let existing = try Self.versionRow(db, modelID: modelID, selector: .version(new.version)) {
                let detail = try Self.detail(db, model: new.model, row: existing, includeEvents: false)
                if let conflict = new.conflict(with: detail) { throw conflict }
                return .unchanged(detail)
            }
            for file in new.files {
                let size = try Int64.fetchOne(db, sql: "SELECT size FROM blobs WHERE digest = ?", arguments: [file.digest.description])
                guard let size else {
                    throw CustodyError(.invalidArgument, "file '\(file.path)': blob \(file.digest) has not been uploaded")
                }
                guard UInt64(size) == file.size else {
                    throw CustodyError(.invalidArgument, "file '\(file.path)': blob \(file.digest) has \(size) bytes, not \(file.size)")
                }
            }
            var row = VersionRow(
                id: nil, modelId: modelID, version: new.version, bundleDigest: new.bundleDigest.description, licenseId: new.license.id,
                licenseName: new.license.name, licenseLink: new.license.link, publishedBy: new.publishedBy, createdAt: Self.now(),
                scanVerdict: nil, status: API.VersionStatus.State.active.rawValue)
            row = try row.insertAndFetch(db)
            let versionID = try row.storedID()
            for (position, file) in new.files.enumerated() {
                try FileRow(versionId: versionID, path: file.path, size: Int64(file.size), digest: file.digest.description, position: position)
                    .insert(db)
            }
            let publisher = new.publisherOrUnsigned
            for (kind, signature) in [(API.SignatureInfo.Kind.publisher, publisher), (.registry, new.registrySignature)] {
                try SignatureRow(
                    versionId: versionID, kind: kind.rawValue, status: signature.status.rawValue, keyName: signature.keyName,
                    keyHint: signature.keyHint, bundle: signature.bundle.map { Data($0) }
                ).insert(db)
            }
            try ProvenanceRow(versionId: versionID, new.provenance).insert(db)
            if let scan = new.scan { try Self.insertScan(db, scan, versionID: versionID) }
            for event in new.events { try Self.insertEvent(db, event) }
            return .created(try Self.detail(db, model: new.model, row: row, includeEvents: false))
        }
    }

    package func version(
        _ model: ModelName, _ selector: ModelReference.Selector, includeEvents: Bool
    ) async throws(CustodyError)
        -> API.VersionDetail?
    {
        try await read { db in
            guard let modelID = try Self.modelID(db, model, create: false),
                let row = try Self.versionRow(db, modelID: modelID, selector: selector)
            else { return nil }
            return try Self.detail(db, model: model, row: row, includeEvents: includeEvents)
        }
    }

    /// Every version of a model with its details (no events), oldest first, in one read.
    package func versionDetails(_ model: ModelName) async throws(CustodyError) -> [API.VersionDetail] {
        try await read { db in
            guard let modelID = try Self.modelID(db, model, create: false) else { return [] }
            return try VersionRow.fetchAll(db.cachedStatement(sql: "SELECT * FROM versions WHERE model_id = ? ORDER BY id"), arguments: [modelID])
                .map { row in try Self.detail(db, model: model, row: row, includeEvents: false) }
        }
    }

    package func registrySignature(_ model: ModelName, version: String) async throws(CustodyError) -> [UInt8]? {
        try await read { db in
            let data = try Data.fetchOne(
                db,
                sql: """
                    SELECT s.bundle FROM signatures s JOIN versions v ON v.id = s.version_id JOIN models m ON m.id = v.model_id
                    WHERE m.namespace = ? AND m.name = ? AND v.version = ? AND s.kind = 'registry'
                    """,
                arguments: [model.namespace, model.name, version])
            return data.map { Array($0) }
        }
    }

    package func model(_ name: ModelName) async throws(CustodyError) -> API.ModelDetail? {
        try await read { db in
            guard let model = try ModelRow.filter(Column("namespace") == name.namespace && Column("name") == name.name).fetchOne(db)
            else { return nil }
            let versions = try VersionSummaryRow.fetchAll(
                db,
                sql: """
                    SELECT v.version, v.bundle_digest, v.created_at, COUNT(f.path) AS file_count, COALESCE(SUM(f.size), 0) AS total_size
                    FROM versions v LEFT JOIN files f ON f.version_id = v.id WHERE v.model_id = ? GROUP BY v.id ORDER BY v.id
                    """,
                arguments: [model.id]
            ).map { try $0.summary() }
            return API.ModelDetail(model: name.description, createdAt: model.createdAt, versions: versions)
        }
    }

    package func models() async throws(CustodyError) -> [String] {
        try await read { db in
            try String.fetchAll(db, sql: "SELECT namespace || '/' || name FROM models ORDER BY namespace, name")
        }
    }

    package func recordEvent(_ event: NewEvent) async throws(CustodyError) {
        try await write { db in try Self.insertEvent(db, event) }
    }

    // MARK: - Helpers used inside transactions

    /// Appends an event under the log's lock (the write transaction): its leaf index is the log head's size, its
    /// number (`id`) the index plus one, and its leaf and completed subtrees are written in the same transaction.
    static func insertEvent(_ db: Database, _ event: NewEvent, at: String? = nil) throws {
        let head = try db.cachedStatement(sql: "UPDATE log_head SET size = size + 1 WHERE only_row = 1 RETURNING size - 1")
        guard let index = try Int64.fetchOne(head) else { throw CustodyError(.io, "the log has no head row") }
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO events (id, leaf_index, at, type, actor, model, version, detail, environment, client, count)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        let time = at ?? now()
        try statement.execute(arguments: [
            index + 1, index, time, event.type.rawValue, event.actor, event.model, event.version, event.detail, event.environment,
            event.client, event.count,
        ])
        try appendLeaf(
            db, index: UInt64(index),
            EventLeaf.V1(
                id: index + 1, at: time, type: event.type.rawValue, actor: event.actor, model: event.model, version: event.version,
                detail: event.detail, environment: event.environment, client: event.client, count: event.count))
    }

    static func modelID(_ db: Database, _ model: ModelName, create: Bool) throws -> Int64? {
        if let id = try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT id FROM models WHERE namespace = ? AND name = ?"), arguments: [model.namespace, model.name])
        {
            return id
        }
        guard create else { return nil }
        try db.execute(
            sql: "INSERT INTO models (namespace, name, created_at) VALUES (?, ?, ?)", arguments: [model.namespace, model.name, now()])
        return db.lastInsertedRowID
    }

    static func versionRow(_ db: Database, modelID: Int64, selector: ModelReference.Selector) throws -> VersionRow? {
        switch selector {
        case .version(let version):
            try VersionRow.fetchOne(db, sql: "SELECT * FROM versions WHERE model_id = ? AND version = ?", arguments: [modelID, version])
        case .digest(let digest):
            try VersionRow.fetchOne(
                db, sql: "SELECT * FROM versions WHERE model_id = ? AND bundle_digest = ? ORDER BY id LIMIT 1",
                arguments: [modelID, digest.description])
        }
    }

    static func detail(_ db: Database, model: ModelName, row: VersionRow, includeEvents: Bool) throws -> API.VersionDetail {
        let versionID = try row.storedID()
        // Cached statements: the gate loads many versions at once, and compiling the same SQL each time dominated.
        let files = try FileRow.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM files WHERE version_id = ? ORDER BY position"), arguments: [versionID]
        ).map { try $0.entry() }
        let signatures = try SignatureRow.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM signatures WHERE version_id = ? ORDER BY kind"), arguments: [versionID]
        ).map { try $0.info() }
        let provenance =
            try ProvenanceRow.fetchOne(db.cachedStatement(sql: "SELECT * FROM provenance WHERE version_id = ?"), arguments: [versionID])?
            .provenance() ?? API.Provenance()
        var events: [API.Event]?
        if includeEvents {
            events = try EventRow.fetchAll(
                db, sql: "SELECT * FROM events WHERE model = ? AND version = ? ORDER BY id", arguments: [model.description, row.version]
            ).map(\.event)
        }
        return API.VersionDetail(
            model: model.description, version: row.version, bundleDigest: try row.digest(), createdAt: row.createdAt,
            publishedBy: row.publishedBy, files: files, license: row.license, provenance: provenance, signatures: signatures,
            scan: try scan(db, versionID: versionID), status: try row.storedStatus(), events: events)
    }

    static func insertScan(_ db: Database, _ scan: BundleReport, versionID: Int64) throws {
        try db.execute(sql: "UPDATE versions SET scan_verdict = ? WHERE id = ?", arguments: [scan.verdict.rawValue, versionID])
        for file in scan.files {
            try db.execute(
                sql: "INSERT INTO scan_results (version_id, path, format, verdict, invalid, report) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [versionID, file.path, file.format.rawValue, file.verdict.rawValue, file.invalid, try json(file)])
        }
    }

    static func scan(_ db: Database, versionID: Int64) throws -> BundleReport? {
        let rows = try String.fetchAll(
            db.cachedStatement(sql: "SELECT report FROM scan_results WHERE version_id = ? ORDER BY rowid"), arguments: [versionID])
        guard !rows.isEmpty else { return nil }
        return BundleReport(files: try rows.map { try decode($0) })
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ text: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }
}
