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

/// The OCI front door over the router: authentication (challenge, token endpoint, Basic), the upload state machine
/// and its refusals, manifest checks, and each refusal in the spec's error format with nothing stored.
@Suite struct OCIControllerTests {
    static func error(_ response: TestResponse) -> (code: String?, message: String?) {
        let body = try? JSONSerialization.jsonObject(with: Data(Array(buffer: response.body))) as? [String: Any]
        let first = (body?["errors"] as? [[String: Any]])?.first
        return (first?["code"] as? String, first?["message"] as? String)
    }

    static func token(_ services: RegistryServices, role: String, namespaces: [String] = [], environments: [String] = []) async throws -> String {
        try await services.tokenAdmin.create(
            API.TokenCreateRequest(role: role, name: role, namespaces: namespaces, environments: environments, expiresAt: nil)
        ).secret
    }

    static func basic(_ secret: String) -> HTTPFields {
        [.authorization: "Basic " + Data("ci:\(secret)".utf8).base64EncodedString()]
    }

    @Test func anonymousRequestsAreChallengedAndTheTokenEndpointAnswers() async throws {
        let (services, secret, root) = try await HardeningTests.services()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await Application(router: buildRouter(services)).test(.router) { client in
            try await client.execute(uri: "/v2/", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer realm=\"http://") == true)
                #expect(response.headers[.wwwAuthenticate]?.contains("/v2/token\",service=\"custody\"") == true)
                #expect(response.headers[OCIHeaders.apiVersion] == "registry/2.0")
                #expect(Self.error(response).code == "UNAUTHORIZED")
            }
            try await client.execute(uri: "/v2/acme/m/manifests/1", method: .get) { response in
                #expect(response.headers[.wwwAuthenticate]?.hasSuffix("scope=\"repository:acme/m:pull\"") == true)
            }
            try await client.execute(uri: "/v2/acme/m/blobs/uploads/", method: .post) { response in
                #expect(response.headers[.wwwAuthenticate]?.hasSuffix("scope=\"repository:acme/m:pull,push\"") == true)
            }
            try await client.execute(uri: "/v2/token?service=custody&scope=repository:acme/m:pull", method: .get, headers: Self.basic(secret)) {
                response in
                let body = try #require(try JSONSerialization.jsonObject(with: Data(Array(buffer: response.body))) as? [String: Any])
                #expect(response.status == .ok && body["token"] as? String == secret && body["access_token"] as? String == secret)
            }
            try await client.execute(uri: "/v2/token", method: .get) { response in
                #expect(response.status == .unauthorized && response.headers[.wwwAuthenticate] == "Basic realm=\"custody\"")
            }
            try await client.execute(uri: "/v2/", method: .get, headers: Self.basic(secret)) { response in
                #expect(response.status == .ok && String(buffer: response.body) == "{}")
            }
            try await client.execute(uri: "/v2/", method: .get, headers: Self.basic("cst_wrong")) { response in
                #expect(response.status == .unauthorized && Self.error(response).code == "UNAUTHORIZED")
            }
        }
    }

    @Test func uploadsRefuseWhatTheSpecRefusesAndKeepNothing() async throws {
        let (services, secret, root) = try await HardeningTests.services()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let other = try await Self.token(services, role: "publisher", namespaces: ["acme"])
        let consumer = try await Self.token(services, role: "consumer", environments: ["production"])
        let auth: HTTPFields = [.authorization: "Bearer \(secret)"]
        let bytes = Array("0123456789abcdefghij".utf8)
        let digest = ContentDigest.of(bytes)
        try await Application(router: buildRouter(services)).test(.router) { client in
            var location = ""
            try await client.execute(uri: "/v2/acme/m/blobs/uploads/", method: .post, headers: auth) { response in
                #expect(response.status == .accepted && response.headers[OCIHeaders.range] == "0-0")
                location = try #require(response.headers[.location])
            }
            try await client.execute(
                uri: location, method: .patch, headers: auth + [.contentRange: "0-9"], body: ByteBuffer(bytes: bytes[0..<10])
            ) { response in
                #expect(response.status == .accepted && response.headers[OCIHeaders.range] == "0-9")
            }
            // A repeated chunk, a gap, a range that disagrees with the body: refused, nothing appended.
            for range in ["0-9", "12-21"] {
                try await client.execute(
                    uri: location, method: .patch, headers: auth + [.contentRange: range], body: ByteBuffer(bytes: bytes[10..<20])
                ) { response in
                    #expect(response.status == .rangeNotSatisfiable, "\(range)")
                    #expect(response.headers[OCIHeaders.range] == "0-9")
                    #expect(Self.error(response).code == "BLOB_UPLOAD_INVALID")
                }
            }
            try await client.execute(
                uri: location, method: .patch, headers: auth + [.contentRange: "10-29"], body: ByteBuffer(bytes: bytes[10..<20])
            ) { response in
                #expect(response.status == .badRequest)
            }
            // Another token's request for this upload: as if there were none.
            for request in [(HTTPRequest.Method.get, ""), (.patch, ""), (.put, "?digest=\(digest)"), (.delete, "")] {
                try await client.execute(uri: location + request.1, method: request.0, headers: [.authorization: "Bearer \(other)"]) { response in
                    #expect(response.status == .notFound && Self.error(response).code == "BLOB_UPLOAD_UNKNOWN", "\(request)")
                }
            }
            try await client.execute(uri: location, method: .get, headers: auth) { response in
                #expect(response.status == .noContent && response.headers[OCIHeaders.range] == "0-9")
            }
            // The wrong digest at the end: refused, the session is gone, no blob.
            let wrong = ContentDigest.of(Array("other".utf8))
            try await client.execute(uri: location + "?digest=\(wrong)", method: .put, headers: auth, body: ByteBuffer(bytes: bytes[10..<20])) {
                response in
                #expect(response.status == .badRequest && Self.error(response).code == "DIGEST_INVALID")
            }
            for candidate in [wrong, digest] {
                try await client.execute(uri: "/v2/acme/m/blobs/\(candidate)", method: .head, headers: auth) { response in
                    #expect(response.status == .notFound)
                }
            }
            try await client.execute(uri: location, method: .get, headers: auth) { response in
                #expect(response.status == .notFound)
            }
            // Monolithic, then a blob by digest with its headers; a malformed digest; a consumer may not push.
            try await client.execute(uri: "/v2/acme/m/blobs/uploads/?digest=\(digest)", method: .post, headers: auth, body: ByteBuffer(bytes: bytes))
            {
                response in
                #expect(response.status == .created && response.headers[OCIHeaders.contentDigest] == digest.description)
            }
            try await client.execute(uri: "/v2/acme/m/blobs/\(digest)", method: .get, headers: auth + [.range: "bytes=2-4"]) { response in
                #expect(response.status == .partialContent && Array(buffer: response.body) == Array("234".utf8))
                #expect(response.headers[OCIHeaders.contentDigest] == digest.description)
            }
            try await client.execute(uri: "/v2/acme/m/blobs/sha256:xyz", method: .get, headers: auth) { response in
                #expect(response.status == .badRequest && Self.error(response).code == "DIGEST_INVALID")
            }
            try await client.execute(uri: "/v2/acme/m/blobs/uploads/", method: .post, headers: [.authorization: "Bearer \(consumer)"]) { response in
                #expect(response.status == .forbidden && Self.error(response).code == "DENIED")
            }
            try await client.execute(uri: "/v2/Acme/M/tags/list", method: .get, headers: auth) { response in
                #expect(response.status == .badRequest && Self.error(response).code == "NAME_INVALID")
            }
            try await client.execute(uri: "/v2/acme/none/tags/list", method: .get, headers: auth) { response in
                #expect(response.status == .notFound && Self.error(response).code == "NAME_UNKNOWN")
            }
        }
    }

    @Test func manifestsAreCheckedBeforeAnythingIsStored() async throws {
        let (services, secret, root) = try await HardeningTests.services { $0.ociPlainNamespaces = ["images"] }
        defer { try? FileManager.default.removeItem(atPath: root) }
        let auth: HTTPFields = [.authorization: "Bearer \(secret)"]
        let config = Array(#"{"architecture":"amd64","os":"linux"}"#.utf8)
        let layer = Array(repeating: UInt8(1), count: 64)
        func manifest(config type: String, layers: [[String: Any]]) throws -> ByteBuffer {
            let document: [String: Any] = [
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": ["mediaType": type, "digest": ContentDigest.of(config).description, "size": config.count], "layers": layers,
            ]
            return ByteBuffer(bytes: Array(try JSONSerialization.data(withJSONObject: document)))
        }
        let layers: [[String: Any]] = [
            ["mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ContentDigest.of(layer).description, "size": layer.count]
        ]
        let image = try manifest(config: "application/vnd.oci.image.config.v1+json", layers: layers)
        let headers = auth + [.contentType: "application/vnd.oci.image.manifest.v1+json"]
        try await Application(router: buildRouter(services)).test(.router) { client in
            try await client.execute(uri: "/v2/acme/m/manifests/1", method: .put, headers: headers, body: image) { response in
                #expect(response.status == .badRequest && Self.error(response).code == "MANIFEST_BLOB_UNKNOWN")
            }
            for bytes in [config, layer] {
                try await client.execute(
                    uri: "/v2/acme/m/blobs/uploads/?digest=\(ContentDigest.of(bytes))", method: .post, headers: auth, body: ByteBuffer(bytes: bytes)
                ) { response in #expect(response.status == .created) }
            }
            // A container image is not a model: refused outside the namespaces configured for plain artifacts.
            try await client.execute(uri: "/v2/acme/m/manifests/1", method: .put, headers: headers, body: image) { response in
                #expect(response.status == .badRequest && Self.error(response).code == "UNSUPPORTED")
                #expect(Self.error(response).message?.contains("oci.plainNamespaces") == true)
            }
            var digest = ""
            try await client.execute(uri: "/v2/images/base/manifests/1", method: .put, headers: headers, body: image) { response in
                #expect(response.status == .created)
                digest = try #require(response.headers[OCIHeaders.contentDigest])
                #expect(response.headers[.location] == "/v2/images/base/manifests/\(digest)")
            }
            try await client.execute(uri: "/v2/images/base/manifests/1", method: .get, headers: auth) { response in
                #expect(response.status == .ok && Array(buffer: response.body) == Array(buffer: image), "the exact bytes")
                #expect(response.headers[.contentType] == "application/vnd.oci.image.manifest.v1+json")
            }
            // The wrong digest, a bad tag, a media type that contradicts the body, bytes that are not JSON, too many bytes.
            let zero = "sha256:" + String(repeating: "0", count: 64)
            try await client.execute(uri: "/v2/images/base/manifests/\(zero)", method: .put, headers: headers, body: image) { response in
                #expect(response.status == .badRequest && Self.error(response).code == "DIGEST_INVALID")
            }
            try await client.execute(uri: "/v2/images/base/manifests/-bad", method: .put, headers: headers, body: image) { response in
                #expect(response.status == .badRequest && Self.error(response).code == "MANIFEST_INVALID")
            }
            try await client.execute(
                uri: "/v2/images/base/manifests/2", method: .put, headers: auth + [.contentType: "application/vnd.oci.image.index.v1+json"],
                body: image
            ) { response in
                #expect(response.status == .badRequest && Self.error(response).code == "MANIFEST_INVALID")
            }
            try await client.execute(uri: "/v2/images/base/manifests/2", method: .put, headers: headers, body: ByteBuffer(string: "{not json")) {
                response in
                #expect(response.status == .badRequest && Self.error(response).code == "MANIFEST_INVALID")
            }
            let huge = ByteBuffer(repeating: UInt8(ascii: " "), count: (4 << 20) + 1)
            try await client.execute(uri: "/v2/images/base/manifests/2", method: .put, headers: headers, body: huge) { response in
                #expect(response.status == .contentTooLarge && Self.error(response).code == "SIZE_INVALID")
            }
            try await client.execute(uri: "/v2/images/base/tags/list", method: .get, headers: auth) { response in
                let body = try #require(try JSONSerialization.jsonObject(with: Data(Array(buffer: response.body))) as? [String: Any])
                #expect(body["tags"] as? [String] == ["1"], "nothing of the refused pushes was stored")
            }
            // A mount from a repository that holds the blob is 201; from one that does not, a session to upload it (202).
            let layerDigest = ContentDigest.of(layer)
            try await client.execute(uri: "/v2/images/copy/blobs/uploads/?mount=\(layerDigest)&from=images/base", method: .post, headers: auth) {
                response in
                #expect(response.status == .created && response.headers[.location] == "/v2/images/copy/blobs/\(layerDigest)")
            }
            try await client.execute(uri: "/v2/images/copy/blobs/uploads/?mount=\(layerDigest)&from=acme/m", method: .post, headers: auth) {
                response in
                #expect(response.status == .accepted && response.headers[.location]?.hasPrefix("/v2/images/copy/blobs/uploads/") == true)
            }
            try await client.execute(uri: "/v2/images/base/manifests/1", method: .delete, headers: auth) { response in
                #expect(response.status == .accepted)
            }
            try await client.execute(uri: "/v2/images/base/manifests/\(digest)", method: .get, headers: auth) { response in
                #expect(response.status == .ok, "deleting a tag leaves the manifest")
            }
        }
    }

    @Test func failedAuthenticationsPastTheBudgetAreTooManyRequests() async throws {
        let (services, _, root) = try await HardeningTests.services {
            $0.authFailureBurst = 2
            $0.authFailureDelay = .zero
        }
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await Application(router: buildRouter(services)).test(.router) { client in
            for attempt in 1...3 {
                try await client.execute(uri: "/v2/acme/m/tags/list", method: .get, headers: Self.basic("cst_wrong")) { response in
                    if attempt < 3 {
                        #expect(response.status == .unauthorized && Self.error(response).code == "UNAUTHORIZED")
                    } else {
                        #expect(response.status == .tooManyRequests && Self.error(response).code == "TOOMANYREQUESTS")
                        #expect(response.headers[.retryAfter] != nil)
                    }
                }
            }
        }
    }

    @Test func pathsSplitAtTheLastEndpoint() throws {
        #expect(try OCIRoute(path: "/v2/acme/m/manifests/v1") == OCIRoute(name: "acme/m", endpoint: .manifest("v1")))
        #expect(try OCIRoute(path: "/v2/a/b/c/blobs/sha256:ab") == OCIRoute(name: "a/b/c", endpoint: .blob("sha256:ab")))
        #expect(try OCIRoute(path: "/v2/acme/blobs/blobs/uploads/") == OCIRoute(name: "acme/blobs", endpoint: .upload(nil)))
        #expect(try OCIRoute(path: "/v2/acme/m/blobs/uploads/abc") == OCIRoute(name: "acme/m", endpoint: .upload("abc")))
        #expect(try OCIRoute(path: "/v2/acme/m/tags/list") == OCIRoute(name: "acme/m", endpoint: .tags))
        #expect(try OCIRoute(path: "/v2/acme/m/referrers/sha256:ab") == OCIRoute(name: "acme/m", endpoint: .referrers("sha256:ab")))
        #expect(throws: OCIRoute.NotARoute.self) { try OCIRoute(path: "/v2/acme/m/other") }
        #expect(throws: OCIRoute.NotARoute.self) { try OCIRoute(path: "/v2/manifests/v1") }
        #expect(OCIController.contentRange("0-9") == 0...9)
        #expect(OCIController.contentRange("bytes=10-19") == 10...19)
        #expect(OCIController.contentRange("bytes 10-19/100") == 10...19)
        #expect(OCIController.contentRange("9-0") == nil && OCIController.contentRange("a-b") == nil)
    }
}
