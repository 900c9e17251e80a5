import CArchive
package import CustodyCore
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Safe extraction of model bundles shipped as `.tar`, `.tar.gz`, `.tar.zst` or `.zip` (any format and filter
/// libarchive recognises by content).
///
/// Hostile archives are refused before anything escapes the target directory: absolute paths, `..` components,
/// device files, FIFOs, links that leave the bundle, and bombs (more entries, more expanded bytes, or a higher
/// expansion ratio than the limits allow). Symbolic and hard links that stay inside the bundle are materialised as
/// copies, because a signed model is a set of regular files.
package struct BundleArchive: Sendable {
    package struct Limits: Sendable {
        package var maxEntries: Int = 100_000
        package var maxExpandedBytes: UInt64 = 2 << 40
        /// Expanded bytes per archive byte, enforced once the expansion passes `ratioFloor`.
        package var maxRatio: UInt64 = 200
        package var ratioFloor: UInt64 = 1 << 30

        package init() {}
    }

    package var limits = Limits()

    package init() {}

    /// Whether `path` names a file that should be treated as an archive (by extension; content decides the format).
    package static func isArchive(_ path: String) -> Bool {
        let lower = path.lowercased()
        return [".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst", ".zip", ".tar.xz", ".tar.bz2"].contains { lower.hasSuffix($0) }
    }

    /// Extracts `archive` into the empty or new directory `target`; on any refusal the partly extracted contents
    /// are removed and the error names the entry and the rule it broke.
    package func extract(_ archive: String, into target: String) throws(CustodyError) {
        do {
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        } catch {
            throw CustodyError(.io, "\(target): cannot create: \(error.localizedDescription)")
        }
        do {
            try extractEntries(archive, into: target)
        } catch {
            try? FileManager.default.removeItem(atPath: target)
            throw error
        }
    }

    private func extractEntries(_ archive: String, into target: String) throws(CustodyError) {
        var info = stat()
        guard stat(archive, &info) == 0 else { throw .io(archive, "open", errno: errno) }
        let archiveSize = UInt64(max(info.st_size, 1))
        // libarchive converts entry names through the C library's locale; Swift programs start in the "C" locale,
        // where names like "模型/权重.bin" cannot be represented and come back as NULL.
        if setlocale(LC_CTYPE, "C.UTF-8") == nil { _ = setlocale(LC_CTYPE, "en_US.UTF-8") }
        guard let reader = archive_read_new() else { throw CustodyError(.io, "\(archive): libarchive failed to start") }
        defer { archive_read_free(reader) }
        archive_read_support_filter_all(reader)
        archive_read_support_format_all(reader)
        guard archive_read_open_filename(reader, archive, 1 << 20) == ARCHIVE_OK else {
            throw CustodyError(.invalidArgument, "\(archive): not a readable archive: \(Self.message(reader))")
        }
        var entries = 0
        var expanded: UInt64 = 0
        var links: [(path: String, target: String)] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            var entry: OpaquePointer?
            let status = archive_read_next_header(reader, &entry)
            if status == ARCHIVE_EOF { break }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
                throw CustodyError(.invalidArgument, "\(archive): corrupt archive: \(Self.message(reader))")
            }
            entries += 1
            guard entries <= limits.maxEntries else {
                throw CustodyError(.tooLarge, "\(archive): more than \(limits.maxEntries) entries; refusing a possible archive bomb")
            }
            guard let rawName = archive_entry_pathname_utf8(entry) ?? archive_entry_pathname(entry) else {
                throw CustodyError(.invalidArgument, "\(archive): an entry has no name")
            }
            let name = try Self.relativeName(String(cString: rawName), archive: archive)
            guard let name else { continue }
            let destination = target + "/" + name
            let type = archive_entry_filetype(entry)
            if let hardlink = archive_entry_hardlink_utf8(entry) ?? archive_entry_hardlink(entry) {
                guard let linked = try Self.relativeName(String(cString: hardlink), archive: archive) else {
                    throw CustodyError(.invalidArgument, "\(archive): hard link '\(name)' points at the bundle root")
                }
                links.append((name, linked))
                continue
            }
            switch type {
            case Glibc.S_IFDIR:
                try Self.makeDirectory(destination)
            case Glibc.S_IFREG:
                try Self.makeDirectory((destination as NSString).deletingLastPathComponent)
                let fd = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
                guard fd >= 0 else {
                    if errno == EEXIST { throw CustodyError(.invalidArgument, "\(archive): entry '\(name)' appears twice") }
                    throw .io(destination, "create", errno: errno)
                }
                defer { close(fd) }
                while true {
                    let count = buffer.withUnsafeMutableBytes { archive_read_data(reader, $0.baseAddress, $0.count) }
                    if count == 0 { break }
                    guard count > 0 else {
                        throw CustodyError(.invalidArgument, "\(archive): entry '\(name)' is corrupt: \(Self.message(reader))")
                    }
                    expanded += UInt64(count)
                    guard expanded <= limits.maxExpandedBytes,
                        expanded <= limits.ratioFloor || expanded / archiveSize <= limits.maxRatio
                    else {
                        throw CustodyError(
                            .tooLarge, "\(archive): expands past \(expanded) bytes from \(archiveSize); refusing a possible archive bomb")
                    }
                    let failure: Int32 = buffer.withUnsafeBytes { bytes in
                        var done = 0
                        while done < count {
                            let written = write(fd, bytes.baseAddress! + done, count - done)
                            if written < 0 {
                                if errno == EINTR { continue }
                                return errno
                            }
                            done += written
                        }
                        return 0
                    }
                    if failure != 0 { throw .io(destination, "write", errno: failure) }
                }
            case Glibc.S_IFLNK:
                guard let rawTarget = archive_entry_symlink_utf8(entry) ?? archive_entry_symlink(entry) else {
                    throw CustodyError(.invalidArgument, "\(archive): symbolic link '\(name)' has no target")
                }
                let linkTarget = String(cString: rawTarget)
                guard !linkTarget.hasPrefix("/"), let resolved = Self.resolve(linkTarget, from: name) else {
                    throw CustodyError(.invalidArgument, "\(archive): symbolic link '\(name)' -> '\(linkTarget)' leaves the bundle")
                }
                links.append((name, resolved))
            default:
                throw CustodyError(
                    .invalidArgument, "\(archive): entry '\(name)' is a device, FIFO or socket; only files and directories are allowed")
            }
        }
        for link in links {
            try materialize(link.path, as: link.target, in: target, archive: archive)
        }
    }

    /// Replaces an in-bundle link by a copy of what it points at (a regular file already extracted).
    private func materialize(_ path: String, as linked: String, in target: String, archive: String) throws(CustodyError) {
        let source = target + "/" + linked
        var info = stat()
        guard lstat(source, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw CustodyError(.invalidArgument, "\(archive): link '\(path)' -> '\(linked)' does not point at a file in the bundle")
        }
        let destination = target + "/" + path
        try Self.makeDirectory((destination as NSString).deletingLastPathComponent)
        do {
            try FileManager.default.copyItem(atPath: source, toPath: destination)
        } catch {
            throw CustodyError(.io, "\(destination): cannot copy the linked file: \(error.localizedDescription)")
        }
    }

    /// An entry name as a safe relative path, or nil for the archive root (`./`).
    static func relativeName(_ raw: String, archive: String) throws(CustodyError) -> String? {
        if raw.hasPrefix("/") {
            throw CustodyError(.invalidArgument, "\(archive): entry '\(raw)' has an absolute path")
        }
        var components: [Substring] = []
        for component in raw.split(separator: "/", omittingEmptySubsequences: true) where component != "." {
            if component == ".." {
                throw CustodyError(.invalidArgument, "\(archive): entry '\(raw)' contains '..'")
            }
            components.append(component)
        }
        return components.isEmpty ? nil : components.joined(separator: "/")
    }

    /// The bundle-relative path a relative symlink at `path` points at, or nil when it climbs out of the bundle.
    static func resolve(_ linkTarget: String, from path: String) -> String? {
        var components = path.split(separator: "/").dropLast().map(String.init)
        for component in linkTarget.split(separator: "/") where component != "." {
            if component == ".." {
                guard !components.isEmpty else { return nil }
                components.removeLast()
            } else {
                components.append(String(component))
            }
        }
        return components.isEmpty ? nil : components.joined(separator: "/")
    }

    private static func makeDirectory(_ path: String) throws(CustodyError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw CustodyError(.io, "\(path): cannot create: \(error.localizedDescription)")
        }
    }

    private static func message(_ reader: OpaquePointer) -> String {
        archive_error_string(reader).map { String(cString: $0) } ?? "unknown error"
    }
}
