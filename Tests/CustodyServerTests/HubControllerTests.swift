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

/// The Hugging Face front door over the router: the resolve contract (commit, sha256 ETag, size, ranges, no Xet),
/// tree listings with folders and paging, paths-info, refs, and its refusals in the Hub's format.
@Suite struct HubControllerTests {
    @Test func resolveTreePathsInfoAndRefs() async throws {
        let (services, secret, root) = try await HardeningTests.services()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let auth: HTTPFields = [.authorization: "Bearer \(secret)"]
        let files = [("config.json", Array(#"{"a": 1}"#.utf8)), ("sub/dir/weights.bin", Array(repeating: UInt8(7), count: 100))]
        let publish = API.PublishRequest(
            version: "1.0", files: files.map { API.FileEntry(path: $0.0, size: UInt64($0.1.count), digest: ContentDigest.of($0.1)) },
            license: API.License(id: "mit"), provenance: API.Provenance(baseModels: ["meta-llama/Llama-3.1-8B"]), signature: nil)
        try await Application(router: buildRouter(services)).test(.router) { client in
            for (_, bytes) in files {
                try await client.execute(uri: "/v1/blobs/\(ContentDigest.of(bytes))", method: .put, headers: auth, body: ByteBuffer(bytes: bytes))
            }
            var commit = ""
            try await client.execute(
                uri: "/v1/models/acme/m/versions", method: .post, headers: auth + [.contentType: "application/json"],
                body: ByteBuffer(bytes: Array(try JSONEncoder().encode(publish)))
            ) { response in
                let detail = try JSONDecoder().decode(API.PublishResponse.self, from: Data(Array(buffer: response.body)))
                commit = String(detail.version.bundleDigest.hex.prefix(40))
            }
            try await client.execute(uri: "/api/models/acme/m/revision/main", method: .get, headers: auth) { response in
                let info = try #require(try JSONSerialization.jsonObject(with: Data(Array(buffer: response.body))) as? [String: Any])
                #expect(info["sha"] as? String == commit)
                #expect((info["tags"] as? [String])?.contains("license:mit") == true)
                #expect(((info["cardData"] as? [String: Any])?["base_model"] as? [String]) == ["meta-llama/Llama-3.1-8B"])
                #expect((info["lastModified"] as? String)?.hasSuffix(".000Z") == true, "the date format huggingface_hub parses")
            }
            let weights = ContentDigest.of(files[1].1).hex
            try await client.execute(uri: "/acme/m/resolve/1.0/sub/dir/weights.bin", method: .head, headers: auth) { response in
                #expect(response.status == .ok)
                #expect(response.headers[HubHeaders.repoCommit] == commit)
                #expect(response.headers[.eTag] == "\"\(weights)\"" && response.headers[HubHeaders.linkedETag] == "\"\(weights)\"")
                #expect(response.headers[HubHeaders.linkedSize] == "100" && response.headers[.contentLength] == "100")
            }
            try await client.execute(
                uri: "/acme/m/resolve/\(commit)/sub/dir/weights.bin", method: .get, headers: auth + [.range: "bytes=90-"]
            ) { response in
                #expect(response.status == .partialContent && response.headers[.contentRange] == "bytes 90-99/100")
                #expect(Array(buffer: response.body) == Array(repeating: 7, count: 10))
            }
            try await client.execute(uri: "/api/models/acme/m/tree/main?recursive=false", method: .get, headers: auth) { response in
                let entries = try #require(try JSONSerialization.jsonObject(with: Data(Array(buffer: response.body))) as? [[String: Any]])
                #expect(entries.map { "\($0["type"]!) \($0["path"]!)" } == ["file config.json", "file model.sig", "directory sub"])
            }
            try await client.execute(uri: "/api/models/acme/m/tree/main/sub?recursive=true", method: .get, headers: auth) { response in
                let entries = try #require(try JSONSerialization.jsonObject(with: Data(Array(buffer: response.body))) as? [[String: Any]])
                #expect(entries.map { $0["path"] as? String } == ["sub/dir", "sub/dir/weights.bin"])
                #expect((entries.last?["lfs"] as? [String: Any])?["oid"] as? String == weights)
            }
            try await client.execute(
                uri: "/api/models/acme/m/paths-info/main", method: .post, headers: auth + [.contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "paths=config.json&paths=sub&paths=nope&expand=false")
            ) { response in
                let entries = try #require(try JSONSerialization.jsonObject(with: Data(Array(buffer: response.body))) as? [[String: Any]])
                #expect(entries.map { $0["path"] as? String } == ["config.json", "sub"])
            }
            try await client.execute(uri: "/api/models/acme/m/refs", method: .get, headers: auth) { response in
                let refs = try #require(try JSONSerialization.jsonObject(with: Data(Array(buffer: response.body))) as? [String: Any])
                #expect((refs["branches"] as? [[String: Any]])?.first?["targetCommit"] as? String == commit)
                #expect((refs["tags"] as? [[String: Any]])?.map { $0["ref"] as? String } == ["refs/tags/1.0"])
            }
            try await client.execute(uri: "/acme/m/resolve/2.0/config.json", method: .get, headers: auth) { response in
                #expect(response.status == .notFound && response.headers[HubHeaders.errorCode] == "RevisionNotFound")
            }
            try await client.execute(uri: "/api/models/acme/other", method: .get, headers: auth) { response in
                #expect(response.status == .notFound && response.headers[HubHeaders.errorCode] == "RepoNotFound")
                #expect(response.headers[.contentType] == "application/json")
            }
        }
        let pulls = try await HardeningTests.events(services, "pull")
        #expect(pulls.count == 1, "a HEAD and a GET of one version by one token: one pull, \(pulls)")
    }

    /// A pull session: the first fetch starts a pull, fetches within the window belong to it, a pause longer than the
    /// window starts the next. The clock is injected.
    @Test func pullSessionsGroupFetchesWithinTheirWindow() {
        let clock = ContinuousClock()
        let start = clock.now
        nonisolated(unsafe) var now = start
        let sessions = PullSessions(window: .seconds(60), now: { now })
        let key = PullSessions.Key(actor: "t", client: "127.0.0.1", model: "acme/m", version: "1", allowed: true)
        #expect(sessions.starts(key))
        now = start + .seconds(59)
        #expect(!sessions.starts(key))
        now = start + .seconds(118)
        #expect(!sessions.starts(key), "the window slides with each fetch")
        now = start + .seconds(200)
        #expect(sessions.starts(key))
        #expect(sessions.starts(PullSessions.Key(actor: "t", client: "10.0.0.2", model: "acme/m", version: "1", allowed: true)))
    }
}
