package import Foundation
import Testing

/// Which backend the end-to-end suite's daemons use. By default the embedded one (SQLite and files in the registry
/// home); with the engines `scripts/test-on-engines` starts (`CUSTODY_TEST_POSTGRES`, `CUSTODY_TEST_S3_ENDPOINT`),
/// PostgreSQL and S3: every ``RegistryProcess`` gets a database and a bucket prefix of its own there.
package enum TestBackend: Sendable, Equatable {
    case embedded
    /// PostgreSQL at `postgres` (`host:port`, role `custody`) and S3 at `endpoint` (bucket `bucket`).
    case shared(postgres: String, endpoint: String, bucket: String)

    /// The backend this test run is on.
    package static let current: TestBackend = {
        let environment = ProcessInfo.processInfo.environment
        guard let postgres = environment["CUSTODY_TEST_POSTGRES"], let endpoint = environment["CUSTODY_TEST_S3_ENDPOINT"] else {
            return .embedded
        }
        return .shared(postgres: postgres, endpoint: endpoint, bucket: environment["CUSTODY_TEST_S3_BUCKET"] ?? "custody")
    }()

    /// Whether daemons keep their metadata in the home's SQLite file (tests that read that file need it).
    package var isEmbedded: Bool { self == .embedded }

    package static let postgresPassword = "custody"
    package static let s3AccessKey = "custody"
    package static let s3SecretKey = "custodysecret123"

    /// A fresh database on the shared PostgreSQL, named for a new registry.
    package func createDatabase() throws -> String {
        guard case .shared(let postgres, _, _) = self else { throw CancellationError() }
        let (host, port) = Self.split(postgres)
        let name = "custody_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        var environment = ProcessInfo.processInfo.environment
        environment["PGPASSWORD"] = Self.postgresPassword
        let made = try run(
            "/usr/bin/psql", ["-h", host, "-p", port, "-U", "custody", "-d", "custody", "-qc", "CREATE DATABASE \(name)"], environment: environment)
        try #require(made.status == 0, "cannot create a database: \(made.stderr)")
        return name
    }

    /// Runs a PostgreSQL client tool (`psql`, `pg_dump`, `pg_restore`) against the shared server as `custody`.
    package func postgresTool(_ tool: String, _ arguments: [String]) throws -> ProcessResult {
        guard case .shared(let postgres, _, _) = self else { throw CancellationError() }
        let (host, port) = Self.split(postgres)
        var environment = ProcessInfo.processInfo.environment
        environment["PGPASSWORD"] = Self.postgresPassword
        return try run("/usr/bin/" + tool, ["-h", host, "-p", port, "-U", "custody"] + arguments, environment: environment)
    }

    /// The database a registry environment names.
    package static func database(of environment: [String: String]) -> String? {
        environment["CUSTODY_METADATA"].flatMap { URLComponents(string: $0)?.path.split(separator: "/").first.map(String.init) }
    }

    /// The environment a daemon (and `custody … --home` beside it) needs to use a new registry on this backend.
    package func registryEnvironment() throws -> [String: String] {
        guard case .shared(let postgres, let endpoint, let bucket) = self else { return [:] }
        let database = try createDatabase()
        return [
            "CUSTODY_METADATA": "postgres://custody@\(postgres)/\(database)?sslmode=disable",
            "CUSTODY_POSTGRES_PASSWORD": Self.postgresPassword,
            "CUSTODY_BLOBS": "s3://\(bucket)/\(database)?endpoint=\(endpoint)&region=us-east-1",
            "CUSTODY_S3_ACCESS_KEY_ID": Self.s3AccessKey,
            "CUSTODY_S3_SECRET_ACCESS_KEY": Self.s3SecretKey,
        ]
    }

    static func split(_ address: String) -> (String, String) {
        let parts = address.split(separator: ":", maxSplits: 1).map(String.init)
        return (parts[0], parts.count > 1 ? parts[1] : "5432")
    }
}
