package import CustodyCore
import Dispatch
import Foundation
import NIOHTTP1

/// `custody publish`: hashes a model directory, uploads the blobs the registry lacks (several at a time), and
/// creates the version.
package struct Publisher: Sendable {
    package struct Options: Sendable {
        package var model: ModelName
        package var version: String
        package var license: API.License?
        package var provenance: API.Provenance?
        package var signingKey: PrivateSigningKey?
        package var quiet: Bool
        package var parallelUploads: Int
        package var licenseClass: String?

        package init(
            model: ModelName, version: String, license: API.License?, provenance: API.Provenance?, signingKey: PrivateSigningKey?,
            quiet: Bool, parallelUploads: Int = 8, licenseClass: String? = nil
        ) {
            self.licenseClass = licenseClass
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

    package init(client: RegistryClient) {
        self.client = client
    }

    /// Publishes the model directory at `directory` (an extracted archive or a plain directory), or a single-file model.
    package func publish(directory: String, options: Options) async throws(CustodyError) -> API.PublishResponse {
        try VersionTag.validate(options.version)
        let signing = ModelSigning()
        // A model.sig shipped in the bundle is the publisher's business, not part of the version.
        let serialization = SerializationParameters(ignorePaths: ModelTree.bundleIgnorePaths)
        var files = try ModelTree.files(at: directory, allowSymlinks: false, ignorePaths: serialization.ignorePaths)
        guard !files.isEmpty else { throw CustodyError(.invalidArgument, "\(directory): there are no files to publish") }
        // A single-file model (a GGUF, a lone .safetensors) is a one-file version under the file's name. Its bundle
        // digest is model_signing's digest of the file: the root digest hashes the resource digests only.
        if files.count == 1, files[0].name == "." {
            let name = (directory as NSString).lastPathComponent
            try BundlePath.validate(name)
            files = [ModelFile(name: name, path: files[0].path, size: files[0].size)]
        }
        let progress = TransferProgress(
            label: "uploading", total: files.reduce(Int64(0)) { $0 + Int64($1.size) }, quiet: options.quiet)
        var digests = [ContentDigest?](repeating: nil, count: files.count)
        let large = files.indices.filter { files[$0].size >= Self.pipelineThreshold }
        let small = files.indices.filter { files[$0].size < Self.pipelineThreshold }
        for (index, digest) in try await publishSmall(small.map { (index: $0, file: files[$0]) }, progress: progress, options: options) {
            digests[index] = digest
        }
        for (index, digest) in try await publishLarge(large.map { (index: $0, file: files[$0]) }, progress: progress, options: options) {
            digests[index] = digest
        }
        progress.finish()

        let resources = zip(files, digests).map { Resource(name: $0.name, algorithm: "sha256", digest: $1!) }
        let manifest = ModelManifest(modelName: options.model.name, serialization: serialization, resources: resources)
        let entries = zip(files, resources).map { API.FileEntry(path: $0.name, size: $0.size, digest: $1.digest) }
        let signature = try options.signingKey.map { key throws(CustodyError) in
            Data(try signing.sign(manifest, with: key).encoded()).base64EncodedString()
        }
        let request = API.PublishRequest(
            version: options.version, files: entries, license: options.license, provenance: options.provenance, signature: signature,
            licenseClass: options.licenseClass)
        return try await client.send(.POST, "/v1/models/\(options.model.namespace)/\(options.model.name)/versions", body: request)
    }

    /// Files at least this large are hashed and uploaded as a pipeline (each uploads as soon as it is hashed, while
    /// the next ones hash); smaller ones are hashed together and checked with one request.
    static let pipelineThreshold: UInt64 = 64 << 20

    private typealias Indexed = (index: Int, file: ModelFile)

    private func publishSmall(
        _ files: [Indexed], progress: TransferProgress, options: Options
    ) async throws(CustodyError)
        -> [(Int, ContentDigest)]
    {
        guard !files.isEmpty else { return [] }
        let jobs = files.map { HashJob(path: $0.file.path, range: 0..<$0.file.size) }
        let digests = try await Self.offPool { () throws(CustodyError) in try FileHasher().digests(of: jobs) }
        let answer: API.BlobQuery = try await client.post("/v1/blobs/missing", body: API.BlobQuery(digests: Array(Set(digests))))
        let missing = Set(answer.digests)
        var uploads: [ContentDigest: ModelFile] = [:]
        for (entry, digest) in zip(files, digests) {
            if missing.contains(digest) { uploads[digest] = entry.file } else { progress.advance(Int(entry.file.size)) }
        }
        try await forEach(Array(uploads), width: options.parallelUploads) { (digest, file) throws(CustodyError) in
            try await client.uploadBlob(digest, from: file.path, size: file.size, progress: { progress.advance($0) })
            return [()]
        } collect: { _ in
        }
        return zip(files, digests).map { ($0.index, $1) }
    }

    private func publishLarge(
        _ files: [Indexed], progress: TransferProgress, options: Options
    ) async throws(CustodyError)
        -> [(Int, ContentDigest)]
    {
        guard !files.isEmpty else { return [] }
        // Hash as many files at once as there are cores, largest first, so the first digests (and uploads) come early.
        let hashing = AsyncSemaphore(ProcessInfo.processInfo.activeProcessorCount)
        let uploads = UploadOnce()
        let ordered = files.sorted { $0.file.size > $1.file.size }
        var results: [(Int, ContentDigest)] = []
        try await forEach(ordered, width: options.parallelUploads) { (entry) throws(CustodyError) in
            await hashing.wait()
            let digest: ContentDigest
            do throws(CustodyError) {
                digest = try await Self.offPool { () throws(CustodyError) in
                    try FileHasher(workers: 1).digests(of: [HashJob(path: entry.file.path, range: 0..<entry.file.size)])[0]
                }
                await hashing.signal()
            } catch {
                await hashing.signal()
                throw error
            }
            // Files with the same content share one blob: the first to get here uploads it, the others wait for it.
            if await uploads.claim(digest) {
                do throws(CustodyError) {
                    if try await client.hasBlob(digest) {
                        progress.advance(Int(entry.file.size))
                    } else {
                        try await client.uploadBlob(digest, from: entry.file.path, size: entry.file.size, progress: { progress.advance($0) })
                    }
                    await uploads.finish(digest, succeeded: true)
                } catch {
                    await uploads.finish(digest, succeeded: false)
                    throw error
                }
            } else {
                guard await uploads.wait(for: digest) else {
                    throw CustodyError(.remote, "uploading \(digest) failed")
                }
                progress.advance(Int(entry.file.size))
            }
            return [(entry.index, digest)]
        } collect: {
            results += $0
        }
        return results
    }

    /// Runs blocking work (hashing) on a dispatch thread, so that it never occupies Swift's cooperative threads,
    /// which the HTTP client needs to make progress.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws(CustodyError) -> T) async throws(CustodyError) -> T {
        let result: Result<T, CustodyError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                do throws(CustodyError) { continuation.resume(returning: .success(try work())) } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}

/// Makes concurrent tasks upload each blob once: the first claims it, later ones wait for its outcome.
actor UploadOnce {
    private var outcomes: [ContentDigest: Bool] = [:]
    private var claimed: Set<ContentDigest> = []
    private var waiters: [ContentDigest: [CheckedContinuation<Bool, Never>]] = [:]

    func claim(_ digest: ContentDigest) -> Bool {
        claimed.insert(digest).inserted
    }

    func finish(_ digest: ContentDigest, succeeded: Bool) {
        outcomes[digest] = succeeded
        for waiter in waiters.removeValue(forKey: digest) ?? [] { waiter.resume(returning: succeeded) }
    }

    /// Whether the claiming task's upload succeeded.
    func wait(for digest: ContentDigest) async -> Bool {
        if let outcome = outcomes[digest] { return outcome }
        return await withCheckedContinuation { waiters[digest, default: []].append($0) }
    }
}

/// A counting semaphore for tasks.
actor AsyncSemaphore {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) { available = max(1, count) }

    func wait() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func signal() {
        if waiters.isEmpty { available += 1 } else { waiters.removeFirst().resume() }
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
