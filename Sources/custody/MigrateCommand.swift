import ArgumentParser
import CustodyCore
import CustodyServer
import Foundation
import Logging

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a registry home on SQLite into PostgreSQL (and its blobs into another store, S3 say).",
        discussion: """
            Reads the home as `custody serve` would (HOME/custody.yaml and the environment) and copies it: every blob, \
            verified by its digest as it is written (one the target store holds already is kept), then the metadata \
            in one transaction into an empty database. The log is copied as it is: the migrated log has the same size \
            and root, so receipts and signed checkpoints stay valid. Credentials as for serve (storage.credentialsFile \
            or CUSTODY_POSTGRES_PASSWORD, CUSTODY_S3_ACCESS_KEY_ID, CUSTODY_S3_SECRET_ACCESS_KEY). Stop the daemon \
            first: what it writes meanwhile would not be copied. Then point storage.metadata and storage.blobs at the \
            targets.
            """)

    @Option(help: "The registry home to copy (custody.yaml, data/).")
    var home = "Registry"

    @Option(help: "The keys directory that goes with it.")
    var keys = "Keys"

    @Option(help: "The target database: postgres://user@host[:port]/database[?sslmode=…], empty.")
    var to: String

    @Option(help: "The target blob store: s3://bucket/prefix?endpoint=…&region=…, or filesystem (the home's data directory).")
    var blobs: String

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["CUSTODY_METADATA"] = nil
        environment["CUSTODY_BLOBS"] = nil
        let source = try RegistryConfiguration.load(home: home, keys: keys, environment: environment)
        environment["CUSTODY_METADATA"] = to
        environment["CUSTODY_BLOBS"] = blobs
        let target = try RegistryConfiguration.load(home: home, keys: keys, environment: environment)
        var logger = Logger(label: "custody")
        logger.logLevel = .warning
        let report = try await RegistryMigration.run(from: source, to: target, logger: logger) { line in
            writeStandardError("migrate: \(line)\n")
        }
        print(
            "migrated \(report.versions) versions, \(report.rows["tokens"] ?? 0) tokens, \(report.rows["advisories"] ?? 0) advisories, "
                + "\(report.rows["oci_manifests"] ?? 0) OCI manifests; blobs: \(report.blobsCopied) copied, \(report.blobsPresent) already there")
        print("log: \(report.events) events, root \(Data(report.root).base64EncodedString()) (the same as the source's)")
    }
}
