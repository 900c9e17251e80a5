import Crypto
import CustodyTestSupport
import Foundation
import Testing

@testable import CustodyCore

@Suite("Merkle tree (RFC 6962 / RFC 9162)")
struct MerkleTests {
    static let vectorLeaves = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
        .map { Hex.decode($0, lowercaseOnly: true)! }
    static let vectorRoots = ["6e340b9c", "fac54203", "aeb6bcfe", "d37ee418", "4e3bbb1f", "76e67dad", "ddb89be4", "5dc9da79"]

    /// MTH straight from the definition, as the reference for the stored-node implementation.
    static func naiveRoot(_ leaves: ArraySlice<[UInt8]>) -> [UInt8] {
        if leaves.isEmpty { return Merkle.emptyRoot }
        if leaves.count == 1 { return Merkle.leafHash(leaves.first!) }
        let k = Merkle.split(UInt64(leaves.count))
        let middle = leaves.startIndex + Int(k)
        return Merkle.nodeHash(naiveRoot(leaves[leaves.startIndex..<middle]), naiveRoot(leaves[middle...]))
    }

    static func tree(_ leaves: [[UInt8]]) -> MemoryMerkleTree {
        var tree = MemoryMerkleTree()
        for leaf in leaves { tree.append(leafHash: Merkle.leafHash(leaf)) }
        return tree
    }

    /// Appending leaf after leaf completes subtrees whose storage positions are 0, 1, 2, … with no gap or repeat.
    @Test func storagePositionsFollowAppends() {
        var next: UInt64 = 0
        for leaf in UInt64(0)..<5_000 {
            var level = 0
            var index = leaf
            #expect(Merkle.storagePosition(level: 0, index: leaf) == next)
            next += 1
            while index & 1 == 1 {
                level += 1
                index >>= 1
                #expect(Merkle.storagePosition(level: level, index: index) == next)
                next += 1
            }
        }
        #expect(Merkle.storagePosition(level: 40, index: 0) == (1 << 41) - 2)
    }

    @Test func testVectors() throws {
        let tree = Self.tree(Self.vectorLeaves)
        #expect(Hex.encode(Merkle.emptyRoot).hasPrefix("e3b0c442"))
        for size in 1...8 {
            let root = try Merkle.root(size: UInt64(size), tree)
            #expect(Hex.encode(root).hasPrefix(Self.vectorRoots[size - 1]), "root of \(size) leaves")
            #expect(root == Self.naiveRoot(Self.vectorLeaves[0..<size]))
        }
    }

    @Test func everyPairOfSizesUpTo64() throws {
        let leaves = (0..<64).map { [UInt8(truncatingIfNeeded: $0), 0xAB] }
        let tree = Self.tree(leaves)
        let roots = (0...64).map { Self.naiveRoot(leaves[0..<$0]) }
        for n in 1...64 {
            #expect(try Merkle.root(size: UInt64(n), tree) == roots[n])
            for m in 0..<n {
                let proof = try Merkle.inclusionProof(index: UInt64(m), size: UInt64(n), tree)
                let leaf = Merkle.leafHash(leaves[m])
                #expect(
                    Merkle.verifyInclusion(leafHash: leaf, index: UInt64(m), size: UInt64(n), proof: proof, root: roots[n]), "inclusion \(m) in \(n)")
                #expect(!Merkle.verifyInclusion(leafHash: Merkle.leafHash([0xFF]), index: UInt64(m), size: UInt64(n), proof: proof, root: roots[n]))
                if !proof.isEmpty {
                    var bad = proof
                    bad[0][0] ^= 1
                    #expect(!Merkle.verifyInclusion(leafHash: leaf, index: UInt64(m), size: UInt64(n), proof: bad, root: roots[n]))
                }
            }
            for m in 1...n {
                let proof = try Merkle.consistencyProof(from: UInt64(m), to: UInt64(n), tree)
                #expect(
                    Merkle.verifyConsistency(from: UInt64(m), to: UInt64(n), proof: proof, firstRoot: roots[m], secondRoot: roots[n]),
                    "consistency \(m) → \(n)")
                if m < n {
                    #expect(!Merkle.verifyConsistency(from: UInt64(m), to: UInt64(n), proof: proof, firstRoot: roots[n], secondRoot: roots[n]))
                    var bad = proof
                    bad[bad.count - 1][0] ^= 1
                    #expect(!Merkle.verifyConsistency(from: UInt64(m), to: UInt64(n), proof: bad, firstRoot: roots[m], secondRoot: roots[n]))
                }
            }
        }
    }

    @Test func randomPairsUpTo100k() throws {
        var generator = SystemRandomNumberGenerator()
        let count = 100_000
        var tree = MemoryMerkleTree()
        for index in 0..<count { tree.append(leafHash: Merkle.leafHash(withUnsafeBytes(of: UInt64(index).littleEndian, Array.init))) }
        for _ in 0..<300 {
            let n = UInt64.random(in: 1...UInt64(count), using: &generator)
            let m = UInt64.random(in: 1...n, using: &generator)
            let index = UInt64.random(in: 0..<n, using: &generator)
            let rootN = try Merkle.root(size: n, tree)
            let rootM = try Merkle.root(size: m, tree)
            let leaf = Merkle.leafHash(withUnsafeBytes(of: index.littleEndian, Array.init))
            #expect(
                Merkle.verifyInclusion(
                    leafHash: leaf, index: index, size: n, proof: try Merkle.inclusionProof(index: index, size: n, tree), root: rootN))
            #expect(
                Merkle.verifyConsistency(
                    from: m, to: n, proof: try Merkle.consistencyProof(from: m, to: n, tree), firstRoot: rootM, secondRoot: rootN))
        }
    }

    @Test func signedCheckpoints() throws {
        let key = Curve25519.Signing.PrivateKey()
        let checkpoint = Checkpoint(origin: "custody.example/log", size: 42, root: Array(repeating: 7, count: 32))
        let note = try checkpoint.signed(by: key, name: "custody.example/log")
        #expect(note.hasPrefix("custody.example/log\n42\n"))
        #expect(note.contains("\n\n— custody.example/log "))
        #expect(try Checkpoint.verify(note, key: key.publicKey, name: "custody.example/log") == checkpoint)
        let forged = note.replacingOccurrences(of: "\n42\n", with: "\n43\n")
        #expect(throws: CustodyError.self) { try Checkpoint.verify(forged, key: key.publicKey, name: "custody.example/log") }
        #expect(throws: CustodyError.self) {
            try Checkpoint.verify(note, key: Curve25519.Signing.PrivateKey().publicKey, name: "custody.example/log")
        }
        #expect(Checkpoint.verifierKey(name: "n", publicKey: Array(key.publicKey.rawRepresentation)).hasPrefix("n+"))
    }

    /// A checkpoint names its log: one signed by the right key for another origin is refused (C2SP tlog-checkpoint).
    @Test func checkpointsOfAnotherLogAreRefused() throws {
        let key = Curve25519.Signing.PrivateKey()
        let other = try Checkpoint(origin: "elsewhere.example/log", size: 1, root: Array(repeating: 1, count: 32)).signed(
            by: key, name: "custody.example/log")
        #expect {
            try Checkpoint.verify(other, key: key.publicKey, name: "custody.example/log")
        } throws: { ($0 as? CustodyError)?.message == "the checkpoint is of the log 'elsewhere.example/log', not of 'custody.example/log'" }
        #expect(try Checkpoint.verify(other, key: key.publicKey, name: "custody.example/log", origin: "elsewhere.example/log").size == 1)
    }

    @Test func receiptsRoundTrip() throws {
        let proof = TlogProof(
            extra: Array(#"{"id":1}"#.utf8), index: 0, hashes: [Array(repeating: 2, count: 32)], checkpoint: "o\n1\nAAAA\n\n— o x\n")
        #expect(try TlogProof(parsing: proof.text, source: "r") == proof)
        #expect(proof.text.hasPrefix("c2sp.org/tlog-proof@v1\nextra eyJpZCI6MX0=\nindex 0\n"))
        var bare = proof
        bare.extra = nil
        #expect(try TlogProof(parsing: bare.text, source: "r") == bare)
        #expect(throws: CustodyError.self) { try TlogProof(parsing: "c2sp.org/tlog-proof@v1\nindex x\n\n", source: "r") }
        #expect(throws: CustodyError.self) { try TlogProof(parsing: "something else\n\n", source: "r") }
    }

    /// transparency-dev/merkle's proof vectors, read in place: every valid proof verifies and every mutation of it
    /// (flipped bits, wrong indexes and sizes, extra, missing or reordered hashes, wrong roots) does not.
    @Test(.enabled(if: SharedCorpus.path("merkle") != nil)) func transparencyDevProofVectors() throws {
        let root = try #require(SharedCorpus.path("merkle")) + "/testdata"
        struct Inclusion: Decodable {
            var leafIdx: UInt64
            var treeSize: UInt64
            var root: Data?
            var leafHash: Data?
            var proof: [Data]?
            var desc: String
            var wantErr: Bool
        }
        struct Consistency: Decodable {
            var size1: UInt64
            var size2: UInt64
            var root1: Data?
            var root2: Data?
            var proof: [Data]?
            var desc: String
            var wantErr: Bool
        }
        var counts = (files: 0, valid: 0)
        for (kind, directory) in [("inclusion", root + "/inclusion"), ("consistency", root + "/consistency")] {
            let files = (FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".json") }
            for file in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file))
                let accepted: Bool
                let want: Bool
                if kind == "inclusion" {
                    let v = try JSONDecoder().decode(Inclusion.self, from: data)
                    accepted = Merkle.verifyInclusion(
                        leafHash: Array(v.leafHash ?? Data()), index: v.leafIdx, size: v.treeSize, proof: (v.proof ?? []).map(Array.init),
                        root: Array(v.root ?? Data()))
                    want = !v.wantErr
                } else {
                    let v = try JSONDecoder().decode(Consistency.self, from: data)
                    accepted = Merkle.verifyConsistency(
                        from: v.size1, to: v.size2, proof: (v.proof ?? []).map(Array.init), firstRoot: Array(v.root1 ?? Data()),
                        secondRoot: Array(v.root2 ?? Data()))
                    want = !v.wantErr
                }
                #expect(accepted == want, "\(kind)/\(file)")
                counts.files += 1
                if want { counts.valid += 1 }
            }
        }
        #expect(counts.files == 196 && counts.valid == 12, "\(counts)")
    }

    /// Go sumdb/note and C2SP signed-note vectors, read in place: each note opened with its verifier key gets the
    /// expected class, every bad verifier key is refused, signing is byte for byte Go's, the C2SP example parses.
    @Test(.enabled(if: SharedCorpus.path("signed-note") != nil)) func signedNoteVectors() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: try #require(SharedCorpus.path("signed-note")) + "/vectors.json"))
        struct Vector: Decodable {
            var id: String
            var vkey: String
            var note_b64: String
            var expect: String
        }
        struct Golden: Decodable {
            var text: String
            var key: String
            var signed_note: String
        }
        struct Example: Decodable {
            var text: String
            var origin: String
            var size: UInt64
            var root_b64: String
        }
        struct Vectors: Decodable {
            var vectors: [Vector]
            var bad_vkeys_must_be_refused: [String]
            var sign_golden: Golden
            var checkpoint_example: Example
        }
        let all = try JSONDecoder().decode(Vectors.self, from: data)
        #expect(all.vectors.count == 15)
        for vector in all.vectors {
            let verifier = try SignedNote.Verifier(parsing: vector.vkey)
            let note = Array(try #require(Data(base64Encoded: vector.note_b64)))
            let outcome: String
            do {
                _ = try SignedNote.open(note, verifier: verifier)
                outcome = "verified"
            } catch {
                outcome =
                    error.code == .malformedSignature
                    ? "malformed"
                    : error.message.contains("does not verify") ? "invalid-signature" : "unverified"
            }
            #expect(outcome == vector.expect, "\(vector.id)")
        }
        for bad in all.bad_vkeys_must_be_refused {
            #expect(throws: CustodyError.self, "\(bad)") { try SignedNote.Verifier(parsing: bad) }
        }
        // Go's private key text: PRIVATE+KEY+<name>+<id>+base64(0x01 ‖ 32-byte seed).
        let parts = all.sign_golden.key.split(separator: "+", maxSplits: 4)
        let seed = try #require(Data(base64Encoded: String(parts[4]))).dropFirst()
        let key = try Curve25519.Signing.PrivateKey(rawRepresentation: seed)
        let signature = try key.signature(for: Array(all.sign_golden.text.utf8))
        let line =
            "— \(parts[2]) "
            + Data(Checkpoint.keyID(name: String(parts[2]), publicKey: Array(key.publicKey.rawRepresentation)) + Array(signature))
            .base64EncodedString()
        #expect(all.sign_golden.text + "\n" + line + "\n" == all.sign_golden.signed_note)
        let example = all.checkpoint_example
        let lines = example.text.split(separator: "\n")
        #expect(String(lines[0]) == example.origin && UInt64(lines[1]) == example.size && String(lines[2]) == example.root_b64)
    }
}
