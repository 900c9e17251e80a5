import ArgumentParser
import CustodyClient
import CustodyCore
import Foundation

struct GC: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Delete blobs nothing references (admin), after their grace period.",
        discussion: """
            A blob no version's files and no OCI manifest reference, last written longer ago than the grace period \
            (gc.grace, 24h by default), is deleted from the store and the index; an upload or publish racing the \
            collection keeps its blob. Each run that deletes is one blob.collect event.
            """)

    @Flag(help: "List what would be deleted; delete nothing.")
    var dryRun = false

    @Option(help: "Override gc.grace: 30m, 24h, 7d (at least 1s).")
    var grace: String?

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var remote: RemoteOptions

    struct Request: Encodable {
        var dryRun: Bool
        var grace: String?
    }

    func run() async throws {
        let report: API.GarbageCollection = try await withClient(remote) { client in
            try await client.post("/v1/gc", body: Request(dryRun: dryRun, grace: grace))
        }
        if json { return try printJSON(report) }
        for blob in report.blobs { print("\(blob.digest)  \(blob.size)") }
        let verb = report.dryRun ? "would delete" : "deleted"
        print("\(verb) \(report.blobs.count) unreferenced blobs (\(report.bytes) bytes) unused since \(report.cutoff) (grace \(report.grace))")
    }
}
