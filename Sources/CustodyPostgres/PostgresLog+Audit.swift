package import Crypto
package import CustodyCore
package import CustodyStorage
import Foundation
import PostgresNIO

extension PostgresLog {
    /// The offline check of this database's log (a restored dump, say), as `audit verify --database` does it for a
    /// SQLite copy: every leaf recomputed from its row, the numbering dense, the stored leaves and every signed
    /// checkpoint checked against the recomputed tree. Read a page at a time.
    package func audit(key: Curve25519.Signing.PublicKey, name: String) async throws(CustodyError) -> LogVerifier.Report {
        var verifier = LogVerifier(key: key, name: name)
        var next: Int64 = -1
        while true {
            let after = next
            let page: [(Int64, API.Event, [UInt8]?)] = try await run("read the log") { connection, logger in
                var rows: [(Int64, API.Event)] = []
                let events = try await connection.query(
                    """
                    SELECT leaf_index, id, at, type, actor, model, version, detail, environment, client, count FROM events
                    WHERE leaf_index > \(after) ORDER BY leaf_index LIMIT 5000
                    """, logger: logger)
                for try await (index, id, at, type, actor, model, version, detail, environment, client, count) in events.decode(
                    (Int64, Int64, String, String, String?, String?, String?, String?, String?, String?, Int64).self)
                {
                    rows.append(
                        (
                            index,
                            API.Event(
                                id: id, at: at, type: type, actor: actor, model: model, version: version, detail: detail, environment: environment,
                                client: client, count: count)
                        ))
                }
                let positions = rows.map { Int64(Merkle.storagePosition(level: 0, index: UInt64($0.0))) }
                var leaves: [Int64: [UInt8]] = [:]
                if !positions.isEmpty {
                    let stored = try await connection.query("SELECT position, hash FROM log_tree WHERE position = ANY(\(positions))", logger: logger)
                    for try await (position, hash) in stored.decode((Int64, ByteBuffer).self) { leaves[position] = Array(hash.readableBytesView) }
                }
                return rows.map { row in (row.0, row.1, leaves[Int64(Merkle.storagePosition(level: 0, index: UInt64(row.0)))]) }
            }
            if page.isEmpty { break }
            for (index, event, leaf) in page { verifier.event(index: index, event, storedLeaf: leaf) }
            next = page.last!.0
        }
        verifier.head(Int64(try await logSize()))
        let checkpoints: [(Int64, String)] = try await run("read the checkpoints") { connection, logger in
            var out: [(Int64, String)] = []
            for try await row in try await connection.query("SELECT size, note FROM checkpoints ORDER BY size", logger: logger).decode(
                (Int64, String).self)
            {
                out.append(row)
            }
            return out
        }
        for (size, note) in checkpoints {
            do {
                guard try verifier.checkpoint(size: size, note: note) else { break }
            } catch let error as CustodyError {
                throw error
            } catch {
                throw CustodyError(.verificationFailed, "the checkpoint stored for size \(size) does not verify: \(error)")
            }
        }
        return verifier.report
    }
}
