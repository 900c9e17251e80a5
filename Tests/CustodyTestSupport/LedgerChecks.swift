package import CustodyStorage
import Foundation
import Testing

/// What every ``UploadLedger`` does: the heartbeats `writer` records, `reader` (another daemon's view, or the same
/// store) sees until they are older than its cutoff, and then forgets them.
package func checkUploadLedger(writer: any UploadLedger, reader: any UploadLedger) async throws {
    let now = Date()
    try await writer.touchUploads(["u1", "u2"], at: now)
    try await writer.touchUploads(["u2"], at: now.addingTimeInterval(60))
    #expect(try await reader.uploadsTouched(since: now) == ["u1", "u2"])
    #expect(try await reader.uploadsTouched(since: now.addingTimeInterval(30)) == ["u2"])
    #expect(try await writer.uploadsTouched(since: now) == ["u2"], "older records are forgotten")
}
