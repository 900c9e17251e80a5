package import CustodyCore
package import CustodyStorage
import Foundation
import GRDB

/// The transparency log over the events table: every event is a leaf (its canonical JSON), appended in the same
/// transaction as the row; complete subtrees are stored so that roots and proofs cost O(log n) reads.
extension RegistryDatabase {
    /// Appends a leaf at `index` in the frozen V1 encoding, and the subtrees it completes, inside the appending
    /// transaction (migrations call this too, so it must never depend on today's encoder).
    static func appendLeaf(_ db: Database, index leafIndex: UInt64, _ leaf: EventLeaf.V1) throws {
        var hash = leaf.leafHash
        var level = 0
        var index = Int64(leafIndex)
        let insert = try db.cachedStatement(sql: "INSERT INTO log_tree (position, hash) VALUES (?, ?)")
        let select = try db.cachedStatement(sql: "SELECT hash FROM log_tree WHERE position = ?")
        func position(_ level: Int, _ index: Int64) -> Int64 { Int64(Merkle.storagePosition(level: level, index: UInt64(index))) }
        try insert.execute(arguments: [position(level, index), Data(hash)])
        while index & 1 == 1 {
            guard let left = try Data.fetchOne(select, arguments: [position(level, index - 1)]) else {
                throw CustodyError(.io, "the log is missing node (\(level), \(index - 1)): it cannot be extended")
            }
            hash = Merkle.nodeHash(Array(left), hash)
            level += 1
            index >>= 1
            try insert.execute(arguments: [position(level, index), Data(hash)])
        }
    }

    /// Reads stored nodes inside one read transaction.
    struct NodeReader: MerkleNodeSource {
        let db: Database
        func node(level: Int, index: UInt64) throws -> [UInt8] {
            guard
                let data = try Data.fetchOne(
                    db.cachedStatement(sql: "SELECT hash FROM log_tree WHERE position = ?"),
                    arguments: [Int64(Merkle.storagePosition(level: level, index: index))])
            else { throw CustodyError(.io, "the log has no node (\(level), \(index))") }
            return Array(data)
        }
    }

    /// The number of leaves: the log head's size, advanced in every appending transaction.
    package func logSize() async throws(CustodyError) -> UInt64 {
        try await read { db in UInt64(try Int64.fetchOne(db, sql: "SELECT size FROM log_head WHERE only_row = 1") ?? 0) }
    }

    package func logRoot(size: UInt64) async throws(CustodyError) -> [UInt8] {
        try await read { db in try Merkle.root(size: size, NodeReader(db: db)) }
    }

    package func inclusionProof(index: UInt64, size: UInt64) async throws(CustodyError) -> (leaf: [UInt8], proof: [[UInt8]]) {
        try await read { db in
            let reader = NodeReader(db: db)
            return (try reader.node(level: 0, index: index), try Merkle.inclusionProof(index: index, size: size, reader))
        }
    }

    package func consistencyProof(from: UInt64, to: UInt64) async throws(CustodyError) -> [[UInt8]] {
        try await read { db in try Merkle.consistencyProof(from: from, to: to, NodeReader(db: db)) }
    }

    package func latestCheckpoint() async throws(CustodyError) -> (size: UInt64, note: String)? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1").map {
                (UInt64($0["size"] as Int64), $0["note"])
            }
        }
    }

    package func recordCheckpoint(size: UInt64, root: [UInt8], note: String) async throws(CustodyError) {
        try await write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO checkpoints (size, root, note, created_at) VALUES (?, ?, ?, ?)",
                arguments: [Int64(size), Data(root), note, Self.now()])
        }
    }
}
