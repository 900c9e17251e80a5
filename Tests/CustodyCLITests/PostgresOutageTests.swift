import CustodyTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Two running daemons whose PostgreSQL goes away and comes back (a restart, a failover to the same address): while
/// it is down they refuse what needs it with a problem and say they are not ready, without dying or writing half a
/// version; once it is back they serve again without a restart of their own, the change feed listens again (a yank
/// through A reaches B's kept decisions), and the log has no gap.
@Suite(.serialized, .enabled(if: TestBackend.current.isEmbedded, "starts a PostgreSQL of its own: once, in the first pass"))
struct PostgresOutageTests {
    @Test func daemonsRideOutAPostgresRestart() throws {
        let server = try PostgresProcess()
        let scratch = try Scratch()
        try FileManager.default.createDirectory(atPath: scratch.path + "/Registry", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Tools.packageRoot + "/Registry/policies", toPath: scratch.path + "/Registry/policies")
        let environment = [
            "CUSTODY_METADATA": "postgres://\(server.user)@127.0.0.1:\(server.port)/\(server.database)?sslmode=disable",
            "CUSTODY_POSTGRES_PASSWORD": server.password,
        ]
        let a = try RegistryProcess(scratch: scratch, environment: environment, backend: .embedded)
        let b = try RegistryProcess(sharing: a)
        let published = try a.custody(
            "publish", try GateTests.model(a, "m", salt: "1"), "--name", "acme/m", "--version", "1", "--license", "apache-2.0", "--quiet")
        try #require(published.status == 0, "\(published.stderr)")
        #expect(try ClusterTests.allowed(b, "acme/m@1"), "B allows, and keeps the decision")

        server.stop()
        // Each answer comes once the pool's wait for a connection runs out (PostgresLog.connectionWait), not after
        // the pool's own minute of retrying; the times are printed for docs/operations.md.
        var started = ContinuousClock.now
        for registry in [a, b] {
            #expect(try registry.http("GET", "/readyz").status == 503, "not ready without the database")
        }
        print("outage: /readyz of both answered 503 in \(ContinuousClock.now - started)")
        started = .now
        let refused = try b.http(
            "POST", "/v1/verify", token: a.adminToken, headers: ["Content-Type": "application/json"],
            body: Data(#"{"model": "acme/m@2", "environment": "research"}"#.utf8))
        print("outage: a verify B cannot answer was refused in \(ContinuousClock.now - started)")
        #expect(refused.status == 503, "a question the daemon cannot answer is unavailable, never an answer: \(refused.body)")
        #expect(refused.headers["Content-Type"] == "application/problem+json" && refused.headers["Retry-After"] == "1", "\(refused.headers)")
        #expect(refused.body.contains("PostgreSQL"), "the problem names the database: \(refused.body)")
        let model2 = try GateTests.model(a, "m", salt: "2")
        let failed = try a.custody("publish", model2, "--name", "acme/m", "--version", "2", "--license", "apache-2.0", "--quiet")
        #expect(failed.status != 0 && failed.stderr.contains("PostgreSQL"), "the publish fails and says why: \(failed.stderr)")

        try server.launch()
        started = .now
        // No deadline: the pools reconnect once the server accepts connections; a daemon that died ends the wait.
        for registry in [a, b] {
            while try registry.http("GET", "/readyz").status != 200 {
                try #require(registry.process?.isRunning == true, "the daemon survived the outage")
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        print("outage: both ready again \(ContinuousClock.now - started) after the database came back")
        let shown = try a.custody("show", "acme/m@2")
        #expect(shown.status != 0, "the failed publish left no version: \(shown.stdout)")
        let again = try a.custody("publish", model2, "--name", "acme/m", "--version", "2", "--license", "apache-2.0", "--quiet")
        #expect(again.status == 0, "the same publish succeeds once the database is back: \(again.stderr)")

        // B's listening connection was cut with the server: it listens again, so a yank through A reaches it.
        #expect(try ClusterTests.allowed(b, "acme/m@1"))
        #expect(try a.custody("status", "yank", "acme/m@1", "--reason", "after the outage").status == 0)
        while try ClusterTests.allowed(b, "acme/m@1") {
            try #require(b.process?.isRunning == true)
            Thread.sleep(forTimeInterval: 0.01)
        }
        let verified = try b.custody("audit", "verify", "--log-key", a.keys + "/log.pub")
        #expect(verified.status == 0, "the log verifies, without a gap: \(verified.stdout) \(verified.stderr)")
        withExtendedLifetime(server) {}
    }
}
