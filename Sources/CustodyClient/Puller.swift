package import CustodyCore
import Foundation

/// `custody pull`: downloads every file of a version in parallel into a hidden staging directory beside the
/// output, checks each file's SHA-256 while writing and the registry's signature over the whole manifest, writes
/// the registry's bundle as `model.sig`, and renames the staging directory into place only when all of it
/// verified. An interrupted pull leaves only the staging directory, which the next pull resumes.
package struct Puller: Sendable {
    let client: RegistryClient

    package init(client: RegistryClient) {
        self.client = client
    }

    package struct Result: Sendable {
        package let version: API.VersionDetail
        package let output: String
    }

    package func pull(
        _ reference: ModelReference, into output: String, registryKey: PublicVerifyingKey, quiet: Bool, parallel: Int = 4
    ) async throws(CustodyError) -> Result {
        let versionPath = Self.versionPath(reference)
        let detail: API.VersionDetail = try await client.get(versionPath)
        let bundleBytes = try await client.bytes(versionPath + "/signature")
        let bundle = try SigstoreBundle(decoding: bundleBytes, source: "registry signature of \(reference)")
        let signed = try ModelSigning().signedManifest(of: bundle, key: registryKey, source: "registry signature of \(reference)")
        try Self.check(detail, against: signed, reference: reference)

        if FileManager.default.fileExists(atPath: output) {
            throw CustodyError(.invalidArgument, "\(output) already exists; pull into a new directory")
        }
        let parent = (output as NSString).deletingLastPathComponent
        let staging =
            (parent.isEmpty ? "." : parent) + "/." + (output as NSString).lastPathComponent + ".custody-partial-" + detail.bundleDigest.hex.prefix(12)
        do {
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
            for directory in Set(detail.files.map { ($0.path as NSString).deletingLastPathComponent }) where !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: staging + "/" + directory, withIntermediateDirectories: true)
            }
        } catch {
            throw CustodyError(.io, "\(staging): cannot create the staging directory: \(error.localizedDescription)")
        }

        let total = detail.files.reduce(Int64(0)) { $0 + Int64($1.size) }
        let progress = TransferProgress(label: "pulling \(detail.files.count) files", total: total, quiet: quiet)
        let files = detail.files.sorted { $0.size > $1.size }
        try await forEach(files, width: parallel) { (file) throws(CustodyError) in
            try await client.downloadBlob(file.digest, size: file.size, to: staging + "/" + file.path, progress: { progress.advance($0) })
            return [()]
        } collect: { _ in
        }
        progress.finish()

        try PosixFile.writeAtomically(bundleBytes, to: staging + "/model.sig")
        // One flush of the whole file system instead of one per file: a pull of 10,000 small files would otherwise
        // spend most of its time waiting for the disk.
        try Self.syncFileSystem(of: staging)
        guard rename(staging, output) == 0 else { throw .io(output, "move the pulled model into place at", errno: errno) }
        return Result(version: detail, output: output)
    }

    static func syncFileSystem(of path: String) throws(CustodyError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path, "open", errno: errno) }
        defer { close(fd) }
        guard custody_syncfs(fd) == 0 else { throw .io(path, "sync", errno: errno) }
    }

    package static func versionPath(_ reference: ModelReference) -> String {
        let selector: String =
            switch reference.selector {
            case .version(let version): version
            case .digest(let digest): digest.description
            }
        return "/v1/models/\(reference.model.namespace)/\(reference.model.name)/versions/\(selector)"
    }

    /// The file list the registry describes must be exactly what its signature covers.
    static func check(_ detail: API.VersionDetail, against signed: ModelManifest, reference: ModelReference) throws(CustodyError) {
        let listed = Dictionary(uniqueKeysWithValues: detail.files.map { ($0.path, $0.digest) })
        let covered = Dictionary(uniqueKeysWithValues: signed.resources.map { ($0.name, $0.digest) })
        guard signed.serialization.method == .files, listed == covered, signed.rootDigest == detail.bundleDigest else {
            throw CustodyError(
                .verificationFailed, "\(reference): the registry's file list does not match its own signature; refusing to pull")
        }
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// syncfs(2): Glibc declares it only under _GNU_SOURCE, which the Swift module does not set.
@_silgen_name("syncfs")
private func custody_syncfs(_ fd: Int32) -> Int32
