import CustodyCore
import CustodyRegistry
import CustodyStorage
import CustodyStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import CustodyServer

/// `/v1/models` over the router: publish, read, and both ways of starting a pull, each recorded as one.
@Suite struct ModelControllerTests {
    let weights = Array("not really weights, but bytes all the same".utf8)

    @Test func publishReadAndPullsByPathAreRecorded() async throws {
        let (services, secret, root) = try await HardeningTests.services()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let auth: HTTPFields = [.authorization: "Bearer \(secret)"]
        let digest = ContentDigest.of(weights)
        let publish = API.PublishRequest(
            version: "1", files: [API.FileEntry(path: "weights.bin", size: UInt64(weights.count), digest: digest)],
            license: API.License(id: "apache-2.0"), provenance: nil, signature: nil)
        try await Application(router: buildRouter(services)).test(.router) { client in
            try await client.execute(uri: "/v1/blobs/\(digest)", method: .put, headers: auth, body: ByteBuffer(bytes: weights)) {
                #expect($0.status == .created)
            }
            try await client.execute(
                uri: "/v1/models/acme/m/versions", method: .post, headers: auth + [.contentType: "application/json"],
                body: ByteBuffer(bytes: Array(try JSONEncoder().encode(publish)))
            ) { #expect($0.status == .created, "\(String(buffer: $0.body))") }
            try await client.execute(uri: "/v1/models/acme/m/versions/1", method: .get, headers: auth) { response in
                let detail = try JSONDecoder().decode(API.VersionDetail.self, from: Data(Array(buffer: response.body)))
                #expect(detail.files.map(\.digest) == [digest])
            }
            try await client.execute(uri: "/v1/models/acme/m/versions/1/files/weights.bin", method: .get, headers: auth) {
                #expect(Array(buffer: $0.body) == weights)
            }
            try await client.execute(uri: "/v1/models/acme/m/versions/1/files/other.bin", method: .get, headers: auth) {
                #expect($0.status == .notFound)
            }
            try await client.execute(uri: "/v1/models/acme/m/versions/1/signature", method: .get, headers: auth) {
                #expect($0.status == .ok)
            }
        }
        let pulls = try await HardeningTests.events(services, "pull")
        #expect(pulls.count == 2, "one pull per request that starts one, none for the file that is not there")
        #expect(pulls.first?.detail == "file weights.bin, ungated (role admin)")
        #expect(pulls.last?.detail?.hasPrefix("bundle sha256:") == true && pulls.last?.detail?.hasSuffix(", ungated (role admin)") == true)
        #expect(pulls.allSatisfy { $0.model == "acme/m" && $0.version == "1" })
    }
}
