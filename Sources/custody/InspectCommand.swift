import ArgumentParser
import CustodyArchive
import CustodyCore
import CustodyScan
import Foundation

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Scan a file, model directory or bundle archive: formats, validity, and code that loading would run.",
        discussion: """
            Formats are recognised from content, never from names. Pickle-based files are walked opcode by opcode \
            (nothing is unpickled) and every import is rated clean (allow-listed), suspicious or dangerous; \
            safetensors and GGUF headers are validated. A bundle archive (.tar, .tar.gz, .tar.zst, .zip) is \
            unpacked the way publish does and its files are scanned; other files, archives included, are scanned \
            as files (their members are looked into). \
            Exit status: 0 every file clean and valid, 1 anything not clean or invalid, 2 an error.
            """)

    @Argument(help: "A file, a directory or a bundle archive.")
    var path: String

    @Flag(help: "Print the reports as JSON.")
    var json = false

    func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CustodyError(.io, "\(path): no such file or directory")
        }
        let scanner = ModelScanner()
        let report: BundleReport
        if isDirectory.boolValue {
            report = try scanDirectory(path, scanner: scanner)
        } else if BundleArchive.isArchive(path), Detector.isBundleArchive(path) {
            let scratch = NSTemporaryDirectory() + "custody-inspect-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            do {
                try BundleArchive().extract(path, into: scratch)
                report = try scanDirectory(scratch, scanner: scanner)
            } catch {
                // Not a bundle after all (or refused as one): look at it as a single file.
                report = BundleReport(files: [try scanner.scanFile(at: path, name: (path as NSString).lastPathComponent)])
            }
        } else {
            report = BundleReport(files: [try scanner.scanFile(at: path, name: (path as NSString).lastPathComponent)])
        }
        if json {
            try printJSON(report)
        } else {
            print(InspectTable.render(report), terminator: "")
        }
        if report.verdict != .clean || !report.allValid { throw ExitCode(1) }
    }

    private func scanDirectory(_ root: String, scanner: ModelScanner) throws(CustodyError) -> BundleReport {
        let files = try ModelTree.files(at: root, allowSymlinks: false, ignorePaths: ModelTree.bundleIgnorePaths)
        return try scanner.scanBundle(root: root, files: files.map(\.name))
    }
}

/// The human-readable report: one row per file, findings indented below it.
enum InspectTable {
    static func render(_ report: BundleReport) -> String {
        let width = min(60, report.files.map(\.path.count).max() ?? 4)
        var out = ""
        func pad(_ text: String, _ count: Int) -> String {
            text.count >= count ? text : text + String(repeating: " ", count: count - text.count)
        }
        out += pad("FILE", width) + "  " + pad("FORMAT", 17) + "  " + pad("VERDICT", 11) + "  DETAILS\n"
        for file in report.files {
            var details: [String] = []
            if let invalid = file.invalid { details.append("invalid: \(invalid)") }
            if let metadata = file.metadata {
                if let count = metadata.tensorCount { details.append("\(count) tensors") }
                if let parameters = metadata.parameterCount { details.append("\(formatCount(parameters)) parameters") }
                if let dtypes = metadata.dtypes, !dtypes.isEmpty { details.append(dtypes.keys.sorted().joined(separator: "/")) }
                if let architecture = metadata.architecture { details.append(architecture) }
                if let license = metadata.license { details.append("license \(license)") }
            }
            out +=
                pad(file.path, width) + "  " + pad(file.format.rawValue, 17) + "  " + pad(file.verdict.rawValue, 11)
                + "  " + details.joined(separator: ", ") + "\n"
            for finding in file.findings where finding.verdict != .clean {
                let place = [finding.member, finding.offset.map { "@\($0)" }].compactMap { $0 }.joined(separator: " ")
                out += "    \(finding.verdict.rawValue): \(finding.subject)\(place.isEmpty ? "" : " (\(place))") — \(finding.reason)\n"
            }
        }
        let counts = Verdict.allCases.compactMap { verdict -> String? in
            let count = report.files.filter { $0.verdict == verdict }.count
            return count == 0 ? nil : "\(count) \(verdict.rawValue)"
        }
        let invalid = report.files.filter { !$0.isValid }.count
        out +=
            "\(report.files.count) file\(report.files.count == 1 ? "" : "s"): \(counts.joined(separator: ", "))"
            + (invalid > 0 ? ", \(invalid) invalid" : "") + "\n"
        return out
    }

    static func formatCount(_ value: UInt64) -> String {
        switch value {
        case 1_000_000_000...: String(format: "%.2fB", Double(value) / 1e9)
        case 1_000_000...: String(format: "%.1fM", Double(value) / 1e6)
        case 1_000...: String(format: "%.1fK", Double(value) / 1e3)
        default: String(value)
        }
    }
}
