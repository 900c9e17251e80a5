import CustodyTestSupport
import Foundation
import Testing

/// `custody migrate`: a populated SQLite home moved to PostgreSQL and S3 (the engines of the suite's second pass) is
/// the same registry — the same log (an auditor's client finds it consistent with what it saw before), every version
/// pulling and verifying, statuses, tokens and advisories as they were.
@Suite(.serialized, .enabled(if: !TestBackend.current.isEmbedded, "needs PostgreSQL and S3: scripts/test-on-engines"))
struct MigrationTests {
    @Test func aSQLiteHomeMovesToPostgresAndS3WithTheSameLog() throws {
        let scratch = try Scratch()
        try FileManager.default.createDirectory(atPath: scratch.path + "/Registry", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Tools.packageRoot + "/Registry/policies", toPath: scratch.path + "/Registry/policies")
        let source = try RegistryProcess(scratch: scratch, backend: .embedded)
        let configHome = source.scratch.path + "/config"
        let awkward = try makeAwkwardModel(in: source.scratch)
        let small = try GateTests.model(source, "m", salt: "1")
        let publisher = try source.token("--role", "publisher", "--namespace", "acme", "--name", "ci")
        for (model, name, version) in [(awkward, "acme/awkward", "1"), (small, "acme/m", "1"), (small, "acme/m", "2")] {
            let published = try source.custody(
                ["publish", model, "--name", name, "--version", version, "--license", "apache-2.0", "--quiet"], token: publisher)
            try #require(published.status == 0, "\(published.stderr)")
        }
        #expect(try source.custody("status", "yank", "acme/m@1", "--reason", "superseded").status == 0)
        try source.scratch.write(
            "advisory.json",
            #"{"id": "x_CUSTODY-2026-0777", "modified": "2026-11-01T00:00:00Z", "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}], "affected": [{"package": {"ecosystem": "Custody", "name": "acme/m"}, "versions": ["2"]}]}"#
        )
        #expect(try source.custody("advisory", "add", source.scratch.path + "/advisory.json").status == 0)
        let logKey = source.keys + "/log.pub"
        let before = try source.custody(["audit", "verify", "--log-key", logKey], configHome: configHome)
        try #require(before.status == 0, "\(before.stderr)")
        source.stop()

        // The move: blobs verified into the bucket, the metadata into an empty database.
        let target = try TestBackend.current.registryEnvironment()
        var environment = ProcessInfo.processInfo.environment.merging(target) { $1 }
        environment["CUSTODY_METADATA"] = nil
        environment["CUSTODY_BLOBS"] = nil
        let arguments = [
            "migrate", "--home", source.home, "--keys", source.keys, "--to", try #require(target["CUSTODY_METADATA"]), "--blobs",
            try #require(target["CUSTODY_BLOBS"]),
        ]
        let migrated = try run(try Tools.custody, arguments, environment: environment)
        try #require(migrated.status == 0, "\(migrated.stderr)")
        #expect(migrated.stdout.contains("migrated 3 versions, 2 tokens, 1 advisories"), "\(migrated.stdout)")
        #expect(migrated.stdout.contains("(the same as the source's)"), "\(migrated.stdout)")
        let size = try #require(before.stdout.firstMatch(of: /size ([0-9]+),/))

        // Into a database that holds a registry already: refused, nothing written.
        let again = try run(try Tools.custody, arguments, environment: environment)
        #expect(again.status == 2)
        #expect(again.stderr.contains("already holds a registry"), "\(again.stderr)")

        // The same home on the new engines: the auditor's client finds the log consistent with what it saw.
        let moved = try RegistryProcess(sharing: source, environment: target)
        let after = try moved.custody(["audit", "verify", "--log-key", logKey], configHome: configHome)
        #expect(after.status == 0, "\(after.stderr)")
        #expect(after.stdout.contains("consistent with size \(size.1)"), "\(after.stdout)")
        for (model, reference) in [(awkward, "acme/awkward@1"), (small, "acme/m@1"), (small, "acme/m@2")] {
            let output = moved.scratch.path + "/" + reference
            let pulled = try moved.custody(["pull", reference, "--output", output, "--registry-key", source.registryPublicKey, "--quiet"])
            #expect(pulled.status == 0, "\(reference): \(pulled.stderr)")
            var files = try tree(output)
            #expect(files.removeValue(forKey: "model.sig") != nil)
            #expect(files == (try tree(model)), "\(reference) byte-identical")
        }
        #expect(try moved.custody("show", "acme/m@1").stdout.contains("yanked"), "statuses are kept")
        let decision = try moved.custody("check", "acme/m@2", "--env", "research", "--json")
        #expect(decision.status == 1)
        #expect(decision.stdout.contains("x_CUSTODY-2026-0777"), "advisories are kept: \(decision.stdout) \(decision.stderr)")
        let model = try GateTests.model(moved, "m", salt: "3")
        #expect(
            try moved.custody(["publish", model, "--name", "acme/m", "--version", "3", "--quiet"], token: publisher).status == 0,
            "tokens are kept")
    }

    @Test func aPostgresDumpVerifiesOfflineAndTamperingIsFound() throws {
        let registry = try RegistryProcess()
        let model = try makeAwkwardModel(in: registry.scratch)
        #expect(try registry.custody("publish", model, "--name", "acme/m", "--version", "1", "--quiet").status == 0)
        #expect(try registry.custody("token", "create", "--role", "auditor", "--name", "a").status == 0)
        registry.stop()
        let backend = registry.backend
        let database = try #require(TestBackend.database(of: registry.environment))

        // A dump restored into another database: the log verifies offline, as a SQLite copy does.
        let dump = registry.scratch.path + "/custody.dump"
        let dumped = try backend.postgresTool("pg_dump", ["-Fc", "-f", dump, database])
        try #require(dumped.status == 0, "\(dumped.stderr)")
        let restored = try backend.createDatabase()
        let loaded = try backend.postgresTool("pg_restore", ["-d", restored, "--no-owner", dump])
        try #require(loaded.status == 0, "\(loaded.stderr)")
        guard case .shared(let postgres, _, _) = backend else { return }
        let url = "postgres://custody@\(postgres)/\(restored)?sslmode=disable"
        let environment = ProcessInfo.processInfo.environment.merging(["CUSTODY_POSTGRES_PASSWORD": TestBackend.postgresPassword]) { $1 }
        let logKey = registry.keys + "/log.pub"
        let verified = try run(try Tools.custody, ["audit", "verify", "--database", url, "--log-key", logKey], environment: environment)
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.hasPrefix("log verified offline: "), "\(verified.stdout)")

        // An event rewritten in the copy: found, by its leaf index.
        let tampered = try backend.postgresTool("psql", ["-d", restored, "-qc", "UPDATE events SET detail = 'nothing happened' WHERE id = 3"])
        try #require(tampered.status == 0, "\(tampered.stderr)")
        let caught = try run(try Tools.custody, ["audit", "verify", "--database", url, "--log-key", logKey], environment: environment)
        #expect(caught.status == 1, "\(caught.stdout) \(caught.stderr)")
        #expect(caught.stderr.contains("first bad index 2"), "\(caught.stderr)")
    }
}
