import CustodyTestSupport
import Foundation
import GRDB
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The real daemon on a loopback port, driven by the real CLI.
@Suite(.serialized) struct RegistryTests {
    /// Packs `directory` as `format` (tar.gz or zip) with Python's standard library.
    static func archive(_ directory: String, format: String, to path: String) throws {
        let script = """
            import os, sys, tarfile, zipfile
            src, fmt, out = sys.argv[1:4]
            if fmt == "tar.gz":
                with tarfile.open(out, "w:gz") as t:
                    for name in sorted(os.listdir(src)):
                        t.add(os.path.join(src, name), arcname=name)
            else:
                with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
                    for root, dirs, files in os.walk(src):
                        for f in files:
                            full = os.path.join(root, f)
                            z.write(full, os.path.relpath(full, src))
            """
        let result = try Tools.python(script, directory, format, path)
        try #require(result.status == 0, "\(result.stderr)")
    }

    @Test func publishesDirectoriesAndArchivesAndPullsThemBackByteForByte() throws {
        let registry = try RegistryProcess()
        let model = try makeAwkwardModel(in: registry.scratch)
        let tarball = registry.scratch.path + "/model.tar.gz"
        let zip = registry.scratch.path + "/model.zip"
        try Self.archive(model, format: "tar.gz", to: tarball)
        try Self.archive(model, format: "zip", to: zip)
        let expected = try tree(model)

        for (version, source) in [("1.0.0", model), ("1.0.1", tarball), ("1.0.2", zip)] {
            let published = try registry.custody("publish", source, "--name", "acme/mistral-ft", "--version", version, "--quiet")
            #expect(published.status == 0, "\(source): \(published.stderr)")
            #expect(published.stdout.hasPrefix("published acme/mistral-ft@\(version) sha256:"))

            let output = registry.scratch.path + "/pulled-\(version)"
            let pulled = try registry.custody(
                "pull", "acme/mistral-ft@\(version)", "--output", output, "--registry-key", registry.registryPublicKey, "--quiet")
            #expect(pulled.status == 0, "\(pulled.stderr)")
            var files = try tree(output)
            #expect(files.removeValue(forKey: "model.sig") != nil)
            #expect(files == expected, "pulled \(version) differs from what was published")

            let verified = try Tools.modelSigning(
                "verify", "key", output, "--signature", output + "/model.sig", "--public_key", registry.registryPublicKey)
            #expect(verified.status == 0, "model_signing refused the registry signature: \(verified.stdout) \(verified.stderr)")
        }

        let shown = try registry.custody("show", "acme/mistral-ft@1.0.0", "--json")
        let detail = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any])
        #expect((detail["license"] as? [String: Any])?["id"] as? String == "apache-2.0", "licence from the model card")
        let provenance = detail["provenance"] as? [String: Any]
        #expect(provenance?["baseModels"] as? [String] == ["mistralai/Mistral-7B-v0.3"])
        #expect(provenance?["datasets"] as? [String] == ["acme/instructions"])
        #expect((detail["events"] as? [[String: Any]])?.contains { $0["type"] as? String == "pull" } == true)
    }

    @Test func versionsAreImmutableAndRestartsKeepEverything() throws {
        let registry = try RegistryProcess()
        let model = try makeAwkwardModel(in: registry.scratch)
        #expect(try registry.custody("publish", model, "--name", "acme/m", "--version", "1", "--license", "apache-2.0").status == 0)
        let again = try registry.custody("publish", model, "--name", "acme/m", "--version", "1", "--license", "apache-2.0")
        #expect(again.status == 0)
        #expect(again.stdout.hasPrefix("unchanged"))

        try registry.scratch.write("model/config.json", "{}")
        let changed = try registry.custody("publish", model, "--name", "acme/m", "--version", "1", "--license", "apache-2.0")
        #expect(changed.status == 2)
        #expect(changed.stderr.contains("versions are immutable"), "\(changed.stderr)")
        let conflicting = try registry.custody("publish", model, "--name", "acme/m", "--version", "2", "--license", "mit")
        #expect(conflicting.status == 2)
        #expect(conflicting.stderr.contains("README.md"), "a licence contradicting the model card is refused: \(conflicting.stderr)")

        let admin = registry.adminToken
        registry.stop()
        try registry.start()
        #expect(registry.adminToken == admin, "no second admin token on restart")
        let output = registry.scratch.path + "/after-restart"
        let pulled = try registry.custody("pull", "acme/m@1", "--output", output, "--registry-key", registry.registryPublicKey)
        #expect(pulled.status == 0, "\(pulled.stderr)")
        #expect(try registry.custody("show", "acme/m").stdout.contains("1  sha256:"))
        if registry.backend.isEmbedded { #expect(try registry.integrityCheck() == "ok") }
    }

    @Test func tokensAreCheckedAndDenialsRecorded() throws {
        let registry = try RegistryProcess()
        let model = try makeAwkwardModel(in: registry.scratch)
        let publisher = try registry.token("--role", "publisher", "--namespace", "acme", "--name", "ci")
        let consumer = try registry.token("--role", "consumer", "--env", "production")
        let expired = try registry.token("--role", "publisher", "--namespace", "acme", "--expires", "2020-01-01T00:00:00Z")
        let revoked = try registry.token("--role", "publisher", "--namespace", "acme", "--name", "old")
        let list = try registry.local(["token", "list", "--home", registry.home, "--json"])
        let tokens = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        let revokedID = try #require(tokens.first { $0["name"] as? String == "old" }?["id"] as? String)
        #expect(try registry.custody("token", "revoke", revokedID).status == 0)
        #expect(!list.stdout.contains("cst_"), "listing never shows secrets")

        let cases: [(String, String, Int32, String)] = [
            ("unknown", "cst_not-a-real-token", 2, "unknown token"),
            ("expired", expired, 2, "expired"),
            ("revoked", revoked, 2, "was revoked"),
            ("consumer", consumer, 2, "role consumer may not"),
        ]
        for (label, token, status, message) in cases {
            let result = try registry.custody(["publish", model, "--name", "acme/x", "--version", "1", "--quiet"], token: token)
            #expect(result.status == status, "\(label): \(result.stderr)")
            #expect(result.stderr.contains(message), "\(label): \(result.stderr)")
        }
        let outside = try registry.custody(["publish", model, "--name", "other/x", "--version", "1", "--quiet"], token: publisher)
        #expect(outside.stderr.contains("may not publish into namespace 'other'"), "\(outside.stderr)")
        #expect(try registry.custody("show", "other/x").stderr.contains("not in the registry"), "nothing was stored")
        #expect(try registry.custody("show", "acme/x").status == 2)

        #expect(try registry.custody(["publish", model, "--name", "acme/x", "--version", "1", "--quiet"], token: publisher).status == 0)
        let anonymous = try registry.http("GET", "/v1/models/acme/x")
        #expect(anonymous.status == 401)
        #expect(anonymous.headers["Content-Type"] == "application/problem+json")

        let events = try registry.custody("show", "acme/x@1", "--json")
        #expect(events.stdout.contains("token:"), "the publish names its token")
        #expect(!events.stdout.contains(publisher), "events never hold secrets")
        let log = try registry.custody("audit", "log", "--json")
        let recorded = ((try JSONSerialization.jsonObject(with: Data(log.stdout.utf8)) as? [String: Any])?["events"] as? [[String: Any]] ?? [])
            .compactMap { $0["type"] as? String }
        for type in ["token.create", "token.revoke", "token.use", "request.denied", "publish"] {
            #expect(recorded.contains(type), "an event of type \(type) was recorded")
        }
    }

    @Test func hostileArchivesAreRefusedAndNothingIsStored() throws {
        let registry = try RegistryProcess()
        let script = """
            import io, sys, tarfile, zipfile
            out, kind = sys.argv[1], sys.argv[2]
            def add(t, name, data=b"x", type=tarfile.REGTYPE, linkname=""):
                info = tarfile.TarInfo(name); info.type = type; info.linkname = linkname; info.size = len(data) if type == tarfile.REGTYPE else 0
                t.addfile(info, io.BytesIO(data) if type == tarfile.REGTYPE else None)
            if kind == "bomb":
                with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
                    with z.open("weights.bin", "w", force_zip64=True) as f:
                        chunk = bytes(1 << 24)
                        for _ in range(80): f.write(chunk)
            else:
                with tarfile.open(out, "w:gz") as t:
                    add(t, "config.json", b"{}")
                    if kind == "dotdot": add(t, "../escape.bin")
                    if kind == "absolute": add(t, "/tmp/absolute.bin")
                    if kind == "symlink": add(t, "passwd", type=tarfile.SYMTYPE, linkname="/etc/passwd")
                    if kind == "device": add(t, "null", type=tarfile.CHRTYPE)
            """
        let cases = [
            ("dotdot", "contains '..'"), ("absolute", "absolute path"), ("symlink", "leaves the bundle"),
            ("device", "device, FIFO or socket"), ("bomb", "archive bomb"),
        ]
        for (kind, message) in cases {
            let path = registry.scratch.path + "/\(kind)." + (kind == "bomb" ? "zip" : "tar.gz")
            let made = try Tools.python(script, path, kind)
            try #require(made.status == 0, "\(made.stderr)")
            let result = try registry.custody("publish", path, "--name", "acme/hostile", "--version", kind, "--quiet")
            #expect(result.status == 2, "\(kind): \(result.stdout) \(result.stderr)")
            #expect(result.stderr.contains(message), "\(kind): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/absolute.bin"))
        #expect(!FileManager.default.fileExists(atPath: registry.scratch.path + "/escape.bin"))
        #expect(try registry.custody("show", "acme/hostile").status == 2, "no version was created")
    }

    @Test func wrongDigestsAndOversizedBlobsAreRefused() throws {
        let registry = try RegistryProcess()
        let wrong = try registry.http(
            "PUT", "/v1/blobs/sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb", token: registry.adminToken,
            body: Data("b".utf8))
        #expect(wrong.status == 400)
        #expect(wrong.body.contains("nothing was kept"), "\(wrong.body)")
        let head = try registry.http(
            "HEAD", "/v1/blobs/sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb", token: registry.adminToken)
        #expect(head.status == 404)
        let staged = registry.stagedUploads()
        #expect(staged.isEmpty, "a refused upload leaves nothing staged: \(staged)")

        registry.stop()
        try registry.start(extraArguments: [])
        let right = try registry.http(
            "PUT", "/v1/blobs/sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb", token: registry.adminToken,
            body: Data("a".utf8))
        #expect(right.status == 201)
        let range = try registry.http(
            "GET", "/v1/blobs/sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb", token: registry.adminToken,
            headers: ["Range": "bytes=5-"])
        #expect(range.status == 416)
    }

    @Test func tenThousandSmallFiles() throws {
        let registry = try RegistryProcess()
        for folder in 0..<100 {
            for file in 0..<100 {
                try registry.scratch.write("many/d\(folder)/f\(file).txt", "folder \(folder) file \(file)\n")
            }
        }
        let model = registry.scratch.path + "/many"
        let published = try registry.custody("publish", model, "--name", "acme/many", "--version", "1", "--quiet")
        #expect(published.status == 0, "\(published.stderr)")
        let output = registry.scratch.path + "/many-pulled"
        let pulled = try registry.custody("pull", "acme/many@1", "--output", output, "--registry-key", registry.registryPublicKey, "--quiet")
        #expect(pulled.status == 0, "\(pulled.stderr)")
        var files = try tree(output)
        files.removeValue(forKey: "model.sig")
        #expect(files == (try tree(model)))
    }
}
