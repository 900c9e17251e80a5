package import CustodyCore
package import CustodyStorage
package import Foundation
package import Logging
package import NIOCore
package import PostgresNIO
import Synchronization
import _ConnectionPoolModule

/// The transparency log on PostgreSQL, shared by every daemon of a registry: events in log order, each a leaf of the
/// Merkle tree, appended with the completed subtrees in the events' own transaction.
///
/// Leaf indexes come from one `log_head` row, advanced with `UPDATE … RETURNING` in the appending transaction: its row
/// lock orders every appender of every daemon, and a rolled-back append returns its indexes with it (a sequence
/// would leave a hole). A batch of events takes one lock and one commit.
package final class PostgresLog: Sendable {
    package let client: PostgresClient
    /// Where `client` connects: ``run(_:waitingAtMost:_:)`` opens a connection of its own there when the pool has
    /// none to give.
    let location: PostgresLocation
    let logger: Logger
    /// The frontier of the tree as this daemon's last append left it (see ``append(_:)``).
    private let frontier = Mutex<Frontier?>(nil)
    private let appends = Mutex(AppendPaths())

    /// How many batches this daemon appended as one statement, and by the locked path.
    package struct AppendPaths: Sendable, Equatable {
        package var oneStatement = 0
        package var locked = 0
    }

    package var appendPaths: AppendPaths { appends.withLock { $0 } }

    package init(client: PostgresClient, location: PostgresLocation, logger: Logger) {
        self.client = client
        self.location = location
        self.logger = logger
    }

    /// Creates the log's tables when they are missing (idempotent; every daemon may run it at start).
    package func migrate() async throws(CustodyError) {
        let statements: [PostgresQuery] = [
            """
            CREATE TABLE IF NOT EXISTS events (
                id BIGINT PRIMARY KEY,
                leaf_index BIGINT NOT NULL UNIQUE,
                at TEXT NOT NULL,
                type TEXT NOT NULL,
                actor TEXT,
                model TEXT,
                version TEXT,
                detail TEXT,
                environment TEXT,
                client TEXT,
                count BIGINT NOT NULL DEFAULT 1 CHECK (count >= 1)
            )
            """,
            "CREATE INDEX IF NOT EXISTS events_by_model_id ON events (model, id)",
            "CREATE INDEX IF NOT EXISTS events_by_type_id ON events (type, id)",
            "CREATE TABLE IF NOT EXISTS log_tree (position BIGINT PRIMARY KEY, hash BYTEA NOT NULL)",
            "CREATE TABLE IF NOT EXISTS log_head (only_row SMALLINT PRIMARY KEY CHECK (only_row = 1), size BIGINT NOT NULL CHECK (size >= 0))",
            "INSERT INTO log_head (only_row, size) VALUES (1, 0) ON CONFLICT DO NOTHING",
            "CREATE TABLE IF NOT EXISTS checkpoints (size BIGINT PRIMARY KEY, root BYTEA NOT NULL, note TEXT NOT NULL, created_at TEXT NOT NULL)",
        ]
        try await run("migrate the log") { connection, logger in
            // Two daemons starting at once must not race on CREATE: a transaction-scoped advisory lock orders them.
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(7263)", logger: logger)
                for statement in statements { try await connection.query(statement, logger: logger) }
            }
        }
    }

    // MARK: Appending

    /// Appends `events` in order: their leaf indexes are the head's size onwards, assigned under its row lock.
    ///
    /// When this daemon knows the tree's frontier at the head's current size (it made the last append), the batch goes
    /// as one statement, its own transaction: the head advances only if it is still at that size (`WHERE size = …`
    /// under the row lock), and the events and nodes are inserted only if it did. One round trip instead of six. If
    /// another daemon (or a catalog write carrying its event) appended meanwhile, nothing is written and the batch
    /// takes the locked path, which reads the frontier after taking the lock.
    package func append(_ events: [NewEvent]) async throws(CustodyError) {
        guard !events.isEmpty else { return }
        let at = RFC3339.string(.now)
        if events.count <= Self.rowsPerStatement, let known = frontier.withLock({ $0 }) {
            let batch = try Self.batch(events, first: known.size, frontier: known.nodes, at: at)
            let appended = try await run("append \(events.count) events") { connection, logger in
                var applied = false
                let rows = try await connection.query(Self.conditionalAppend(batch, expectedSize: known.size), logger: logger)
                for try await count in rows.decode(Int64.self) { applied = count == 1 }
                return applied
            }
            if appended {
                remember(batch.frontier)
                appends.withLock { $0.oneStatement += 1 }
                return
            }
        }
        let after = try await run("append \(events.count) events") { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                try await Self.insert(events, at: at, on: connection, logger: logger)
            }
        }
        if let after { remember(after) }
        appends.withLock { $0.locked += 1 }
    }

    private func remember(_ next: Frontier) {
        frontier.withLock { known in
            if known == nil || known!.size < next.size { known = next }
        }
    }

    /// The complete subtrees' roots of a tree of `size` leaves, by storage position: the only stored nodes the next
    /// leaves' nodes hang from.
    package struct Frontier: Sendable {
        var size: UInt64
        var nodes: [UInt64: [UInt8]]

        static func positions(size: UInt64) -> [UInt64] {
            (0..<64).filter { size >> UInt64($0) & 1 == 1 }.map { level in
                Merkle.storagePosition(level: level, index: (size >> UInt64(level)) - 1)
            }
        }
    }

    /// The rows a batch adds: its events from leaf index `first` on, and the tree nodes they complete.
    struct Batch {
        var first: UInt64
        var events: [NewEvent]
        var at: String
        var nodes: [(position: Int64, hash: [UInt8])]
        var frontier: Frontier
    }

    /// Events per statement: 11 parameters each, well under the protocol's 65,535.
    static let rowsPerStatement = 2_000

    static func batch(_ events: [NewEvent], first: UInt64, frontier: [UInt64: [UInt8]], at: String) throws(CustodyError) -> Batch {
        var known = frontier
        var nodes: [(position: Int64, hash: [UInt8])] = []
        for (offset, event) in events.enumerated() {
            let index = first + UInt64(offset)
            let leaf = EventLeaf.V1(
                id: Int64(index) + 1, at: at, type: event.type.rawValue, actor: event.actor, model: event.model, version: event.version,
                detail: event.detail, environment: event.environment, client: event.client, count: event.count)
            // The leaf and the subtrees it completes, their left halves from the frontier or this batch.
            var hash = leaf.leafHash
            var level = 0
            var node = index
            func store(_ level: Int, _ index: UInt64, _ hash: [UInt8]) {
                let position = Merkle.storagePosition(level: level, index: index)
                known[position] = hash
                nodes.append((Int64(position), hash))
            }
            store(0, node, hash)
            while node & 1 == 1 {
                guard let left = known[Merkle.storagePosition(level: level, index: node - 1)] else {
                    throw CustodyError(.io, "the log is missing node (\(level), \(node - 1)): it cannot be extended")
                }
                hash = Merkle.nodeHash(left, hash)
                level += 1
                node >>= 1
                store(level, node, hash)
            }
        }
        let size = first + UInt64(events.count)
        var next = Frontier(size: size, nodes: [:])
        for position in Frontier.positions(size: size) { next.nodes[position] = known[position] }
        return Batch(first: first, events: events, at: at, nodes: nodes, frontier: next)
    }

    /// `VALUES` rows of `events` from leaf index `first` on, and their parameters, from `$\(offset + 1)`.
    private static func eventRows(_ events: ArraySlice<NewEvent>, first: UInt64, at: String, binds: inout PostgresBindings) -> String {
        var sql = ""
        let types = ["BIGINT", "BIGINT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "BIGINT"]
        for (offset, event) in zip(events.indices, events) {
            let index = Int64(first) + Int64(offset)
            let base = binds.count
            sql +=
                (sql.isEmpty ? "" : ", ") + "(" + types.enumerated().map { "$\(base + $0.offset + 1)::\($0.element)" }.joined(separator: ", ") + ")"
            binds.append(index + 1)
            binds.append(index)
            binds.append(at)
            binds.append(event.type.rawValue)
            binds.append(event.actor)
            binds.append(event.model)
            binds.append(event.version)
            binds.append(event.detail)
            binds.append(event.environment)
            binds.append(event.client)
            binds.append(event.count)
        }
        return sql
    }

    private static let eventColumns = "id, leaf_index, at, type, actor, model, version, detail, environment, client, count"

    /// The whole batch as one statement that writes only if the head is still at `expectedSize`; answers 1 if it
    /// wrote, 0 if not.
    static func conditionalAppend(_ batch: Batch, expectedSize: UInt64) -> PostgresQuery {
        var binds = PostgresBindings()
        binds.append(Int64(batch.events.count))
        binds.append(Int64(expectedSize))
        binds.append(batch.nodes.map(\.position))
        binds.append(batch.nodes.map { ByteBuffer(bytes: $0.hash) })
        let rows = eventRows(batch.events[...], first: batch.first, at: batch.at, binds: &binds)
        let sql = """
            WITH head AS (UPDATE log_head SET size = size + $1 WHERE only_row = 1 AND size = $2 RETURNING size),
            new_events AS (INSERT INTO events (\(eventColumns)) SELECT v.* FROM head, (VALUES \(rows)) AS v(\(eventColumns))),
            new_nodes AS (INSERT INTO log_tree (position, hash) SELECT t.* FROM head, UNNEST($3::BIGINT[], $4::BYTEA[]) AS t)
            SELECT count(*) FROM head
            """
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    /// Appends `events` inside the caller's transaction (a write and the event that records it commit together):
    /// the head's update (its lock), one read of the tree's frontier, and the events with the nodes computed here in
    /// one statement (more for a batch over ``rowsPerStatement``). Returns the tree's frontier after them, which is
    /// the log's once the transaction commits.
    @discardableResult
    package static func insert(
        _ events: [NewEvent], at: String = RFC3339.string(.now), on connection: PostgresConnection, logger: Logger
    ) async throws -> Frontier? {
        guard !events.isEmpty else { return nil }
        let count = Int64(events.count)
        let head = try await connection.query(
            "UPDATE log_head SET size = size + \(count) WHERE only_row = 1 RETURNING size - \(count)", logger: logger)
        var firstIndex: Int64?
        for try await (value) in head.decode(Int64.self) { firstIndex = value }
        guard let firstIndex else { throw CustodyError(.io, "the log has no head row") }
        let first = UInt64(firstIndex)

        var known: [UInt64: [UInt8]] = [:]
        let frontier = Frontier.positions(size: first).map { Int64($0) }
        if !frontier.isEmpty {
            let rows = try await connection.query("SELECT position, hash FROM log_tree WHERE position = ANY(\(frontier))", logger: logger)
            for try await (position, hash) in rows.decode((Int64, ByteBuffer).self) { known[UInt64(position)] = Array(hash.readableBytesView) }
            guard known.count == frontier.count else { throw CustodyError(.io, "the log is missing frontier nodes: it cannot be extended") }
        }
        let batch = try batch(events, first: first, frontier: known, at: at)

        var start = 0
        while start < events.count {
            let end = min(start + rowsPerStatement, events.count)
            var binds = PostgresBindings()
            // The nodes go with the first statement: they only reference each other, not the events.
            let nodes = start == 0 ? batch.nodes : []
            binds.append(nodes.map(\.position))
            binds.append(nodes.map { ByteBuffer(bytes: $0.hash) })
            let rows = eventRows(events[start..<end], first: first, at: at, binds: &binds)
            let sql = """
                WITH new_nodes AS (INSERT INTO log_tree (position, hash) SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[]))
                INSERT INTO events (\(eventColumns)) VALUES \(rows)
                """
            try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            start = end
        }
        return batch.frontier
    }

    // MARK: Reading

    package func logSize() async throws(CustodyError) -> UInt64 {
        try await run("read the log size") { connection, logger in
            var size: Int64 = 0
            for try await value in try await connection.query("SELECT size FROM log_head WHERE only_row = 1", logger: logger).decode(Int64.self) {
                size = value
            }
            return UInt64(size)
        }
    }

    package func logRoot(size: UInt64) async throws(CustodyError) -> [UInt8] {
        try await withNodes { source in try Merkle.root(size: size, source) }
    }

    package func inclusionProof(index: UInt64, size: UInt64) async throws(CustodyError) -> (leaf: [UInt8], proof: [[UInt8]]) {
        try await withNodes { source in (try source.node(level: 0, index: index), try Merkle.inclusionProof(index: index, size: size, source)) }
    }

    package func consistencyProof(from: UInt64, to: UInt64) async throws(CustodyError) -> [[UInt8]] {
        try await withNodes { source in try Merkle.consistencyProof(from: from, to: to, source) }
    }

    /// The events in log order from `index` on (at most `limit`), as their leaves: for audits and tests.
    package func leaves(from index: UInt64, limit: Int) async throws(CustodyError) -> [EventLeaf.V1] {
        try await run("read events") { connection, logger in
            let rows = try await connection.query(
                """
                SELECT id, at, type, actor, model, version, detail, environment, client, count FROM events
                WHERE leaf_index >= \(Int64(index)) ORDER BY leaf_index LIMIT \(limit)
                """, logger: logger)
            var out: [EventLeaf.V1] = []
            for try await (id, at, type, actor, model, version, detail, environment, client, count) in rows.decode(
                (Int64, String, String, String?, String?, String?, String?, String?, String?, Int64).self)
            {
                out.append(
                    EventLeaf.V1(
                        id: id, at: at, type: type, actor: actor, model: model, version: version, detail: detail, environment: environment,
                        client: client, count: count))
            }
            return out
        }
    }

    /// Runs a Merkle computation over stored nodes: the nodes it asks for are fetched and it runs again, until it
    /// has what it needs (O(log n) nodes for a root or a proof).
    private func withNodes<T: Sendable>(_ compute: @Sendable (NodeCache) throws -> T) async throws(CustodyError) -> T {
        var cache = NodeCache(nodes: [:])
        while true {
            do {
                return try compute(cache)
            } catch let missing as NodeCache.Missing {
                let position = missing.position
                let hash: ByteBuffer? = try await run("read a log node") { connection, logger in
                    var found: ByteBuffer?
                    for try await value in try await connection.query("SELECT hash FROM log_tree WHERE position = \(position)", logger: logger)
                        .decode(ByteBuffer.self)
                    {
                        found = value
                    }
                    return found
                }
                guard let hash else { throw CustodyError(.io, "the log has no node at position \(position)") }
                cache.nodes[position] = Array(hash.readableBytesView)
            } catch let error as CustodyError {
                throw error
            } catch {
                throw CustodyError(.io, "the log: \(error)")
            }
        }
    }

    struct NodeCache: MerkleNodeSource, Sendable {
        struct Missing: Error { let position: Int64 }
        var nodes: [Int64: [UInt8]]

        func node(level: Int, index: UInt64) throws -> [UInt8] {
            let position = Int64(Merkle.storagePosition(level: level, index: index))
            guard let hash = nodes[position] else { throw Missing(position: position) }
            return hash
        }
    }

    /// How long database work waits for a connection of the pool before it opens one of its own. While PostgreSQL
    /// is unreachable the pool keeps trying for a minute before it fails what waits; a gate, a pull or a readiness
    /// probe must hear sooner.
    package static let connectionWait: Duration = .seconds(5)

    /// Runs database work on a connection of the pool, turning its failures into ``CustodyError``s that name what
    /// failed (never a password).
    ///
    /// When the pool has no connection to give within `wait`, the pool is busy or the database is down, and only
    /// the database can tell which: the work runs on a connection opened for it, and when that fails too the answer
    /// is ``CustodyError/Code/unavailable`` (callers answer 503 and clients retry). So the answer never depends on
    /// how fast this machine is: a slow pool is waited for, a refused connection is reported.
    func run<T: Sendable>(
        _ what: String, waitingAtMost wait: Duration = PostgresLog.connectionWait,
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws(CustodyError) -> T {
        let (client, logger) = (client, logger)
        do {
            do {
                return try await Self.onConnection(of: client, waitingAtMost: wait) { connection in try await body(connection, logger) }
            } catch is NoConnection {
                let connection: PostgresConnection
                do {
                    connection = try await PostgresConnection.connect(
                        configuration: location.connectionConfiguration, id: Int.random(in: 1...Int.max), logger: logger)
                } catch {
                    let reason = (error as? PSQLError)?.serverInfo?[.message] ?? (error as? PSQLError).map { "\($0.code)" } ?? "\(error)"
                    throw CustodyError(
                        .unavailable,
                        "\(database): cannot \(what): no pooled connection within \(wait) and a new one fails (\(reason)); is the database up "
                            + "and reachable?")
                }
                do {
                    let result = try await body(connection, logger)
                    try? await connection.close()
                    return result
                } catch {
                    try? await connection.close()
                    throw error
                }
            }
        } catch let error as CustodyError {
            throw error
        } catch let error as PostgresTransactionError {
            if let custody = error.closureError as? CustodyError { throw custody }
            throw failure(what, error.closureError ?? error.commitError ?? error)
        } catch {
            throw failure(what, error)
        }
    }

    /// The database as errors name it (never with a password).
    var database: String { "PostgreSQL at \(location.host):\(location.port)" }

    func failure(_ what: String, _ error: any Error) -> CustodyError {
        let gone: Bool =
            switch error {
            case let error as PSQLError:
                [.serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown, .poolClosed].contains(error.code)
            case let error as ConnectionPoolError: error == .connectionCreationCircuitBreakerTripped || error == .poolShutdown
            default: false
            }
        if gone { return CustodyError(.unavailable, "\(database): cannot \(what): the database connection is gone; retry") }
        return CustodyError(.io, "\(database): cannot \(what): \(String(reflecting: error))")
    }

    private struct NoConnection: Error {}

    /// Whether a lease or the deadline came first.
    private final class LeaseRace: Sendable {
        enum State { case waiting, leased, expired }
        let state = Mutex(State.waiting)
    }

    /// Runs `body` on a pooled connection, or throws ``NoConnection`` when none comes within `wait`. Exactly one of
    /// the two happens: a connection leased after the deadline passed is given back unused.
    static func onConnection<T: Sendable>(
        of client: PostgresClient, waitingAtMost wait: Duration, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let lease = LeaseRace()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await client.withConnection { connection in
                    let leased = lease.state.withLock { state in
                        if state == .waiting { state = .leased }
                        return state == .leased
                    }
                    guard leased else { throw NoConnection() }
                    return try await body(connection)
                }
            }
            group.addTask {
                try await Task.sleep(for: wait)
                let expired = lease.state.withLock { state in
                    if state == .waiting { state = .expired }
                    return state == .expired
                }
                if expired { throw NoConnection() }
                return nil
            }
            while let result = try await group.next() {
                if let result {
                    group.cancelAll()
                    return result
                }
            }
            throw NoConnection()
        }
    }
}
