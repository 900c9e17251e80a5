import CustodyCore
import CustodyTestSupport
import Foundation
import Testing

/// The Hugging Face Hub front door end to end: a real daemon, driven by the real clients from PyPI
/// (huggingface_hub 2.4.0 with transformers 5.24.0 in `.venv-hf`, huggingface_hub 0.36.2 in `.venv-hf036`).
@Suite(.serialized) struct HubTests {
    /// The environment of a Hub client pointed at `registry`, with a cache of its own in `home`.
    static func environment(_ registry: RegistryProcess, token: String?, home: String) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HF_") && !$0.key.hasPrefix("HUGGINGFACE") }
        environment["HF_ENDPOINT"] = registry.url
        environment["HF_TOKEN"] = token
        environment["HF_HOME"] = home
        environment["HF_HUB_DISABLE_TELEMETRY"] = "1"
        environment["HF_HUB_DISABLE_UPDATE_CHECK"] = "1"
        environment["HF_HUB_DISABLE_XET"] = "1"
        environment["NO_COLOR"] = "1"
        return environment
    }

    /// Runs `script` with the venv's Python; its last line of output is JSON.
    static func python(
        _ venv: String, _ script: String, _ arguments: [String], _ environment: [String: String]
    ) throws -> [String: Any] {
        let result = try run(venv + "/bin/python", ["-c", script] + arguments, environment: environment)
        try #require(result.status == 0, "the client failed: \(result.stderr)")
        let last = try #require(result.stdout.split(separator: "\n").last.map(String.init), "no output: \(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
    }

    static let downloads = """
        import json, sys
        from huggingface_hub import HfApi, snapshot_download, hf_hub_download, get_safetensors_metadata
        repo = sys.argv[1]
        api = HfApi()
        info = api.model_info(repo)
        refs = api.list_repo_refs(repo)
        out = {"sha": info.sha, "license": getattr(info.card_data, "license", None), "files": api.list_repo_files(repo),
               "branches": [[b.name, b.target_commit] for b in refs.branches], "tags": [t.name for t in refs.tags],
               "snapshot": snapshot_download(repo), "pinned": hf_hub_download(repo, "config.json", revision=info.sha),
               "missing": api.file_exists(repo, "nope.bin"), "parameters": get_safetensors_metadata(repo).parameter_count}
        try:
            from transformers import AutoConfig, AutoTokenizer
        except ImportError:
            pass
        else:
            out["config"] = type(AutoConfig.from_pretrained(repo)).__name__
            out["tokens"] = AutoTokenizer.from_pretrained(repo)("hello world")["input_ids"]
        print(json.dumps(out))
        """

    /// A published real model (sentence-transformers' all-MiniLM-L6-v2 with its tokenizer) downloads through both
    /// client generations byte for byte, with its commit, card, refs and the registry's model.sig; the cache verifies
    /// by sha256 and the snapshot verifies with model_signing against the registry key.
    @Test(arguments: [".venv-hf", ".venv-hf036"])
    func realClientsDownloadAPublishedModel(_ venvName: String) throws {
        let venv = try Tools.hubVenv(venvName)
        let registry = try RegistryProcess()
        let model = try RealModelTests.modelDirectory()
        let published = try registry.custody(
            "publish", model, "--name", "sentence-transformers/all-minilm-l6-v2", "--version", "v1", "--source",
            "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2", "--json")
        try #require(published.status == 0, "\(published.stderr)")
        let detail = try #require(try JSONSerialization.jsonObject(with: Data(published.stdout.utf8)) as? [String: Any])
        let digest = try #require((detail["version"] as? [String: Any])?["bundleDigest"] as? String)
        let commit = String(digest.dropFirst("sha256:".count).prefix(40))

        let home = registry.scratch.path + "/hf-home"
        let environment = Self.environment(registry, token: registry.adminToken, home: home)
        // The repository id as the Hub spells it: matched case-insensitively.
        let repo = "sentence-transformers/all-MiniLM-L6-v2"
        let out = try Self.python(venv, Self.downloads, [repo], environment)
        #expect(out["sha"] as? String == commit, "the commit id is the first 160 bits of the bundle digest")
        #expect(out["license"] as? String == "apache-2.0")
        #expect((out["branches"] as? [[String]]) == [["main", commit]])
        #expect(out["tags"] as? [String] == ["v1"])
        #expect(out["missing"] as? Bool == false)
        #expect((out["parameters"] as? [String: Int])?["F32"] == 22_713_216)
        // What was published: the bundle without what publish ignores (`.gitattributes`, `.git/`, …).
        let expected = try tree(model).filter { $0.key != ".gitattributes" }
        #expect(Set(out["files"] as? [String] ?? []) == Set(expected.keys).union(["model.sig"]))
        let snapshot = try #require(out["snapshot"] as? String)
        #expect(snapshot.hasSuffix("/snapshots/" + commit))
        var downloaded = try tree(snapshot)
        #expect(downloaded.removeValue(forKey: "model.sig") != nil)
        #expect(downloaded == expected, "every file byte-identical")
        if venvName == ".venv-hf" {
            #expect(out["config"] as? String == "BertConfig")
            #expect(out["tokens"] as? [Int] == [101, 7592, 2088, 102], "the tokenizer loaded from the registry")
            let verified = try run(venv + "/bin/hf", ["cache", "verify", repo], environment: environment)
            #expect(verified.status == 0 && verified.stdout.contains("All checksums match"), "\(verified.stdout)\(verified.stderr)")
        }
        let signed = try Tools.modelSigning(
            "verify", "key", snapshot, "--signature", snapshot + "/model.sig", "--public_key", registry.registryPublicKey,
            "--allow_symlinks")
        #expect(signed.status == 0, "model_signing verifies the snapshot: \(signed.stderr)")

        // The CLI of each generation: `hf download` (2.x) and `huggingface-cli download` (0.x) into a folder.
        let folder = registry.scratch.path + "/local"
        let cli = venvName == ".venv-hf" ? ["hf", "download"] : ["huggingface-cli", "download"]
        let fetched = try run(venv + "/bin/" + cli[0], [cli[1], repo, "--local-dir", folder], environment: environment)
        #expect(fetched.status == 0, "\(fetched.stderr)")
        var local = try tree(folder).filter { !$0.key.hasPrefix(".cache/") }
        #expect(local.removeValue(forKey: "model.sig") != nil)
        #expect(local == expected)
    }
}

extension HubTests {
    /// Runs Hub downloads listed as JSON (`[["download", repo, file, revision?], ["info", repo, revision?]]`) and answers
    /// each with its result or the client's exception (type and message).
    static let actions = """
        import json, sys
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download
        out = []
        for action in json.loads(sys.argv[1]):
            try:
                if action[0] == "download":
                    out.append({"ok": hf_hub_download(action[1], action[2], revision=action[3])})
                elif action[0] == "snapshot":
                    out.append({"ok": snapshot_download(action[1], revision=action[2])})
                else:
                    out.append({"ok": HfApi().model_info(action[1], revision=action[2]).sha})
            except Exception as error:
                out.append({"error": type(error).__name__, "message": str(error)})
        print(json.dumps({"results": out}))
        """

    static func hub(_ actions: [[Any?]], _ environment: [String: String]) throws -> [[String: Any]] {
        let encoded = String(decoding: try JSONSerialization.data(withJSONObject: actions.map { $0.map { $0 ?? NSNull() } }), as: UTF8.self)
        let out = try python(try Tools.hubVenv(".venv-hf"), Self.actions, [encoded], environment)
        return try #require(out["results"] as? [[String: Any]])
    }

    static func commit(_ published: ProcessResult) throws -> String {
        let detail = try #require(try JSONSerialization.jsonObject(with: Data(published.stdout.utf8)) as? [String: Any])
        let digest = try #require((detail["version"] as? [String: Any])?["bundleDigest"] as? String, "\(published.stderr)")
        return String(digest.dropFirst("sha256:".count).prefix(40))
    }

    /// The gate decides Hub downloads as it decides `custody pull`: a denied licence is `GatedRepoError` with the
    /// policy's reasons; `main` is the newest version production allows; after a yank or a high advisory a host that
    /// had the files cached fails at `main` and at the tag; a snapshot is one pull event, and exposure reports name
    /// the token and environment.
    @Test func theGateDecidesHubDownloads() throws {
        let (registry, key) = try GateTests.registry()
        let source = ["--source", "https://huggingface.co/acme/base", "--license", "apache-2.0", "--json"]
        func publish(_ name: String, _ version: String, salt: String, signed: Bool = true, extra: [String] = source) throws -> String {
            let model = try GateTests.model(registry, name.replacingOccurrences(of: "/", with: "-"), salt: salt)
            let result = try registry.custody(
                ["publish", model, "--name", name, "--version", version] + (signed ? ["--sign-key", key] : []) + extra)
            try #require(result.status == 0, "\(result.stderr)")
            return try Self.commit(result)
        }
        _ = try publish("acme/nc", "1", salt: "nc", extra: ["--source", "https://x", "--license", "cc-by-nc-4.0", "--json"])
        let tiny1 = try publish("acme/tiny", "1", salt: "t1")
        let tiny2 = try publish("acme/tiny", "2", salt: "t2")
        _ = try publish("acme/tiny", "3", salt: "t3", signed: false)
        let solo = try publish("acme/solo", "1", salt: "s1")
        let consumer = try registry.token("--role", "consumer", "--env", "production", "--name", "inference-host")
        let environment = Self.environment(registry, token: consumer, home: registry.scratch.path + "/hf-warm")

        let first = try Self.hub(
            [
                ["download", "acme/nc", "config.json", nil], ["info", "acme/tiny", nil], ["snapshot", "acme/tiny", nil],
                ["download", "acme/tiny", "config.json", "2"], ["download", "acme/solo", "config.json", nil],
                ["download", "acme/solo", "config.json", "1"],
            ], environment)
        #expect(first[0]["error"] as? String == "GatedRepoError", "\(first[0])")
        #expect((first[0]["message"] as? String)?.contains("licence class research (cc-by-nc-4.0) is not allowed in production") == true)
        #expect(first[1]["ok"] as? String == tiny2, "main is the newest version production allows (3 is unsigned)")
        #expect(first[2...].allSatisfy { $0["ok"] != nil }, "\(first)")
        let skipped = try registry.http("GET", "/api/models/acme/tiny", token: consumer)
        #expect(skipped.headers["X-HF-Warning"]?.contains("acme/tiny@3 may not be pulled") == true, "\(skipped.headers)")

        // A snapshot of every file and a second download within the pull session are one pull.
        let pulls = try GateTests.decision(
            try registry.custody("audit", "log", "--model", "acme/tiny", "--version", "2", "--type", "pull", "--json"))
        let events = try #require(pulls["events"] as? [[String: Any]])
        #expect(events.count == 1, "\(events)")
        #expect(events.first?["environment"] as? String == "production")
        #expect((events.first?["detail"] as? String)?.contains("via the Hugging Face API, user agent") == true, "\(events)")

        #expect(try registry.custody("status", "yank", "acme/tiny@2", "--reason", "bad merge").status == 0)
        let advisory = registry.scratch.path + "/advisory.json"
        try Data(
            """
            {"id": "x_CUSTODY-2026-0700", "modified": "2026-11-29T10:00:00Z", "summary": "poisoned",
             "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}],
             "affected": [{"package": {"ecosystem": "Custody", "name": "acme/solo"}, "versions": ["1"]}]}
            """.utf8
        ).write(to: URL(fileURLWithPath: advisory))
        let added = try registry.custody("advisory", "add", advisory, "--json")
        #expect(added.status == 0, "\(added.stderr)")

        // The same host, its cache warm: revoked revisions fail, even where the files are cached.
        let after = try Self.hub(
            [
                ["download", "acme/tiny", "config.json", "2"], ["info", "acme/tiny", nil], ["download", "acme/solo", "config.json", nil],
                ["download", "acme/solo", "config.json", "1"], ["download", "acme/tiny", "config.json", nil],
            ], environment)
        #expect(after[0]["error"] as? String == "RevisionNotFoundError", "\(after[0])")
        #expect(after[1]["ok"] as? String == tiny1, "main falls back to the newest allowed version")
        #expect(after[2]["error"] as? String == "RevisionNotFoundError", "\(after[2])")
        #expect(after[3]["error"] as? String == "RevisionNotFoundError", "\(after[3])")
        #expect(after[4]["ok"] != nil)
        _ = solo

        let exposure = try GateTests.decision(try registry.custody("audit", "exposure", "x_CUSTODY-2026-0700", "--json"))
        let uses = try #require(((exposure["versions"] as? [[String: Any]])?.first?["uses"] as? [[String: Any]]))
        #expect(uses.contains { $0["type"] as? String == "pull" && $0["environment"] as? String == "production" }, "\(uses)")
        #expect((exposure["tokens"] as? [String])?.contains { $0.contains("inference-host") } == true, "\(exposure)")
    }
}

extension HubTests {
    /// Bad input gets the Hub's own error codes (which the clients turn into their exceptions), and nothing leaks.
    @Test func badInputGetsTheHubsErrorCodes() throws {
        let (registry, key) = try GateTests.registry()
        let model = try GateTests.model(registry, "tiny", salt: "b1")
        let published = try registry.custody(
            "publish", model, "--name", "acme/tiny", "--version", "1", "--sign-key", key, "--source", "https://x", "--license", "mit", "--json")
        let commit = try Self.commit(published)
        let admin = registry.adminToken
        func code(_ response: (status: Int, headers: [String: String], body: String)) -> String? { response.headers["X-Error-Code"] }

        let noRepo = try registry.http("GET", "/api/models/acme/nope", token: admin)
        #expect(noRepo.status == 404 && code(noRepo) == "RepoNotFound", "\(noRepo)")
        #expect(noRepo.body.contains("\"error\""), "the Hub's error body: \(noRepo.body)")
        let noRevision = try registry.http("GET", "/api/models/acme/tiny/revision/nope", token: admin)
        #expect(noRevision.status == 404 && code(noRevision) == "RevisionNotFound", "\(noRevision)")
        let noFile = try registry.http("HEAD", "/acme/tiny/resolve/main/nope.bin", token: admin)
        #expect(noFile.status == 404 && code(noFile) == "EntryNotFound" && noFile.headers["X-Repo-Commit"] == commit, "\(noFile)")
        let noFolder = try registry.http("GET", "/api/models/acme/tiny/tree/main/nope", token: admin)
        #expect(noFolder.status == 404 && code(noFolder) == "EntryNotFound", "\(noFolder)")
        for traversal in [
            "/acme/tiny/resolve/main/..%2F..%2Fetc%2Fpasswd", "/acme/tiny/resolve/main/a/../../config.json", "/acme/tiny/resolve/main/%00",
        ] {
            let refused = try registry.http("GET", traversal, token: admin)
            #expect(refused.status == 400, "\(traversal): \(refused)")
        }

        // Repository ids match whatever their case; the answer names the model as published.
        let mixed = try registry.http("GET", "/api/models/ACME/Tiny", token: admin)
        #expect(mixed.status == 200 && mixed.body.contains("\"id\":\"acme/tiny\"") && mixed.body.contains("\"sha\":\"\(commit)\""), "\(mixed)")
        // The metadata a client needs, and ranges.
        let head = try registry.http("HEAD", "/acme/tiny/resolve/\(commit)/config.json", token: admin)
        #expect(head.status == 200 && head.headers["X-Repo-Commit"] == commit && head.headers["X-Linked-Size"] == "23", "\(head)")
        #expect(head.headers.keys.allSatisfy { !$0.lowercased().contains("xet") }, "never a Xet header: \(head.headers)")
        let range = try registry.http("GET", "/acme/tiny/resolve/main/config.json", token: admin, headers: ["Range": "bytes=2-9999"])
        #expect(range.status == 206 && range.headers["Content-Range"] == "bytes 2-22/23" && range.body == #"model_type": "llama"}"#, "\(range)")

        // No token, a revoked one, and Xet.
        let anonymous = try registry.http("GET", "/api/models/acme/tiny")
        #expect(anonymous.status == 401 && anonymous.headers["X-Error-Message"] != nil, "\(anonymous)")
        let revoked = try registry.token("--role", "consumer", "--env", "production", "--name", "gone")
        let list = try registry.http("GET", "/v1/tokens", token: admin)
        let tokens = try JSONSerialization.jsonObject(with: Data(list.body.utf8)) as? [String: [[String: Any]]]
        let id = try #require(tokens?["tokens"]?.first { $0["name"] as? String == "gone" }?["id"] as? String)
        #expect(try registry.http("DELETE", "/v1/tokens/\(id)", token: admin).status == 204)
        let refusedToken = try registry.http("GET", "/api/models/acme/tiny", token: revoked)
        #expect(
            refusedToken.status == 401 && refusedToken.headers["X-Error-Message"] == "Invalid credentials in Authorization header", "\(refusedToken)")
        // `custody hf-env` prints the lines an inference host needs, with a consumer token for the environment.
        let lines = try registry.custody("hf-env", "--env", "production")
        #expect(lines.status == 0, "\(lines.stderr)")
        #expect(lines.stdout.contains("export HF_ENDPOINT=\(registry.url)\n") && lines.stdout.contains("export HF_HUB_DISABLE_XET=1"))
        let secret = try #require(lines.stdout.firstMatch(of: /export HF_TOKEN=(cst_[A-Za-z0-9_-]+)/).map { String($0.1) })
        let whoami = try registry.http("GET", "/api/whoami-v2", token: secret)
        #expect(whoami.status == 200 && whoami.body.contains("\"name\":\"hf-production\"") && whoami.body.contains("\"role\":\"read\""))
        #expect(whoami.body.contains("\"orgs\":[]"), "hf auth whoami needs orgs: \(whoami.body)")
        let xet = try registry.http("GET", "/api/models/acme/tiny/xet-write-token/main", token: admin)
        #expect(xet.status == 501 && xet.headers["X-Error-Message"]?.contains("HF_HUB_DISABLE_XET=1") == true, "\(xet)")
    }
}

extension HubTests {
    static let upload = """
        import json, sys
        from huggingface_hub import HfApi
        api = HfApi()
        repo, folder = sys.argv[1], sys.argv[2]
        out = {}
        try:
            api.create_repo(repo, exist_ok=True)
            api.create_repo(repo, exist_ok=True)
            out["oid"] = api.upload_folder(repo_id=repo, folder_path=folder, commit_message="ci").oid
        except Exception as error:
            out["error"] = type(error).__name__
            out["message"] = str(error)
        print(json.dumps(out))
        """

    /// `upload_folder` and `hf upload` create versions through the publish path: scanned, registry-signed, pullable
    /// and verifiable; a card whose licence cannot be classified is refused at validate-yaml with the message shown;
    /// a second commit makes a version holding both commits' files.
    @Test func uploadsBecomeVersions() throws {
        let registry = try RegistryProcess()
        let venv = try Tools.hubVenv(".venv-hf")
        let publisher = try registry.token("--role", "publisher", "--namespace", "acme", "--name", "ci")
        let environment = Self.environment(registry, token: publisher, home: registry.scratch.path + "/hf-up")
        let folder = registry.scratch.path + "/bundle"
        try registry.scratch.write("bundle/README.md", "---\nlicense: apache-2.0\nbase_model: acme/base\n---\n# Tiny\n")
        try registry.scratch.write("bundle/config.json", #"{"model_type": "llama"}"#)
        try registry.scratch.write("bundle/model.safetensors", String(decoding: safetensors([("w", "F32", [2], 8)]), as: UTF8.self))
        let first = try Self.python(venv, Self.upload, ["acme/up", folder], environment)
        let oid = try #require(first["oid"] as? String, "\(first)")
        let shown = try registry.custody("show", "acme/up", "--json")
        #expect(shown.status == 0, "\(shown.stderr)")
        let detail = try GateTests.decision(shown)
        let versions = try #require(detail["versions"] as? [[String: Any]])
        let tag = try #require(versions.first?["version"] as? String)
        #expect(tag == "hf-" + oid.prefix(12), "\(versions)")
        let version = try GateTests.decision(try registry.custody("show", "acme/up@\(tag)", "--json"))
        #expect((version["license"] as? [String: Any])?["id"] as? String == "apache-2.0", "the model card was read")
        #expect(((version["scan"] as? [String: Any])?["verdict"]) as? String == "clean")
        #expect((version["signatures"] as? [[String: Any]])?.contains { $0["kind"] as? String == "registry" } == true)
        let pulled = registry.scratch.path + "/pulled"
        let pull = try registry.custody("pull", "acme/up@\(tag)", "--output", pulled, "--registry-key", registry.registryPublicKey)
        #expect(pull.status == 0, "\(pull.stderr)")
        let checked = try Tools.modelSigning(
            "verify", "key", pulled, "--signature", pulled + "/model.sig", "--public_key", registry.registryPublicKey)
        #expect(checked.status == 0, "\(checked.stderr)")

        // A second commit on top of the first: `hf upload` of one more file.
        try registry.scratch.write("extra/tokenizer.json", "{}")
        let second = try run(
            venv + "/bin/hf", ["upload", "acme/up", registry.scratch.path + "/extra", ".", "--commit-message", "tok"], environment: environment)
        #expect(second.status == 0, "\(second.stderr)")
        let after = try GateTests.decision(try registry.custody("show", "acme/up", "--json"))
        let newest = try #require((after["versions"] as? [[String: Any]])?.last?["version"] as? String)
        let files = try GateTests.decision(try registry.custody("show", "acme/up@\(newest)", "--json"))["files"] as? [[String: Any]]
        #expect(Set(files?.compactMap { $0["path"] as? String } ?? []) == ["README.md", "config.json", "model.safetensors", "tokenizer.json"])

        // A token of another role may not upload: the client shows the refusal.
        let consumer = try registry.token("--role", "consumer", "--env", "production", "--name", "host")
        let refused = try Self.python(
            venv, Self.upload, ["acme/up", folder], Self.environment(registry, token: consumer, home: registry.scratch.path + "/hf-c"))
        #expect(refused["error"] as? String == "HfHubHTTPError" && (refused["message"] as? String)?.contains("403") == true, "\(refused)")

        // A card with a licence nobody can classify is refused before anything is committed.
        try registry.scratch.write("odd/README.md", "---\nlicense: my-own-licence\n---\n")
        try registry.scratch.write("odd/config.json", "{}")
        let odd = try Self.python(venv, Self.upload, ["acme/odd", registry.scratch.path + "/odd"], environment)
        #expect(odd["error"] as? String == "ValueError" && (odd["message"] as? String)?.contains("my-own-licence") == true, "\(odd)")
        #expect(try registry.custody("show", "acme/odd").status != 0, "nothing was committed")
    }
}

extension HubTests {
    /// Multipart LFS uploads: huggingface_hub (0.36.2 here, which also offers Xet in the batch and is answered LFS)
    /// uploads a file larger than a part in parts (1 MiB here) and it is stored whole; parts out of order, a missing part and bytes that are not the digest are refused, and nothing is stored.
    @Test func multipartUploads() throws {
        let scratch = try Scratch()
        try scratch.write("Registry/custody.yaml", "huggingface:\n  partSize: 1MiB\nscan:\n  refuse: dangerous\n")
        let registry = try RegistryProcess(scratch: scratch)
        let publisher = try registry.token("--role", "publisher", "--namespace", "acme", "--name", "ci")
        let environment = Self.environment(registry, token: publisher, home: registry.scratch.path + "/hf-up")
        let weights = pseudoRandomBytes(3 * (1 << 20) + 12345, seed: 7)
        try registry.scratch.write("big/README.md", "---\nlicense: mit\n---\n")
        try registry.scratch.write("big/weights.bin", weights)
        let uploaded = try Self.python(try Tools.hubVenv(".venv-hf036"), Self.upload, ["acme/big", registry.scratch.path + "/big"], environment)
        #expect(uploaded["oid"] != nil, "\(uploaded)")
        let digest = ContentDigest.of(weights).hex
        #expect(try registry.http("HEAD", "/v1/blobs/sha256:\(digest)", token: publisher).status == 200, "stored whole")

        // By hand: a batch answer with four part URLs, then the parts sent wrong.
        let other = pseudoRandomBytes(3 * (1 << 20) + 1, seed: 8)
        let oid = ContentDigest.of(other).hex
        let batch = try registry.http(
            "POST", "/acme/big.git/info/lfs/objects/batch", token: publisher, headers: ["Content-Type": "application/vnd.git-lfs+json"],
            body: Data(#"{"operation":"upload","transfers":["basic","multipart"],"objects":[{"oid":"\#(oid)","size":\#(other.count)}]}"#.utf8))
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(batch.body.utf8)) as? [String: Any], "\(batch)")
        let object = try #require((answer["objects"] as? [[String: Any]])?.first)
        let upload = try #require((object["actions"] as? [String: Any])?["upload"] as? [String: Any])
        let header = try #require(upload["header"] as? [String: String], "\(upload)")
        #expect(header["chunk_size"] == String(1 << 20) && header["4"] != nil && header["5"] == nil, "\(header)")
        func path(_ url: String) -> String { String(url.dropFirst(registry.url.count)) }
        func part(_ number: Int, _ bytes: [UInt8]) throws -> Int {
            let start = (number - 1) << 20
            let slice = Array(bytes[start..<min(bytes.count, start + (1 << 20))])
            return try registry.http("PUT", path(header[String(number)]!), body: Data(slice)).status
        }
        #expect(try part(1, other) == 200)
        #expect(try part(3, other) == 416, "a part after a gap is out of order")
        #expect(try part(2, other) == 200)
        let early = try registry.http(
            "POST", path(upload["href"] as! String),
            body: Data(#"{"oid":"\#(oid)","parts":[{"partNumber":1,"etag":"x"},{"partNumber":2,"etag":"x"},{"partNumber":3,"etag":"x"}]}"#.utf8))
        #expect(early.status == 400, "a completion that misses a part: \(early)")
        var wrong = other
        wrong[wrong.count - 1] ^= 0xFF
        #expect(try part(3, wrong) == 200)
        #expect(try part(4, wrong) == 400, "the last part commits, and the bytes are not the digest")
        #expect(try registry.http("HEAD", "/v1/blobs/sha256:\(oid)", token: publisher).status == 404, "nothing stored")
        // A namespace the publisher may not write: refused per object in the batch answer.
        let elsewhere = try registry.http(
            "POST", "/other/big.git/info/lfs/objects/batch", token: publisher, headers: ["Content-Type": "application/vnd.git-lfs+json"],
            body: Data(#"{"operation":"upload","transfers":["basic"],"objects":[{"oid":"\#(oid)","size":1}]}"#.utf8))
        #expect(elsewhere.status == 200 && elsewhere.body.contains(#""code":403"#) && elsewhere.body.contains("namespace 'other'"), "\(elsewhere)")
        let tampered = try registry.http("PUT", path(header["1"]!).replacingOccurrences(of: "/1", with: "/9"), body: Data([1]))
        #expect(tampered.status == 400)

        // With scan.refuse: dangerous, a commit of a pickle that runs os.system is refused, and the client says why.
        try registry.scratch.write("evil/README.md", "---\nlicense: mit\n---\n")
        try registry.scratch.write("evil/pytorch_model.bin", osSystemPickle())
        let evil = try Self.python(try Tools.hubVenv(".venv-hf"), Self.upload, ["acme/evil", registry.scratch.path + "/evil"], environment)
        #expect((evil["message"] as? String)?.contains("refuses dangerous bundles at publish (scan.refuse)") == true, "\(evil)")
        #expect((evil["message"] as? String)?.contains("pytorch_model.bin (os.system)") == true, "\(evil)")
        #expect(try registry.custody("show", "acme/evil").status != 0, "nothing was published")
    }
}
