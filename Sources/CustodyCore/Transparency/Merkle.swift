import Crypto

/// RFC 6962 / RFC 9162 Merkle trees: hashes, inclusion and consistency proofs, and their verification.
///
/// Trees are read through a ``MerkleNodeSource`` that returns the hash of any *complete* subtree — level `l`,
/// index `i` covers leaves `[i·2^l, (i+1)·2^l)` — which a store keeps as it appends, so that roots and proofs for
/// any tree size cost O(log n) node reads.
public protocol MerkleNodeSource {
    func node(level: Int, index: UInt64) throws -> [UInt8]
}

/// The hashes and proofs of RFC 6962 / RFC 9162 Merkle trees, over any ``MerkleNodeSource``.
public enum Merkle {
    /// Where the hash of the complete subtree `(level, index)` sits when hashes are stored in the order appends
    /// complete them (post-order, as in a Merkle mountain range): leaf n, then the subtrees it completes. Storage
    /// keyed this way grows at one end only, so an append touches the last page of one B-tree, not one per level.
    public static func storagePosition(level: Int, index: UInt64) -> UInt64 {
        let lastLeaf = ((index + 1) << UInt64(level)) - 1
        return 2 * lastLeaf - UInt64(lastLeaf.nonzeroBitCount) + UInt64(level)
    }

    /// SHA-256(0x00 ‖ entry).
    public static func leafHash(_ entry: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: [0x00])
        hasher.update(data: entry)
        return Array(hasher.finalize())
    }

    /// SHA-256(0x01 ‖ left ‖ right).
    public static func nodeHash(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: [0x01])
        hasher.update(data: left)
        hasher.update(data: right)
        return Array(hasher.finalize())
    }

    /// The root of the empty tree: SHA-256 of nothing.
    public static let emptyRoot: [UInt8] = Array(SHA256.hash(data: [UInt8]()))

    /// The largest power of two strictly below `n` (n > 1).
    static func split(_ n: UInt64) -> UInt64 {
        var k: UInt64 = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    /// MTH(D[lo:hi]): a stored node when the range is a complete, aligned subtree, otherwise built from two halves.
    static func hash(_ lo: UInt64, _ hi: UInt64, _ source: some MerkleNodeSource) throws -> [UInt8] {
        let size = hi - lo
        if size & (size - 1) == 0, lo % size == 0 {
            return try source.node(level: size.trailingZeroBitCount, index: lo / size)
        }
        let k = split(size)
        return nodeHash(try hash(lo, lo + k, source), try hash(lo + k, hi, source))
    }

    /// The root of the tree of the first `size` leaves.
    public static func root(size: UInt64, _ source: some MerkleNodeSource) throws -> [UInt8] {
        size == 0 ? emptyRoot : try hash(0, size, source)
    }

    /// PATH(m, D[0:n]) of RFC 6962 §2.1.1, leaf to root.
    public static func inclusionProof(index: UInt64, size: UInt64, _ source: some MerkleNodeSource) throws -> [[UInt8]] {
        precondition(index < size)
        func path(_ m: UInt64, _ lo: UInt64, _ hi: UInt64) throws -> [[UInt8]] {
            let n = hi - lo
            if n == 1 { return [] }
            let k = split(n)
            if m < k { return try path(m, lo, lo + k) + [try hash(lo + k, hi, source)] }
            return try path(m - k, lo + k, hi) + [try hash(lo, lo + k, source)]
        }
        return try path(index, 0, size)
    }

    /// PROOF(m, D[0:n]) of RFC 6962 §2.1.2, for 0 < m ≤ n.
    public static func consistencyProof(from m: UInt64, to n: UInt64, _ source: some MerkleNodeSource) throws -> [[UInt8]] {
        precondition(m > 0 && m <= n)
        func subproof(_ m: UInt64, _ lo: UInt64, _ hi: UInt64, _ complete: Bool) throws -> [[UInt8]] {
            let n = hi - lo
            if m == n { return complete ? [] : [try hash(lo, hi, source)] }
            let k = split(n)
            if m <= k { return try subproof(m, lo, lo + k, complete) + [try hash(lo + k, hi, source)] }
            return try subproof(m - k, lo + k, hi, false) + [try hash(lo, lo + k, source)]
        }
        return try subproof(m, 0, n, true)
    }

    /// RFC 9162 §2.1.3.2.
    public static func verifyInclusion(leafHash: [UInt8], index: UInt64, size: UInt64, proof: [[UInt8]], root: [UInt8]) -> Bool {
        guard index < size, leafHash.count == 32, proof.allSatisfy({ $0.count == 32 }) else { return false }
        var fn = index
        var sn = size - 1
        var r = leafHash
        for p in proof {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0, fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// RFC 9162 §2.1.4.2.
    public static func verifyConsistency(from first: UInt64, to second: UInt64, proof: [[UInt8]], firstRoot: [UInt8], secondRoot: [UInt8]) -> Bool {
        // A proof from the empty tree proves nothing (transparency-dev's verifier refuses it, 0 → 0 included).
        guard first <= second, first > 0, proof.allSatisfy({ $0.count == 32 }) else { return false }
        if first == second { return proof.isEmpty && firstRoot == secondRoot }
        var path = proof
        if first & (first - 1) == 0 { path.insert(firstRoot, at: 0) }
        guard !path.isEmpty else { return false }
        var fn = first - 1
        var sn = second - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0, fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return fr == firstRoot && sr == secondRoot && sn == 0
    }
}

/// A tree kept in memory: every complete subtree's hash, appended leaf by leaf. Used to recompute a log from its
/// entries (offline verification) and in tests.
public struct MemoryMerkleTree: MerkleNodeSource {
    /// levels[l][i]: the hash of complete subtree (l, i).
    public private(set) var levels: [[[UInt8]]] = [[]]

    /// An empty tree.
    public init() {}

    /// The number of leaves.
    public var size: UInt64 { UInt64(levels[0].count) }

    /// Appends a leaf and every complete subtree it closes.
    public mutating func append(leafHash: [UInt8]) {
        levels[0].append(leafHash)
        var level = 0
        var index = levels[0].count - 1
        while index & 1 == 1 {
            let parent = Merkle.nodeHash(levels[level][index - 1], levels[level][index])
            if levels.count == level + 1 { levels.append([]) }
            levels[level + 1].append(parent)
            level += 1
            index >>= 1
        }
    }

    /// Thrown for a node the tree does not have (yet).
    public struct Missing: Error {}

    /// The hash of the complete subtree at `level`, `index`.
    public func node(level: Int, index: UInt64) throws -> [UInt8] {
        guard level < levels.count, index < UInt64(levels[level].count) else { throw Missing() }
        return levels[level][Int(index)]
    }
}
