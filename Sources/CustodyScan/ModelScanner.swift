import CArchive
package import CustodyCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Recognises every file's format from its content, validates weight formats and finds code that loading would
/// run. Pure reading: nothing is ever unpickled, decompressed beyond a limit or executed.
package struct ModelScanner: Sendable {
    package struct Limits: Sendable {
        /// Archives inside archives are opened this many levels deep; deeper ones are unscannable.
        package var maxDepth = 3
        /// Largest archive member decompressed into memory to be scanned.
        package var maxMemberBytes = 512 << 20
        package var pickle = PickleScanner.Limits.standard

        package init() {}
    }

    package let limits: Limits

    package init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Extensions that promise a format: content that is none of them is reported rather than ignored.
    static let promisingExtensions: [String: String] = [
        "pt": "a PyTorch checkpoint", "pth": "a PyTorch checkpoint", "bin": "a PyTorch checkpoint",
        "ckpt": "a PyTorch checkpoint", "pkl": "a pickle", "pickle": "a pickle", "joblib": "a pickle",
        "npy": "a NumPy array", "npz": "a NumPy archive", "safetensors": "a safetensors file", "gguf": "a GGUF file",
        "h5": "an HDF5 file", "keras": "a Keras archive", "onnx": "an ONNX model",
    ]

    // MARK: files and bundles

    /// Scans one file on disk; `name` is how the report names it.
    package func scanFile(at path: String, name: String? = nil) throws(CustodyError) -> FileReport {
        try Self.withMappedFile(path) { bytes in scan(bytes, name: name ?? path) }.report
    }

    /// Maps a regular file read-only for `body`. Mapping costs nothing for pages never touched: a safetensors scan
    /// reads only the header's pages.
    static func withMappedFile<T>(_ path: String, _ body: (UnsafeRawBufferPointer) -> T) throws(CustodyError) -> T {
        try PosixFile.withRegularFile(path) { fd, size throws(CustodyError) in try map(fd, size: size, path: path, body) }
    }

    private static func map<T>(
        _ fd: Int32, size: Int, path: String, _ body: (UnsafeRawBufferPointer) -> T
    ) throws(CustodyError) -> T {
        guard size > 0 else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw .io(path, "map", errno: errno)
        }
        defer { munmap(base, size) }
        return body(UnsafeRawBufferPointer(start: base, count: size))
    }

    /// Scans every file of a bundle (paths relative to `root`), then checks what only shows across files: that a
    /// sharded checkpoint's index matches its shards.
    package func scanBundle(root: String, files: [String]) throws(CustodyError) -> BundleReport {
        try scanBundle(files.map { (name: $0, path: root.isEmpty ? $0 : root + "/" + $0) })
    }

    /// Scans a bundle whose files live anywhere (a registry scans blobs): `name` is the file's path in the bundle,
    /// `path` where to read it.
    package func scanBundle(_ files: [(name: String, path: String)]) throws(CustodyError) -> BundleReport {
        var reports: [FileReport] = []
        var tensors: [String: Set<String>] = [:]
        for file in files {
            let result = try Self.withMappedFile(file.path) { bytes in scan(bytes, name: file.name) }
            if let names = result.tensorNames { tensors[file.name] = names }
            reports.append(result.report)
        }
        let paths = Dictionary(files.map { ($0.name, $0.path) }, uniquingKeysWith: { first, _ in first })
        for index in reports.indices where reports[index].format == .safetensorsIndex {
            checkIndex(&reports[index], path: paths[reports[index].path]!, tensors: tensors, present: Set(paths.keys))
        }
        return BundleReport(files: reports)
    }

    /// The index of a sharded checkpoint must name exactly the tensors its shards hold, each in the right shard.
    private func checkIndex(_ report: inout FileReport, path: String, tensors: [String: Set<String>], present: Set<String>) {
        guard let bytes = try? PosixFile.contents(of: path, limit: 256 << 20),
            let json = bytes.withUnsafeBytes({ try? StrictJSONParser.parse($0) }),
            case .object(let map)? = json["weight_map"]
        else { return }
        let directory = report.path.contains("/") ? String(report.path[..<report.path.lastIndex(of: "/")!]) + "/" : ""
        var problems: [String] = []
        var listed: [String: Set<String>] = [:]
        for (tensor, value) in map {
            guard let shard = value.string else {
                problems.append("weight_map entry \(tensor) is not a file name")
                continue
            }
            listed[directory + shard, default: []].insert(tensor)
        }
        for (shard, names) in listed.sorted(by: { $0.key < $1.key }) {
            guard present.contains(shard) else {
                problems.append("names \(shard), which is not in the bundle")
                continue
            }
            guard let held = tensors[shard] else {
                problems.append("names \(shard), which is not a valid safetensors file")
                continue
            }
            let missing = names.subtracting(held)
            let extra = held.subtracting(names)
            if !missing.isEmpty {
                problems.append("places \(missing.count) tensors in \(shard) that it does not hold (e.g. \(missing.sorted().first!))")
            }
            if !extra.isEmpty { problems.append("omits \(extra.count) tensors that \(shard) holds (e.g. \(extra.sorted().first!))") }
        }
        guard !problems.isEmpty else { return }
        report.markInvalid("the weight_map does not match the shards: " + problems.joined(separator: "; "))
        for problem in problems {
            report.add(Finding(.inconsistent, .suspicious, subject: "weight_map", reason: "the index " + problem))
        }
    }

    // MARK: one file's bytes

    struct Analysis {
        var report: FileReport
        var tensorNames: Set<String>?
    }

    /// Scans bytes that are a whole file.
    func scan(_ bytes: UnsafeRawBufferPointer, name: String) -> Analysis {
        var report = FileReport(path: name, size: UInt64(bytes.count), format: .unknown)
        var tensorNames: Set<String>?
        report.format = Detector.detect(bytes)
        switch report.format {
        case .safetensors:
            switch Safetensors.validate(bytes) {
            case .success(let header):
                report.metadata = Safetensors.metadata(of: header)
                tensorNames = Set(header.tensors.map(\.name))
            case .failure(let invalid):
                report.markInvalid(invalid.reason)
                report.add(
                    Finding(.malformed, .suspicious, subject: "safetensors", reason: "the reference reader refuses this file: \(invalid.reason)"))
            }
        case .gguf:
            switch GGUF.validate(bytes) {
            case .success(let parsed):
                report.metadata = parsed.metadata
                if let template = parsed.chatTemplate { report.add(contentsOf: ChatTemplate.check(template, member: "tokenizer.chat_template")) }
            case .failure(let invalid):
                report.markInvalid(invalid.reason)
                report.add(Finding(.malformed, .suspicious, subject: "gguf", reason: "llama.cpp would refuse this file: \(invalid.reason)"))
            }
        case .json, .safetensorsIndex:
            if let json = try? StrictJSONParser.parse(bytes) { report.add(contentsOf: chatTemplates(in: json)) }
        case .text where name.lowercased().hasSuffix(".jinja"):
            // transformers saves chat templates as files of their own (chat_template.jinja, additional_chat_templates/).
            report.add(
                contentsOf: ChatTemplate.check(
                    String(decoding: bytes, as: UTF8.self), member: String(name.split(separator: "/").last ?? Substring(name))))
        default:
            var findings: [Finding] = []
            var invalid: String?
            analyseContent(bytes, format: report.format, member: nil, depth: 0, findings: &findings, invalid: &invalid)
            report.add(contentsOf: findings)
            if let invalid { report.markInvalid(invalid) }
        }
        if report.format == .unknown, let promise = Self.promise(of: name) {
            report.markInvalid("named like \(promise) but the content is not one")
            report.add(
                Finding(
                    .unscannable, .unscannable, subject: "content",
                    reason: "the content matches no format Custody knows, though the name promises \(promise)"))
        }
        return Analysis(report: report, tensorNames: tensorNames)
    }

    static func promise(of name: String) -> String? {
        guard let dot = name.lastIndex(of: "."), !name[dot...].contains("/") else { return nil }
        return promisingExtensions[name[name.index(after: dot)...].lowercased()]
    }

    /// Every template a configuration carries: any field whose name contains `template` (`chat_template`,
    /// `default_chat_template`, `tool_use_template`, …) at any depth, as a string, a list of `{name, template}`, or an
    /// object of named templates.
    private func chatTemplates(in json: JSONValue) -> [Finding] {
        var findings: [Finding] = []
        func templates(_ value: JSONValue, _ path: String) {
            switch value {
            case .string(let template):
                findings += ChatTemplate.check(template, member: path)
            case .array(let items):
                for (index, item) in items.enumerated() {
                    if let template = item["template"] {
                        templates(template, "\(path)[\(item["name"]?.string ?? String(index))]")
                    } else {
                        templates(item, "\(path)[\(index)]")
                    }
                }
            case .object(let members):
                for member in members { templates(member.value, "\(path).\(member.key)") }
            default:
                break
            }
        }
        func walk(_ value: JSONValue, _ path: String, depth: Int) {
            guard depth < 8 else { return }
            switch value {
            case .object(let members):
                for member in members {
                    let name = path.isEmpty ? member.key : "\(path).\(member.key)"
                    if member.key.lowercased().contains("template") {
                        templates(member.value, name)
                    } else {
                        walk(member.value, name, depth: depth + 1)
                    }
                }
            case .array(let items):
                for (index, item) in items.enumerated() { walk(item, "\(path)[\(index)]", depth: depth + 1) }
            default:
                break
            }
        }
        walk(json, "", depth: 0)
        return findings
    }

    /// Findings for content that can carry code (pickles, containers, Keras); shared by files and archive members.
    private func analyseContent(
        _ bytes: UnsafeRawBufferPointer, format: FileFormat, member: String?, depth: Int,
        findings: inout [Finding], invalid: inout String?
    ) {
        switch format {
        case .pickle:
            scanPickles(bytes, from: 0, maxPickles: .max, member: member, findings: &findings, invalid: &invalid)
        case .pytorchLegacy:
            // torch.load reads exactly five pickles (magic, protocol, sys info, the object, storage keys); raw
            // tensor bytes follow and are never unpickled.
            scanPickles(bytes, from: 0, maxPickles: 5, member: member, findings: &findings, invalid: &invalid)
        case .numpy:
            switch NumPy.header(bytes) {
            case .success(let header) where header.holdsObjects:
                scanPickles(bytes, from: header.dataOffset, maxPickles: 1, member: member, findings: &findings, invalid: &invalid)
            case .success:
                break
            case .failure(let failure):
                invalid = invalid ?? failure.reason
                findings.append(Finding(.malformed, .suspicious, subject: "npy", reason: failure.reason, member: member))
            }
        case .zip, .pytorchZip, .torchscript, .numpyZip, .kerasZip:
            scanZip(bytes, member: member, depth: depth, findings: &findings, invalid: &invalid)
        case .archive:
            scanArchive(bytes, member: member, depth: depth, findings: &findings, invalid: &invalid)
        case .hdf5:
            if Self.contains(bytes.prefix(64 << 20), #""class_name": "Lambda""#) || Self.contains(bytes.prefix(64 << 20), #""class_name":"Lambda""#) {
                findings.append(
                    Finding(
                        .code, .dangerous, subject: "keras.layers.Lambda",
                        reason: "the Keras model config has a Lambda layer, whose Python bytecode runs when the model loads", member: member))
            }
        default:
            break
        }
    }

    // MARK: pickles

    private func scanPickles(
        _ bytes: UnsafeRawBufferPointer, from start: Int, maxPickles: Int, member: String?,
        findings: inout [Finding], invalid: inout String?
    ) {
        let result = PickleScanner.scan(bytes, from: start, maxPickles: maxPickles, limits: limits.pickle)
        for item in result.imports {
            if item.literal {
                let (verdict, reason) = ImportRules.verdict(module: item.module, name: item.name)
                findings.append(
                    Finding(
                        .import, verdict, subject: item.qualifiedName, reason: "\(item.opcode): \(reason)", offset: UInt64(item.offset),
                        member: member))
            } else {
                findings.append(
                    Finding(
                        .import, .dangerous, subject: item.qualifiedName,
                        reason: "\(item.opcode) with operands that are not literal strings: the import is computed at load time",
                        offset: UInt64(item.offset), member: member))
            }
        }
        for disagreement in result.frameDisagreements {
            findings.append(
                Finding(
                    .malformed, .suspicious, subject: "pickle frames",
                    reason: disagreement.message
                        + "; the C unpickler and a Python-level reader see different opcodes, so it was read as the C unpickler does",
                    offset: UInt64(disagreement.offset), member: member))
        }
        if let error = result.error {
            let where_ = result.pickles > 0 ? "after \(result.pickles) complete pickle\(result.pickles == 1 ? "" : "s"), " : ""
            let reason = "\(where_)the pickle stream breaks at byte \(error.offset): \(error.message)"
            invalid = invalid ?? reason
            findings.append(
                Finding(
                    .unscannable, .unscannable, subject: "pickle",
                    reason: reason + (result.hitLimit ? "; the rest was not scanned" : "; what follows cannot be interpreted"),
                    offset: UInt64(error.offset), member: member))
        }
    }

    // MARK: containers

    private func join(_ member: String?, _ name: String) -> String {
        member.map { "\($0)!\(name)" } ?? name
    }

    private func scanZip(
        _ bytes: UnsafeRawBufferPointer, member: String?, depth: Int, findings: inout [Finding], invalid: inout String?
    ) {
        let zip: LenientZip
        do { zip = try LenientZip(bytes) } catch {
            invalid = invalid ?? "unreadable zip: \(error)"
            findings.append(Finding(.unscannable, .unscannable, subject: "zip", reason: "the zip cannot be read: \(error)", member: member))
            return
        }
        if zip.withoutCentralDirectory {
            findings.append(
                Finding(
                    .malformed, .suspicious, subject: "zip", reason: "no central directory; members found by walking local headers", member: member))
        }
        let isTorch = zip.members.contains { $0.name == "data.pkl" || $0.name.hasSuffix("/data.pkl") }
        var reportedCode = false
        for entry in zip.members where !entry.name.hasSuffix("/") {
            let path = join(member, entry.name)
            if let local = entry.localName {
                findings.append(
                    Finding(
                        .malformed, .suspicious, subject: "zip",
                        reason: "the local header names this member \"\(local)\" (a trick to hide it from strict zip readers)", member: path))
            }
            // Raw tensor storages in a PyTorch archive are never unpickled, but a pickle can hide among them: any storage
            // that starts like a pickle is scanned, and counted as one only if it parses as one.
            let storage = isTorch && entry.name.contains("/data/") && !entry.name.hasSuffix(".pkl")
            if entry.name.contains("/code/"), entry.name.hasSuffix(".py"), !reportedCode {
                reportedCode = true
                findings.append(
                    Finding(
                        .code, .suspicious, subject: "torchscript",
                        reason: "a TorchScript archive carries code that torch.jit.load compiles and runs", member: path))
            }
            let prefix: [UInt8]
            do { prefix = try zip.contents(entry, limit: 16, prefixOnly: true) } catch {
                if entry.compressedSize > 0 {
                    findings.append(Finding(.unscannable, .unscannable, subject: "zip member", reason: "cannot be read: \(error)", member: path))
                }
                continue
            }
            if entry.name == "config.json", zip.members.contains(where: { $0.name == "model.weights.h5" }),
                let config = try? zip.contents(entry, limit: 64 << 20),
                config.withUnsafeBytes({ Self.contains($0[...], #""class_name": "Lambda""#) || Self.contains($0[...], #""class_name":"Lambda""#) })
            {
                findings.append(
                    Finding(
                        .code, .dangerous, subject: "keras.layers.Lambda",
                        reason: "the Keras model config has a Lambda layer, whose Python bytecode runs when the model loads", member: path))
            }
            let named = entry.name.hasSuffix(".pkl") || entry.name.hasSuffix(".pickle") || entry.name.hasSuffix(".npy")
            let kind = prefix.withUnsafeBytes { Detector.sniffMember($0) }
            if storage {
                guard kind == .pickle else { continue }
                var hidden: [Finding] = []
                var unreadable: String?
                scanMember(path: path, depth: depth, findings: &hidden, invalid: &unreadable) { () throws(LenientZip.ReadError) in
                    try zip.contents(entry, limit: limits.maxMemberBytes)
                }
                if unreadable == nil {
                    findings += hidden
                    findings.append(
                        Finding(
                            .malformed, .suspicious, subject: "pytorch zip",
                            reason: "a pickle stored among the tensor storages, where torch.load does not look for one", member: path))
                }
                continue
            }
            guard named || kind != nil else {
                if entry.isEncrypted {
                    findings.append(
                        Finding(.unscannable, .unscannable, subject: "zip member", reason: "encrypted: its content cannot be scanned", member: path))
                }
                continue
            }
            scanMember(path: path, depth: depth, findings: &findings, invalid: &invalid) { () throws(LenientZip.ReadError) in
                try zip.contents(entry, limit: limits.maxMemberBytes)
            }
        }
    }

    private func scanMember(
        path: String, depth: Int, findings: inout [Finding], invalid: inout String?,
        read: () throws(LenientZip.ReadError) -> [UInt8]
    ) {
        let content: [UInt8]
        do { content = try read() } catch {
            findings.append(Finding(.unscannable, .unscannable, subject: "archive member", reason: "cannot be scanned: \(error)", member: path))
            return
        }
        content.withUnsafeBytes { bytes in
            var format = Detector.detect(bytes)
            if format == .unknown || format == .text || format == .json, path.hasSuffix(".pkl") || path.hasSuffix(".pickle") {
                format = .pickle
            }
            if format.isContainer {
                guard depth < limits.maxDepth else {
                    findings.append(
                        Finding(
                            .unscannable, .unscannable, subject: "archive",
                            reason: "archives nested deeper than \(limits.maxDepth) levels are not opened", member: path))
                    return
                }
            }
            var memberInvalid: String?
            analyseContent(bytes, format: format, member: path, depth: depth + 1, findings: &findings, invalid: &memberInvalid)
            if let memberInvalid { invalid = invalid ?? "\(path): \(memberInvalid)" }
        }
    }

    /// Archives libarchive reads (7z, tar, and compressed single files): each regular member is scanned.
    private func scanArchive(
        _ bytes: UnsafeRawBufferPointer, member: String?, depth: Int, findings: inout [Finding], invalid: inout String?
    ) {
        guard let archive = archive_read_new() else { return }
        defer { archive_read_free(archive) }
        archive_read_support_filter_all(archive)
        archive_read_support_format_all(archive)
        archive_read_support_format_raw(archive)
        guard archive_read_open_memory(archive, bytes.baseAddress, bytes.count) == ARCHIVE_OK else {
            findings.append(
                Finding(.unscannable, .unscannable, subject: "archive", reason: "cannot be opened: \(Self.message(archive))", member: member))
            return
        }
        var entry: OpaquePointer?
        while true {
            let status = archive_read_next_header(archive, &entry)
            if status == ARCHIVE_EOF { break }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
                findings.append(
                    Finding(
                        .unscannable, .unscannable, subject: "archive", reason: "cannot be read to its end: \(Self.message(archive))", member: member)
                )
                invalid = invalid ?? "unreadable archive: \(Self.message(archive))"
                return
            }
            // Some formats (7z without attributes) leave the type unset; anything not a directory or link is read.
            let type = archive_entry_filetype(entry)
            guard type == 0o100000 /* AE_IFREG */ || type == 0 else { continue }
            let name = archive_entry_pathname(entry).map { String(cString: $0) } ?? "data"
            let path = join(member, name)
            if archive_entry_is_encrypted(entry) != 0 {
                findings.append(
                    Finding(.unscannable, .unscannable, subject: "archive member", reason: "encrypted: its content cannot be scanned", member: path))
                continue
            }
            let limit = limits.maxMemberBytes
            scanMember(path: path, depth: depth, findings: &findings, invalid: &invalid) { () throws(LenientZip.ReadError) in
                var content: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let got = chunk.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, $0.count) }
                    if got == 0 { return content }
                    guard got > 0 else { throw .malformed(Self.message(archive)) }
                    content.append(contentsOf: chunk[0..<got])
                    guard content.count <= limit else { throw .tooLarge(UInt64(limit)) }
                }
            }
        }
    }

    private static func message(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "unknown error"
    }

    static func contains(_ haystack: UnsafeRawBufferPointer.SubSequence, _ needle: String) -> Bool {
        let pattern = Array(needle.utf8)
        guard let first = pattern.first, haystack.count >= pattern.count else { return false }
        var index = haystack.startIndex
        let last = haystack.endIndex - pattern.count
        while index <= last {
            guard let hit = haystack[index...last].firstIndex(of: first) else { return false }
            if haystack[hit..<hit + pattern.count].elementsEqual(pattern) { return true }
            index = hit + 1
        }
        return false
    }
}

extension FileFormat {
    var isContainer: Bool {
        switch self {
        case .zip, .pytorchZip, .torchscript, .numpyZip, .kerasZip, .archive: true
        default: false
        }
    }
}
