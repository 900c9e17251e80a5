import AsyncHTTPClient
import CustodyCore
import CustodyS3
import CustodyTestSupport
import Foundation
import Testing

/// A daemon whose blobs are in S3 (SeaweedFS on loopback): publish, pull, OCI copies and the Hub API work as on the
/// file system, the bytes are in the bucket under their digests, and the secret never reaches the logs.
@Suite(.serialized) struct S3BackendTests {
    @Test func aRegistryOnS3PublishesAndPullsByteIdentical() throws {
        let scratch = try Scratch()
        let server = try SeaweedProcess(scratch: scratch)
        let home = scratch.path + "/Registry"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try Data("storage:\n  blobs: s3://\(server.bucket)/registry?endpoint=\(server.endpoint)&region=us-east-1\n".utf8)
            .write(to: URL(fileURLWithPath: home + "/custody.yaml"))
        let registry = try RegistryProcess(
            scratch: scratch, environment: ["CUSTODY_S3_ACCESS_KEY_ID": server.accessKey, "CUSTODY_S3_SECRET_ACCESS_KEY": server.secretKey],
            backend: .embedded)
        let model = try makeAwkwardModel(in: scratch)
        let published = try registry.custody("publish", model, "--name", "acme/s3", "--version", "1", "--license", "apache-2.0", "--json")
        try #require(published.status == 0, "\(published.stderr)")

        let output = scratch.path + "/pulled"
        let pulled = try registry.custody(["pull", "acme/s3@1", "--output", output, "--registry-key", registry.registryPublicKey, "--quiet"])
        #expect(pulled.status == 0, "\(pulled.stderr)")
        var files = try tree(output)
        #expect(files.removeValue(forKey: "model.sig") != nil)
        let expected = try tree(model)
        #expect(files == expected, "byte-identical through S3")

        // OCI clients read the same blobs: a skopeo copy holds every file under its digest.
        let skopeo = try run(
            "/usr/bin/skopeo",
            [
                "copy", "--src-tls-verify=false", "--src-creds", "ci:\(registry.adminToken)",
                "docker://\(String(registry.url.dropFirst(7)))/acme/s3:1",
                "oci:\(scratch.path)/layout:1",
            ])
        #expect(skopeo.status == 0, "\(skopeo.stderr)")
        for (_, bytes) in expected where !bytes.isEmpty {
            let blob = scratch.path + "/layout/blobs/sha256/" + ContentDigest.of(Array(bytes)).hex
            #expect(FileManager.default.contents(atPath: blob) == bytes)
        }
        let ready = try registry.http("GET", "/readyz")
        #expect(ready.status == 200, "\(ready.body)")
        let logs = try String(contentsOfFile: scratch.path + "/serve-1.err", encoding: .utf8)
        #expect(!logs.contains(server.secretKey), "the S3 secret is never logged")
        #expect(logs.contains("blobs in S3"), "\(logs)")
    }

    @Test func s3StorageWithoutCredentialsIsRefusedAtStart() throws {
        let scratch = try Scratch()
        let home = scratch.path + "/Registry"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try Data("storage:\n  blobs: s3://b?endpoint=http://127.0.0.1:1\n".utf8).write(to: URL(fileURLWithPath: home + "/custody.yaml"))
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") && !$0.key.hasPrefix("CUSTODY_S3_") }
        environment["HOME"] = scratch.path
        let result = try run(
            try Tools.custody, ["serve", "--home", home, "--keys", scratch.path + "/Keys", "--listen", "127.0.0.1:0"], environment: environment)
        #expect(result.status != 0)
        #expect(result.stderr.contains("no credentials were given"), "\(result.stderr)")
        try Data("storage:\n  blobs: s3://b\n".utf8).write(to: URL(fileURLWithPath: home + "/custody.yaml"))
        let bad = try run(
            try Tools.custody, ["serve", "--home", home, "--keys", scratch.path + "/Keys", "--listen", "127.0.0.1:0"], environment: environment)
        #expect(bad.status != 0 && bad.stderr.contains("needs ?endpoint="), "\(bad.stderr)")
    }
}

extension S3BackendTests {
    /// A daemon killed with -9 while a blob streams into S3 leaves no visible object (the multipart upload is not
    /// completed), the restarted daemon takes the blob again from the start, and the abandoned multipart upload is
    /// what the janitor aborts (past `limits.uploadExpiry`; its sweep is tested with an explicit cutoff in
    /// S3BlobStoreTests).
    @Test func aDaemonKilledMidUploadLeavesNoBlob() async throws {
        let scratch = try Scratch()
        let server = try SeaweedProcess(scratch: scratch)
        let home = scratch.path + "/Registry"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try Data("storage:\n  blobs: s3://\(server.bucket)/registry?endpoint=\(server.endpoint)&region=us-east-1\n".utf8)
            .write(to: URL(fileURLWithPath: home + "/custody.yaml"))
        let registry = try RegistryProcess(
            scratch: scratch, environment: ["CUSTODY_S3_ACCESS_KEY_ID": server.accessKey, "CUSTODY_S3_SECRET_ACCESS_KEY": server.secretKey],
            backend: .embedded)
        let bytes = pseudoRandomBytes(48 << 20, seed: 11)
        let digest = ContentDigest.of(bytes)
        let file = scratch.path + "/big.bin"
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let client = S3Client(
            location: S3Location(endpoint: server.endpoint, bucket: server.bucket, prefix: "registry"),
            credentials: .init(accessKey: server.accessKey, secretKey: server.secretKey), http: HTTPClient.shared)

        // A client that sends part of the body and stalls (its connection held open): once the first part is in the
        // bucket, the daemon dies with the upload unfinished for certain.
        let socket = try RawHTTP.connect(port: try registry.port())
        defer { close(socket) }
        try RawHTTP.send(
            socket,
            Array(
                "PUT /v1/blobs/\(digest) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(registry.adminToken)\r\nContent-Length: \(bytes.count)\r\n\r\n"
                    .utf8) + bytes[..<(24 << 20)])
        var orphan: String?
        while orphan == nil, registry.process?.isRunning == true {
            orphan = try await client.multipartUploads(under: "blobs/").first { $0.name == "blobs/sha256/" + digest.hex }?.uploadID
            if orphan == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        try #require(orphan != nil, "the upload streamed into a multipart upload under its final key")
        registry.stop(signal: SIGKILL)
        #expect(try await client.size(of: "blobs/sha256/" + digest.hex) == nil, "nothing visible: the upload was never completed")

        // Restarted, the daemon has no record of that upload: the blob is taken again from the start.
        try registry.start()
        let status = try registry.http("HEAD", "/v1/uploads/\(digest)", token: registry.adminToken)
        #expect(status.headers["Upload-Offset"] == "0" || status.status == 404, "\(status)")
        let again = try run(
            "/usr/bin/curl",
            [
                "-sf", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-H", "Authorization: Bearer \(registry.adminToken)", "-T", file,
                "\(registry.url)/v1/blobs/\(digest)",
            ])
        #expect(again.stdout == "201", "\(again.stdout) \(again.stderr)")
        #expect(try await client.size(of: "blobs/sha256/" + digest.hex) == UInt64(bytes.count))
        #expect(try await client.multipartUploads(under: "blobs/").contains { $0.uploadID == orphan }, "the abandoned upload waits for the janitor")
    }
}

extension S3BackendTests {
    /// `storage.redirect`: a consumer whose environments all opted in gets a `307` to a presigned URL of the object
    /// that holds the bytes (after the gate), and `custody pull` and curl follow it without the token; a consumer that
    /// also serves an environment that did not opt in is proxied as before; nothing it may not pull is redirected.
    @Test func aRedirectedEnvironmentReadsFromTheStoreItself() throws {
        let scratch = try Scratch()
        let server = try SeaweedProcess(scratch: scratch)
        let home = scratch.path + "/Registry"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try Data(
            """
            storage:
              blobs: s3://\(server.bucket)/registry?endpoint=\(server.endpoint)&region=us-east-1
              redirect:
                environments: [research]
                expiry: 2m

            """.utf8
        ).write(to: URL(fileURLWithPath: home + "/custody.yaml"))
        try FileManager.default.copyItem(atPath: Tools.packageRoot + "/Registry/policies", toPath: home + "/policies")
        let registry = try RegistryProcess(
            scratch: scratch, environment: ["CUSTODY_S3_ACCESS_KEY_ID": server.accessKey, "CUSTODY_S3_SECRET_ACCESS_KEY": server.secretKey],
            backend: .embedded)
        let model = try makeAwkwardModel(in: scratch)
        // Larger than the CLI's socket-download threshold, so that both of its download paths meet the redirect.
        try FaultTests.bigFile(model + "/weights.safetensors.bin", size: 9 << 20)
        let published = try registry.custody("publish", model, "--name", "acme/redirected", "--version", "1", "--license", "apache-2.0")
        try #require(published.status == 0, "\(published.stderr)")
        let lab = try registry.token("--role", "consumer", "--env", "research", "--name", "lab-host")
        // A token that also serves production, which did not opt in: proxied (research alone lets it fetch the blob).
        let both = try registry.token("--role", "consumer", "--env", "research", "--env", "production", "--name", "mixed-host")
        let weights = try Data(contentsOf: URL(fileURLWithPath: model + "/weights.safetensors.bin"))
        let digest = ContentDigest.of(Array(weights))

        let redirected = try registry.http("GET", "/v1/blobs/\(digest)", token: lab)
        #expect(redirected.status == 307, "\(redirected.status) \(redirected.body)")
        let location = try #require(redirected.headers.first { $0.key.lowercased() == "location" }?.value)
        #expect(location.hasPrefix(server.endpoint + "/") && location.contains("X-Amz-Signature="), "\(location)")
        #expect(!location.contains(server.secretKey))
        // curl follows it and, the bucket being another origin, sends the registry's token only to the registry.
        let fetched = scratch.path + "/fetched.bin"
        let curl = try run(
            "/usr/bin/curl", ["-sfL", "-o", fetched, "-H", "Authorization: Bearer \(lab)", "\(registry.url)/v1/blobs/\(digest)"])
        #expect(curl.status == 0, "\(curl.stderr)")
        #expect(FileManager.default.contents(atPath: fetched) == weights, "the store's bytes")

        let proxiedFile = scratch.path + "/proxied.bin"
        let proxied = try run(
            "/usr/bin/curl",
            ["-s", "-o", proxiedFile, "-w", "%{http_code}", "-H", "Authorization: Bearer \(both)", "\(registry.url)/v1/blobs/\(digest)"])
        #expect(proxied.stdout == "200", "\(proxied.stdout) \(proxied.stderr)")
        #expect(FileManager.default.contents(atPath: proxiedFile) == weights)

        let output = scratch.path + "/pulled"
        let pulled = try registry.custody(
            ["pull", "acme/redirected@1", "--output", output, "--registry-key", registry.registryPublicKey, "--quiet"], token: lab)
        #expect(pulled.status == 0, "\(pulled.stderr)")
        var files = try tree(output)
        #expect(files.removeValue(forKey: "model.sig") != nil)
        #expect(files == (try tree(model)), "byte-identical through the store's own URLs")

        // A blob of no version the consumer may pull: the gate answers, not the store.
        let stranger = ContentDigest.of(Array("not in any version".utf8))
        let refused = try registry.http("GET", "/v1/blobs/\(stranger)", token: lab)
        #expect(refused.status >= 400 && refused.status != 307, "\(refused.status)")
        let metrics = try registry.http("GET", "/metrics", token: registry.adminToken)
        #expect(metrics.body.contains("custody_blob_redirects_total"), "\(metrics.status)")
    }

    @Test func aRedirectWithoutAnObjectStoreIsRefusedAtStart() throws {
        let scratch = try Scratch()
        let home = scratch.path + "/Registry"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try Data("storage:\n  redirect:\n    environments: [production]\n".utf8).write(to: URL(fileURLWithPath: home + "/custody.yaml"))
        let result = try run(try Tools.custody, ["serve", "--home", home, "--keys", scratch.path + "/Keys", "--listen", "127.0.0.1:0"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("storage.redirect") && result.stderr.contains("s3://"), "\(result.stderr)")
    }
}
