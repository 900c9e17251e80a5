import CustodyCore
import CustodyRegistry
import CustodyStorage
import CustodyStore
import CustodyTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import CustodyServer

#if canImport(Glibc)
    import Glibc
#endif

/// `/v1/blobs` and `/v1/uploads` over the router: the upload objects behind them seen from the wire.
@Suite struct BlobControllerTests {
    let content = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
    var digest: ContentDigest { ContentDigest.of(content) }

    @Test func anUploadIsStoredAndServedWithRanges() async throws {
        let (services, secret, root) = try await HardeningTests.services()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let auth: HTTPFields = [.authorization: "Bearer \(secret)"]
        try await Application(router: buildRouter(services)).test(.router) { client in
            try await client.execute(uri: "/v1/blobs/\(digest)", method: .head, headers: auth) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/v1/blobs/\(digest)", method: .put, headers: auth, body: ByteBuffer(bytes: content)) {
                #expect($0.status == .created)
                #expect($0.headers[.location] == "/v1/blobs/\(digest)")
            }
            try await client.execute(uri: "/v1/blobs/\(digest)", method: .put, headers: auth, body: ByteBuffer(bytes: content)) {
                #expect($0.status == .ok, "a stored blob is not received twice")
            }
            try await client.execute(uri: "/v1/blobs/\(digest)", method: .head, headers: auth) {
                #expect($0.status == .ok)
                #expect($0.headers[.contentLength] == String(content.count))
            }
            var ranged = auth
            ranged[.range] = "bytes=10-19"
            try await client.execute(uri: "/v1/blobs/\(digest)", method: .get, headers: ranged) {
                #expect($0.status == .partialContent)
                #expect(Array(buffer: $0.body) == Array(content[10...19]))
                #expect($0.headers[.contentRange] == "bytes 10-19/\(content.count)")
            }
            ranged[.range] = "bytes=\(content.count)-"
            try await client.execute(uri: "/v1/blobs/\(digest)", method: .get, headers: ranged) {
                #expect($0.status == .rangeNotSatisfiable)
            }
            let missing = ContentDigest.of([1, 2, 3])
            try await client.execute(
                uri: "/v1/blobs/missing", method: .post, headers: auth + [.contentType: "application/json"],
                body: ByteBuffer(string: "{\"digests\":[\"\(digest)\",\"\(missing)\"]}")
            ) { #expect(String(buffer: $0.body) == "{\"digests\":[\"\(missing)\"]}") }
        }
    }

    @Test func bytesThatHashElsewhereAreRefusedAndNothingIsKept() async throws {
        let (services, secret, root) = try await HardeningTests.services()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await Application(router: buildRouter(services)).test(.router) { client in
            try await client.execute(
                uri: "/v1/blobs/\(digest)", method: .put, headers: [.authorization: "Bearer \(secret)"], body: ByteBuffer(bytes: content.dropLast())
            ) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("not \(digest); nothing was kept"))
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: services.configuration.dataDirectory + "/uploads").isEmpty)
    }

    @Test func aResumeFromTheWrongOffsetIs416WithTheOffsetToUse() async throws {
        let (services, secret, root) = try await HardeningTests.services()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let upload = try await services.blobs.upload(UploadID(resuming: digest), resumingAt: 0)
        try await upload.append(Array(content[0..<1000]))
        await upload.suspend()
        try await Application(router: buildRouter(services)).test(.router) { client in
            try await client.execute(
                uri: "/v1/blobs/\(digest)", method: .put, headers: [.authorization: "Bearer \(secret)", BlobController.uploadOffset: "500"],
                body: ByteBuffer(bytes: content[500...])
            ) { response in
                #expect(response.status == .rangeNotSatisfiable)
                #expect(response.headers[BlobController.uploadOffset] == "1000")
            }
            try await client.execute(
                uri: "/v1/blobs/\(digest)", method: .put, headers: [.authorization: "Bearer \(secret)", BlobController.uploadOffset: "1000"],
                body: ByteBuffer(bytes: content[1000...])
            ) { #expect($0.status == .created) }
        }
    }

    /// A body cut short by the client stays staged; the upload status says how much arrived, and the rest completes it.
    @Test func aCutShortBodyResumesOverALiveServer() async throws {
        let (services, secret, root) = try await HardeningTests.services()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let sent = 1_500_000
        try await Application(router: buildRouter(services)).test(.live) { client in
            let port = try #require(client.port)
            try Self.sendAndHangUp(
                port: port,
                head: "PUT /v1/blobs/\(digest) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(secret)\r\nContent-Length: \(content.count)\r\n\r\n",
                body: Array(content[0..<sent]))
            // The server notices the hang-up on its own time: ask until it has (no deadline).
            var offset = ""
            while offset != String(sent) {
                try await client.execute(uri: "/v1/uploads/\(digest)", method: .head, headers: [.authorization: "Bearer \(secret)"]) {
                    offset = $0.headers[BlobController.uploadOffset] ?? ""
                }
                if offset != String(sent) { try await Task.sleep(for: .milliseconds(5)) }
            }
            try await client.execute(
                uri: "/v1/blobs/\(digest)", method: .put, headers: [.authorization: "Bearer \(secret)", BlobController.uploadOffset: String(sent)],
                body: ByteBuffer(bytes: content[sent...])
            ) { #expect($0.status == .created) }
            try await client.execute(uri: "/v1/blobs/\(digest)", method: .get, headers: [.authorization: "Bearer \(secret)"]) {
                #expect(Array(buffer: $0.body) == content)
            }
        }
    }

    /// Writes a request head and part of its body on a fresh connection, then closes it.
    static func sendAndHangUp(port: Int, head: String, body: [UInt8]) throws {
        let fd = try RawHTTP.connect(port: port)
        defer { close(fd) }
        try RawHTTP.send(fd, Array(head.utf8) + body)
    }
}

extension HTTPFields {
    static func + (lhs: HTTPFields, rhs: HTTPFields) -> HTTPFields {
        var out = lhs
        out.append(contentsOf: rhs)
        return out
    }
}
