import Crypto
import CustodyCore
import CustodyTestSupport
import Foundation
import Synchronization
import Testing

@testable import CustodyClient

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The plain-HTTP blob reader against a loopback server that answers one connection with canned bytes: what it
/// keeps, hashes and reports for a whole body, a refusal, a body it does not take, and a connection cut short.
@Suite struct SocketDownloadTests {
    /// Accepts one connection on 127.0.0.1, reads the request head, writes `response` and closes.
    final class CannedServer: Sendable {
        let port: Int
        private let seen = Mutex<String>("")
        private let listener: Int32

        /// The request head the server read.
        var request: String { seen.withLock { $0 } }

        init(response: [UInt8]) throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0, listen(fd, 1) == 0 else { throw CustodyError(.io, "cannot listen on loopback") }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            port = Int(UInt16(bigEndian: address.sin_port))
            listener = fd
            Thread { [self] in serve(response) }.start()
        }

        private func serve(_ response: [UInt8]) {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            var head: [UInt8] = []
            var byte: UInt8 = 0
            while recv(connection, &byte, 1, 0) == 1 {
                head.append(byte)
                if head.suffix(4) == [13, 10, 13, 10] { break }
            }
            seen.withLock { $0 = String(decoding: head, as: UTF8.self) }
            try? RawHTTP.send(connection, response)
            close(connection)
        }

        deinit { close(listener) }
    }

    static func fetch(
        _ server: CannedServer, size: UInt64, offset: UInt64 = 0, into path: String
    ) throws(CustodyError) -> (SocketDownload.Outcome, SHA256, Int) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        defer { close(fd) }
        var hasher = SHA256()
        let counted = Mutex(0)
        let outcome = try SocketDownload.fetch(
            host: "127.0.0.1", port: server.port, path: "/v1/blobs/x", headers: [("Authorization", "Bearer cst_test")], offset: offset,
            size: size, into: fd, file: path, hasher: &hasher, progress: { n in counted.withLock { $0 += n } })
        return (outcome, hasher, counted.withLock { $0 })
    }

    static func scratch() -> String {
        NSTemporaryDirectory() + "socket-download-\(UUID().uuidString)"
    }

    @Test func aWholeBodyIsWrittenAndHashedInBlocks() throws {
        // Over two blocks, not a multiple of the block size.
        let body = (0..<(SocketDownload.blockSize * 2 + 12345)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let server = try CannedServer(response: Array("HTTP/1.1 200 OK\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        let path = Self.scratch()
        defer { unlink(path) }
        let (outcome, hasher, counted) = try Self.fetch(server, size: UInt64(body.count), into: path)
        guard case .complete = outcome else {
            Issue.record("expected the whole body, got \(outcome)")
            return
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(body))
        #expect(Array(hasher.finalize()) == Array(SHA256.hash(data: body)))
        #expect(counted == body.count)
        let request = server.request
        #expect(request.hasPrefix("GET /v1/blobs/x HTTP/1.1\r\n"))
        #expect(request.contains("Authorization: Bearer cst_test\r\n"))
        #expect(!request.contains("Range:"))
    }

    @Test func aResumedFetchAsksForTheRestAndWritesAtTheOffset() throws {
        let server = try CannedServer(response: Array("HTTP/1.1 206 Partial Content\r\nContent-Length: 4\r\n\r\nWXYZ".utf8))
        let path = Self.scratch()
        defer { unlink(path) }
        try Data("abcd".utf8).write(to: URL(fileURLWithPath: path))
        let (outcome, _, _) = try Self.fetch(server, size: 8, offset: 4, into: path)
        guard case .complete = outcome else {
            Issue.record("expected the rest of the body, got \(outcome)")
            return
        }
        #expect(String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self) == "abcdWXYZ")
        #expect(server.request.contains("Range: bytes=4-\r\n"))
    }

    @Test func aRefusalIsReturnedWithTheRegistrysProblemAndNothingIsWritten() throws {
        let problem = #"{"title":"Forbidden","status":403,"detail":"blob is not part of any version allowed in production"}"#
        let server = try CannedServer(
            response: Array(
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/problem+json\r\nContent-Length: \(problem.utf8.count)\r\n\r\n\(problem)".utf8))
        let path = Self.scratch()
        defer { unlink(path) }
        let (outcome, _, counted) = try Self.fetch(server, size: 100, into: path)
        guard case .refused(let refusal) = outcome else {
            Issue.record("expected a refusal, got \(outcome)")
            return
        }
        #expect(refusal.status == 403)
        #expect(refusal.reason == "Forbidden")
        #expect(String(decoding: refusal.body, as: UTF8.self) == problem)
        #expect(counted == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).isEmpty)
    }

    @Test func aChunkedBodyIsLeftToTheHTTPClient() throws {
        let server = try CannedServer(response: Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n".utf8))
        let path = Self.scratch()
        defer { unlink(path) }
        let (outcome, _, _) = try Self.fetch(server, size: 4, into: path)
        guard case .refused(let refusal) = outcome else {
            Issue.record("expected a refusal, got \(outcome)")
            return
        }
        #expect(refusal.status == 200)
        #expect(refusal.chunked)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).isEmpty)
    }

    @Test func aBodyCutShortFailsNamingHowMuchArrivedAndKeepsOnlyWholeBlocks() throws {
        let blocks = SocketDownload.blockSize + 1000
        let body = [UInt8](repeating: 7, count: blocks)
        let server = try CannedServer(response: Array("HTTP/1.1 200 OK\r\nContent-Length: \(blocks * 2)\r\n\r\n".utf8) + body)
        let path = Self.scratch()
        defer { unlink(path) }
        #expect {
            _ = try Self.fetch(server, size: UInt64(blocks * 2), into: path)
        } throws: { error in
            guard let error = error as? CustodyError else { return false }
            return error.code == .remote && error.message.contains("interrupted after \(blocks) of \(blocks * 2) bytes")
        }
        // The first block was written; the 1,000 bytes after it were not, and a retry rehashes from the block boundary.
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count == SocketDownload.blockSize)
    }
}
