package import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// PostgreSQL 15 from Debian on a loopback port of its own, its cluster in a scratch directory (as the `postgres`
/// user when the tests run as root: initdb refuses root), with a `custody` role and database. Stopped and removed
/// when released.
package final class PostgresProcess: @unchecked Sendable {
    package let directory: String
    package private(set) var port = 0
    package let user = "custody"
    package let password = "custody"
    package let database = "custody"
    static let bin = "/usr/lib/postgresql/15/bin"
    private var server: Process?
    private let fsync: Bool

    /// `fsync`: off by default (tests need no durability); on for measurements.
    package init(fsync: Bool = false) throws {
        self.fsync = fsync
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.bin + "/initdb"), "no PostgreSQL 15: run `scripts/bootstrap --interop` (make test does)"
        )
        directory = "/tmp/custody-pg-" + UUID().uuidString.lowercased()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0 { _ = try run("/bin/chown", ["postgres:", directory]) }
        let initdb = try Self.asPostgres(
            "\(Self.bin)/initdb -D \(directory)/data -U postgres --auth-local=trust --auth-host=scram-sha-256 --no-sync -E UTF8 --locale=C.UTF-8")
        try #require(initdb.status == 0, "initdb failed: \(initdb.stderr)")
        try launch()
        let made = try run(
            "/usr/bin/psql",
            [
                "-h", directory, "-p", String(port), "-U", "postgres", "-qc", "CREATE ROLE custody LOGIN PASSWORD 'custody'", "-c",
                "CREATE DATABASE custody OWNER custody",
            ])
        try #require(made.status == 0, "cannot create the custody database: \(made.stderr)")
    }

    /// Starts the server: on a random port the first time, on the same port again after ``stop()`` (clients
    /// configured with it reconnect to the same address).
    package func launch() throws {
        // The server is a child of this process (pg_ctl's daemonised server would outlive Foundation's wait on it).
        var attempt = 0
        while true {
            attempt += 1
            let port = self.port == 0 ? Int.random(in: 20_000...60_000) : self.port
            let log = directory + "/log-\(UUID().uuidString.lowercased())"
            FileManager.default.createFile(atPath: log, contents: nil)
            if getuid() == 0 { _ = try run("/bin/chown", ["postgres:", log]) }
            let server = Process()
            server.executableURL = URL(fileURLWithPath: getuid() == 0 ? "/usr/bin/setpriv" : Self.bin + "/postgres")
            let arguments = [
                "-D", directory + "/data", "-c", "listen_addresses=127.0.0.1", "-p", String(port), "-k", directory, "-c",
                "fsync=\(fsync ? "on" : "off")",
            ]
            server.arguments =
                getuid() == 0 ? ["--reuid=postgres", "--regid=postgres", "--init-groups", Self.bin + "/postgres"] + arguments : arguments
            server.standardInput = FileHandle.nullDevice
            server.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            server.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            try server.run()
            // No deadline: it accepts connections once it runs, or exits and says why.
            var ready = false
            while server.isRunning {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                if text.contains("ready to accept connections") {
                    ready = true
                    break
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
            if ready {
                self.port = port
                self.server = server
                return
            }
            // A random port may be taken; a known one is retried (the old server's socket may linger a moment).
            guard attempt < 5 else {
                Issue.record("PostgreSQL did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
                throw CancellationError()
            }
        }
    }

    /// Stops the server (a fast shutdown: open connections are cut) and keeps its cluster for ``launch()``.
    package func stop() {
        guard let server, server.isRunning else { return }
        kill(server.processIdentifier, SIGINT)
        server.waitUntilExit()
        self.server = nil
    }

    static func asPostgres(_ command: String) throws -> ProcessResult {
        getuid() == 0
            ? try run("/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "/bin/sh", "-c", command])
            : try run("/bin/sh", ["-c", command])
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
