package import Crypto
package import CustodyCore
import CustodyPostgres
package import CustodyStorage
package import CustodyStore
import Foundation
package import Logging
import PostgresNIO
import Synchronization

/// The metadata store `storage.metadata` names, opened: the embedded SQLite database, or a PostgreSQL database shared
/// by several daemons (its connection pool running, its tables migrated). The change feed, the checkpoint signer's
/// lease and the background work come with it, since what a backend shares between daemons decides them.
package final class MetadataBackend: Sendable {
    package let store: any MetadataStore
    /// The SQLite database, when that is the backend (its WAL checkpointer is a job).
    package let sqlite: RegistryDatabase?
    /// The PostgreSQL side, when that is the backend.
    let postgres: Postgres?
    private let listener = Mutex<Task<Void, Never>?>(nil)

    struct Postgres: Sendable {
        let metadata: PostgresMetadata
        let feed: PostgresChangeFeed
        let lease: PostgresLease
        /// The connection pool's run loop.
        let pool: Task<Void, Never>
    }

    /// How long the checkpoint signer's lease lasts: the longest a registry goes without checkpoints after its signer
    /// dies. It is renewed at every signing round (``CheckpointSigner/interval``).
    package static let signerLease = Duration.seconds(5)

    private init(store: any MetadataStore, sqlite: RegistryDatabase?, postgres: Postgres?) {
        self.store = store
        self.sqlite = sqlite
        self.postgres = postgres
    }

    /// Opens the backend the configuration names. PostgreSQL must answer within `timeout`; the error says where it
    /// was looked for (never with a password).
    package static func open(
        _ configuration: RegistryConfiguration, logger: Logger, timeout: Duration = .seconds(30)
    ) async throws(CustodyError) -> MetadataBackend {
        switch configuration.metadataStorage {
        case .sqlite:
            let database = try RegistryDatabase(path: configuration.databasePath)
            return MetadataBackend(store: database, sqlite: database, postgres: nil)
        case .postgres(let location):
            let client = PostgresClient(configuration: location.clientConfiguration, backgroundLogger: logger)
            let pool = Task { await client.run() }
            do throws(CustodyError) {
                try await reachable(client, location: location, logger: logger, timeout: timeout)
                let metadata = PostgresMetadata(client: client, location: location, logger: logger)
                try await metadata.migrate()
                let feed = PostgresChangeFeed(client: client, logger: logger)
                try await feed.migrate()
                let holder = "\(ProcessInfo.processInfo.hostName)/\(getpid())/\(UUID().uuidString.prefix(8).lowercased())"
                let lease = PostgresLease(client: client, name: "checkpoint-signer", holder: holder, duration: signerLease, logger: logger)
                try await lease.migrate()
                logger.notice("metadata in PostgreSQL", metadata: ["database": "\(location)"])
                return MetadataBackend(
                    store: metadata, sqlite: nil, postgres: Postgres(metadata: metadata, feed: feed, lease: lease, pool: pool))
            } catch {
                pool.cancel()
                throw error
            }
        }
    }

    /// Runs `body` on the metadata of an existing registry (tools that work on a registry home directly), then closes it.
    package static func withExisting<T>(
        _ configuration: RegistryConfiguration, _ body: (any MetadataStore) async throws -> T
    ) async throws -> T {
        if case .sqlite = configuration.metadataStorage, !FileManager.default.fileExists(atPath: configuration.databasePath) {
            throw CustodyError(
                .notFound, "\(configuration.databasePath): no registry database (start `custody serve --home \(configuration.home)` once)")
        }
        var logger = Logger(label: "custody")
        logger.logLevel = .warning
        let backend = try await open(configuration, logger: logger)
        defer { backend.close() }
        return try await body(backend.store)
    }

    /// `custody audit verify --database postgres://…`: the offline check of the log in a PostgreSQL database (a restored
    /// dump), the password from `CUSTODY_POSTGRES_PASSWORD` or `PGPASSWORD`.
    package static func auditPostgres(
        _ url: String, environment: [String: String], key: Curve25519.Signing.PublicKey, name: String
    ) async throws(CustodyError) -> LogVerifier.Report {
        var location = try PostgresLocation(parsing: url)
        if location.password == nil { location.password = environment["CUSTODY_POSTGRES_PASSWORD"] ?? environment["PGPASSWORD"] }
        var logger = Logger(label: "custody")
        logger.logLevel = .warning
        let client = PostgresClient(configuration: location.clientConfiguration, backgroundLogger: logger)
        let pool = Task { await client.run() }
        defer { pool.cancel() }
        try await reachable(client, location: location, logger: logger, timeout: .seconds(30))
        return try await PostgresLog(client: client, location: location, logger: logger).audit(key: key, name: name)
    }

    /// Answers once PostgreSQL does; the pool keeps retrying a server that is starting, so a deadline decides.
    private static func reachable(
        _ client: PostgresClient, location: PostgresLocation, logger: Logger, timeout: Duration
    ) async throws(CustodyError) {
        let outcome: Result<Void, any Error> = await withTaskGroup(of: Result<Void, any Error>?.self) { group in
            group.addTask {
                do {
                    try await client.query("SELECT 1", logger: logger)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .failure(CustodyError(.io, "no answer within \(timeout)"))
        }
        if case .failure(let error) = outcome {
            let reason = (error as? CustodyError)?.message ?? String(describing: (error as? PSQLError)?.serverInfo?[.message] ?? "\(error)")
            throw CustodyError(.io, "PostgreSQL at \(location) cannot be used: \(reason)")
        }
    }

    /// The change feed: in process for SQLite (one daemon), `LISTEN`/`NOTIFY` for PostgreSQL.
    package func makeChangeFeed() -> any ChangeFeed {
        postgres?.feed ?? InProcessChangeFeed()
    }

    /// The lease the checkpoint signer needs, when several daemons may sign.
    var signingLease: (any SigningLease)? { postgres?.lease }

    /// Listens for other daemons' changes until cancelled; returns once the first `LISTEN` is in place, so that no
    /// change committed after the daemon starts answering goes unheard. Nothing to do for SQLite.
    func startListening() async {
        guard let feed = postgres?.feed else { return }
        let (listening, signal) = AsyncStream<Void>.makeStream()
        let task = Task { await feed.run(onListening: { signal.yield() }) }
        listener.withLock { $0 = task }
        for await _ in listening { break }
    }

    /// Stops listening and the PostgreSQL pool (after everything else that uses them).
    package func close() {
        listener.withLock { $0?.cancel() }
        postgres?.pool.cancel()
    }
}

extension PostgresLease: SigningLease {}
