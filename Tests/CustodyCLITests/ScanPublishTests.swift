import CustodyTestSupport
import Foundation
import Testing

/// The registry scans what is published: results are stored with the version, shown, and recorded as an event;
/// licence and base models declared inside weight files fill or contradict the request.
@Suite(.serialized) struct ScanPublishTests {
    /// A GGUF v3 file with string metadata and no tensors.
    static func gguf(_ metadata: [(String, String)]) -> Data {
        Data(CustodyTestSupport.gguf(metadata: metadata, tensors: []))
    }

    static let osSystem = Data("cos\nsystem\n(S'id'\ntR.".utf8)

    /// A lone GGUF is a one-file version: its bundle digest is model_signing's digest of the file, its licence and base
    /// model come from the header, and a pull writes a directory holding the file and model.sig.
    @Test func aSingleFileModelIsAOneFileVersion() throws {
        let registry = try RegistryProcess()
        let file = registry.scratch.path + "/SmolLM2-135M-Instruct.Q4_1.gguf"
        try Self.gguf([
            ("general.architecture", "llama"), ("general.license", "apache-2.0"),
            ("general.base_model.0.repo_url", "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct"),
        ])
        .write(to: URL(fileURLWithPath: file))
        let published = try registry.custody("publish", file, "--name", "acme/smollm2", "--version", "q4_1", "--json")
        #expect(published.status == 0, "\(published.stderr)")
        let detail = try #require(try JSONSerialization.jsonObject(with: Data(published.stdout.utf8)) as? [String: Any])
        let version = try #require(detail["version"] as? [String: Any])
        #expect((version["files"] as? [[String: Any]])?.map { $0["path"] as? String } == ["SmolLM2-135M-Instruct.Q4_1.gguf"])
        #expect((version["license"] as? [String: Any])?["id"] as? String == "apache-2.0", "licence from the GGUF header")
        #expect((version["provenance"] as? [String: Any])?["baseModels"] as? [String] == ["HuggingFaceTB/SmolLM2-135M-Instruct"])

        // model_signing's digest of the single file is the version's bundle digest.
        let (privateKey, _) = try makePythonKeyPair(curve: "p256", in: registry.scratch)
        let signature = registry.scratch.path + "/single.sig"
        let signed = try Tools.modelSigning("sign", "key", file, "--private_key", privateKey, "--signature", signature)
        try #require(signed.status == 0, "\(signed.stdout) \(signed.stderr)")
        #expect("sha256:" + (try subjectDigest(ofSignature: signature)) == version["bundleDigest"] as? String)

        let output = registry.scratch.path + "/pulled"
        let pulled = try registry.custody("pull", "acme/smollm2@q4_1", "--output", output, "--registry-key", registry.registryPublicKey, "--quiet")
        #expect(pulled.status == 0, "\(pulled.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: output).sorted() == ["SmolLM2-135M-Instruct.Q4_1.gguf", "model.sig"])
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: output + "/SmolLM2-135M-Instruct.Q4_1.gguf")) == Data(contentsOf: URL(fileURLWithPath: file)))
        let verified = try Tools.modelSigning(
            "verify", "key", output, "--signature", output + "/model.sig", "--public_key", registry.registryPublicKey)
        #expect(verified.status == 0, "\(verified.stdout) \(verified.stderr)")
    }

    @Test func aDangerousFileIsStoredShownAndRecordedButDoesNotStopThePublish() throws {
        let registry = try RegistryProcess()
        let model = registry.scratch.path + "/model"
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        try Self.osSystem.write(to: URL(fileURLWithPath: model + "/pytorch_model.bin"))
        try Self.gguf([
            ("general.architecture", "llama"), ("general.license", "apache-2.0"),
            ("general.base_model.0.repo_url", "https://huggingface.co/meta-llama/Llama-3.1-8B"),
        ])
        .write(to: URL(fileURLWithPath: model + "/model.gguf"))
        try Data("{}".utf8).write(to: URL(fileURLWithPath: model + "/config.json"))

        // The client-side scan stops the upload; without it the registry accepts and marks the version.
        let refused = try registry.custody("publish", model, "--name", "acme/evil", "--version", "1", "--scan", "--quiet")
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("os.system"))
        #expect(refused.stderr.contains("not publishing"))

        let published = try registry.custody("publish", model, "--name", "acme/evil", "--version", "1", "--quiet")
        #expect(published.status == 0, "\(published.stderr)")

        let shown = try registry.custody("show", "acme/evil@1")
        #expect(shown.stdout.contains("scan           DANGEROUS"), "\(shown.stdout)")
        #expect(shown.stdout.contains("dangerous: os.system"), "\(shown.stdout)")
        #expect(shown.stdout.contains("pytorch_model.bin  pickle, dangerous"), "\(shown.stdout)")

        let json = try registry.custody("show", "acme/evil@1", "--json")
        let detail = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let scan = try #require(detail["scan"] as? [String: Any])
        #expect(scan["verdict"] as? String == "dangerous")
        let files = try #require(scan["files"] as? [[String: Any]])
        #expect(Set(files.compactMap { $0["format"] as? String }) == ["pickle", "gguf", "json"])
        #expect((detail["license"] as? [String: Any])?["id"] as? String == "apache-2.0", "licence from the GGUF header")
        #expect((detail["provenance"] as? [String: Any])?["baseModels"] as? [String] == ["meta-llama/Llama-3.1-8B"])
        let events = try #require(detail["events"] as? [[String: Any]])
        let scanEvent = try #require(events.first { $0["type"] as? String == "scan" })
        #expect((scanEvent["detail"] as? String)?.contains("verdict dangerous") == true)
        #expect((scanEvent["detail"] as? String)?.contains("pytorch_model.bin (os.system)") == true, "\(scanEvent)")

        // Results survive a restart (they are in SQLite, not in memory).
        registry.stop()
        try registry.start()
        #expect(try registry.custody("show", "acme/evil@1").stdout.contains("scan           DANGEROUS"))
    }

    @Test func licencesDeclaredInsideWeightsMustAgreeWithTheRequest() throws {
        let registry = try RegistryProcess()
        let model = registry.scratch.path + "/model"
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        try Self.gguf([("general.license", "cc-by-nc-4.0")]).write(to: URL(fileURLWithPath: model + "/model.gguf"))
        let contradicted = try registry.custody("publish", model, "--name", "acme/g", "--version", "1", "--license", "apache-2.0", "--quiet")
        #expect(contradicted.status == 2)
        #expect(
            contradicted.stderr.contains("'apache-2.0'") && contradicted.stderr.contains("'cc-by-nc-4.0' in model.gguf"), "\(contradicted.stderr)")
        #expect(try registry.custody("show", "acme/g@1").status != 0, "nothing was stored")

        let clean = try registry.custody("publish", model, "--name", "acme/g", "--version", "1", "--quiet")
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(try registry.custody("show", "acme/g@1").stdout.contains("scan           CLEAN"))
    }

    @Test func inspectReadsDirectoriesAndBundleArchives() throws {
        let scratch = try Scratch()
        let model = scratch.path + "/model"
        try FileManager.default.createDirectory(atPath: model + "/sub dir", withIntermediateDirectories: true)
        try Self.gguf([("general.name", "tiny")]).write(to: URL(fileURLWithPath: model + "/sub dir/m.gguf"))
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: model + "/README.md"))
        let clean = try Tools.custody("inspect", model)
        #expect(clean.status == 0, "\(clean.stdout) \(clean.stderr)")
        #expect(clean.stdout.contains("sub dir/m.gguf"))
        #expect(clean.stdout.contains("2 files: 2 clean"), "\(clean.stdout)")

        try Self.osSystem.write(to: URL(fileURLWithPath: model + "/weights.bin"))
        let tarball = scratch.path + "/model.tar.gz"
        try RegistryTests.archive(model, format: "tar.gz", to: tarball)
        let dangerous = try Tools.custody("inspect", tarball, "--json")
        #expect(dangerous.status == 1)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(dangerous.stdout.utf8)) as? [String: Any])
        let files = try #require(report["files"] as? [[String: Any]])
        #expect(files.count == 3, "the archive is unpacked and its files listed")
        #expect(files.first { $0["path"] as? String == "weights.bin" }?["verdict"] as? String == "dangerous")

        let missing = try Tools.custody("inspect", scratch.path + "/nope")
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no such file"))
    }
}
