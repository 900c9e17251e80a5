package import CustodyCore
package import CustodyStorage
import Foundation
package import GRDB

/// The registry's metadata: models, versions, their files, signatures and provenance, tokens, and the append-only
/// event log. Every read and write the registry does goes through an intent-named method here; no SQL lives
/// anywhere else.
package final class RegistryDatabase: MetadataStore, Sendable {
    let writer: any DatabaseWriter
    /// The database file, when it is one.
    let path: String?
    /// 64 MiB of 4 KiB pages.
    static let fallbackCheckpointPages = 16_384

    /// Opens (creating if needed) the database at `path` in WAL mode and migrates it.
    package convenience init(path: String) throws(CustodyError) {
        var configuration = Configuration()
        // The CLI may open the same file (token bootstrap) while the daemon runs.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // The daemon checkpoints from a connection of its own (``runCheckpoints(every:)``); the writer does so itself
            // only when that falls far behind, and short-lived CLI connections when they close.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.fallbackCheckpointPages)")
        }
        do {
            try self.init(writer: try DatabasePool(path: path, configuration: configuration), path: path)
        } catch let error as CustodyError {
            throw error
        } catch {
            throw CustodyError(.io, "\(path): cannot open the registry database: \(error)")
        }
    }

    /// Wraps an open database (an in-memory `DatabaseQueue` in tests) and migrates it.
    package init(writer: any DatabaseWriter, path: String? = nil) throws(CustodyError) {
        self.writer = writer
        self.path = path
        do {
            try Self.migrator.migrate(writer)
        } catch {
            throw CustodyError(.io, "cannot migrate the registry database: \(error)")
        }
    }

    /// Copies the write-ahead log into the database file every `interval`, from a connection of its own: a passive
    /// checkpoint neither waits for nor blocks the writer, so commits never stop for a checkpoint's fsyncs, and once
    /// it has caught up the writer starts the log over, keeping it small. Runs until cancelled.
    package func runCheckpoints(every interval: Duration = .milliseconds(200)) async {
        guard let path else { return }
        let checkpointer: DatabaseQueue
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            checkpointer = try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            return  // the writer's own fallback checkpoints still bound the log
        }
        while !Task.isCancelled {
            _ = try? await checkpointer.writeWithoutTransaction { db in try db.checkpoint(.passive) }
            try? await Task.sleep(for: interval)
        }
    }

    /// Runs a read, turning database errors into ``CustodyError``s.
    func read<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws(CustodyError) -> T {
        do {
            return try await writer.read(body)
        } catch let error as CustodyError {
            throw error
        } catch {
            throw CustodyError.database(error, "read")
        }
    }

    /// Runs a write transaction, turning database errors into ``CustodyError``s.
    func write<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws(CustodyError) -> T {
        do {
            return try await writer.write(body)
        } catch let error as CustodyError {
            throw error
        } catch {
            throw CustodyError.database(error, "write")
        }
    }

    /// `PRAGMA integrity_check`: empty when the file is sound, otherwise SQLite's complaints.
    package func integrityProblems() async throws(CustodyError) -> [String] {
        try await read { db in
            try String.fetchAll(db, sql: "PRAGMA integrity_check").filter { $0 != "ok" }
        }
    }

    static func now() -> String {
        RFC3339.string(.now)
    }
}

extension CustodyError {
    /// A failed database read or write; a full disk (`SQLITE_FULL`) is ``Code/insufficientStorage``.
    static func database(_ error: any Error, _ operation: String) -> CustodyError {
        if let error = error as? DatabaseError, error.resultCode == .SQLITE_FULL {
            return CustodyError(.insufficientStorage, "the registry database is out of disk space (\(operation) failed)")
        }
        return CustodyError(.io, "database \(operation) failed: \(error)")
    }
}
