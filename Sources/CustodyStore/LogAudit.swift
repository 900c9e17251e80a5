package import Crypto
package import CustodyCore
package import CustodyStorage
import Foundation
import GRDB

/// Offline verification of a copy of the registry database: recomputes every leaf from the event rows, checks the
/// ids are dense, compares with the stored tree, and checks every signed checkpoint's root against the tree
/// recomputed from the rows — so that what queries read is what the log proves.
package enum LogAudit {
    package struct Report: Sendable {
        package var events: UInt64
        package var checkpoints: Int
        package var latestSignedSize: UInt64
        /// The first leaf index whose row is missing or differs from what the log proves, with why.
        package var firstBadIndex: UInt64?
        package var problem: String?
    }

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
        var tree = MemoryMerkleTree()
        var report = Report(events: 0, checkpoints: 0, latestSignedSize: 0)
        func fail(_ index: UInt64, _ problem: String) {
            if report.firstBadIndex == nil {
                report.firstBadIndex = index
                report.problem = problem
            }
        }
        let stored = try db.cachedStatement(sql: "SELECT hash FROM log_tree WHERE position = ?")
        // A copy taken before the log recorded leaf indexes (schema v8) had every leaf at `id - 1`.
        let indexed = try db.columns(in: "events").contains { $0.name == "leaf_index" }
        let rows = try Row.fetchCursor(
            db, sql: indexed ? "SELECT * FROM events ORDER BY leaf_index" : "SELECT *, id - 1 AS leaf_index FROM events ORDER BY id")
        var expected: Int64 = 0
        while let row = try rows.next() {
            let index: Int64 = row["leaf_index"]
            let id: Int64 = row["id"]
            if index != expected {
                fail(UInt64(expected), "the event at leaf index \(expected) is missing from the events table")
            } else if id != index + 1 {
                fail(UInt64(index), "event \(id) sits at leaf index \(index): an event's number is its leaf index plus one")
            }
            let entry = EventLeaf.canonicalJSON(try EventRow(row: row).event)
            let leaf = Merkle.leafHash(entry)
            let position = Int64(Merkle.storagePosition(level: 0, index: UInt64(index)))
            if let recorded = try Data.fetchOne(stored, arguments: [position]), Array(recorded) != leaf {
                fail(UInt64(index), "event \(id) (leaf index \(index)) differs from the entry the log recorded")
            }
            tree.append(leafHash: leaf)
            expected = index + 1
        }
        if try db.tableExists("log_head"), let head = try Int64.fetchOne(db, sql: "SELECT size FROM log_head WHERE only_row = 1"),
            UInt64(head) != tree.size
        {
            fail(min(UInt64(head), tree.size), "the log head says \(head) leaves but the events table holds \(tree.size)")
        }
        report.events = tree.size
        var previous: UInt64 = 0
        for checkpoint in try Row.fetchAll(db, sql: "SELECT size, note FROM checkpoints ORDER BY size") {
            report.checkpoints += 1
            let note: String = checkpoint["note"]
            let signed = try Checkpoint.verify(note, key: key, name: name)
            guard signed.size == UInt64(checkpoint["size"] as Int64) else {
                fail(previous, "the checkpoint stored for size \(checkpoint["size"] as Int64) signs size \(signed.size)")
                break
            }
            guard signed.size <= tree.size else {
                fail(tree.size, "a checkpoint signs \(signed.size) events but the table holds \(tree.size): events were deleted")
                break
            }
            if try Merkle.root(size: signed.size, tree) != signed.root {
                fail(
                    previous,
                    "the events up to index \(signed.size - 1) do not hash to the root signed at size \(signed.size) (changed after index \(previous))"
                )
                break
            }
            report.latestSignedSize = signed.size
            previous = signed.size
        }
        return report
    }
}
