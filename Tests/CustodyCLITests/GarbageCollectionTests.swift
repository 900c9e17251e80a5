import CustodyCore
import CustodyTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Garbage collection end to end, on either backend: an unreferenced blob goes once its grace period is over (the
/// grace given per run: no test waits for a clock), a version's blobs and a blob being uploaded meanwhile never do.
@Suite struct GarbageCollectionTests {
    @Test func unreferencedBlobsGoAfterTheirGraceAndNothingInFlightOrReferencedDoes() throws {
        let registry = try RegistryProcess()
        let model = try GateTests.model(registry, "m", salt: "1")
        #expect(try registry.custody("publish", model, "--name", "acme/m", "--version", "1", "--quiet").status == 0)
        let loose = Data("an unreferenced blob".utf8)
        let looseDigest = ContentDigest.of(Array(loose))
        #expect(try registry.http("PUT", "/v1/blobs/\(looseDigest)", token: registry.adminToken, body: loose).status == 201)

        // Within its grace period it stays; a dry run past it lists it alone and deletes nothing. (Records are timed
        // to the second: past two second boundaries, a blob is older than a grace of one second, however fast.)
        let fresh = try registry.custody("gc", "--dry-run", "--grace", "1h", "--json")
        #expect(fresh.status == 0, "\(fresh.stderr)")
        #expect(try Self.digests(fresh).isEmpty, "\(fresh.stdout)")
        let written = Int(Date().timeIntervalSince1970)
        while Int(Date().timeIntervalSince1970) < written + 2 { Thread.sleep(forTimeInterval: 0.05) }
        let dry = try registry.custody("gc", "--dry-run", "--grace", "1s", "--json")
        #expect(try Self.digests(dry) == [looseDigest.description], "\(dry.stdout)")
        #expect(try registry.http("HEAD", "/v1/blobs/\(looseDigest)", token: registry.adminToken).status == 200, "a dry run deletes nothing")

        // A blob half uploaded while the collector runs: untouched, and it completes after.
        let big = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let bigDigest = ContentDigest.of(big)
        let socket = try RawHTTP.connect(port: try registry.port())
        defer { close(socket) }
        try RawHTTP.send(
            socket,
            Array(
                "PUT /v1/blobs/\(bigDigest) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(registry.adminToken)\r\nContent-Length: \(big.count)\r\n\r\n"
                    .utf8) + big[..<(1 << 20)])
        let collected = try registry.custody("gc", "--grace", "1s", "--json")
        #expect(collected.status == 0, "\(collected.stderr)")
        #expect(try Self.digests(collected) == [looseDigest.description], "\(collected.stdout)")
        try RawHTTP.send(socket, Array(big[(1 << 20)...]))
        var answer = [UInt8](repeating: 0, count: 64)
        let count = recv(socket, &answer, answer.count, 0)
        #expect(String(decoding: answer[0..<max(count, 0)], as: UTF8.self).hasPrefix("HTTP/1.1 201"), "the upload in flight completes")

        #expect(try registry.http("HEAD", "/v1/blobs/\(looseDigest)", token: registry.adminToken).status == 404, "collected")
        #expect(try registry.http("HEAD", "/v1/blobs/\(bigDigest)", token: registry.adminToken).status == 200)
        let output = registry.scratch.path + "/pulled"
        let pulled = try registry.custody("pull", "acme/m@1", "--output", output, "--registry-key", registry.registryPublicKey, "--quiet")
        #expect(pulled.status == 0, "a version's blobs are never collected: \(pulled.stderr)")
        let log = try registry.custody("audit", "log", "--type", "blob.collect", "--json")
        #expect(log.stdout.contains("1 unreferenced blobs (20 bytes)"), "\(log.stdout)")
        // Collected, the blob can be uploaded again.
        #expect(try registry.http("PUT", "/v1/blobs/\(looseDigest)", token: registry.adminToken, body: loose).status == 201)
        let tooShort = try registry.custody("gc", "--grace", "0")
        #expect(tooShort.status == 2)
        #expect(tooShort.stderr.contains("shorter than the shortest grace period, 1s"), "\(tooShort.stderr)")
    }

    static func digests(_ result: ProcessResult) throws -> [String] {
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
        return (report["blobs"] as? [[String: Any]] ?? []).compactMap { $0["digest"] as? String }
    }
}
