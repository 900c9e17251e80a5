import CustodyCore
import CustodyStorage
import CustodyTestSupport
import Foundation
import Testing

@testable import CustodyRegistry

/// The OCI use case's pure parts and the upload sessions over an in-memory store.
@Suite struct OCIRegistryTests {
    static func version(files: [API.FileEntry], license: String? = "apache-2.0") throws -> API.VersionDetail {
        API.VersionDetail(
            model: "acme/tiny", version: "1.0",
            bundleDigest: PublishService.manifest(of: files, model: try ModelName(parsing: "acme/tiny")).rootDigest,
            createdAt: "2026-12-04T00:00:00Z", files: files, license: API.License(id: license),
            provenance: API.Provenance(source: API.Source(uri: "https://x/acme/tiny", revision: "abc"), datasets: ["d1"]), signatures: [])
    }

    @Test func aVersionsManifestIsTheSameBytesEveryTime() throws {
        let files = [
            API.FileEntry(path: "README.md", size: 3, digest: ContentDigest.of(Array("abc".utf8))),
            API.FileEntry(path: "model.safetensors", size: 4, digest: ContentDigest.of(Array("wxyz".utf8))),
        ]
        let version = try Self.version(files: files)
        let first = ModelPack.manifest(of: version, config: ModelPack.config(of: version)).encoded()
        let second = ModelPack.manifest(of: try Self.version(files: files), config: ModelPack.config(of: version)).encoded()
        #expect(first == second, "deterministic: the digest is stable across daemons and calls")
        let parsed = try OCIArtifacts.parse(first)
        #expect(parsed.artifactType == OCIMediaType.modelPackManifest)
        #expect(parsed.layers?.map(\.annotations?["org.cncf.model.filepath"]) == ["README.md", "model.safetensors"])
        #expect(parsed.layers?.map(\.digest) == files.map(\.digest.description))
        let config = try JSONDecoder().decode(ModelPackConfig.self, from: Data(ModelPack.config(of: version).bytes))
        #expect(config.descriptor?.licenses == ["apache-2.0"] && config.descriptor?.sourceURL == "https://x/acme/tiny")
        #expect(config.descriptor?.revision == "abc" && config.descriptor?.datasetsURL == ["d1"])
        #expect(config.modelfs?.diffIds == files.map(\.digest.description))
        let other = ModelPack.config(of: try Self.version(files: files, license: "mit"))
        #expect(other.digest != ModelPack.config(of: version).digest, "the licence is part of the config")
    }

    @Test(arguments: [
        ("model.safetensors", FileFormat.safetensors, "weight"), ("config.json", .json, "weight.config"),
        ("tokenizer.model", .unknown, "weight.config"), ("README.md", .text, "doc"), ("LICENSE", .text, "doc"),
        ("modeling.py", .text, "code"), ("weights.bin", .unknown, "weight"), ("sub/generation_config.json", .json, "weight.config"),
    ])
    func layersAreTypedByWhatTheFileIs(path: String, format: FileFormat, kind: String) {
        #expect(ModelPack.layerType(path: path, format: format) == "application/vnd.cncf.model.\(kind).v1.raw")
    }

    @Test func manifestsAreParsedStrictly() throws {
        let good = Array(
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:00","size":1},"layers":[]}"#
                .utf8)
        #expect(try OCIArtifacts.parse(good).layers?.isEmpty == true)
        let cases: [(String, String?, String)] = [
            ("not json", nil, "not a JSON image manifest"),
            (#"{"schemaVersion":1,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#, nil, "schemaVersion is 1"),
            (#"{"schemaVersion":2,"mediaType":"text/plain"}"#, nil, "'text/plain', not an image manifest"),
            (#"{"schemaVersion":2}"#, nil, "missing"),
            (#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#, nil, "needs a config"),
            (#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#, nil, "no manifests"),
            (String(decoding: good, as: UTF8.self), "application/vnd.oci.image.index.v1+json", "differs from its Content-Type"),
        ]
        for (text, type, message) in cases {
            #expect {
                _ = try OCIArtifacts.parse(Array(text.utf8), contentType: type)
            } throws: { error in
                let refusal = error as? OCIArtifacts.Refusal
                return refusal?.code == .manifestInvalid && refusal?.message.contains(message) == true
            }
        }
    }

    @Test func sessionsTakeChunksInOrderAndKeepNothingOnTheWrongDigest() async throws {
        let store = InMemoryBlobStore()
        let uploads = UploadsTests.uploads(store)
        let bytes = Array("0123456789".utf8)
        let id = try await uploads.startSession()
        #expect(await uploads.sessionSize(id) == 0)
        #expect(try await uploads.appendChunk(id, at: 0, declaredLength: 4, body: OneChunk(bytes: Array(bytes[0..<4]))) == 4)
        await #expect(throws: CustodyError(.outOfOrder, "the upload holds 4 bytes; a chunk starting at 0 is out of order")) {
            _ = try await uploads.appendChunk(id, at: 0, declaredLength: 4, body: OneChunk(bytes: Array(bytes[0..<4])))
        }
        #expect(try await uploads.appendChunk(id, at: nil, declaredLength: nil, body: OneChunk(bytes: Array(bytes[4..<8]))) == 8)
        let wrong = ContentDigest.of(Array("other".utf8))
        await #expect(throws: CustodyError.self) {
            _ = try await uploads.finishSession(id, expecting: wrong, declaredLength: 2, body: OneChunk(bytes: Array(bytes[8...])))
        }
        #expect(await uploads.sessionSize(id) == nil, "the session ended")
        #expect(try await uploads.storedSize(wrong) == nil)
        #expect(try await uploads.storedSize(ContentDigest.of(bytes)) == nil)

        let next = try await uploads.startSession()
        #expect(try await uploads.finishSession(next, expecting: ContentDigest.of(bytes), declaredLength: 10, body: OneChunk(bytes: bytes)) == 10)
        #expect(try await uploads.storedSize(ContentDigest.of(bytes)) == 10)
        #expect(try await uploads.cancelSession(next) == false)
    }
}

extension OCIRegistryTests {
    @Test func dockerModelLayersAreNamedByWhatTheyAre() {
        #expect(OCIArtifacts.dockerFileName("application/vnd.docker.ai.gguf.v3", taken: []) == "model.gguf")
        #expect(OCIArtifacts.dockerFileName("application/vnd.docker.ai.license", taken: ["LICENSE"]) == "LICENSE-2")
        #expect(OCIArtifacts.dockerFileName("application/vnd.docker.ai.gguf.v3", taken: ["model.gguf", "model-2.gguf"]) == "model-3.gguf")
        #expect(OCIArtifacts.dockerFileName("application/vnd.oci.image.layer.v1.tar", taken: []) == nil)
    }
}
