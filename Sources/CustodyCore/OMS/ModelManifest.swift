import Crypto

/// How a model's files become OMS resources.
public enum SerializationMethod: Sendable, Hashable {
    /// One resource per file, named by its path.
    case files
    /// One resource per `size`-byte shard of each file, named `path:start:end`, so one huge file uses every core.
    case shards(size: UInt64)

    /// model-signing's default shard size.
    public static let defaultShardSize: UInt64 = 1_000_000_000
}

/// The `predicate.serialization` section of an OMS statement: what a verifier needs to hash the model again.
public struct SerializationParameters: Sendable, Hashable {
    /// How files become resources: one per file, or shards of a fixed size.
    public var method: SerializationMethod
    /// Whether symbolic links are followed (model_signing's `allow_symlinks`).
    public var allowSymlinks: Bool
    /// Paths relative to the model root that are not part of the model.
    public var ignorePaths: [String]

    /// Parameters as model_signing's defaults have them, unless told otherwise.
    public init(method: SerializationMethod = .files, allowSymlinks: Bool = false, ignorePaths: [String] = ModelTree.defaultIgnorePaths) {
        self.method = method
        self.allowSymlinks = allowSymlinks
        self.ignorePaths = ignorePaths
    }

    /// The per-resource algorithm name for this method.
    public var resourceAlgorithm: String {
        switch method {
        case .files: "sha256"
        case .shards(let size): "sha256-sharded-\(size)"
        }
    }
}

/// One OMS resource descriptor: a file or a shard with its digest.
public struct Resource: Sendable, Hashable {
    /// The file's path (or `path:start:end` for a shard).
    public let name: String
    /// The digest algorithm, `sha256`.
    public let algorithm: String
    /// The digest of the file or shard.
    public let digest: ContentDigest

    /// A resource from its parts.
    public init(name: String, algorithm: String, digest: ContentDigest) {
        self.name = name
        self.algorithm = algorithm
        self.digest = digest
    }

    /// The file this resource covers: the name itself, or the path part of a `path:start:end` shard name.
    public var filePath: String {
        guard algorithm != "sha256", let shard = ShardName(name) else { return name }
        return shard.path
    }
}

/// A parsed `path:start:end` shard resource name.
struct ShardName: Hashable {
    let path: String
    let start: UInt64
    let end: UInt64

    init(path: String, start: UInt64, end: UInt64) {
        self.path = path
        self.start = start
        self.end = end
    }

    init?(_ name: String) {
        let parts = name.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, let start = UInt64(parts[1]), let end = UInt64(parts[2]), start < end else { return nil }
        self.init(path: String(parts[0]), start: start, end: end)
    }

    var name: String { "\(path):\(start):\(end)" }

    static func precedes(_ a: ShardName, _ b: ShardName) -> Bool {
        if a.path != b.path { return ResourceOrder.precedes(a.path, b.path) }
        return (a.start, a.end) < (b.start, b.end)
    }
}

/// The hashed content of a model: its resources in OMS order and their root digest.
public struct ModelManifest: Sendable, Hashable {
    /// The subject name: the model directory's (or single file's) name.
    public let modelName: String
    /// How the model's files were turned into resources.
    public let serialization: SerializationParameters
    /// Every resource, in model_signing's order.
    public let resources: [Resource]

    /// A manifest of `resources` for the model named `modelName`.
    public init(modelName: String, serialization: SerializationParameters, resources: [Resource]) {
        self.modelName = modelName
        self.serialization = serialization
        self.resources = resources
    }

    /// SHA-256 over the raw resource digests in resource order: the bundle digest that identifies a version.
    public var rootDigest: ContentDigest { Self.rootDigest(of: resources) }

    static func rootDigest(of resources: [Resource]) -> ContentDigest {
        var hasher = SHA256()
        for resource in resources { hasher.update(data: resource.digest.bytes) }
        return ContentDigest(hasher.finalize())
    }

    /// Hashes `files` (as ``ModelTree/files(at:allowSymlinks:ignorePaths:)`` lists them, in resource order) the way
    /// `serialization` describes.
    public static func hashing(
        model files: [ModelFile], name modelName: String, serialization: SerializationParameters,
        hasher: FileHasher = FileHasher()
    ) throws(CustodyError) -> ModelManifest {
        var names: [String] = []
        var jobs: [HashJob] = []
        switch serialization.method {
        case .files:
            for file in files {
                names.append(file.name)
                jobs.append(HashJob(path: file.path, range: 0..<file.size))
            }
        case .shards(let size):
            for file in files {
                var start: UInt64 = 0
                while start < file.size {
                    let end = min(start + size, file.size)
                    names.append(ShardName(path: file.name, start: start, end: end).name)
                    jobs.append(HashJob(path: file.path, range: start..<end))
                    start = end
                }
            }
        }
        let digests = try hasher.digests(of: jobs)
        let algorithm = serialization.resourceAlgorithm
        // `files` arrives in resource order and shards are appended by ascending start, so no sort is needed.
        let resources = zip(names, digests).map { Resource(name: $0, algorithm: algorithm, digest: $1) }
        return ModelManifest(modelName: modelName, serialization: serialization, resources: resources)
    }
}
