public import CustodyCore
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Content-addressed blob storage. Uploads are always staged as local files (they are hashed while they arrive),
/// then committed under their digest; an object-store backend would upload the staged file on commit and serve
/// reads through redirects instead of local paths.
public protocol BlobStore: Sendable {
    /// The stored blob's size, or nil when it is not stored.
    func size(of digest: ContentDigest) -> UInt64?
    /// A local path to read the blob from, or nil when it is not stored.
    func localPath(of digest: ContentDigest) -> String?
    /// Where uploads are staged; on the same file system as the store so that commit is a rename.
    var stagingDirectory: String { get }
    /// Moves a fully written, already verified staged file into place under `digest`. Placing a blob that is
    /// already stored just discards the staged copy (same digest, same bytes).
    func commit(staged path: String, as digest: ContentDigest) throws(CustodyError)
}

/// Blobs as files: `ROOT/blobs/sha256/ab/abcdef…`, staging in `ROOT/uploads/`.
public struct FileSystemBlobStore: BlobStore {
    public let root: String

    public init(root: String) throws(CustodyError) {
        self.root = root
        for directory in [root + "/blobs/sha256", root + "/uploads"] {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw CustodyError(.io, "\(directory): cannot create the blob store: \(error.localizedDescription)")
            }
        }
    }

    public var stagingDirectory: String { root + "/uploads" }

    func path(of digest: ContentDigest) -> String {
        let hex = digest.hex
        return "\(root)/blobs/sha256/\(hex.prefix(2))/\(hex)"
    }

    public func size(of digest: ContentDigest) -> UInt64? {
        var info = stat()
        guard stat(path(of: digest), &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return UInt64(info.st_size)
    }

    public func localPath(of digest: ContentDigest) -> String? {
        let path = path(of: digest)
        return access(path, R_OK) == 0 ? path : nil
    }

    public func commit(staged: String, as digest: ContentDigest) throws(CustodyError) {
        let target = path(of: digest)
        let directory = (target as NSString).deletingLastPathComponent
        if mkdir(directory, 0o755) != 0, errno != EEXIST { throw .io(directory, "create", errno: errno) }
        let fd = open(staged, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(staged, "open", errno: errno) }
        let synced = fsync(fd) == 0
        close(fd)
        guard synced else { throw .io(staged, "sync", errno: errno) }
        guard rename(staged, target) == 0 else { throw .io(target, "place blob", errno: errno) }
        chmod(target, 0o444)
    }
}
