package import CustodyCore
import Foundation

/// OCI media types and annotation keys the OCI front door reads and writes.
package enum OCIMediaType {
    package static let imageManifest = "application/vnd.oci.image.manifest.v1+json"
    package static let imageIndex = "application/vnd.oci.image.index.v1+json"
    package static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    package static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    package static let empty = "application/vnd.oci.empty.v1+json"
    /// The empty JSON object `{}`, the config of artifacts that need none.
    package static let emptyBytes: [UInt8] = Array("{}".utf8)

    /// CNCF ModelPack (modelpack/model-spec); `vnd.cnai` is its name before the 2025 rename.
    package static let modelPackManifest = "application/vnd.cncf.model.manifest.v1+json"
    package static let modelPackConfig = "application/vnd.cncf.model.config.v1+json"
    package static let legacyModelPackManifest = "application/vnd.cnai.model.manifest.v1+json"
    package static let legacyModelPackConfig = "application/vnd.cnai.model.config.v1+json"
    /// KitOps ModelKits: the Kitfile as JSON is the config.
    package static let kitManifest = "application/vnd.kitops.modelkit.manifest.v1+json"
    package static let kitConfig = "application/vnd.kitops.modelkit.config.v1+json"
    /// Docker Model Runner.
    package static let dockerModelConfigPrefix = "application/vnd.docker.ai.model.config."

    /// The documents the registry attaches to a version's manifest as referrers.
    package static let sigstoreBundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
    package static let scanReport = "application/vnd.custody.scan.report.v1+json"
    package static let cycloneDX = "application/vnd.cyclonedx+json"

    package static let manifestTypes: Set<String> = [imageManifest, imageIndex, dockerManifest, dockerManifestList]

    package static let filePath = "org.cncf.model.filepath"
    package static let title = "org.opencontainers.image.title"
    package static let created = "org.opencontainers.image.created"
    package static let version = "org.opencontainers.image.version"
    package static let attachment = "dev.custody.attachment"
    package static let bundleDigest = "dev.custody.bundle.digest"
}

/// An OCI descriptor.
package struct OCIDescriptor: Codable, Sendable, Hashable {
    package var mediaType: String
    package var digest: String
    package var size: UInt64
    package var artifactType: String?
    package var annotations: [String: String]?
    package var data: String?

    package init(
        mediaType: String, digest: ContentDigest, size: UInt64, artifactType: String? = nil, annotations: [String: String]? = nil,
        data: String? = nil
    ) {
        self.mediaType = mediaType
        self.digest = digest.description
        self.size = size
        self.artifactType = artifactType
        self.annotations = annotations
        self.data = data
    }
}

/// An image manifest or index, as far as the registry reads one: unknown fields are ignored (and kept, since the
/// exact bytes are what is stored).
package struct OCIManifest: Codable, Sendable {
    package var schemaVersion: Int
    package var mediaType: String?
    package var artifactType: String?
    package var config: OCIDescriptor?
    package var layers: [OCIDescriptor]?
    /// An index's manifests.
    package var manifests: [OCIDescriptor]?
    package var subject: OCIDescriptor?
    package var annotations: [String: String]?

    package init(
        mediaType: String, artifactType: String?, config: OCIDescriptor, layers: [OCIDescriptor], subject: OCIDescriptor? = nil,
        annotations: [String: String]? = nil
    ) {
        schemaVersion = 2
        self.mediaType = mediaType
        self.artifactType = artifactType
        self.config = config
        self.layers = layers
        self.subject = subject
        self.annotations = annotations
        manifests = nil
    }

    /// The canonical bytes of a manifest the registry writes: sorted keys, no escaped slashes.
    package func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these value types cannot fail.
        return Array(try! encoder.encode(self))
    }
}

/// A ModelPack model config (`application/vnd.cncf.model.config.v1+json`): the fields Custody writes and reads.
package struct ModelPackConfig: Codable, Sendable {
    package struct Descriptor: Codable, Sendable {
        package var name: String?
        package var version: String?
        package var createdAt: String?
        package var licenses: [String]?
        package var sourceURL: String?
        package var revision: String?
        package var datasetsURL: [String]?
        package var title: String?
        package var description: String?
    }

    package struct Config: Codable, Sendable {
        package var format: String?
    }

    package struct ModelFS: Codable, Sendable {
        package var type: String
        package var diffIds: [String]
    }

    package var descriptor: Descriptor?
    package var config: Config?
    package var modelfs: ModelFS?
}

/// The documents of a version as a ModelPack artifact, built only from what the version recorded at publish, so that
/// the same version always yields the same bytes (and digests).
package enum ModelPack {
    /// A document to be stored as a blob.
    package struct Blob: Sendable {
        package let mediaType: String
        package let bytes: [UInt8]
        package var digest: ContentDigest { ContentDigest.of(bytes) }
        package var descriptor: OCIDescriptor { OCIDescriptor(mediaType: mediaType, digest: digest, size: UInt64(bytes.count)) }
    }

    /// The config blob of a version.
    package static func config(of version: API.VersionDetail) -> Blob {
        let licence = version.license.id ?? version.license.name
        let descriptor = ModelPackConfig.Descriptor(
            name: version.model, version: version.version, createdAt: version.createdAt, licenses: licence.map { [$0] },
            sourceURL: version.provenance.source?.uri, revision: version.provenance.source?.revision,
            datasetsURL: version.provenance.datasets.isEmpty ? nil : version.provenance.datasets)
        let formats = version.scan?.files.map(\.format).filter(\.isWeights) ?? []
        let config = ModelPackConfig(
            descriptor: descriptor, config: .init(format: formats.first?.rawValue),
            modelfs: .init(type: "layers", diffIds: version.files.map(\.digest.description)))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Blob(mediaType: OCIMediaType.modelPackConfig, bytes: Array(try! encoder.encode(config)))
    }

    /// The manifest of a version: its config and one raw layer per file, in the version's file order.
    package static func manifest(of version: API.VersionDetail, config: Blob) -> OCIManifest {
        let formats = Dictionary(version.scan?.files.map { ($0.path, $0.format) } ?? [], uniquingKeysWith: { first, _ in first })
        let layers = version.files.map { file in
            OCIDescriptor(
                mediaType: layerType(path: file.path, format: formats[file.path]), digest: file.digest, size: file.size,
                annotations: [OCIMediaType.filePath: file.path, OCIMediaType.title: file.path])
        }
        return OCIManifest(
            mediaType: OCIMediaType.imageManifest, artifactType: OCIMediaType.modelPackManifest, config: config.descriptor, layers: layers,
            annotations: [
                OCIMediaType.created: version.createdAt, OCIMediaType.version: version.version,
                OCIMediaType.bundleDigest: version.bundleDigest.description,
            ])
    }

    /// A document attached to `subject` as a referrer: an empty config and the document as its one layer.
    package static func attachment(
        _ document: Blob, kind: String, title: String, subject: OCIDescriptor, created: String
    ) -> OCIManifest {
        var layer = document.descriptor
        layer.annotations = [OCIMediaType.title: title]
        return OCIManifest(
            mediaType: OCIMediaType.imageManifest, artifactType: document.mediaType,
            config: OCIDescriptor(mediaType: OCIMediaType.empty, digest: ContentDigest.of(OCIMediaType.emptyBytes), size: 2, data: "e30="),
            layers: [layer], subject: subject, annotations: [OCIMediaType.created: created, OCIMediaType.attachment: kind])
    }

    /// The ModelPack layer type of a file: weights, their configuration (configs, tokenizers, templates), docs or code.
    package static func layerType(path: String, format: FileFormat?) -> String {
        let name = (path.split(separator: "/").last.map(String.init) ?? path).lowercased()
        let kind: String
        if format?.isWeights == true {
            kind = "weight"
        } else if name.hasPrefix("readme") || name.hasPrefix("license") || name.hasPrefix("licence") || name.hasPrefix("notice")
            || name.hasSuffix(".md")
        {
            kind = "doc"
        } else if [".py", ".sh", ".ipynb", ".js", ".rs", ".go", ".c", ".cpp"].contains(where: name.hasSuffix) {
            kind = "code"
        } else if format == .json || format == .text || name.hasSuffix(".json") || name.hasSuffix(".yaml") || name.hasSuffix(".yml")
            || name.hasSuffix(".jinja") || name.hasSuffix(".txt") || name.hasSuffix(".model") || name.hasSuffix(".tiktoken")
        {
            kind = "weight.config"
        } else {
            kind = "weight"
        }
        return "application/vnd.cncf.model.\(kind).v1.raw"
    }
}

extension FileFormat {
    /// Formats that hold weights.
    var isWeights: Bool {
        switch self {
        case .safetensors, .gguf, .pickle, .pytorchZip, .pytorchLegacy, .torchscript, .numpy, .numpyZip, .onnx, .hdf5, .kerasZip: true
        default: false
        }
    }
}
