package import CustodyCore
import Foundation

/// Format detection from content alone (formats.md §2–§4); the file name never decides.
package enum Detector {
    /// The legacy `torch.save` preamble: protocol 2, LONG1 of 10 bytes holding the magic number 0x1950a86a20f9469cfc6c.
    static let legacyTorchMagic: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

    static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ prefix: [UInt8], at offset: Int = 0) -> Bool {
        bytes.count >= offset + prefix.count && prefix.indices.allSatisfy { bytes[offset + $0] == prefix[$0] }
    }

    static func detect(_ bytes: UnsafeRawBufferPointer) -> FileFormat {
        guard !bytes.isEmpty else { return .empty }
        if hasPrefix(bytes, Array("GGUF".utf8)) { return .gguf }
        if NumPy.looksLike(bytes) { return .numpy }
        if hasPrefix(bytes, [0x50, 0x4B, 0x03, 0x04]) || hasPrefix(bytes, [0x50, 0x4B, 0x05, 0x06]) { return zipKind(bytes) }
        if hasPrefix(bytes, [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]) { return .hdf5 }
        if isArchive(bytes) { return .archive }
        if hasPrefix(bytes, legacyTorchMagic) { return .pytorchLegacy }
        if bytes.count >= 2, bytes[0] == 0x80, bytes[1] <= 5 { return .pickle }
        if Safetensors.looksLike(bytes) { return .safetensors }
        if looksLikeONNX(bytes) { return .onnx }

        // Protocol 0 and 1 pickles have no header: a stream that reads to a STOP is a pickle, even if it is text.
        let probe = PickleScanner.scan(bytes, maxPickles: 1, limits: .standard)
        if probe.pickles > 0 { return .pickle }
        // Text that imports something Custody knows before it breaks is a truncated protocol-0 pickle; an arbitrary
        // text file that merely starts with `c` or `i` yields an unknown "module" and stays text.
        let knownImport = probe.imports.contains { ImportRules.verdict(module: $0.module, name: $0.name).0 != .suspicious }
        if knownImport { return .pickle }
        if let text = text(bytes) {
            if let json = try? StrictJSONParser.parse(bytes), case .object = json {
                return json["weight_map"] != nil ? .safetensorsIndex : .json
            }
            _ = text
            return .text
        }
        // Not text, not a complete pickle, but it imports before breaking: a damaged or truncated pickle.
        if !probe.imports.isEmpty || (probe.opcodes > 0 && [0x63, 0x69].contains(bytes[0])) { return .pickle }
        return .unknown
    }

    /// What an archive member's first bytes say it is, when it could carry code.
    static func sniffMember(_ prefix: UnsafeRawBufferPointer) -> FileFormat? {
        if prefix.count >= 2, prefix[0] == 0x80, prefix[1] <= 5 { return .pickle }
        if NumPy.looksLike(prefix) { return .numpy }
        if hasPrefix(prefix, [0x50, 0x4B, 0x03, 0x04]) { return .zip }
        if isArchive(prefix) { return .archive }
        return nil
    }

    static func isArchive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        hasPrefix(bytes, [0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C])  // 7z
            || hasPrefix(bytes, [0x1F, 0x8B])  // gzip
            || hasPrefix(bytes, [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00])  // xz
            || hasPrefix(bytes, [0x28, 0xB5, 0x2F, 0xFD])  // zstd
            || hasPrefix(bytes, Array("BZh".utf8))  // bzip2
            || hasPrefix(bytes, Array("ustar".utf8), at: 257)  // tar
            || hasPrefix(bytes, Array("Rar!".utf8))
    }

    /// Which kind of zip: PyTorch ≥ 1.6 (`*/data.pkl`), TorchScript (`constants.pkl`, `code/`), NumPy `.npz`,
    /// Keras v3 (`config.json` + `model.weights.h5`), or a plain zip.
    static func zipKind(_ bytes: UnsafeRawBufferPointer) -> FileFormat {
        guard let zip = try? LenientZip(bytes) else { return .zip }
        let names = zip.members.map(\.name)
        func has(_ file: String) -> Bool { names.contains { $0 == file || $0.hasSuffix("/" + file) } }
        if has("constants.pkl") || names.contains(where: { $0.contains("/code/") && $0.hasSuffix(".py") }) { return .torchscript }
        if has("data.pkl") { return .pytorchZip }
        if names.contains("config.json"), names.contains("model.weights.h5") { return .kerasZip }
        if !names.isEmpty, names.allSatisfy({ $0.hasSuffix(".npy") }) { return .numpyZip }
        return .zip
    }

    /// ONNX ModelProto: field 1 (ir_version, a small varint) first, then one of the message's length-delimited fields.
    static func looksLikeONNX(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 4, bytes[0] == 0x08, (1...20).contains(bytes[1]) else { return false }
        return [0x12, 0x1A, 0x22, 0x2A, 0x3A, 0x42, 0x52, 0x72].contains(bytes[2])
    }

    /// The bytes as text, when they are UTF-8 without NULs (only the first MiB is checked for large files).
    static func text(_ bytes: UnsafeRawBufferPointer) -> Bool? {
        let sample = UnsafeRawBufferPointer(rebasing: bytes.prefix(1 << 20))
        guard !sample.contains(0) else { return nil }
        var slice = sample[...]
        // Do not fail on a multi-byte character cut at the sample boundary.
        if sample.count < bytes.count { while let last = slice.last, last & 0xC0 == 0x80 || last >= 0xC0 { slice = slice.dropLast() } }
        return String(validating: UnsafeRawBufferPointer(rebasing: slice), as: UTF8.self) != nil ? true : nil
    }
}

extension Detector {
    /// A bundle archive is one publish would unpack: a tar (any compression) or a zip that is not itself a
    /// checkpoint (PyTorch, TorchScript, NumPy or Keras archive) — those are scanned as files.
    package static func isBundleArchive(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 4), head.count == 4 else { return false }
        guard head.elementsEqual([0x50, 0x4B, 0x03, 0x04]) else { return true }
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { return false }
        return data.withUnsafeBytes { zipKind($0) == .zip }
    }
}
