import CustodyCore
import CustodyTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon against slow, idle and greedy clients, and on a disk that fills up: real processes, real sockets, a
/// real (small) file system. Nothing here waits for a wall-clock window; every wait ends on an event.
@Suite(.serialized) struct LimitsTests {
    /// A registry whose home has `configuration` as its custody.yaml, and, when `tmpfs` is given, its data directory
    /// on a tmpfs of that size.
    static func registry(_ configuration: String, tmpfs: String? = nil) throws -> (RegistryProcess, Mount?) {
        let scratch = try Scratch()
        let home = scratch.path + "/Registry"
        try FileManager.default.createDirectory(atPath: home + "/data", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Tools.packageRoot + "/Registry/policies", toPath: home + "/policies")
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: home + "/custody.yaml"))
        let mount = try tmpfs.map { size in try Mount(tmpfs: home + "/data", size: size) }
        return (try RegistryProcess(scratch: scratch), mount)
    }

    /// A tmpfs mounted for the length of a test (the suite runs as root, as `make test` does on CI).
    final class Mount {
        let path: String
        init(tmpfs path: String, size: String) throws {
            let mounted = try run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size),mode=0700", "tmpfs", path])
            try #require(mounted.status == 0, "mounting a \(size) tmpfs needs root (make test runs as root): \(mounted.stderr)")
            self.path = path
        }
        deinit { _ = try? run("/bin/umount", ["-l", path]) }
    }

    /// `PUT` of a blob of unknown length: `chunks` chunks of `size` bytes of `x`, as chunked transfer encoding, then
    /// the whole answer. A daemon that answers early and closes ends the sending; its answer is what counts.
    static func chunkedUpload(port: Int, token: String, chunks: Int, size: Int) throws -> RawHTTP.Response {
        let fd = try RawHTTP.connect(port: port)
        defer { close(fd) }
        let head =
            "PUT /v1/blobs/sha256:\(String(repeating: "ab", count: 32)) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
            + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        try RawHTTP.send(fd, Array(head.utf8))
        let chunk = Array("\(String(size, radix: 16))\r\n".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: size) + [13, 10]
        for _ in 0..<chunks {
            guard (try? RawHTTP.send(fd, chunk)) != nil else { break }
        }
        try? RawHTTP.send(fd, Array("0\r\n\r\n".utf8))
        return try RawHTTP.read(fd, method: "PUT")
    }

    @Test func halfSentRequestsAreCutOffWhileTheDaemonKeepsAnswering() throws {
        let (registry, _) = try Self.registry("limits:\n  headerTimeout: 1s\n")
        let port = try registry.port()
        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        for _ in 0..<200 {
            let fd = try RawHTTP.connect(port: port)
            // Already cut off (a stalled client on a loaded machine): still counted below.
            try? RawHTTP.send(fd, Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8))
            held.append(fd)
        }
        let healthz = try RawHTTP.exchange(port: port, method: "GET", path: "/healthz")
        #expect(healthz.status == 200, "the daemon answers while 200 clients hold half a header")
        // Each read ends when the daemon closes the connection after its 1 s header timeout (the socket's 5-minute
        // receive timeout only guards against a hang).
        var byte: UInt8 = 0
        let closed = held.filter { fd in
            let count = recv(fd, &byte, 1, 0)
            return count == 0 || (count < 0 && errno == ECONNRESET)
        }
        #expect(closed.count == 200, "every half-sent request was cut off")
    }

    @Test func aSlowUploadIsNotCutOffByTheHeaderTimeout() throws {
        let (registry, _) = try Self.registry("limits:\n  headerTimeout: 1s\n")
        // The body arrives in pieces with pauses longer than the header timeout: silence within a body is the idle
        // timeout's (120 s), so the upload completes.
        let body = Array(String(repeating: "slow bytes ", count: 1000).utf8)
        let fd = try RawHTTP.connect(port: try registry.port())
        defer { close(fd) }
        let head =
            "PUT /v1/blobs/\(ContentDigest.of(body)) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(registry.adminToken)\r\n"
            + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        try RawHTTP.send(fd, Array(head.utf8))
        let quarter = body.count / 4
        for start in stride(from: 0, to: body.count, by: quarter) {
            Thread.sleep(forTimeInterval: 1.5)
            try RawHTTP.send(fd, Array(body[start..<min(start + quarter, body.count)]))
        }
        var answer = [UInt8](repeating: 0, count: 100)
        let count = recv(fd, &answer, answer.count, 0)
        let status = String(decoding: answer[0..<max(count, 0)], as: UTF8.self)
        #expect(status.hasPrefix("HTTP/1.1 201"), "\(status)")
    }

    /// The file store's disk (on S3, blobs never touch it: uploads stream to the bucket).
    @Test(.enabled(if: TestBackend.current.isEmbedded)) func aFullDiskIsAnAnswerAndNothingIsLeftHalfWritten() throws {
        let (registry, mount) = try Self.registry("limits:\n  uploadExpiry: 1s\n", tmpfs: "32m")
        let data = try #require(mount).path
        let small = try GateTests.model(registry, "small", salt: "1")
        #expect(try registry.custody("publish", small, "--name", "acme/small", "--version", "1", "--quiet").status == 0)

        // A file bigger than the disk: refused before a byte is staged, the client stops at once and says why.
        let big = registry.scratch.path + "/big"
        try FileManager.default.createDirectory(atPath: big, withIntermediateDirectories: true)
        try FaultTests.bigFile(big + "/weights.bin", size: 40 << 20)
        let refused = try registry.custody("publish", big, "--name", "acme/big", "--version", "1", "--quiet")
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("bytes free and keeps") && refused.stderr.contains("needs \(40 << 20) more"), "\(refused.stderr)")
        let metrics = try registry.http("GET", "/metrics").body
        #expect(metrics.contains(#"custody_http_requests_total{method="PUT",status="507"} 1"#), "one attempt, no retries: \(metrics)")

        // A body of unknown length runs into the floor (or the disk's end) while it is written: 507, and the staged
        // bytes are gone.
        let streamed = try Self.chunkedUpload(port: try registry.port(), token: registry.adminToken, chunks: 40, size: 1 << 20)
        #expect(streamed.status == 507, "\(streamed.status) \(String(decoding: streamed.body, as: UTF8.self))")
        #expect(String(decoding: streamed.body, as: UTF8.self).contains("nothing was kept"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: data + "/uploads").isEmpty, "nothing half-written")

        // Something else fills the disk below the floor: not ready, blobs refused, but what is stored still pulls and
        // verifies and the log still records and verifies.
        let free = try #require(Self.freeBytes(data))
        let filler = try #require(FileManager.default.createFile(atPath: data + "/filler", contents: nil) ? data + "/filler" : nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: filler))
        try handle.write(contentsOf: Data(count: Int(free - (200 << 10))))
        try handle.close()
        let ready = try registry.http("GET", "/readyz")
        #expect(ready.status == 503 && ready.body.contains("below the"), "\(ready.status) \(ready.body)")
        let pulled = try registry.custody(
            "pull", "acme/small@1", "--output", registry.scratch.path + "/pulled", "--registry-key", registry.registryPublicKey, "--quiet")
        #expect(pulled.status == 0, "\(pulled.stderr)")
        #expect(try registry.custody("verify", registry.scratch.path + "/pulled", "--key", registry.registryPublicKey).status == 0)
        let tiny = try GateTests.model(registry, "tiny", salt: "2")
        let tinyRefused = try registry.custody("publish", tiny, "--name", "acme/tiny", "--version", "1", "--quiet")
        #expect(tinyRefused.status == 2 && tinyRefused.stderr.contains("keeps"), "\(tinyRefused.stderr)")
        #expect(try registry.custody("audit", "verify", "--log-key", registry.keys + "/log.pub").status == 0)
        try FileManager.default.removeItem(atPath: filler)
        #expect(try registry.http("GET", "/readyz").status == 200)

        // An upload cut short stays staged for a resume, until limits.uploadExpiry (1 s here) passes.
        let port = try #require(registry.url.split(separator: ":").last.flatMap { Int($0) })
        let cut = try RawHTTP.connect(port: port)
        try RawHTTP.send(
            cut,
            Array(
                "PUT /v1/blobs/sha256:\(String(repeating: "cd", count: 32)) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(registry.adminToken)\r\nContent-Length: 1000000\r\n\r\n"
                    .utf8)
                + [UInt8](repeating: UInt8(ascii: "y"), count: 300_000))
        close(cut)
        let expired = FaultTests.waitFor(while: { registry.process?.isRunning == true }) {
            let log = (try? String(contentsOfFile: registry.scratch.path + "/serve-1.err", encoding: .utf8)) ?? ""
            return log.contains("expired staged uploads deleted")
        }
        #expect(expired, "the janitor deleted the abandoned upload")
        #expect(try FileManager.default.contentsOfDirectory(atPath: data + "/uploads").isEmpty)

        registry.stop()
        if registry.backend.isEmbedded { #expect(try registry.integrityCheck() == "ok") }
    }

    static func freeBytes(_ path: String) -> UInt64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }
}
