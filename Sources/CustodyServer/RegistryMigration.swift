package import CustodyCore
import CustodyPostgres
import CustodyStorage
import CustodyStore
import Foundation
package import Logging

/// `custody migrate`: a registry home on SQLite (and its blobs) copied into PostgreSQL (and a blob store, S3 say).
/// Blobs are copied first, each verified by its digest as it is written; then the metadata in one transaction — the
/// log as it is, so that the migrated log has the same size and root and every receipt and signed checkpoint stays
/// valid. The source is only read; a target database that already holds a registry is refused.
package enum RegistryMigration {
    package struct Report: Sendable {
        package var events: UInt64
        package var root: [UInt8]
        package var versions: Int
        package var blobsCopied: Int
        package var blobsPresent: Int
        package var bytesCopied: UInt64
        package var rows: [String: Int]
    }

    package static func run(
        from source: RegistryConfiguration, to target: RegistryConfiguration, logger: Logger, progress: @escaping @Sendable (String) -> Void
    ) async throws(CustodyError) -> Report {
        guard case .sqlite = source.metadataStorage else {
            throw CustodyError(.invalidArgument, "the registry to migrate must be on SQLite (its storage.metadata is not sqlite)")
        }
        guard case .postgres = target.metadataStorage else {
            throw CustodyError(.invalidArgument, "--to must be a postgres:// URL: migrate moves a SQLite registry to PostgreSQL")
        }
        guard FileManager.default.fileExists(atPath: source.databasePath) else {
            throw CustodyError(.notFound, "\(source.databasePath): no registry database to migrate")
        }
        let database = try RegistryDatabase(path: source.databasePath)
        let scratch = source.dataDirectory + "/migrate-" + UUID().uuidString.prefix(8).lowercased()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let sourceBlobs = try RegistryServices.openBlobs(source, cache: scratch + "/source-cache", ledger: nil, logger: logger)
        let targetBlobs = try RegistryServices.openBlobs(target, cache: scratch + "/target-cache", ledger: nil, logger: logger)
        let backend = try await MetadataBackend.open(target, logger: logger)
        defer { backend.close() }
        guard let postgres = backend.postgres?.metadata else { throw CustodyError(.invalidArgument, "the target is not PostgreSQL") }
        if try await postgres.logSize() > 0 {
            throw CustodyError(.conflict, "the target database already holds a registry: migrate only into an empty database")
        }

        // Blobs: every one the index holds, verified by digest on the way in; one the target has already is kept.
        var report = Report(events: 0, root: [], versions: 0, blobsCopied: 0, blobsPresent: 0, bytesCopied: 0, rows: [:])
        let blobTable = RegistrySnapshot.tables.first { $0.name == "blobs" }!
        var after: SnapshotValue?
        while true {
            let page = try await database.exportRows(blobTable, after: after, limit: 1_000)
            if page.isEmpty { break }
            for (_, row) in page {
                guard case .text(let text) = row[0], case .integer(let size) = row[1], let digest = try? ContentDigest(parsing: text) else {
                    throw CustodyError(.io, "the source's blob index holds a malformed row: \(row)")
                }
                if try await targetBlobs.size(of: digest) == UInt64(size) {
                    report.blobsPresent += 1
                    continue
                }
                try await copy(digest, size: UInt64(size), from: sourceBlobs, to: targetBlobs)
                report.blobsCopied += 1
                report.bytesCopied += UInt64(size)
                if report.blobsCopied % 100 == 0 { progress("\(report.blobsCopied) blobs copied") }
            }
            after = page.last?.key
            if page.count < 1_000 { break }
        }
        progress("blobs: \(report.blobsCopied) copied (\(report.bytesCopied) bytes), \(report.blobsPresent) already there")

        // Metadata, in one transaction.
        let versions = try await database.exportVersions()
        let counts = try await postgres.importRegistry(versions: versions) { table, after, limit throws(CustodyError) in
            try await database.exportRows(table, after: after, limit: limit)
        }
        report.versions = counts.versions
        report.rows = counts.rows

        // The migrated log is the same log: same size, same root.
        let size = try await database.logSize()
        let migrated = try await postgres.logSize()
        let root = try await database.logRoot(size: size)
        let migratedRoot = try await postgres.logRoot(size: migrated)
        guard size == migrated, root == migratedRoot else {
            throw CustodyError(
                .io, "the migrated log differs: \(migrated) events with another root than the source's \(size); drop the target database")
        }
        report.events = size
        report.root = root
        return report
    }

    /// Copies one blob from a store to another; the target keeps it only when the bytes hash to `digest`.
    static func copy(_ digest: ContentDigest, size: UInt64, from source: any BlobStore, to target: any BlobStore) async throws(CustodyError) {
        let path = try await source.withLocalFiles([digest]) { paths throws(CustodyError) in paths[0] }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw CustodyError(.io, "\(path): cannot read blob \(digest)") }
        defer { try? handle.close() }
        let upload = try await target.upload(UploadID(resuming: digest), resumingAt: 0)
        do throws(CustodyError) {
            while true {
                let chunk: Data
                do { chunk = try handle.read(upToCount: 4 << 20) ?? Data() } catch {
                    throw CustodyError(.io, "\(path): cannot read blob \(digest): \(error.localizedDescription)")
                }
                if chunk.isEmpty { break }
                try await upload.append(chunk)
            }
            let stored = try await upload.commit(expecting: digest)
            guard stored.size == size else {
                throw CustodyError(.io, "blob \(digest) has \(stored.size) bytes in the source store, not the \(size) its index says")
            }
        } catch {
            await upload.abort()
            throw error
        }
    }
}
