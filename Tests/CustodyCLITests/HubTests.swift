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
