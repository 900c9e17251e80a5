import Crypto
package import CustodyCore
package import CustodyStorage
package import Foundation
package import Logging
package import PostgresNIO

/// The registry's metadata on PostgreSQL, role by role as ``MetadataStore`` declares them; each write and the event
/// that records it commit in one transaction, with the log's leaf indexes assigned under its head row lock
/// (``PostgresLog``).
package final class PostgresMetadata: BlobIndex, TokenRecords, AdvisoryRecords, UploadLedger, Sendable {
    package let client: PostgresClient
    package let log: PostgresLog
    let logger: Logger

    package init(client: PostgresClient, location: PostgresLocation, logger: Logger) {
        self.client = client
        self.logger = logger
        log = PostgresLog(client: client, location: location, logger: logger)
    }

    /// Creates the tables when they are missing (every daemon may run it at start).
    package func migrate() async throws(CustodyError) {
        try await log.migrate()
        let statements: [PostgresQuery] = [
            "CREATE TABLE IF NOT EXISTS blobs (digest TEXT PRIMARY KEY, size BIGINT NOT NULL CHECK (size >= 0), created_at TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS upload_heartbeats (upload_id TEXT PRIMARY KEY, touched_at BIGINT NOT NULL)",
            """
            CREATE TABLE IF NOT EXISTS tokens (
                id TEXT PRIMARY KEY, name TEXT, secret_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL, namespaces TEXT NOT NULL,
                environments TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS advisories (
                id TEXT PRIMARY KEY, modified TEXT NOT NULL, withdrawn TEXT, severity TEXT NOT NULL, score DOUBLE PRECISION, summary TEXT,
                models TEXT NOT NULL, document BYTEA NOT NULL, recorded_at TEXT NOT NULL, updated_at TEXT NOT NULL
            )
            """,
        ]
        try await log.run("migrate the metadata") { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(7266)", logger: logger)
                for statement in statements + Self.catalogTables + Self.ociTables { try await connection.query(statement, logger: logger) }
            }
        }
    }

    // MARK: UploadLedger

    package func touchUploads(_ ids: [String], at date: Date) async throws(CustodyError) {
        guard !ids.isEmpty else { return }
        let seconds = Int64(date.timeIntervalSince1970)
        try await log.run("record upload heartbeats") { connection, logger in
            try await connection.query(
                """
                INSERT INTO upload_heartbeats (upload_id, touched_at) SELECT id, \(seconds) FROM unnest(\(ids)::text[]) AS id
                ON CONFLICT (upload_id) DO UPDATE SET touched_at = EXCLUDED.touched_at
                """, logger: logger)
        }
    }

    package func uploadsTouched(since cutoff: Date) async throws(CustodyError) -> Set<String> {
        let seconds = Int64(cutoff.timeIntervalSince1970)
        return try await log.run("read upload heartbeats") { connection, logger in
            try await connection.query("DELETE FROM upload_heartbeats WHERE touched_at < \(seconds)", logger: logger)
            var ids: Set<String> = []
            for try await id in try await connection.query("SELECT upload_id FROM upload_heartbeats", logger: logger).decode(String.self) {
                ids.insert(id)
            }
            return ids
        }
    }

    // MARK: BlobIndex

    package func blobSize(_ digest: ContentDigest) async throws(CustodyError) -> UInt64? {
        let key = digest.description
        return try await log.run("read a blob") { connection, logger in
            var size: Int64?
            for try await value in try await connection.query("SELECT size FROM blobs WHERE digest = \(key)", logger: logger).decode(Int64.self) {
                size = value
            }
            return size.map { UInt64($0) }
        }
    }

    package func recordBlob(_ digest: ContentDigest, size: UInt64) async throws(CustodyError) {
        let (key, size, now) = (digest.description, Int64(size), RFC3339.string(.now))
        try await log.run("record a blob") { connection, logger in
            try await connection.query(
                """
                INSERT INTO blobs (digest, size, created_at) VALUES (\(key), \(size), \(now))
                ON CONFLICT (digest) DO UPDATE SET created_at = EXCLUDED.created_at
                """, logger: logger)
        }
    }

    package func touchBlob(_ digest: ContentDigest) async throws(CustodyError) {
        let (key, now) = (digest.description, RFC3339.string(.now))
        // Waits for a collector holding the record: after it, there is no record to touch and the upload stores anew.
        try await log.run("touch a blob") { connection, logger in
            try await connection.query("UPDATE blobs SET created_at = \(now) WHERE digest = \(key)", logger: logger)
        }
    }

    static let unreferenced =
        "NOT EXISTS (SELECT 1 FROM version_blobs v WHERE v.digest = b.digest) AND NOT EXISTS (SELECT 1 FROM oci_references r WHERE r.digest = b.digest)"

    package func collectableBlobs(unusedSince cutoff: String, limit: Int) async throws(CustodyError) -> [(digest: ContentDigest, size: UInt64)] {
        var query: PostgresQuery = "SELECT digest, size FROM blobs b WHERE created_at < \(cutoff) AND "
        query.sql += Self.unreferenced + " ORDER BY created_at LIMIT \(limit)"
        let statement = query
        let rows: [(String, Int64)] = try await log.run("list collectable blobs") { connection, logger in
            var out: [(String, Int64)] = []
            for try await row in try await connection.query(statement, logger: logger).decode((String, Int64).self) { out.append(row) }
            return out
        }
        var out: [(digest: ContentDigest, size: UInt64)] = []
        for (text, size) in rows { out.append((try Self.digest(text), UInt64(size))) }
        return out
    }

    package func collectBlob(
        _ digest: ContentDigest, unusedSince cutoff: String, deleting: @escaping @Sendable () async throws(CustodyError) -> Void
    ) async throws(CustodyError) -> Bool {
        let key = digest.description
        return try await log.run("collect a blob") { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                // The record's lock first (publishes hold it shared until they commit, uploads wait to touch it); then,
                // in a statement of its own (a snapshot taken after the lock), the references and the time.
                var locked = false
                for try await _ in try await connection.query("SELECT digest FROM blobs WHERE digest = \(key) FOR UPDATE", logger: logger)
                    .decode(String.self)
                {
                    locked = true
                }
                guard locked else { return false }
                var check: PostgresQuery = "SELECT digest FROM blobs b WHERE digest = \(key) AND created_at < \(cutoff) AND "
                check.sql += Self.unreferenced
                var unused = false
                for try await _ in try await connection.query(check, logger: logger).decode(String.self) { unused = true }
                guard unused else { return false }
                try await deleting()
                try await connection.query("DELETE FROM blobs WHERE digest = \(key)", logger: logger)
                return true
            }
        }
    }

    // MARK: TokenRecords

    package func createToken(_ request: NewToken) async throws(CustodyError) -> API.TokenCreated {
        let secret = TokenSecret.generate()
        let id = TokenSecret.id()
        let hash = TokenSecret.hash(secret)
        let now = RFC3339.string(.now)
        let namespaces = try Self.json(request.namespaces)
        let environments = try Self.json(request.environments)
        let scope = request.namespaces.isEmpty ? "" : " namespaces \(request.namespaces.joined(separator: ","))"
        let envs = request.environments.isEmpty ? "" : " environments \(request.environments.joined(separator: ","))"
        let event = NewEvent(type: .tokenCreated, actor: nil, detail: "token \(id) role \(request.role.rawValue)\(scope)\(envs)")
        let (name, role, expires) = (request.name, request.role.rawValue, request.expiresAt)
        try await log.run("create a token") { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query(
                    """
                    INSERT INTO tokens (id, name, secret_hash, role, namespaces, environments, created_at, expires_at, revoked_at)
                    VALUES (\(id), \(name), \(hash), \(role), \(namespaces), \(environments), \(now), \(expires), NULL)
                    """, logger: logger)
                try await PostgresLog.insert([event], on: connection, logger: logger)
            }
        }
        let info = API.TokenInfo(
            id: id, name: request.name, role: request.role, namespaces: request.namespaces, environments: request.environments, createdAt: now,
            expiresAt: request.expiresAt, revokedAt: nil)
        return API.TokenCreated(token: info, secret: secret)
    }

    package func token(secret: String) async throws(CustodyError) -> TokenRecord? {
        let hash = TokenSecret.hash(secret)
        return try await rows("WHERE secret_hash = \(hash)").first.map { $0.record }
    }

    package func tokens() async throws(CustodyError) -> [API.TokenInfo] {
        try await rows("ORDER BY created_at, id").map(\.info)
    }

    package func revokeToken(id: String) async throws(CustodyError) -> Bool {
        let now = RFC3339.string(.now)
        return try await log.run("revoke a token") { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                let rows = try await connection.query(
                    "UPDATE tokens SET revoked_at = \(now) WHERE id = \(id) AND revoked_at IS NULL RETURNING id", logger: logger)
                var changed = false
                for try await _ in rows.decode(String.self) { changed = true }
                if changed {
                    try await PostgresLog.insert([NewEvent(type: .tokenRevoked, actor: nil, detail: "token \(id)")], on: connection, logger: logger)
                }
                return changed
            }
        }
    }

    package func tokenCount() async throws(CustodyError) -> Int {
        try await log.run("count tokens") { connection, logger in
            var count: Int64 = 0
            for try await value in try await connection.query("SELECT COUNT(*) FROM tokens", logger: logger).decode(Int64.self) { count = value }
            return Int(count)
        }
    }

    struct TokenRow {
        let record: TokenRecord
        let info: API.TokenInfo
    }

    /// Token rows after `clause` (a WHERE or ORDER BY with its binds); a stored role this build does not know is refused.
    private func rows(_ clause: PostgresQuery) async throws(CustodyError) -> [TokenRow] {
        var query: PostgresQuery = "SELECT id, name, role, namespaces, environments, created_at, expires_at, revoked_at FROM tokens "
        query.sql += clause.sql
        query.binds = clause.binds
        let statement = query
        return try await log.run("read tokens") { connection, logger in
            var out: [TokenRow] = []
            let rows = try await connection.query(statement, logger: logger)
            for try await (id, name, role, namespaces, environments, created, expires, revoked) in rows.decode(
                (String, String?, String, String, String, String, String?, String?).self)
            {
                guard let role = Role(rawValue: role) else { throw CustodyError(.io, "token \(id) has an unknown role '\(role)'") }
                let scopes: [String] = try JSONDecoder().decode([String].self, from: Data(namespaces.utf8))
                let envs: [String] = try JSONDecoder().decode([String].self, from: Data(environments.utf8))
                out.append(
                    TokenRow(
                        record: TokenRecord(
                            id: id, name: name, role: role, namespaces: scopes, environments: envs, expiresAt: expires, revokedAt: revoked),
                        info: API.TokenInfo(
                            id: id, name: name, role: role, namespaces: scopes, environments: envs, createdAt: created, expiresAt: expires,
                            revokedAt: revoked)))
            }
            return out
        }
    }

    // MARK: AdvisoryRecords

    package func saveAdvisory(_ advisory: StoredAdvisory, event: NewEvent) async throws(CustodyError) -> AdvisoryWrite {
        let now = RFC3339.string(.now)
        let models = try Self.json(advisory.models)
        let document = ByteBuffer(bytes: advisory.document)
        return try await log.run("save advisory \(advisory.id)") { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                // The row lock orders two daemons saving the same advisory.
                let existing = try await connection.query(
                    "SELECT modified, document FROM advisories WHERE id = \(advisory.id) FOR UPDATE", logger: logger)
                var stored: (modified: String, document: ByteBuffer)?
                for try await (modified, bytes) in existing.decode((String, ByteBuffer).self) { stored = (modified, bytes) }
                if let stored {
                    if Array(stored.document.readableBytesView) == advisory.document { return AdvisoryWrite.unchanged }
                    guard let old = RFC3339.date(stored.modified), let new = RFC3339.date(advisory.modified), new > old else {
                        throw CustodyError(
                            .conflict,
                            "advisory \(advisory.id) is already recorded with modified \(stored.modified); an update needs a later 'modified'")
                    }
                    try await connection.query(
                        """
                        UPDATE advisories SET modified = \(advisory.modified), withdrawn = \(advisory.withdrawn), severity = \(advisory.severity),
                            score = \(advisory.score), summary = \(advisory.summary), models = \(models), document = \(document), updated_at = \(now)
                        WHERE id = \(advisory.id)
                        """, logger: logger)
                    try await PostgresLog.insert([event], on: connection, logger: logger)
                    return .updated
                }
                try await connection.query(
                    """
                    INSERT INTO advisories (id, modified, withdrawn, severity, score, summary, models, document, recorded_at, updated_at)
                    VALUES (\(advisory.id), \(advisory.modified), \(advisory.withdrawn), \(advisory.severity), \(advisory.score),
                            \(advisory.summary), \(models), \(document), \(now), \(now))
                    """, logger: logger)
                try await PostgresLog.insert([event], on: connection, logger: logger)
                return .created
            }
        }
    }

    package func advisories() async throws(CustodyError) -> [StoredAdvisory] {
        try await log.run("read advisories") { connection, logger in
            let rows = try await connection.query(
                "SELECT id, modified, withdrawn, severity, score, summary, models, document FROM advisories ORDER BY id", logger: logger)
            var out: [StoredAdvisory] = []
            for try await (id, modified, withdrawn, severity, score, summary, models, document) in rows.decode(
                (String, String, String?, String, Double?, String?, String, ByteBuffer).self)
            {
                out.append(
                    StoredAdvisory(
                        id: id, modified: modified, withdrawn: withdrawn, severity: severity, score: score, summary: summary,
                        models: try JSONDecoder().decode([String].self, from: Data(models.utf8)), document: Array(document.readableBytesView)))
            }
            return out
        }
    }

    // MARK: Support

    static func json(_ value: [String]) throws(CustodyError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return String(decoding: try encoder.encode(value), as: UTF8.self) } catch {
            throw CustodyError(.invalidArgument, "cannot encode \(value)")
        }
    }
}

/// The event log role, answered by the shared ``PostgresLog``.
extension PostgresMetadata: EventLog {
    package func recordEvent(_ event: NewEvent) async throws(CustodyError) { try await log.recordEvent(event) }
    package func recordEventsBlocking(_ events: [NewEvent]) throws(CustodyError) { try log.recordEventsBlocking(events) }
    package func events(_ filter: EventFilter) async throws(CustodyError) -> [API.Event] { try await log.events(filter) }
    package func forEachEvent(after id: Int64, page: Int, _ body: ([API.Event]) async throws -> Void) async throws {
        try await log.forEachEvent(after: id, page: page, body)
    }
    package func uses(
        of versions: [(model: String, version: String)]
    ) async throws(CustodyError) -> [(model: String, version: String, use: API.Exposure.Use)] {
        try await log.uses(of: versions)
    }
    package func logSize() async throws(CustodyError) -> UInt64 { try await log.logSize() }
    package func logRoot(size: UInt64) async throws(CustodyError) -> [UInt8] { try await log.logRoot(size: size) }
    package func inclusionProof(index: UInt64, size: UInt64) async throws(CustodyError) -> (leaf: [UInt8], proof: [[UInt8]]) {
        try await log.inclusionProof(index: index, size: size)
    }
    package func consistencyProof(from: UInt64, to: UInt64) async throws(CustodyError) -> [[UInt8]] {
        try await log.consistencyProof(from: from, to: to)
    }
    package func latestCheckpoint() async throws(CustodyError) -> (size: UInt64, note: String)? { try await log.latestCheckpoint() }
    package func recordCheckpoint(size: UInt64, root: [UInt8], note: String) async throws(CustodyError) {
        try await log.recordCheckpoint(size: size, root: root, note: note)
    }
}
