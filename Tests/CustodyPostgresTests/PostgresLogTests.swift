import CustodyCore
import CustodyStorage
import CustodyTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

@testable import CustodyPostgres

/// One transparency log on PostgreSQL appended by two daemons at once (two clients, as two processes hold them):
/// dense leaf indexes, every event once, and the root and proofs the same as an in-memory tree of the same leaves.
@Suite(.serialized) struct PostgresLogTests {
    static func location(_ server: PostgresProcess) -> PostgresLocation {
        PostgresLocation(host: "127.0.0.1", port: server.port, user: server.user, database: server.database, tls: .disable, password: server.password)
    }

    /// Runs `body` with `count` clients of a fresh PostgreSQL (as that many daemons hold them), their pools running,
    /// and where they connect; the server stops when it returns.
    static func withClients(_ count: Int, _ body: @Sendable ([PostgresClient], PostgresLocation) async throws -> Void) async throws {
        let server = try PostgresProcess()
        let location = location(server)
        let clients = (0..<count).map { _ in PostgresClient(configuration: location.clientConfiguration) }
        try await withThrowingDiscardingTaskGroup { group in
            for client in clients { group.addTask { await client.run() } }
            try await body(clients, location)
            group.cancelAll()
        }
        withExtendedLifetime(server) {}
    }

    struct Leaves: MerkleNodeSource {
        let hashes: [[UInt8]]
        func node(level: Int, index: UInt64) throws -> [UInt8] {
            var layer = hashes
            for _ in 0..<level {
                layer = stride(from: 0, to: layer.count - 1, by: 2).map { Merkle.nodeHash(layer[$0], layer[$0 + 1]) }
            }
            return layer[Int(index)]
        }
    }

    @Test func twoAppendersShareOneDenseLog() async throws {
        let logger = Logger(label: "test")
        try await Self.withClients(2) { clients, location in
            let logA = PostgresLog(client: clients[0], location: location, logger: logger)
            let logB = PostgresLog(client: clients[1], location: location, logger: logger)
            // Both daemons migrate at start, at once.
            async let migratedA: Void = logA.migrate()
            async let migratedB: Void = logB.migrate()
            _ = try await (migratedA, migratedB)

            // 1,000 events: A appends one at a time, B in batches of 10, concurrently.
            async let fromA: Void = {
                for i in 0..<500 { try await logA.append([NewEvent(type: .pull, actor: "daemon-a", detail: "a\(i)")]) }
            }()
            async let fromB: Void = {
                for batch in 0..<50 {
                    try await logB.append((0..<10).map { NewEvent(type: .decision, actor: "daemon-b", detail: "b\(batch * 10 + $0)") })
                }
            }()
            _ = try await (fromA, fromB)

            #expect(try await logA.logSize() == 1000)
            #expect(try await logB.logSize() == 1000)
            let leaves = try await logB.leaves(from: 0, limit: 2000)
            #expect(leaves.map(\.id) == Array(1...1000), "dense: no gap, no repeat")
            #expect(Set(leaves.compactMap(\.detail)).count == 1000, "every event once")
            let aOrder = leaves.filter { $0.actor == "daemon-a" }.compactMap(\.detail)
            #expect(aOrder == (0..<500).map { "a\($0)" }, "each appender's events in its order")

            // The stored tree is the tree of these leaves: root, inclusion and consistency proofs agree.
            let memory = Leaves(hashes: leaves.map(\.leafHash))
            let root = try await logA.logRoot(size: 1000)
            #expect(root == (try Merkle.root(size: 1000, memory)))
            for index: UInt64 in [0, 1, 499, 777, 999] {
                let (leaf, proof) = try await logB.inclusionProof(index: index, size: 1000)
                #expect(leaf == leaves[Int(index)].leafHash)
                #expect(Merkle.verifyInclusion(leafHash: leaf, index: index, size: 1000, proof: proof, root: root))
            }
            let half = try await logA.logRoot(size: 500)
            #expect(half == (try Merkle.root(size: 500, Leaves(hashes: Array(memory.hashes.prefix(500))))))
            let consistency = try await logA.consistencyProof(from: 500, to: 1000)
            #expect(Merkle.verifyConsistency(from: 500, to: 1000, proof: consistency, firstRoot: half, secondRoot: root))
        }
    }
}

/// The log's two ways of appending, mixed: one statement when the daemon knows the frontier at the head, the locked
/// path after anyone else appended (another daemon, or a catalog write carrying its event in its own transaction), and
/// batches over one statement's rows. The tree stays the tree of the leaves.
@Suite(.serialized) struct PostgresAppendPathTests {
    @Test func oneStatementLockedAndChunkedAppendsBuildOneTree() async throws {
        let logger = Logger(label: "test")
        try await PostgresLogTests.withClients(1) { clients, location in
            let log = PostgresLog(client: clients[0], location: location, logger: logger)
            try await log.migrate()
            for i in 0..<20 { try await log.append([NewEvent(type: .pull, actor: "test", detail: "single \(i)")]) }
            #expect(log.appendPaths == .init(oneStatement: 19, locked: 1), "the first learns the frontier; the rest go as one statement")

            // A write and its event in the caller's transaction: the daemon's frontier is behind, so the next append
            // writes nothing on its first try and takes the locked path.
            try await clients[0].withTransaction(logger: logger) { connection in
                try await PostgresLog.insert(
                    [NewEvent(type: .tokenCreated, actor: "test", detail: "in a transaction")], on: connection, logger: logger)
            }
            try await log.append((0..<7).map { NewEvent(type: .decision, actor: "test", detail: "after \($0)") })
            #expect(log.appendPaths == .init(oneStatement: 19, locked: 2))
            // Over one statement's rows: several statements in one transaction.
            let big = PostgresLog.rowsPerStatement + 333
            try await log.append((0..<big).map { NewEvent(type: .decision, actor: "test", detail: "big \($0)") })
            try await log.append([NewEvent(type: .pull, actor: "test", detail: "last")])
            #expect(log.appendPaths == .init(oneStatement: 20, locked: 3))

            let size = UInt64(20 + 1 + 7 + big + 1)
            #expect(try await log.logSize() == size)
            let leaves = try await log.leaves(from: 0, limit: Int(size) + 10)
            #expect(leaves.map(\.id) == Array(1...Int64(size)), "dense: no gap, no repeat")
            #expect(leaves[20].detail == "in a transaction" && leaves.last?.detail == "last")
            let memory = PostgresLogTests.Leaves(hashes: leaves.map(\.leafHash))
            let root = try await log.logRoot(size: size)
            #expect(root == (try Merkle.root(size: size, memory)))
            for index in [0, 20, 27, 28 + UInt64(big) - 1, size - 1] {
                let (leaf, proof) = try await log.inclusionProof(index: index, size: size)
                #expect(Merkle.verifyInclusion(leafHash: leaf, index: index, size: size, proof: proof, root: root))
            }
        }
    }
}

/// The first metadata roles on PostgreSQL: tokens (secrets only as hashes), advisories (updated only by a later
/// `modified`), each change with its event in one transaction, and the blob index, shared by two daemons.
@Suite(.serialized) struct PostgresMetadataTests {
    @Test func tokensAdvisoriesAndBlobsAreSharedByEveryDaemon() async throws {
        let logger = Logger(label: "test")
        try await PostgresLogTests.withClients(2) { clients, location in
            let (a, b) = (clients[0], clients[1])
            let (one, two) = (
                PostgresMetadata(client: a, location: location, logger: logger), PostgresMetadata(client: b, location: location, logger: logger)
            )
            try await one.migrate()
            try await two.migrate()
            // Upload heartbeats: what A touched, B sees until they are older than its cutoff.
            try await checkUploadLedger(writer: one, reader: two)
            let created = try await one.createToken(
                NewToken(role: .consumer, name: "host", namespaces: [], environments: ["production"], expiresAt: nil))
            #expect(created.secret.hasPrefix("cst_"))
            let found = try #require(try await two.token(secret: created.secret), "made on A, found on B")
            #expect(found.role == .consumer && found.environments == ["production"] && found.revokedAt == nil)
            #expect(try await two.token(secret: "cst_other") == nil)
            #expect(try await two.tokens().map(\.id) == [created.token.id])
            #expect(try await two.revokeToken(id: created.token.id))
            #expect(try await !one.revokeToken(id: created.token.id), "revoked once")
            #expect(try await one.token(secret: created.secret)?.revokedAt != nil)
            #expect(try await one.tokenCount() == 1)
            let leaves = try await one.log.leaves(from: 0, limit: 10)
            #expect(leaves.map(\.type) == ["token.create", "token.revoke"], "each change with its event")
            #expect(leaves.allSatisfy { !($0.detail ?? "").contains(created.secret) }, "never the secret")

            // Advisories: created, unchanged, updated only by a later 'modified', each change with its event.
            func advisory(_ modified: String, _ summary: String) -> StoredAdvisory {
                StoredAdvisory(
                    id: "x_CUSTODY-2026-0001", modified: modified, withdrawn: nil, severity: "high", score: 8.1, summary: summary,
                    models: ["acme/llama"], document: Array("{\"modified\":\"\(modified)\",\"summary\":\"\(summary)\"}".utf8))
            }
            let event = NewEvent(type: .advisoryAdded, actor: "security", detail: "x_CUSTODY-2026-0001")
            #expect(try await one.saveAdvisory(advisory("2026-12-01T00:00:00Z", "poisoned"), event: event) == .created)
            #expect(try await two.saveAdvisory(advisory("2026-12-01T00:00:00Z", "poisoned"), event: event) == .unchanged)
            #expect(try await two.saveAdvisory(advisory("2026-12-02T00:00:00Z", "poisoned weights"), event: event) == .updated)
            await #expect(throws: CustodyError.self) {
                _ = try await one.saveAdvisory(advisory("2026-11-30T00:00:00Z", "older"), event: event)
            }
            let stored = try await one.advisories()
            #expect(stored.map(\.summary) == ["poisoned weights"] && stored.first?.score == 8.1 && stored.first?.models == ["acme/llama"])
            #expect(try await one.log.logSize() == 4, "token create and revoke, advisory added and updated")

            let digest = ContentDigest.of([1, 2, 3])
            #expect(try await two.blobSize(digest) == nil)
            try await one.recordBlob(digest, size: 3)
            try await two.recordBlob(digest, size: 3)
            #expect(try await two.blobSize(digest) == 3)
        }
    }
}

/// The event log's queries on PostgreSQL as audits ask them: filters, pages, exposure counts, checkpoints, and the
/// recorder's blocking batch append.
@Suite(.serialized) struct PostgresEventQueryTests {
    @Test func filtersPagesUsesAndCheckpoints() async throws {
        let logger = Logger(label: "test")
        try await PostgresLogTests.withClients(1) { clients, location in
            let client = clients[0]
            let log = PostgresLog(client: client, location: location, logger: logger)
            try await log.migrate()
            try await log.recordEvent(NewEvent(type: .publish, actor: "token:ci (ci_%)", model: "acme/llama", version: "1", detail: "bundle"))
            try await log.append([
                NewEvent(
                    type: .pull, actor: "token:a (host)", model: "acme/llama", version: "1", detail: "bundle", environment: "production",
                    client: "10.0.0.1"),
                NewEvent(
                    type: .pull, actor: "token:a (host)", model: "acme/llama", version: "1", detail: "bundle", environment: "production",
                    client: "10.0.0.1"),
                NewEvent(type: .pullDenied, actor: "token:b (other)", model: "acme/llama", version: "1", detail: "denied", environment: "production"),
                NewEvent(
                    type: .decision, actor: "token:g (gate)", model: "acme/llama", version: "1", detail: "allowed in staging", environment: "staging"),
                NewEvent(type: .decision, actor: "token:g (gate)", model: "acme/other", version: "1", detail: "denied", environment: "staging"),
            ])
            // The recorder's thread, not the task pool, waits for its batch.
            let done = AsyncStream.makeStream(of: String?.self)
            let thread = Thread {
                do {
                    try log.recordEventsBlocking([NewEvent(type: .tokenUsed, actor: "token:a (host)", detail: "GET /v1/models")])
                    done.continuation.yield(nil)
                } catch {
                    done.continuation.yield("\(error)")
                }
            }
            thread.start()
            var results = done.stream.makeAsyncIterator()
            #expect(await results.next() == .some(nil))

            var filter = EventFilter()
            filter.model = "acme/llama"
            #expect(try await log.events(filter).count == 5)
            filter.types = ["pull", "pull.denied"]
            #expect(try await log.events(filter).map(\.type) == ["pull", "pull", "pull.denied"])
            var byActor = EventFilter()
            byActor.actor = "ci_%"
            #expect(try await log.events(byActor).map(\.type) == ["publish"], "LIKE wildcards in the needle are literal")
            var pages: [Int] = []
            try await log.forEachEvent(after: 0, page: 3) { pages.append($0.count) }
            #expect(pages == [3, 3, 1])

            let uses = try await log.uses(of: [("acme/llama", "1")]).map(\.use)
            #expect(
                uses.map { "\($0.type) \($0.allowed) \($0.count) \($0.environment ?? "-")" } == [
                    "pull true 2 production", "pull.denied false 1 production", "decision true 1 staging",
                ])

            #expect(try await log.latestCheckpoint() == nil)
            let root = try await log.logRoot(size: 7)
            try await log.recordCheckpoint(size: 7, root: root, note: "custody.localhost/log\n7\n…")
            try await log.recordCheckpoint(size: 7, root: root, note: "again")
            #expect(try await log.latestCheckpoint()?.size == 7)
            #expect(try await log.latestCheckpoint()?.note == "custody.localhost/log\n7\n…")
        }
    }
}

/// The OCI records on PostgreSQL: exact bytes by digest, a version's manifest, referrers, plain tags, deletes that
/// never touch a version's manifest.
@Suite(.serialized) struct PostgresOCIRecordTests {
    @Test func manifestsReferrersAndTags() async throws {
        try await PostgresLogTests.withClients(1) { clients, location in
            let client = clients[0]
            let store = PostgresMetadata(client: client, location: location, logger: Logger(label: "test"))
            try await store.migrate()
            let layer = ContentDigest.of([1])
            func record(_ text: String, kind: OCIManifestRecord.Kind, version: String?, subject: ContentDigest? = nil) -> OCIManifestRecord {
                let bytes = Array(text.utf8)
                return OCIManifestRecord(
                    repository: "acme/llama", digest: ContentDigest.of(bytes), mediaType: "application/vnd.oci.image.manifest.v1+json",
                    artifactType: "application/vnd.cncf.model.manifest.v1+json", subject: subject, kind: kind, version: version,
                    references: [layer], annotations: ["org.opencontainers.image.version": version ?? "-"], bytes: bytes)
            }
            let model = record(#"{"model":1}"#, kind: .model, version: "1.0")
            let signature = record(#"{"sig":1}"#, kind: .attachment, version: "1.0", subject: model.digest)
            await #expect(throws: CustodyError.collectedReference(layer.description), "a blob the registry does not hold") {
                try await store.saveOCIManifests([model, signature], tag: nil)
            }
            #expect(try await store.ociManifest(repository: "acme/llama", digest: model.digest) == nil, "nothing stored")
            try await store.recordBlob(layer, size: 1)
            try await store.saveOCIManifests([model, signature], tag: nil)
            try await store.saveOCIManifests([model], tag: nil)
            #expect(try await store.ociManifest(repository: "acme/llama", digest: model.digest) == model)
            #expect(try await store.ociModelManifest(repository: "acme/llama", version: "1.0") == model)
            #expect(try await store.ociReferrers(repository: "acme/llama", subject: model.digest) == [signature])
            #expect(try await store.ociRepository("acme/llama", references: layer))
            #expect(try await !store.ociRepository("acme/other", references: layer))

            let artifact = record(#"{"plain":1}"#, kind: .artifact, version: nil)
            try await store.saveOCIManifests([artifact], tag: "latest")
            #expect(try await store.ociTag(repository: "acme/llama", tag: "latest") == artifact.digest)
            #expect(try await store.ociTags(repository: "acme/llama") == ["latest"])
            #expect(try await !store.deleteOCIManifest(repository: "acme/llama", digest: model.digest), "a version's manifest stays")
            #expect(try await store.deleteOCIManifest(repository: "acme/llama", digest: artifact.digest))
            #expect(try await store.ociTags(repository: "acme/llama").isEmpty, "its tags went with it")
            #expect(try await !store.deleteOCITag(repository: "acme/llama", tag: "latest"))

            // An index names manifests of the repository, not blobs.
            let index = OCIManifestRecord(
                repository: "acme/llama", digest: ContentDigest.of(Array("index".utf8)), mediaType: "application/vnd.oci.image.index.v1+json",
                artifactType: nil, subject: nil, kind: .artifact, version: nil, references: [model.digest], annotations: [:],
                bytes: Array("index".utf8))
            try await store.saveOCIManifests([index], tag: nil)
        }
    }

    /// A plain artifact's manifest put while the collector deletes a blob it names: the collector holds the blob's
    /// record, the save waits for it and then finds the blob gone, so nothing is stored that names missing bytes.
    @Test func aManifestPutDuringCollectionNeverNamesAMissingBlob() async throws {
        try await PostgresLogTests.withClients(2) { clients, location in
            let (collector, front) = (
                PostgresMetadata(client: clients[0], location: location, logger: Logger(label: "test")),
                PostgresMetadata(client: clients[1], location: location, logger: Logger(label: "test"))
            )
            try await collector.migrate()
            let blob = ContentDigest.of([7])
            try await collector.recordBlob(blob, size: 1)
            let bytes = Array(#"{"plain":2}"#.utf8)
            let artifact = OCIManifestRecord(
                repository: "acme/plain", digest: ContentDigest.of(bytes), mediaType: "application/vnd.oci.image.manifest.v1+json",
                artifactType: nil, subject: nil, kind: .artifact, version: nil, references: [blob], annotations: [:], bytes: bytes)

            let (deleting, started) = AsyncStream.makeStream(of: Void.self)
            let (release, releasing) = AsyncStream.makeStream(of: Void.self)
            async let collected = collector.collectBlob(blob, unusedSince: RFC3339.string(Date().addingTimeInterval(3600))) {
                started.yield()
                for await _ in release {}
            }
            var iterator = deleting.makeAsyncIterator()
            _ = await iterator.next()  // the collector holds the record and is deleting the bytes
            let saved = Task { try await front.saveOCIManifests([artifact], tag: "latest") }
            // No deadline: the save is waiting for the collector's lock.
            while try await Self.waitingLocks(clients[0]) == 0 { try await Task.sleep(for: .milliseconds(5)) }
            releasing.finish()
            #expect(try await collected, "the collector deleted the unused blob")
            await #expect(throws: CustodyError.collectedReference(blob.description)) { try await saved.value }
            #expect(try await front.ociManifest(repository: "acme/plain", digest: artifact.digest) == nil)
            #expect(try await front.ociTag(repository: "acme/plain", tag: "latest") == nil)
        }
    }

    static func waitingLocks(_ client: PostgresClient) async throws -> Int {
        var count = 0
        for try await value in try await client.query("SELECT count(*) FROM pg_locks WHERE NOT granted").decode(Int.self) { count = value }
        return count
    }
}

/// What database work does when the pool has no connection to give: it runs on a connection of its own while the
/// database accepts one (a busy pool is not an outage, however slow the machine), and is unavailable, naming the
/// database, once it does not.
@Suite(.serialized) struct PostgresConnectionWaitTests {
    @Test func aBusyPoolIsWaitedOutAndARefusingDatabaseIsUnavailable() async throws {
        let server = try PostgresProcess()
        let location = PostgresLogTests.location(server)
        var configuration = location.clientConfiguration
        configuration.options.maximumConnections = 1
        let client = PostgresClient(configuration: configuration)
        let log = PostgresLog(client: client, location: location, logger: Logger(label: "test"))
        @Sendable func backend(_ connection: PostgresConnection) async throws -> Int32 {
            var pid: Int32 = 0
            for try await value in try await connection.query("SELECT pg_backend_pid()", logger: Logger(label: "test")).decode(Int32.self) {
                pid = value
            }
            return pid
        }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            try await log.migrate()

            // The pool's only connection is held until `release` ends.
            let (held, holding) = AsyncStream.makeStream(of: Int32.self)
            let (release, releasing) = AsyncStream.makeStream(of: Void.self)
            group.addTask {
                try await client.withConnection { connection in
                    holding.yield(try await backend(connection))
                    for await _ in release {}
                }
            }
            var iterator = held.makeAsyncIterator()
            let holder = try #require(await iterator.next())
            let other = try await log.run("ask for a backend", waitingAtMost: .milliseconds(1)) { connection, _ in try await backend(connection) }
            #expect(other != holder && other != 0, "the work ran on a connection outside the busy pool")
            releasing.finish()

            server.stop()
            do throws(CustodyError) {
                _ = try await log.run("ask for a backend", waitingAtMost: .milliseconds(1)) { connection, _ in try await backend(connection) }
                Issue.record("a stopped database answered")
            } catch {
                #expect(error.code == .unavailable, "\(error)")
                #expect(error.message.contains("PostgreSQL") && error.message.contains("127.0.0.1:\(server.port)"), "\(error.message)")
                #expect(!error.message.contains(server.password), "never the password")
            }
            group.cancelAll()
        }
    }
}
