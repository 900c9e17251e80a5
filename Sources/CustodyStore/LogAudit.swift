package import Crypto
package import CustodyCore
package import CustodyStorage
import Foundation
import GRDB

/// Offline verification of a copy of the registry database: recomputes every leaf from the event rows, checks the
/// ids are dense, compares with the stored tree, and checks every signed checkpoint's root against the tree
/// recomputed from the rows — so that what queries read is what the log proves.
package enum LogAudit {
    package typealias Report = LogVerifier.Report

    package static func verify(database path: String, key: Curve25519.Signing.PublicKey, name: String) throws(CustodyError) -> Report {
        guard FileManager.default.fileExists(atPath: path) else { throw CustodyError(.notFound, "\(path): no such database") }
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            return try queue.read { db in try verify(db, key: key, name: name) }
        } catch let error as CustodyError {
            throw error
        } catch {
            throw CustodyError(.io, "\(path): cannot read the registry database: \(error)")
        }
    }

    static func verify(_ db: Database, key: Curve25519.Signing.PublicKey, name: String) throws -> Report {
        var verifier = LogVerifier(key: key, name: name)
        let stored = try db.cachedStatement(sql: "SELECT hash FROM log_tree WHERE position = ?")
        // A copy taken before the log recorded leaf indexes (schema v8) had every leaf at `id - 1`.
        let indexed = try db.columns(in: "events").contains { $0.name == "leaf_index" }
        let rows = try Row.fetchCursor(
            db, sql: indexed ? "SELECT * FROM events ORDER BY leaf_index" : "SELECT *, id - 1 AS leaf_index FROM events ORDER BY id")
        while let row = try rows.next() {
            let index: Int64 = row["leaf_index"]
            let position = Int64(Merkle.storagePosition(level: 0, index: UInt64(index)))
            let leaf = try Data.fetchOne(stored, arguments: [position]).map { Array($0) }
            verifier.event(index: index, try EventRow(row: row).event, storedLeaf: leaf)
        }
        if try db.tableExists("log_head"), let head = try Int64.fetchOne(db, sql: "SELECT size FROM log_head WHERE only_row = 1") {
            verifier.head(head)
        }
        for checkpoint in try Row.fetchAll(db, sql: "SELECT size, note FROM checkpoints ORDER BY size") {
            guard try verifier.checkpoint(size: checkpoint["size"], note: checkpoint["note"]) else { break }
        }
        return verifier.report
    }
}
