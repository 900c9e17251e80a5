import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// One regular file of a model.
public struct ModelFile: Sendable, Hashable {
    /// The POSIX path relative to the model root; `"."` when the model is a single file.
    public let name: String
    /// The path to open.
    public let path: String
    /// Its size in bytes.
    public let size: UInt64

    /// A file of the model.
    public init(name: String, path: String, size: UInt64) {
        self.name = name
        self.path = path
        self.size = size
    }
}

/// Lists the files of a model the way OMS serialization (and model-signing) sees them.
///
/// Every regular file under the root counts, hidden ones included. Paths in `ignorePaths` (relative to the root;
/// a directory covers everything below it) are skipped without being looked into. Symbolic links are an error
/// unless allowed; when allowed, a link to a file is hashed as that file and a link to a directory is not followed,
/// as model-signing does. Anything else (FIFOs, sockets, devices) is an error naming the path.
public enum ModelTree {
    /// The paths that model-signing ignores by default at the top of a model.
    public static let defaultIgnorePaths = [".git", ".gitattributes", ".github", ".gitignore"]

    /// What a bundle leaves out, sorted: model-signing's defaults and the signature file itself (`model.sig`), which
    /// a verifier skips and so can never be part of a version. Publishing, inspecting and the registry use this one
    /// list.
    public static let bundleIgnorePaths = (defaultIgnorePaths + ["model.sig"]).sorted()

    /// Every file under `root` that a signature covers, in model_signing's order; refuses what model_signing refuses.
    public static func files(at root: String, allowSymlinks: Bool, ignorePaths: [String]) throws(CustodyError) -> [ModelFile] {
        var info = stat()
        guard lstat(root, &info) == 0 else { throw .io(root, "read", errno: errno) }
        if (info.st_mode & S_IFMT) == S_IFLNK {
            guard allowSymlinks else { throw symlinkRefused(root) }
            guard stat(root, &info) == 0 else { throw .io(root, "follow symlink", errno: errno) }
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            return [ModelFile(name: ".", path: root, size: UInt64(info.st_size))]
        case S_IFDIR:
            var walker = Walker(allowSymlinks: allowSymlinks, ignored: Set(ignorePaths.map(normalize)))
            try walker.walk(directory: root, relative: "")
            return walker.files.sorted { ResourceOrder.precedes($0.name, $1.name) }
        default:
            throw CustodyError(.invalidModel, "\(root): not a regular file or directory")
        }
    }

    /// `./a//b/` → `a/b`, so that ignore paths compare equal however they were spelled.
    static func normalize(_ path: String) -> String {
        path.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
    }

    static func symlinkRefused(_ path: String) -> CustodyError {
        CustodyError(.invalidModel, "\(path): is a symbolic link; symlinks are refused unless --allow-symlinks is given")
    }

    private struct Walker {
        let allowSymlinks: Bool
        let ignored: Set<String>
        var files: [ModelFile] = []

        mutating func walk(directory: String, relative: String) throws(CustodyError) {
            guard let dir = opendir(directory) else { throw .io(directory, "list", errno: errno) }
            defer { closedir(dir) }
            while true {
                errno = 0
                guard let entry = readdir(dir) else {
                    if errno != 0 { throw .io(directory, "list", errno: errno) }
                    return
                }
                let rawName = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    Array(raw.prefix(while: { $0 != 0 }))
                }
                if rawName == [0x2e] || rawName == [0x2e, 0x2e] { continue }
                guard let name = String(validating: rawName, as: UTF8.self) else {
                    throw CustodyError(.invalidModel, "\(directory): contains a file name that is not valid UTF-8")
                }
                let childRelative = relative.isEmpty ? name : relative + "/" + name
                if isIgnored(childRelative) { continue }
                try visit(path: directory + "/" + name, relative: childRelative)
            }
        }

        private mutating func visit(path: String, relative: String) throws(CustodyError) {
            var info = stat()
            guard lstat(path, &info) == 0 else { throw .io(path, "read", errno: errno) }
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                files.append(ModelFile(name: relative, path: path, size: UInt64(info.st_size)))
            case S_IFDIR:
                try walk(directory: path, relative: relative)
            case S_IFLNK:
                guard allowSymlinks else { throw symlinkRefused(path) }
                guard stat(path, &info) == 0 else { throw .io(path, "follow symlink", errno: errno) }
                switch info.st_mode & S_IFMT {
                case S_IFREG: files.append(ModelFile(name: relative, path: path, size: UInt64(info.st_size)))
                case S_IFDIR: break
                default: throw CustodyError(.invalidModel, "\(path): links to something that is not a regular file")
                }
            default:
                throw CustodyError(.invalidModel, "\(path): not a regular file or directory")
            }
        }

        private func isIgnored(_ relative: String) -> Bool {
            if ignored.contains(relative) { return true }
            var prefix = relative[...]
            while let slash = prefix.lastIndex(of: "/") {
                prefix = prefix[..<slash]
                if ignored.contains(String(prefix)) { return true }
            }
            return false
        }
    }
}

/// The order of OMS resources, as model-signing sorts them: by path components compared by code point (so `a/b`
/// comes before `a-b`), then shards by numeric start.
public enum ResourceOrder {
    /// Whether path `a` sorts before path `b`. Mapping `/` below every other byte makes a plain UTF-8 byte
    /// comparison equal to the component-wise one (UTF-8 byte order is code point order).
    public static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lazy.map(componentKey).lexicographicallyPrecedes(b.utf8.lazy.map(componentKey))
    }

    private static func componentKey(_ byte: UInt8) -> UInt16 {
        byte == UInt8(ascii: "/") ? 0 : UInt16(byte) + 1
    }
}
