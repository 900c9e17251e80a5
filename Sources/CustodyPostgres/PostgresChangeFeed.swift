package import CustodyCore
package import CustodyStorage
import Foundation
package import Logging
package import PostgresNIO
import Synchronization

/// The ``ChangeFeed`` of several daemons on one PostgreSQL: an announcement advances a generation counter and is sent
/// with `pg_notify` in one transaction (delivered at commit, in commit order, to every listening daemon), and is
/// applied in the announcing daemon before ``announce(_:)`` returns.
///
/// A daemon that was not listening for a while (a dropped connection) may have missed announcements. When it listens
/// again it reads the generation: if it moved past the last one it applied, its subscribers get ``RegistryChange/unknown``
/// and drop everything they keep, so that no missed yank or advisory leaves a stale "allowed" behind.
package final class PostgresChangeFeed: ChangeFeed {
    package static let channel = "custody_changes"
    let client: PostgresClient
    let logger: Logger
    /// This daemon's id: its own announcements, already applied, are skipped when they come back.
    let daemon = UUID().uuidString.lowercased()
    private let subscribers = Mutex<[@Sendable (RegistryChange) async throws(CustodyError) -> Void]>([])
    /// The newest generation this daemon has applied.
    private let applied = Mutex<Int64>(0)

    package init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    package func migrate() async throws(CustodyError) {
        do {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(7264)", logger: logger)
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS change_generation (only_row SMALLINT PRIMARY KEY CHECK (only_row = 1), generation BIGINT NOT NULL)",
                    logger: logger)
                try await connection.query(
                    "INSERT INTO change_generation (only_row, generation) VALUES (1, 0) ON CONFLICT DO NOTHING", logger: logger)
            }
        } catch {
            throw CustodyError(.io, "PostgreSQL: cannot create the change feed's table: \(String(reflecting: error))")
        }
    }

    package func subscribe(_ subscriber: @escaping @Sendable (RegistryChange) async throws(CustodyError) -> Void) {
        subscribers.withLock { $0.append(subscriber) }
    }

    package func announce(_ change: RegistryChange) async throws(CustodyError) {
        let payload = change.encoded
        let daemon = daemon
        let generation: Int64
        do {
            generation = try await client.withTransaction(logger: logger) { connection in
                var next: Int64 = 0
                let rows = try await connection.query(
                    "UPDATE change_generation SET generation = generation + 1 WHERE only_row = 1 RETURNING generation", logger: logger)
                for try await value in rows.decode(Int64.self) { next = value }
                try await connection.query("SELECT pg_notify(\(Self.channel), \("\(next) \(daemon) \(payload)"))", logger: logger)
                return next
            }
        } catch {
            throw CustodyError(.io, "PostgreSQL: cannot announce \(payload): \(String(reflecting: error))")
        }
        try await deliver(change)
        applied.withLock { $0 = max($0, generation) }
    }

    /// The generation now in the database.
    package func generation() async throws(CustodyError) -> Int64 {
        do {
            var value: Int64 = 0
            for try await row in try await client.query("SELECT generation FROM change_generation WHERE only_row = 1", logger: logger)
                .decode(Int64.self)
            {
                value = row
            }
            return value
        } catch {
            throw CustodyError(.io, "PostgreSQL: cannot read the change generation: \(String(reflecting: error))")
        }
    }

    /// Listens until cancelled, on a connection of its own, reconnecting after a failure. `onListening` is called each
    /// time the LISTEN is in place (tests wait for it).
    package func run(onListening: @escaping @Sendable () -> Void = {}) async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    let notifications = try await connection.listen(Self.channel)
                    // LISTEN first, then read the generation: a change committed in between is both counted and heard.
                    let current = try await generation()
                    if current > applied.withLock({ $0 }) {
                        try await deliver(.unknown)
                        applied.withLock { $0 = max($0, current) }
                    }
                    onListening()
                    for try await notification in notifications {
                        try await receive(notification.payload)
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("the change feed's connection failed; listening again", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    private func receive(_ payload: String) async throws(CustodyError) {
        let parts = payload.split(separator: " ", maxSplits: 2).map(String.init)
        guard parts.count == 3, let generation = Int64(parts[0]) else {
            try await deliver(.unknown)
            return
        }
        if parts[1] != daemon { try await deliver(RegistryChange(encoded: parts[2])) }
        applied.withLock { $0 = max($0, generation) }
    }

    private func deliver(_ change: RegistryChange) async throws(CustodyError) {
        for subscriber in subscribers.withLock({ $0 }) { try await subscriber(change) }
    }
}
