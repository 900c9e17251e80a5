import AsyncHTTPClient
import CustodyCore
import CustodyTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import CustodyS3

/// The S3 client against a real S3 server (SeaweedFS 4.48 on loopback): objects, conditional writes, ranged and
/// presigned reads, multipart uploads completed only when asked and aborted without a trace, listings.
@Suite(.serialized) struct S3ClientTests {
    static func client(_ server: SeaweedProcess, prefix: String = "test") async throws -> (S3Client, HTTPClient) {
        let http = HTTPClient.shared
        let client = S3Client(
            location: S3Location(endpoint: server.endpoint, bucket: server.bucket, prefix: prefix),
            credentials: .init(accessKey: server.accessKey, secretKey: server.secretKey), http: http)
        // The bucket is made as the server starts: wait for it (no deadline; a server that exits ends the wait).
        while true {
            do throws(S3Error) {
                _ = try await client.list()
                return (client, http)
            } catch {
                guard server.isRunning else { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    @Test func objectsMultipartUploadsAndPresignedReads() async throws {
        let scratch = try Scratch()
        let server = try SeaweedProcess(scratch: scratch)
        let (client, http) = try await Self.client(server)

        let small = Array("hello, custody".utf8)
        #expect(try await client.put("blobs/a", small) == .created)
        #expect(try await client.put("blobs/a", Array("other".utf8)) == .alreadyThere, "If-None-Match: * keeps the first")
        #expect(try await client.get("blobs/a") == small)
        #expect(try await client.get("blobs/a", range: 7...13) == Array("custody".utf8))
        #expect(try await client.size(of: "blobs/a") == UInt64(small.count))
        #expect(try await client.size(of: "blobs/none") == nil)
        await #expect(throws: S3Error.self) { _ = try await client.get("blobs/none") }

        // A presigned GET works without credentials, ranges included.
        let url = client.presignedGet("blobs/a", seconds: 60)
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Range", value: "bytes=0-4")
        let response = try await http.execute(request, timeout: .seconds(30))
        #expect(response.status.code == 206)
        #expect(Array(try await response.body.collect(upTo: 1 << 20).readableBytesView) == Array("hello".utf8))

        // Multipart: 5 MiB + a short last part, under the final key; completed once, the second completion finds it there.
        let part1 = (0..<(5 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let part2 = Array("the end".utf8)
        let id = try await client.createMultipartUpload("blobs/big")
        #expect(try await client.multipartUploads(under: "blobs/").contains { $0.name == "blobs/big" && $0.uploadID == id })
        let etags = [
            try await client.uploadPart("blobs/big", uploadID: id, number: 1, part1),
            try await client.uploadPart("blobs/big", uploadID: id, number: 2, part2),
        ]
        #expect(try await client.size(of: "blobs/big") == nil, "nothing is visible before completion")
        #expect(try await client.completeMultipartUpload("blobs/big", uploadID: id, parts: etags) == .created)
        #expect(try await client.size(of: "blobs/big") == UInt64(part1.count + part2.count))
        #expect(try await client.get("blobs/big", range: UInt64(part1.count)...UInt64(part1.count + 6)) == part2)
        let racer = try await client.createMultipartUpload("blobs/big")
        let racerTag = try await client.uploadPart("blobs/big", uploadID: racer, number: 1, part2)
        #expect(try await client.completeMultipartUpload("blobs/big", uploadID: racer, parts: [racerTag]) == .alreadyThere)
        try await client.abortMultipartUpload("blobs/big", uploadID: racer)
        #expect(try await client.size(of: "blobs/big") == UInt64(part1.count + part2.count), "the racing writer changed nothing")

        // An aborted upload leaves neither an object nor an upload.
        let abandoned = try await client.createMultipartUpload("blobs/abandoned")
        _ = try await client.uploadPart("blobs/abandoned", uploadID: abandoned, number: 1, part2)
        try await client.abortMultipartUpload("blobs/abandoned", uploadID: abandoned)
        #expect(try await client.multipartUploads(under: "blobs/").allSatisfy { $0.uploadID != abandoned })
        #expect(try await client.size(of: "blobs/abandoned") == nil)

        let listed = try await client.list(under: "blobs/")
        #expect(listed.map(\.name).sorted() == ["blobs/a", "blobs/big"])
        try await client.delete("blobs/a")
        try await client.delete("blobs/a")
        #expect(try await client.size(of: "blobs/a") == nil)

        // Wrong credentials: the server's refusal, with its code.
        let wrong = S3Client(
            location: client.location, credentials: .init(accessKey: server.accessKey, secretKey: "not-the-secret"), http: http)
        await #expect {
            _ = try await wrong.put("blobs/x", small)
        } throws: { error in
            (error as? S3Error)?.status == 403 && (error as? S3Error)?.code == "SignatureDoesNotMatch"
        }
    }

    @Test func locationsParse() throws {
        let location = try S3Location(parsing: "s3://models/registry/a?endpoint=http://127.0.0.1:8333&region=eu-west-1")
        #expect(location == S3Location(endpoint: "http://127.0.0.1:8333", bucket: "models", prefix: "registry/a", region: "eu-west-1"))
        #expect(location.key("blobs/sha256/ab") == "registry/a/blobs/sha256/ab")
        #expect(throws: S3Error.self) { try S3Location(parsing: "s3://models") }
        #expect(throws: S3Error.self) { try S3Location(parsing: "http://models?endpoint=http://x") }
    }
}

extension S3ClientTests {
    /// Blobs stream into their final key as parts while hashed; only the right digest completes them, two writers of
    /// one blob end with one object, and a wrong digest leaves neither an object nor an upload.
    @Test func blobsAreWrittenUnderTheirDigestOnlyWhenTheyAreIt() async throws {
        let scratch = try Scratch()
        let server = try SeaweedProcess(scratch: scratch)
        let (client, _) = try await Self.client(server, prefix: "registry")
        let bytes = pseudoRandomBytes(13 << 20, seed: 7)
        let digest = ContentDigest.of(bytes)
        let key = "blobs/sha256/" + digest.hex

        // Two writers of the same blob, interleaved: both succeed, one object.
        let first = S3BlobWriter(client: client, name: key, partSize: 5 << 20)
        let second = S3BlobWriter(client: client, name: key, partSize: 5 << 20)
        for start in stride(from: 0, to: bytes.count, by: 1 << 20) {
            let chunk = Array(bytes[start..<min(start + (1 << 20), bytes.count)])
            try await first.append(chunk)
            try await second.append(chunk)
        }
        #expect(await first.multipartUploadID != nil, "parts went out while the bytes arrived")
        #expect(try await client.size(of: key) == nil, "nothing is visible before completion")
        let one = try await first.complete(expecting: digest)
        let two = try await second.complete(expecting: digest)
        #expect(one.digest == digest && one.size == UInt64(bytes.count) && one.written == .created)
        #expect(two.written == .alreadyThere)
        #expect(try await client.get(key, range: 0...99) == Array(bytes[0..<100]))
        #expect(try await client.multipartUploads(under: "blobs/").isEmpty, "the loser's upload was aborted")

        // The wrong digest: aborted, nothing kept.
        let wrong = S3BlobWriter(client: client, name: "blobs/sha256/" + String(repeating: "0", count: 64), partSize: 5 << 20)
        try await wrong.append(Array(bytes[0..<(6 << 20)]))
        await #expect {
            _ = try await wrong.complete(expecting: ContentDigest.of([1, 2, 3]))
        } throws: { error in
            (error as? S3Error)?.code == "BadDigest"
        }
        #expect(try await client.multipartUploads(under: "blobs/").isEmpty)
        #expect(try await client.list(under: "blobs/").map(\.name) == [key])

        // A small blob is one conditional put.
        let small = Array("tiny".utf8)
        let writer = S3BlobWriter(client: client, name: "blobs/sha256/" + ContentDigest.of(small).hex)
        try await writer.append(small)
        #expect(try await writer.complete(expecting: ContentDigest.of(small)).written == .created)
        #expect(await writer.multipartUploadID == nil)
    }
}
