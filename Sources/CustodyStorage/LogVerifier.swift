package import Crypto
package import CustodyCore

/// The offline check of a copy of a registry's log, whatever engine holds it: fed the event rows in leaf order, the
/// stored leaf hashes, the head and the checkpoints, it recomputes every leaf from its row, checks the numbering is
/// dense, compares with the stored leaves and checks every signed checkpoint's root against the tree recomputed from
/// the rows — so that what queries read is what the log proves.
package struct LogVerifier {
    package struct Report: Sendable {
        package var events: UInt64
        package var checkpoints: Int
        package var latestSignedSize: UInt64
        /// The first leaf index whose row is missing or differs from what the log proves, with why.
        package var firstBadIndex: UInt64?
        package var problem: String?
    }

    package private(set) var report = Report(events: 0, checkpoints: 0, latestSignedSize: 0)
    private var tree = MemoryMerkleTree()
    private var expected: Int64 = 0
    private var previous: UInt64 = 0
    let key: Curve25519.Signing.PublicKey
    let name: String

    package init(key: Curve25519.Signing.PublicKey, name: String) {
        self.key = key
        self.name = name
    }

    private mutating func fail(_ index: UInt64, _ problem: String) {
        if report.firstBadIndex == nil {
            report.firstBadIndex = index
            report.problem = problem
        }
    }

    /// The next event row in leaf order, with the leaf hash stored for its index (nil when none is).
    package mutating func event(index: Int64, _ event: API.Event, storedLeaf: [UInt8]?) {
        if index != expected {
            fail(UInt64(expected), "the event at leaf index \(expected) is missing from the events table")
        } else if event.id != index + 1 {
            fail(UInt64(index), "event \(event.id) sits at leaf index \(index): an event's number is its leaf index plus one")
        }
        let leaf = Merkle.leafHash(EventLeaf.canonicalJSON(event))
        if let storedLeaf, storedLeaf != leaf {
            fail(UInt64(index), "event \(event.id) (leaf index \(index)) differs from the entry the log recorded")
        }
        tree.append(leafHash: leaf)
        expected = index + 1
        report.events = tree.size
    }

    /// The size the log's head records, when it has one.
    package mutating func head(_ size: Int64) {
        if UInt64(size) != tree.size {
            fail(min(UInt64(size), tree.size), "the log head says \(size) leaves but the events table holds \(tree.size)")
        }
    }

    /// The next stored checkpoint, in size order; false once one fails (later ones are not looked at).
    package mutating func checkpoint(size: Int64, note: String) throws -> Bool {
        report.checkpoints += 1
        let signed = try Checkpoint.verify(note, key: key, name: name)
        guard signed.size == UInt64(size) else {
            fail(previous, "the checkpoint stored for size \(size) signs size \(signed.size)")
            return false
        }
        guard signed.size <= tree.size else {
            fail(tree.size, "a checkpoint signs \(signed.size) events but the table holds \(tree.size): events were deleted")
            return false
        }
        if try Merkle.root(size: signed.size, tree) != signed.root {
            fail(
                previous,
                "the events up to index \(signed.size - 1) do not hash to the root signed at size \(signed.size) (changed after index \(previous))")
            return false
        }
        report.latestSignedSize = signed.size
        previous = signed.size
        return true
    }
}
