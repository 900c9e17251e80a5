package import Foundation

/// A fresh directory under the system temporary directory, removed when the value is released.
package final class Scratch {
    package let path: String

    package init() throws {
        path = NSTemporaryDirectory() + "custody-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `contents` at `relative`, creating parent directories; returns the full path.
    @discardableResult
    package func write(_ relative: String, _ contents: [UInt8]) throws -> String {
        let full = path + "/" + relative
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(contents).write(to: URL(fileURLWithPath: full))
        return full
    }

    @discardableResult
    package func write(_ relative: String, _ text: String) throws -> String {
        try write(relative, Array(text.utf8))
    }

    /// Copies `source` to `relative` in this directory; returns the full path.
    package func copy(_ source: String, to relative: String) throws -> String {
        let target = path + "/" + relative
        try FileManager.default.copyItem(atPath: source, toPath: target)
        return target
    }
}

/// Deterministic pseudo-random bytes (SplitMix64), so failures reproduce.
package func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    var out = [UInt8]()
    out.reserveCapacity(count + 8)
    while out.count < count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        withUnsafeBytes(of: z.littleEndian) { out.append(contentsOf: $0) }
    }
    return Array(out.prefix(count))
}

/// Every regular file under `root` (relative path → contents), for byte-for-byte comparisons.
package func tree(_ root: String) throws -> [String: Data] {
    var files: [String: Data] = [:]
    let enumerator = FileManager.default.enumerator(atPath: root)
    while let relative = enumerator?.nextObject() as? String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue {
            files[relative] = try Data(contentsOf: URL(fileURLWithPath: root + "/" + relative))
        }
    }
    return files
}
