import CustodyCore
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
            scratch: scratch, environment: ["CUSTODY_S3_ACCESS_KEY_ID": server.accessKey, "CUSTODY_S3_SECRET_ACCESS_KEY": server.secretKey])
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
