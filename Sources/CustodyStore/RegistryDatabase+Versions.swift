package import CustodyCore
package import CustodyStorage
import Foundation
import GRDB

extension RegistryDatabase {
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
                sql: "INSERT OR IGNORE INTO blobs (digest, size, created_at) VALUES (?, ?, ?)",
                arguments: [key, Int64(size), Self.now()])
        }
    }

    package func publishVersion(_ new: NewVersion) async throws(CustodyError) -> PublishOutcome {
        try await write { db in
            let modelID = try Self.modelID(db, new.model, create: true)!
            if let existing = try Self.versionRow(db, modelID: modelID, selector: .version(new.version)) {
                let detail = try Self.detail(db, model: new.model, row: existing, includeEvents: false)
                guard detail.bundleDigest == new.bundleDigest else {
                    throw CustodyError(
                        .conflict,
                        "\(new.model)@\(new.version) already exists with bundle digest \(detail.bundleDigest); versions are immutable, publish a new version"
                    )
                }
                guard detail.license == new.license, detail.provenance == new.provenance else {
                    throw CustodyError(
                        .conflict,
                        "\(new.model)@\(new.version) already exists with the same files but other licence or provenance; versions are immutable")
                }
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
            let now = Self.now()
            try db.execute(
                sql: """
                    INSERT INTO versions (model_id, version, bundle_digest, license_id, license_name, license_link, published_by, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    modelID, new.version, new.bundleDigest.description, new.license.id, new.license.name, new.license.link,
                    new.publishedBy, now,
                ])
            let versionID = db.lastInsertedRowID
            for (position, file) in new.files.enumerated() {
                try db.execute(
                    sql: "INSERT INTO files (version_id, path, size, digest, position) VALUES (?, ?, ?, ?, ?)",
                    arguments: [versionID, file.path, Int64(file.size), file.digest.description, position])
            }
            let publisher = new.publisherSignature ?? SignatureRecord(status: .unsigned, keyName: nil, keyHint: nil, bundle: nil)
            for (kind, signature) in [(API.SignatureInfo.Kind.publisher, publisher), (.registry, new.registrySignature)] {
                try db.execute(
                    sql: "INSERT INTO signatures (version_id, kind, status, key_name, key_hint, bundle) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [
                        versionID, kind.rawValue, signature.status.rawValue, signature.keyName, signature.keyHint, signature.bundle.map { Data($0) },
                    ])
            }
            let provenance = new.provenance
            try db.execute(
                sql: """
                    INSERT INTO provenance (version_id, source_uri, source_revision, pipeline_run, base_models, datasets, annotations)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    versionID, provenance.source?.uri, provenance.source?.revision, provenance.pipelineRun,
                    try Self.json(provenance.baseModels), try Self.json(provenance.datasets), try Self.json(provenance.annotations),
                ])
            let detail =
                "bundle \(new.bundleDigest), \(new.files.count) files, publisher signature \(publisher.status.rawValue)"
                + (publisher.keyName.map { " by \($0)" } ?? "")
            try Self.insertEvent(
                db, NewEvent(type: .publish, actor: new.publishedBy, model: new.model.description, version: new.version, detail: detail))
            if let scan = new.scan {
                try Self.insertScan(db, scan, versionID: versionID)
                try Self.insertEvent(
                    db, NewEvent(type: .scan, actor: "registry", model: new.model.description, version: new.version, detail: Self.summary(of: scan)))
            }
            let row = try Self.versionRow(db, modelID: modelID, selector: .version(new.version))!
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
            return try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM versions WHERE model_id = ? ORDER BY id"), arguments: [modelID])
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
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT id, created_at FROM models WHERE namespace = ? AND name = ?", arguments: [name.namespace, name.name])
            else { return nil }
            let id: Int64 = row["id"]
            let versions = try Row.fetchAll(
                db,
                sql: """
                    SELECT v.version, v.bundle_digest, v.created_at, COUNT(f.path) AS file_count, COALESCE(SUM(f.size), 0) AS total
                    FROM versions v LEFT JOIN files f ON f.version_id = v.id WHERE v.model_id = ? GROUP BY v.id ORDER BY v.id
                    """,
                arguments: [id]
            ).map { row in
                API.VersionSummary(
                    version: row["version"], bundleDigest: try ContentDigest(parsing: row["bundle_digest"]), createdAt: row["created_at"],
                    fileCount: row["file_count"], totalSize: UInt64(row["total"] as Int64))
            }
            return API.ModelDetail(model: name.description, createdAt: row["created_at"], versions: versions)
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

    static func versionRow(_ db: Database, modelID: Int64, selector: ModelReference.Selector) throws -> Row? {
        switch selector {
        case .version(let version):
            try Row.fetchOne(db, sql: "SELECT * FROM versions WHERE model_id = ? AND version = ?", arguments: [modelID, version])
        case .digest(let digest):
            try Row.fetchOne(
                db, sql: "SELECT * FROM versions WHERE model_id = ? AND bundle_digest = ? ORDER BY id LIMIT 1",
                arguments: [modelID, digest.description])
        }
    }

    static func detail(_ db: Database, model: ModelName, row: Row, includeEvents: Bool) throws -> API.VersionDetail {
        let versionID: Int64 = row["id"]
        let version: String = row["version"]
        // Cached statements: the gate loads many versions at once, and compiling the same SQL each time dominated.
        let files = try Row.fetchAll(
            db.cachedStatement(sql: "SELECT path, size, digest FROM files WHERE version_id = ? ORDER BY position"), arguments: [versionID]
        ).map { file in
            API.FileEntry(path: file["path"], size: UInt64(file["size"] as Int64), digest: try ContentDigest(parsing: file["digest"]))
        }
        let signatures = try Row.fetchAll(
            db.cachedStatement(sql: "SELECT kind, status, key_name, key_hint FROM signatures WHERE version_id = ? ORDER BY kind"),
            arguments: [versionID]
        ).map { signature in
            let (kind, status): (String, String) = (signature["kind"], signature["status"])
            guard let kind = API.SignatureInfo.Kind(rawValue: kind), let status = API.SignatureInfo.Status(rawValue: status) else {
                throw CustodyError(.io, "version \(versionID) has a signature of unknown kind or status '\(kind)' / '\(status)'")
            }
            return API.SignatureInfo(kind: kind, status: status, keyName: signature["key_name"], keyHint: signature["key_hint"])
        }
        var provenance = API.Provenance()
        if let prov = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM provenance WHERE version_id = ?"), arguments: [versionID]) {
            let uri: String? = prov["source_uri"]
            let revision: String? = prov["source_revision"]
            provenance = API.Provenance(
                source: uri == nil && revision == nil ? nil : API.Source(uri: uri, revision: revision),
                baseModels: try decode(prov["base_models"]), datasets: try decode(prov["datasets"]),
                pipelineRun: prov["pipeline_run"], annotations: try decode(prov["annotations"]))
        }
        var events: [API.Event]?
        if includeEvents {
            events = try Row.fetchAll(
                db, sql: "SELECT * FROM events WHERE model = ? AND version = ? ORDER BY id", arguments: [model.description, version]
            ).map(Self.event)
        }
        return API.VersionDetail(
            model: model.description, version: version, bundleDigest: try ContentDigest(parsing: row["bundle_digest"]),
            createdAt: row["created_at"], publishedBy: row["published_by"], files: files,
            license: API.License(id: row["license_id"], name: row["license_name"], link: row["license_link"]),
            provenance: provenance, signatures: signatures, scan: try scan(db, versionID: versionID),
            status: API.VersionStatus(
                state: API.VersionStatus.State(rawValue: row["status"] ?? "active") ?? .active, reason: row["status_reason"],
                by: row["status_by"], at: row["status_at"]),
            events: events)
    }

    static func insertScan(_ db: Database, _ scan: BundleReport, versionID: Int64) throws {
        try db.execute(sql: "UPDATE versions SET scan_verdict = ? WHERE id = ?", arguments: [scan.verdict.rawValue, versionID])
        for file in scan.files {
            try db.execute(
                sql: "INSERT INTO scan_results (version_id, path, format, verdict, invalid, report) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [versionID, file.path, file.format.rawValue, file.verdict.rawValue, file.invalid, try json(file)])
        }
    }

    /// One line for the event log: the verdict, and the files and imports that decided it.
    static func summary(of scan: BundleReport) -> String {
        var parts = ["verdict \(scan.verdict.rawValue)"]
        for verdict in [Verdict.dangerous, .unscannable, .suspicious] {
            let files = scan.files.filter { $0.verdict == verdict }
            guard !files.isEmpty else { continue }
            let named = files.prefix(5).map { file in
                let subjects = Set(file.findings.filter { $0.verdict == verdict }.map(\.subject)).sorted().prefix(3)
                return "\(file.path) (\(subjects.joined(separator: ", ")))"
            }
            parts.append("\(files.count) \(verdict.rawValue): \(named.joined(separator: "; "))\(files.count > 5 ? "; …" : "")")
        }
        let invalid = scan.invalidFiles
        if !invalid.isEmpty { parts.append("\(invalid.count) invalid: \(invalid.prefix(5).map(\.path).joined(separator: ", "))") }
        return parts.joined(separator: "; ")
    }

    static func scan(_ db: Database, versionID: Int64) throws -> BundleReport? {
        let rows = try String.fetchAll(
            db.cachedStatement(sql: "SELECT report FROM scan_results WHERE version_id = ? ORDER BY rowid"), arguments: [versionID])
        guard !rows.isEmpty else { return nil }
        return BundleReport(files: try rows.map { try decode($0) })
    }

    static func event(_ row: Row) -> API.Event {
        API.Event(
            id: row["id"], at: row["at"], type: row["type"], actor: row["actor"], model: row["model"], version: row["version"],
            detail: row["detail"], environment: row["environment"], client: row["client"], count: row["count"])
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
