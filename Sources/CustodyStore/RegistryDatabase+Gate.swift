package import CustodyCore
package import CustodyStorage
import Foundation
import GRDB

/// Version status, advisories and the uses of versions: what the deployment gate reads and writes.
extension RegistryDatabase {
    /// Records events in one transaction, blocking the calling thread: for a writer that runs on a queue of its own,
    /// outside the task pool (the gate's group commit).
    package func recordEventsBlocking(_ events: [NewEvent]) throws(CustodyError) {
        guard !events.isEmpty else { return }
        do {
            try writer.write { db in
                let at = Self.now()
                for event in events { try Self.insertEvent(db, event, at: at) }
            }
        } catch let error as CustodyError {
            throw error
        } catch {
            throw CustodyError.database(error, "write")
        }
    }

    package func setStatus(_ model: ModelName, version: String, _ status: API.VersionStatus) async throws(CustodyError) -> Bool {
        try await write { db in
            guard let modelID = try Self.modelID(db, model, create: false),
                let row = try Self.versionRow(db, modelID: modelID, selector: .version(version))
            else { return false }
            let versionID = try row.storedID()
            try db.execute(
                sql: "UPDATE versions SET status = ?, status_reason = ?, status_by = ?, status_at = ? WHERE id = ?",
                arguments: [status.state.rawValue, status.reason, status.by, status.at ?? Self.now(), versionID])
            try Self.insertEvent(db, .statusChange(model, version: version, status))
            return true
        }
    }

    package func attachPublisherSignature(
        _ model: ModelName, version: String, _ signature: SignatureRecord, actor: String?
    ) async throws(CustodyError) -> Bool {
        try await write { db in
            guard let modelID = try Self.modelID(db, model, create: false),
                let row = try Self.versionRow(db, modelID: modelID, selector: .version(version))
            else { return false }
            try db.execute(
                sql: """
                    UPDATE signatures SET status = ?, key_name = ?, key_hint = ?, bundle = ?
                    WHERE version_id = ? AND kind = 'publisher' AND status = 'unsigned'
                    """,
                arguments: [
                    signature.status.rawValue, signature.keyName, signature.keyHint, signature.bundle.map { Data($0) }, try row.storedID(),
                ])
            guard db.changesCount > 0 else { return false }
            try Self.insertEvent(db, .signatureAttached(model, version: version, signature, actor: actor))
            return true
        }
    }

    package func versionOrder(_ model: ModelName) async throws(CustodyError) -> [(version: String, digest: ContentDigest)]? {
        let rows: [[String]]? = try await read { db in
            guard let modelID = try Self.modelID(db, model, create: false) else { return nil }
            return try Row.fetchAll(db, sql: "SELECT version, bundle_digest FROM versions WHERE model_id = ? ORDER BY id", arguments: [modelID])
                .map { [$0["version"], $0["bundle_digest"]] }
        }
        guard let rows else { return nil }
        var out: [(version: String, digest: ContentDigest)] = []
        for row in rows {
            guard let digest = try? ContentDigest(parsing: row[1]) else { throw CustodyError(.io, "a stored bundle digest is malformed: \(row[1])") }
            out.append((row[0], digest))
        }
        return out
    }

    package func versions(holding digest: ContentDigest) async throws(CustodyError) -> [(model: String, version: String)] {
        let rows: [[String]] = try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT m.namespace || '/' || m.name AS model, v.version AS version
                    FROM files f JOIN versions v ON v.id = f.version_id JOIN models m ON m.id = v.model_id
                    WHERE f.digest = ? ORDER BY v.id DESC
                    """,
                arguments: [digest.description]
            ).map { [$0["model"], $0["version"]] }
                // Blobs only OCI manifests hold (configs, archive layers, attached documents) belong to their versions too.
                + Row.fetchAll(
                    db,
                    sql: """
                        SELECT DISTINCT m.repository AS model, m.version AS version FROM oci_references r
                        JOIN oci_manifests m ON m.repository = r.repository AND m.digest = r.manifest
                        WHERE r.digest = ? AND m.version IS NOT NULL ORDER BY m.rowid DESC
                        """,
                    arguments: [digest.description]
                ).map { [$0["model"], $0["version"]] }
        }
        var seen = Set<[String]>()
        return rows.filter { seen.insert($0).inserted }.map { ($0[0], $0[1]) }
    }

    package func versions(withBundleDigests digests: [String]) async throws(CustodyError) -> [(model: String, version: String)] {
        guard !digests.isEmpty else { return [] }
        let rows: [[String]] = try await read { db in
            var rows: [[String]] = []
            for digest in digests {
                rows += try Row.fetchAll(
                    db,
                    sql: """
                        SELECT m.namespace || '/' || m.name AS model, v.version AS version FROM versions v
                        JOIN models m ON m.id = v.model_id WHERE v.bundle_digest = ? ORDER BY v.id
                        """,
                    arguments: [digest]
                ).map { [$0["model"], $0["version"]] }
            }
            return rows
        }
        return rows.map { ($0[0], $0[1]) }
    }

    /// Versions whose recorded source is one of `uris` (compared without case), with their source revision, oldest
    /// first: how a Hugging Face repository named as a base model is found among the registry's copies.
    package func versions(withSources uris: [String]) async throws(CustodyError) -> [(model: String, version: String, revision: String?)] {
        guard !uris.isEmpty else { return [] }
        let lowered = uris.map { $0.lowercased() }
        return try await read { db in
            let marks = lowered.map { _ in "?" }.joined(separator: ", ")
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT m.namespace || '/' || m.name AS model, v.version AS version, p.source_revision AS revision
                    FROM provenance p JOIN versions v ON v.id = p.version_id JOIN models m ON m.id = v.model_id
                    WHERE lower(p.source_uri) IN (\(marks)) ORDER BY v.id
                    """,
                arguments: StatementArguments(lowered)
            ).map { ($0["model"], $0["version"], $0["revision"]) }
        }
    }

    package func saveAdvisory(_ advisory: StoredAdvisory, event: NewEvent) async throws(CustodyError) -> AdvisoryWrite {
        try await write { db in
            let now = Self.now()
            if let existing = try AdvisoryRow.fetchOne(db, key: advisory.id) {
                if Array(existing.document) == advisory.document { return .unchanged }
                guard let old = RFC3339.date(existing.modified), let new = RFC3339.date(advisory.modified), new > old else {
                    throw CustodyError(
                        .conflict,
                        "advisory \(advisory.id) is already recorded with modified \(existing.modified); an update needs a later 'modified'")
                }
                try AdvisoryRow(advisory, recordedAt: existing.recordedAt, updatedAt: now).update(db)
                try Self.insertEvent(db, event)
                return .updated
            }
            try AdvisoryRow(advisory, recordedAt: now, updatedAt: now).insert(db)
            try Self.insertEvent(db, event)
            return .created
        }
    }

    package func advisories() async throws(CustodyError) -> [StoredAdvisory] {
        try await read { db in
            try AdvisoryRow.order(Column("id")).fetchAll(db).map { try $0.stored() }
        }
    }

    package func uses(
        of versions: [(model: String, version: String)]
    ) async throws(CustodyError)
        -> [(model: String, version: String, use: API.Exposure.Use)]
    {
        // One pass over each model's events (its range of the model index, the version read from the index) for all
        // of its versions asked about, rather than one pass per version.
        var models: [String] = []
        var asked: [String: [String]] = [:]
        for (model, version) in versions {
            if asked[model] == nil { models.append(model) }
            if !(asked[model]?.contains(version) ?? false) { asked[model, default: []].append(version) }
        }
        let plan = models.map { ($0, asked[$0]!) }
        return try await read { db in
            var found: [String: [API.Exposure.Use]] = [:]
            for (model, versions) in plan {
                let marks = versions.map { _ in "?" }.joined(separator: ", ")
                let rows = try UseRow.fetchAll(
                    db,
                    sql: """
                        SELECT version, type, actor, environment, client, SUM(count) AS count, MIN(at) AS first, MAX(at) AS last,
                            CASE type WHEN 'pull' THEN 1 WHEN 'pull.denied' THEN 0 ELSE detail LIKE 'allowed %' END AS allowed
                        FROM events
                        WHERE model = ? AND version IN (\(marks)) AND type IN (\(EventKind.uses.map { "'\($0.rawValue)'" }.joined(separator: ", ")))
                        GROUP BY version, type, allowed, actor, environment, client ORDER BY MIN(id)
                        """,
                    arguments: StatementArguments([model] + versions))
                for row in rows { found["\(model)@\(row.version)", default: []].append(row.use) }
            }
            return versions.flatMap { pair in (found["\(pair.model)@\(pair.version)"] ?? []).map { (pair.model, pair.version, $0) } }
        }
    }
}
