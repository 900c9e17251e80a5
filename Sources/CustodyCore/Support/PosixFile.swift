import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Small whole-file reads and atomic writes. Model weights never go through here: see ``FileHasher``.
public enum PosixFile {
    /// The bytes of a small file; refuses files larger than `limit` so a wrong path cannot exhaust memory.
    public static func contents(of path: String, limit: Int) throws(CustodyError) -> [UInt8] {
        try withRegularFile(path) { fd, size throws(CustodyError) in
            guard size <= limit else {
                throw CustodyError(.io, "\(path): \(size) bytes is larger than the \(limit)-byte limit for this file")
            }
            return try readAll(fd, path: path, size: size)
        }
    }

    /// Opens `path` read-only and runs `body` with its descriptor and size; anything but a regular file is refused.
    public static func withRegularFile<T>(
        _ path: String, _ body: (Int32, Int) throws(CustodyError) -> T
    ) throws(CustodyError) -> T {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path, "open", errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .io(path, "stat", errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw CustodyError(.io, "\(path): not a regular file") }
        return try body(fd, Int(info.st_size))
    }

    private static func readAll(_ fd: Int32, path: String, size: Int) throws(CustodyError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        var filled = 0
        while filled < bytes.count {
            let got = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if got < 0 {
                if errno == EINTR { continue }
                throw .io(path, "read", errno: errno)
            }
            if got == 0 { break }
            filled += got
        }
        return Array(bytes[0..<filled])
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed, then renamed over the
    /// target, so readers see either the old content or the new, never a torn file.
    /// With `exclusive`, an existing `path` is an error instead of being replaced.
    public static func writeAtomically(
        _ bytes: [UInt8], to path: String, mode: UInt32 = 0o644, exclusive: Bool = false
    ) throws(CustodyError) {
        if exclusive, access(path, F_OK) == 0 {
            throw CustodyError(.io, "\(path): already exists; refusing to overwrite it")
        }
        let directory = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        var template = Array("\(directory.isEmpty ? "." : directory)/.\(base).XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw .io(path, "create a temporary file beside", errno: errno) }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var committed = false
        defer {
            if !committed { unlink(temporary) }
        }
        do {
            defer { close(fd) }
            guard fchmod(fd, mode_t(mode)) == 0 else { throw CustodyError.io(temporary, "chmod", errno: errno) }
            var written = 0
            while written < bytes.count {
                let count = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw CustodyError.io(path, "write", errno: errno)
                }
                written += count
            }
            guard fsync(fd) == 0 else { throw CustodyError.io(path, "sync", errno: errno) }
        }
        if exclusive {
            // link(2) fails if the target appeared meanwhile, where rename(2) would silently replace it.
            guard link(temporary, path) == 0 else { throw .io(path, "create", errno: errno) }
            unlink(temporary)
        } else {
            guard rename(temporary, path) == 0 else { throw .io(path, "replace", errno: errno) }
        }
        committed = true
    }
}

/// Starts the kernel writing a file's dirty pages while more bytes arrive, so the final `fsync`/`syncfs` waits for
/// the last few MiB instead of the whole file (by default Linux starts writeback only once gigabytes are dirty).
/// Purely a scheduling hint: durability still comes from the sync that follows.
public struct EagerWriteback: ~Copyable {
    private let fd: Int32
    private var submittedOffset: UInt64

    /// How many newly written bytes trigger the next writeback request.
    public static let step: UInt64 = 32 << 20

    /// Write-back for the file open as `fd`, counting from `offset`.
    public init(fd: Int32, from offset: UInt64 = 0) {
        self.fd = fd
        self.submittedOffset = offset
    }

    /// Where the next writeback request starts: carried over when a writer hands the file on.
    public var submitted: UInt64 { submittedOffset }

    /// Call after writing everything before `end`.
    public mutating func written(upTo end: UInt64) {
        guard end >= submittedOffset + Self.step else { return }
        #if os(Linux)
            _ = custody_sync_file_range(fd, Int64(submittedOffset), Int64(end - submittedOffset), 2 /* SYNC_FILE_RANGE_WRITE */)
        #endif
        submittedOffset = end
    }
}

#if os(Linux)
    /// sync_file_range(2): Glibc declares it only under _GNU_SOURCE, which the Swift module does not set.
    @_silgen_name("sync_file_range")
    private func custody_sync_file_range(_ fd: Int32, _ offset: Int64, _ count: Int64, _ flags: UInt32) -> Int32
#endif
