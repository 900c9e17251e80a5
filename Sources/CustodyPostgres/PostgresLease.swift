package import CustodyCore
package import Foundation
package import Logging
package import PostgresNIO

/// A named lease in PostgreSQL that one daemon holds at a time (the checkpoint signer's): taken when it is free or
/// expired, renewed by its holder, and lost by a holder that stops renewing it for `duration`. Clocks are the
/// daemons' own (injected by tests): leases must be longer than the daemons' clock skew.
package struct PostgresLease: Sendable {
    package let client: PostgresClient
    package let name: String
    package let holder: String
    package let duration: Duration
    let logger: Logger
    let now: @Sendable () -> Date

    package init(
        client: PostgresClient, name: String, holder: String, duration: Duration, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.client = client
        self.name = name
        self.holder = holder
        self.duration = duration
        self.logger = logger
        self.now = now
    }

    package func migrate() async throws(CustodyError) {
        do {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(7265)", logger: logger)
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_ms BIGINT NOT NULL)", logger: logger)
            }
        } catch {
            throw CustodyError(.io, "PostgreSQL: cannot create the leases table: \(String(reflecting: error))")
        }
    }

    /// Takes or renews the lease; true when this holder has it until `now + duration`.
    package func acquire() async throws(CustodyError) -> Bool {
        let nowMs = Int64((now().timeIntervalSince1970 * 1000).rounded(.down))
        let expires = nowMs + Int64(duration.components.seconds * 1000) + Int64(duration.components.attoseconds / 1_000_000_000_000_000)
        do {
            let rows = try await client.query(
                """
                INSERT INTO leases (name, holder, expires_ms) VALUES (\(name), \(holder), \(expires))
                ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_ms = EXCLUDED.expires_ms
                WHERE leases.holder = EXCLUDED.holder OR leases.expires_ms <= \(nowMs)
                RETURNING holder
                """, logger: logger)
            var held = false
            for try await value in rows.decode(String.self) { held = value == holder }
            return held
        } catch {
            throw CustodyError(.io, "PostgreSQL: cannot take the lease \(name): \(String(reflecting: error))")
        }
    }

    /// Gives the lease up (a daemon stopping cleanly), so that another may take it at once.
    package func release() async throws(CustodyError) {
        do {
            try await client.query("DELETE FROM leases WHERE name = \(name) AND holder = \(holder)", logger: logger)
        } catch {
            throw CustodyError(.io, "PostgreSQL: cannot release the lease \(name): \(String(reflecting: error))")
        }
    }
}
