package import CustodyCore
package import CustodyStorage
import Dispatch
import Foundation
import PostgresNIO
import Synchronization

/// The rest of ``EventLog`` on PostgreSQL: audits' queries, exposure counts, checkpoints.
extension PostgresLog: EventLog {
    package func recordEvent(_ event: NewEvent) async throws(CustodyError) {
        try await append([event])
    }

    /// Blocks the calling thread (the event recorder's own, never the task pool's) until the batch is committed.
    package func recordEventsBlocking(_ events: [NewEvent]) throws(CustodyError) {
        let outcome = Mutex<Result<Void, CustodyError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do throws(CustodyError) {
                try await append(events)
                outcome.withLock { $0 = .success(()) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        try outcome.withLock { $0 }?.get()
    }

    package func events(_ filter: EventFilter) async throws(CustodyError) -> [API.Event] {
        var clauses = ["id > $1"]
        var binds = PostgresBindings()
        binds.append(filter.after)
        func bind(_ condition: (String) -> String, _ value: String) {
            binds.append(value)
            clauses.append(condition("$\(binds.count)"))
        }
        if let model = filter.model { bind({ "model = \($0)" }, model) }
        if let version = filter.version { bind({ "version = \($0)" }, version) }
        if !filter.types.isEmpty {
            var marks: [String] = []
            for type in filter.types {
                binds.append(type)
                marks.append("$\(binds.count)")
            }
            clauses.append("type IN (\(marks.joined(separator: ", ")))")
        }
        if let actor = filter.actor { bind({ "actor LIKE \($0) ESCAPE '\\'" }, "%" + Self.escapeLike(actor) + "%") }
        if let environment = filter.environment { bind({ "environment = \($0)" }, environment) }
        if let since = filter.since { bind({ "at >= \($0)" }, since) }
        if let until = filter.until { bind({ "at <= \($0)" }, until) }
        let sql = """
            SELECT id, at, type, actor, model, version, detail, environment, client, count FROM events
            WHERE \(clauses.joined(separator: " AND ")) ORDER BY id LIMIT \(max(1, min(filter.limit, 10_000)))
            """
        let query = PostgresQuery(unsafeSQL: sql, binds: binds)
        return try await run("read events") { connection, logger in
            var out: [API.Event] = []
            for try await (id, at, type, actor, model, version, detail, environment, client, count) in try await connection.query(
                query, logger: logger
            )
            .decode((Int64, String, String, String?, String?, String?, String?, String?, String?, Int64).self) {
                out.append(
                    API.Event(
                        id: id, at: at, type: type, actor: actor, model: model, version: version, detail: detail, environment: environment,
                        client: client, count: count))
            }
            return out
        }
    }

    package func forEachEvent(after id: Int64, page: Int, _ body: ([API.Event]) async throws -> Void) async throws {
        var cursor = id
        while true {
            var filter = EventFilter()
            filter.after = cursor
            filter.limit = page
            let events = try await events(filter)
            guard let last = events.last else { return }
            try await body(events)
            cursor = last.id
        }
    }

    package func uses(
        of versions: [(model: String, version: String)]
    ) async throws(CustodyError) -> [(model: String, version: String, use: API.Exposure.Use)] {
        var out: [(model: String, version: String, use: API.Exposure.Use)] = []
        var seen = Set<String>()
        let kinds = EventKind.uses.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        for (model, version) in versions where seen.insert("\(model)@\(version)").inserted {
            let query: PostgresQuery = """
                SELECT type, actor, environment, client, SUM(count)::BIGINT, MIN(at), MAX(at),
                    CASE WHEN type = 'pull' THEN TRUE WHEN type = 'pull.denied' THEN FALSE ELSE COALESCE(detail LIKE 'allowed %', FALSE) END AS allowed
                FROM events WHERE model = \(model) AND version = \(version) AND type IN (\(unescaped: kinds))
                GROUP BY type, allowed, actor, environment, client ORDER BY MIN(id)
                """
            let uses: [API.Exposure.Use] = try await run("count uses") { connection, logger in
                var found: [API.Exposure.Use] = []
                for try await (type, actor, environment, client, count, first, last, allowed) in try await connection.query(query, logger: logger)
                    .decode((String, String?, String?, String?, Int64, String, String, Bool).self)
                {
                    found.append(
                        API.Exposure.Use(
                            type: type, allowed: allowed, actor: actor, environment: environment, client: client, count: Int(count), first: first,
                            last: last))
                }
                return found
            }
            out += uses.map { (model, version, $0) }
        }
        return out
    }

    package func latestCheckpoint() async throws(CustodyError) -> (size: UInt64, note: String)? {
        try await run("read the latest checkpoint") { connection, logger in
            var latest: (UInt64, String)?
            for try await (size, note) in try await connection.query("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1", logger: logger)
                .decode((Int64, String).self)
            {
                latest = (UInt64(size), note)
            }
            return latest
        }
    }

    package func recordCheckpoint(size: UInt64, root: [UInt8], note: String) async throws(CustodyError) {
        let (size, root, now) = (Int64(size), ByteBuffer(bytes: root), RFC3339.string(.now))
        try await run("record a checkpoint") { connection, logger in
            try await connection.query(
                "INSERT INTO checkpoints (size, root, note, created_at) VALUES (\(size), \(root), \(note), \(now)) ON CONFLICT DO NOTHING",
                logger: logger)
        }
    }

    static func escapeLike(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
    }
}
