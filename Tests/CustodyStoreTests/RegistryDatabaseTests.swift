import CustodyCore
import CustodyStorage
import CustodyTestSupport
import Foundation
import GRDB
import Testing

@testable import CustodyStore

@Suite struct RegistryDatabaseTests {
    let database: RegistryDatabase

    init() throws {
        database = try RegistryDatabase(writer: try DatabaseQueue())
    }

    func newVersion(_ version: String, content: String, license: String = "apache-2.0") async throws -> NewVersion {
        let digest = ContentDigest.of(Array(content.utf8))
        try await database.recordBlob(digest, size: UInt64(content.utf8.count))
        let file = API.FileEntry(path: "weights.bin", size: UInt64(content.utf8.count), digest: digest)
        return NewVersion(
            model: try ModelName(parsing: "acme/llama"), version: version, bundleDigest: ContentDigest.of(digest.bytes), files: [file],
            license: API.License(id: license), provenance: API.Provenance(source: API.Source(uri: "https://example.com/llama")),
            publisherSignature: nil, registrySignature: SignatureRecord(status: .verified, keyName: "registry", keyHint: "h", bundle: [1, 2, 3]),
            publishedBy: "token:test")
    }

    @Test func uploadHeartbeatsAreKeptUntilOlderThanTheCutoff() async throws {
        try await checkUploadLedger(writer: database, reader: database)
    }

    @Test func publishingIsIdempotentAndVersionsAreImmutable() async throws {
        guard case .created(let created) = try await database.publishVersion(try await newVersion("1", content: "a")) else {
            Issue.record("expected a new version")
            return
        }
        #expect(created.files.map(\.path) == ["weights.bin"])
        #expect(created.signatures.map(\.kind.rawValue) == ["publisher", "registry"])
        #expect(created.signatures.first?.status.rawValue == "unsigned")
        guard case .unchanged = try await database.publishVersion(try await newVersion("1", content: "a")) else {
            Issue.record("the same content again must be a no-op")
            return
        }
        await #expect(throws: CustodyError.self) { try await database.publishVersion(try await newVersion("1", content: "b")) }
        await #expect(throws: CustodyError.self) {
            try await database.publishVersion(try await newVersion("1", content: "a", license: "mit"))
        }
        let model = try #require(try await database.model(try ModelName(parsing: "acme/llama")))
        #expect(model.versions.map(\.version) == ["1"])
        #expect(try await database.registrySignature(try ModelName(parsing: "acme/llama"), version: "1") == [1, 2, 3])
    }

    @Test func versionsResolveByBundleDigest() async throws {
        let new = try await newVersion("2", content: "c")
        _ = try await database.publishVersion(new)
        let found = try await database.version(new.model, .digest(new.bundleDigest), includeEvents: true)
        #expect(found?.version == "2")
        #expect(found?.events?.map(\.type) == ["publish"])
    }

    @Test func aVersionNeedsItsBlobs() async throws {
        var new = try await newVersion("3", content: "d")
        new.files[0].digest = ContentDigest.of([9])
        await #expect(throws: CustodyError.self) { try await database.publishVersion(new) }
        #expect(try await database.model(new.model) == nil, "nothing half-written")
    }

    @Test func aManifestNeedsItsBlobs() async throws {
        let layer = ContentDigest.of([4])
        let bytes = Array(#"{"plain":1}"#.utf8)
        let artifact = OCIManifestRecord(
            repository: "acme/plain", digest: ContentDigest.of(bytes), mediaType: "application/vnd.oci.image.manifest.v1+json",
            artifactType: nil, subject: nil, kind: .artifact, version: nil, references: [layer], annotations: [:], bytes: bytes)
        await #expect(throws: CustodyError.collectedReference(layer.description)) { try await database.saveOCIManifests([artifact], tag: "v") }
        #expect(try await database.ociManifest(repository: "acme/plain", digest: artifact.digest) == nil, "nothing half-written")
        #expect(try await database.ociTag(repository: "acme/plain", tag: "v") == nil)
        try await database.recordBlob(layer, size: 1)
        try await database.saveOCIManifests([artifact], tag: "v")
        // An index names manifests of the repository (or of its batch), not blobs.
        let index = OCIManifestRecord(
            repository: "acme/plain", digest: ContentDigest.of(Array("index".utf8)), mediaType: "application/vnd.oci.image.index.v1+json",
            artifactType: nil, subject: nil, kind: .artifact, version: nil, references: [artifact.digest], annotations: [:],
            bytes: Array("index".utf8))
        try await database.saveOCIManifests([index], tag: nil)
        #expect(try await database.ociManifest(repository: "acme/plain", digest: index.digest) == index)
    }

    /// A database whose log was stored by (level, index) keeps the same tree when it moves to post-order positions,
    /// and events it had not logged yet become leaves.
    @Test func logStorageMigratesToPostOrder() async throws {
        let queue = try DatabaseQueue()
        try RegistryDatabase.migrator.migrate(queue, upTo: "v5: history indexes")
        let leaves = (Int64(1)...300).map { id in
            Merkle.leafHash(EventLeaf.canonicalJSON(API.Event(id: id, at: "2026-01-01T00:00:00Z", type: "test", actor: "me", model: "acme/m")))
        }
        var reference = MemoryMerkleTree()
        for leaf in leaves { reference.append(leafHash: leaf) }
        try await queue.write { db in
            for (offset, leaf) in leaves.enumerated() {
                let id = Int64(offset + 1)
                try db.execute(
                    sql: "INSERT INTO events (id, at, type, actor, model) VALUES (?, '2026-01-01T00:00:00Z', 'test', 'me', 'acme/m')", arguments: [id]
                )
                guard id <= 250 else { continue }  // the last 50 were never logged
                var (level, index, hash) = (0, id - 1, leaf)
                try db.execute(sql: "INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)", arguments: [level, index, Data(hash)])
                while index & 1 == 1 {
                    let left = try Data.fetchOne(db, sql: "SELECT hash FROM log_nodes WHERE level = ? AND idx = ?", arguments: [level, index - 1])!
                    hash = Merkle.nodeHash(Array(left), hash)
                    level += 1
                    index >>= 1
                    try db.execute(sql: "INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)", arguments: [level, index, Data(hash)])
                }
            }
        }
        let migrated = try RegistryDatabase(writer: queue)
        #expect(try await migrated.logSize() == 300)
        for size in [UInt64(1), 64, 250, 251, 300] {
            #expect(try await migrated.logRoot(size: size) == Merkle.root(size: size, reference))
        }
        try await migrated.recordEvent(NewEvent(type: .publish, actor: "me"))
        #expect(try await migrated.logSize() == 301)
        let proof = try await migrated.inclusionProof(index: 299, size: 301)
        #expect(Merkle.verifyInclusion(leafHash: proof.leaf, index: 299, size: 301, proof: proof.proof, root: try await migrated.logRoot(size: 301)))
    }

    /// The log assigns leaf indexes from its head row inside the appending transaction; a database migrated from
    /// `id - 1` indexes keeps its tree, and an event written without an index is refused.
    @Test func leafIndexesComeFromTheLogHead() async throws {
        let queue = try DatabaseQueue()
        try RegistryDatabase.migrator.migrate(queue, upTo: "v7: event counts")
        let leaves = (Int64(1)...5).map { EventLeaf.V1(id: $0, at: "2026-01-01T00:00:00Z", type: "test", actor: "me") }
        var reference = MemoryMerkleTree()
        for leaf in leaves { reference.append(leafHash: leaf.leafHash) }
        try await queue.write { db in
            for leaf in leaves {
                try db.execute(
                    sql: "INSERT INTO events (id, at, type, actor) VALUES (?, '2026-01-01T00:00:00Z', 'test', 'me')", arguments: [leaf.id])
                try RegistryDatabase.appendLeaf(db, index: UInt64(leaf.id - 1), leaf)
            }
        }
        let root = try Merkle.root(size: 5, reference)
        let after = try RegistryDatabase(writer: queue)
        #expect(try await after.logSize() == 5)
        #expect(try await after.logRoot(size: 5) == root)
        try await after.recordEvent(NewEvent(type: .publish, actor: "me"))
        let rows = try await queue.read { db in
            try Row.fetchAll(db, sql: "SELECT id, leaf_index FROM events ORDER BY leaf_index").map { [$0["id"] as Int64, $0["leaf_index"] as Int64] }
        }
        #expect(rows == (0..<6).map { [$0 + 1, $0] })
        #expect(try await after.logSize() == 6)
        await #expect(throws: DatabaseError.self) {
            try await queue.write { db in try db.execute(sql: "INSERT INTO events (at, type) VALUES ('2026-01-01T00:00:00Z', 'test')") }
        }
        await #expect(throws: DatabaseError.self) {
            try await queue.write { db in try db.execute(sql: "UPDATE log_head SET size = 2") }
        }
    }

    @Test func eventsAreAppendOnly() async throws {
        try await database.recordEvent(NewEvent(type: .publish, actor: "me"))
        await #expect(throws: DatabaseError.self) {
            try await database.writer.write { db in try db.execute(sql: "UPDATE events SET actor = 'someone else'") }
        }
        await #expect(throws: DatabaseError.self) {
            try await database.writer.write { db in try db.execute(sql: "DELETE FROM events") }
        }
        #expect(try await database.integrityProblems().isEmpty)
    }

    @Test func tokensAreStoredHashedAndRevocable() async throws {
        let created = try await database.createToken(NewToken(role: .publisher, name: "ci", namespaces: ["acme"], environments: [], expiresAt: nil))
        #expect(created.secret.hasPrefix("cst_"))
        let found = try #require(try await database.token(secret: created.secret))
        #expect(found.role == .publisher && found.namespaces == ["acme"])
        #expect(try await database.token(secret: created.secret + "x") == nil)
        #expect(try await database.revokeToken(id: found.id))
        #expect(try await database.revokeToken(id: found.id) == false)
        #expect(try await database.token(secret: created.secret)?.revokedAt != nil)
        #expect(try await database.tokens().count == 1)
    }

    /// A stored status, signature kind or role this build does not know is refused, never read as another value: an
    /// unknown status read as `active` would let a version through the gate.
    @Test func unknownStoredVocabularyIsRefused() async throws {
        let new = try await newVersion("4", content: "e")
        _ = try await database.publishVersion(new)
        let created = try await database.createToken(NewToken(role: .consumer, name: "x", namespaces: [], environments: [], expiresAt: nil))
        try await database.writer.write { db in
            try db.execute(sql: "UPDATE versions SET status = 'embargoed'")
            try db.execute(sql: "UPDATE tokens SET role = 'owner'")
        }
        await #expect(throws: CustodyError.self) { try await database.version(new.model, .version("4"), includeEvents: false) }
        await #expect(throws: CustodyError.self) { try await database.token(secret: created.secret) }
        try await database.writer.write { db in
            try db.execute(sql: "UPDATE versions SET status = 'active'")
            try db.execute(sql: "UPDATE signatures SET status = 'maybe' WHERE kind = 'publisher'")
        }
        await #expect(throws: CustodyError.self) { try await database.version(new.model, .version("4"), includeEvents: false) }
    }

    /// Advisories are stored whole and read back as written; an update needs a later `modified`.
    @Test func advisoriesRoundTripThroughTheirRecord() async throws {
        let advisory = StoredAdvisory(
            id: "CUSTODY-1", modified: "2026-01-01T00:00:00Z", withdrawn: nil, severity: "high", score: 8.1, summary: "s",
            models: ["acme/llama"], document: Array(#"{"id":"CUSTODY-1"}"#.utf8))
        let event = NewEvent(type: .advisoryAdded, actor: "me", detail: "CUSTODY-1")
        #expect(try await database.saveAdvisory(advisory, event: event) == .created)
        #expect(try await database.saveAdvisory(advisory, event: event) == .unchanged)
        var changed = advisory
        changed.document = Array(#"{"id":"CUSTODY-1","x":1}"#.utf8)
        await #expect(throws: CustodyError.self) { try await database.saveAdvisory(changed, event: event) }
        changed.modified = "2026-02-01T00:00:00Z"
        #expect(try await database.saveAdvisory(changed, event: event) == .updated)
        let stored = try #require(try await database.advisories().first)
        #expect(stored.modified == changed.modified && stored.document == changed.document && stored.models == ["acme/llama"])
        #expect(stored.score == 8.1 && stored.severity == "high")
    }
}
