public import CustodyCore
import Foundation
import NIOHTTP1

/// `custody publish`: hashes a model directory, uploads the blobs the registry lacks (several at a time), and
/// creates the version.
public struct Publisher: Sendable {
    public struct Options: Sendable {
        public var model: ModelName
        public var version: String
        public var license: API.License?
        public var provenance: API.Provenance?
        public var signingKey: PrivateSigningKey?
        public var quiet: Bool
        public var parallelUploads: Int

        public init(
            model: ModelName, version: String, license: API.License?, provenance: API.Provenance?, signingKey: PrivateSigningKey?,
            quiet: Bool, parallelUploads: Int = 8
        ) {
            self.model = model
            self.version = version
            self.license = license
            self.provenance = provenance
            self.signingKey = signingKey
            self.quiet = quiet
            self.parallelUploads = parallelUploads
        }
    }

    let client: RegistryClient

    public init(client: RegistryClient) {
        self.client = client
    }

    /// Publishes the model directory at `directory` (an extracted archive or a plain directory).
    public func publish(directory: String, options: Options) async throws(CustodyError) -> API.PublishResponse {
        try VersionTag.validate(options.version)
        let signing = ModelSigning()
        // A model.sig shipped in the bundle is the publisher's business, not part of the version.
        let serialization = SerializationParameters(ignorePaths: (ModelTree.defaultIgnorePaths + ["model.sig"]).sorted())
        let files = try ModelTree.files(at: directory, allowSymlinks: false, ignorePaths: serialization.ignorePaths)
        guard !files.isEmpty else { throw CustodyError(.invalidArgument, "\(directory): there are no files to publish") }
        guard files.first?.name != "." else {
            throw CustodyError(.invalidArgument, "\(directory): publish a directory or an archive, not a single file")
        }
        let manifest = try ModelManifest.hashing(model: files, name: options.model.name, serialization: serialization)
        var entries: [API.FileEntry] = []
        var paths: [Digest: (String, UInt64)] = [:]
        for (file, resource) in zip(files, manifest.resources) {
            entries.append(API.FileEntry(path: file.name, size: file.size, digest: resource.digest))
            paths[resource.digest] = (file.path, file.size)
        }
        let signature = try options.signingKey.map { key throws(CustodyError) in
            Data(try signing.sign(manifest, with: key).encoded()).base64EncodedString()
        }
        try await uploadMissing(paths, options: options)
        let request = API.PublishRequest(
            version: options.version, files: entries, license: options.license, provenance: options.provenance, signature: signature)
        return try await client.send(.POST, "/v1/models/\(options.model.namespace)/\(options.model.name)/versions", body: request)
    }

    private func uploadMissing(_ blobs: [Digest: (String, UInt64)], options: Options) async throws(CustodyError) {
        let answer: API.BlobQuery = try await client.post("/v1/blobs/missing", body: API.BlobQuery(digests: Array(blobs.keys)))
        var missing = answer.digests.compactMap { digest in blobs[digest].map { (digest, $0.0, $0.1) } }
        guard !missing.isEmpty else { return }
        let total = missing.reduce(Int64(0)) { $0 + Int64($1.2) }
        let progress = TransferProgress(label: "uploading \(missing.count) blobs", total: total, quiet: options.quiet)
        // Largest first, so that the big shards start early and small files fill the gaps.
        missing.sort { $0.2 > $1.2 }
        try await forEach(missing, width: options.parallelUploads) { (digest, path, size) throws(CustodyError) in
            try await client.uploadBlob(digest, from: path, size: size, progress: { progress.advance($0) })
            return [()]
        } collect: { _ in }
        progress.finish()
    }
}

/// Runs `body` over `items` with at most `width` in flight, collecting results on the calling task; the first
/// error cancels the rest and is rethrown.
func forEach<Item: Sendable, Result: Sendable>(
    _ items: [Item], width: Int, _ body: @Sendable @escaping (Item) async throws(CustodyError) -> [Result],
    collect: ([Result]) -> Void
) async throws(CustodyError) {
    do {
        try await withThrowingTaskGroup(of: [Result].self) { group in
            var iterator = items.makeIterator()
            for _ in 0..<max(1, width) {
                guard let item = iterator.next() else { break }
                group.addTask { try await body(item) }
            }
            while let results = try await group.next() {
                collect(results)
                if let item = iterator.next() { group.addTask { try await body(item) } }
            }
        }
    } catch let error as CustodyError {
        throw error
    } catch {
        throw CustodyError(.remote, "\(error)")
    }
}
