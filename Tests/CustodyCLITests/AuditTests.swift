import CustodyTestSupport
import Foundation
import GRDB
import Testing

/// The tamper-evident log end to end: signed checkpoints, offline recomputation, consistency across time.
@Suite(.serialized) struct AuditTests {
    static func snapshot(_ registry: RegistryProcess) throws -> String {
        let copy = registry.scratch.path + "/copy-\(UUID().uuidString).sqlite"
        var configuration = Configuration()
        configuration.readonly = true
        try DatabaseQueue(path: registry.databasePath, configuration: configuration).backup(to: DatabaseQueue(path: copy))
        return copy
    }

    /// Tampers with a copy of the SQLite file (the PostgreSQL log's offline check has its own test).
    @Test(.enabled(if: TestBackend.current.isEmbedded)) func checkpointsProofsAndOfflineTamperDetection() throws {
        let registry = try RegistryProcess()
        let model = try makeAwkwardModel(in: registry.scratch)
        #expect(try registry.custody("publish", model, "--name", "acme/m", "--version", "1", "--license", "apache-2.0", "--quiet").status == 0)
        #expect(try registry.custody("show", "acme/m@1").status == 0)
        let logKey = registry.keys + "/log.pub"
        #expect(FileManager.default.fileExists(atPath: registry.keys + "/log.key"))

        let online = try registry.custody("audit", "verify", "--log-key", logKey)
        #expect(online.status == 0, "\(online.stderr)")
        #expect(online.stdout.hasPrefix("log verified: size "))
        #expect(try registry.custody("token", "create", "--role", "auditor", "--name", "a").status == 0)
        let again = try registry.custody("audit", "verify", "--log-key", logKey)
        #expect(again.stdout.contains("consistent with size"), "\(again.stdout)")

        let receipt = try registry.custody("audit", "proof", "1")
        #expect(receipt.status == 0, "\(receipt.stderr)")
        #expect(receipt.stdout.hasPrefix("c2sp.org/tlog-proof@v1\nextra ") && receipt.stdout.contains("\nindex 0\n"))
        #expect(receipt.stdout.contains("— custody.localhost/log "))

        // A graceful stop signs a checkpoint over everything; then work on copies of the file.
        registry.stop()
        let clean = try Self.snapshot(registry)
        let verified = try run(try Tools.custody, ["audit", "verify", "--database", clean, "--log-key", logKey])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("log verified offline"))

        for (sql, index) in [
            ("update events set detail = 'nothing happened' where id = 3", 2),
            ("update events set actor = 'someone else' where id = 2", 1),
            ("update events set at = '2020-01-01T00:00:00Z' where id = 4", 3),
            ("delete from events where id = 2", 1),
        ] {
            let copy = try Self.snapshot(registry)
            // Tampering as someone with the file would: the append-only triggers dropped first.
            try DatabaseQueue(path: copy).write { db in
                for name in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger'") {
                    try db.execute(sql: "DROP TRIGGER \(name)")
                }
                try db.execute(sql: sql)
            }
            let result = try run(try Tools.custody, ["audit", "verify", "--database", copy, "--log-key", logKey])
            #expect(result.status == 1, "\(sql): \(result.stdout)")
            #expect(result.stderr.contains("first bad index \(index)"), "\(sql): \(result.stderr)")
        }
    }

    /// Rewrites history by starting over on a fresh SQLite file.
    @Test(.enabled(if: TestBackend.current.isEmbedded)) func aRewrittenHistoryFailsTheClientsConsistencyCheck() throws {
        let registry = try RegistryProcess()
        let model = try makeAwkwardModel(in: registry.scratch)
        #expect(try registry.custody("publish", model, "--name", "acme/m", "--version", "1", "--license", "apache-2.0", "--quiet").status == 0)
        let logKey = registry.keys + "/log.pub"
        #expect(try registry.custody("audit", "verify", "--log-key", logKey).status == 0)

        // The same registry (same keys, same address) serving another history: a fresh database, with more events.
        registry.stop()
        try FileManager.default.removeItem(atPath: registry.home + "/data")
        try registry.start()
        for version in ["1", "2", "3"] {
            #expect(
                try registry.custody("publish", model, "--name", "acme/other", "--version", version, "--license", "apache-2.0", "--quiet").status == 0
            )
        }
        let forked = try registry.custody("audit", "verify", "--log-key", logKey)
        #expect(forked.status == 1, "\(forked.stdout) \(forked.stderr)")
        #expect(forked.stderr.contains("rewritten") || forked.stderr.contains("forked") || forked.stderr.contains("shrank"), "\(forked.stderr)")
    }
}
