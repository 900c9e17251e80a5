import ArgumentParser
import CustodyArchive
import CustodyClient
import CustodyCore
import CustodyScan
import Foundation

struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Publish a model directory, an archive (.tar, .tar.gz, .tar.zst, .zip) or a single-file model (.gguf, .safetensors) as a new version.",
        discussion: "Only blobs the registry lacks are uploaded. Licence and provenance left out here are read from README.md's front matter.")

    @Argument(help: "A model directory or archive.")
    var path: String

    @Option(help: "NAMESPACE/NAME of the model.")
    var name: String

    @Option(help: "The version tag (immutable once published).")
    var version: String

    @Option(help: "Licence id (Hugging Face or SPDX, e.g. apache-2.0, llama3.1, other).")
    var license: String?

    @Option(help: "Licence name, for --license other.")
    var licenseName: String?

    @Option(help: "Link to the licence text.")
    var licenseLink: String?

    @Option(help: "Where the weights came from (a URL).")
    var source: String?

    @Option(help: "Revision of the source (a commit, tag or date).")
    var sourceRevision: String?

    @Option(help: "A base model (NS/NAME@V in this registry, or an external id); repeatable.")
    var baseModel: [String] = []

    @Option(help: "A training or fine-tuning dataset id; repeatable.")
    var dataset: [String] = []

    @Option(help: "The pipeline run that produced the weights.")
    var pipelineRun: String?

    @Option(help: "A free annotation KEY=VALUE; repeatable.")
    var annotation: [String] = []

    @Option(help: "Sign with this publisher key first (its .pub must be in the registry's Keys/trusted/).")
    var signKey: String?

    @Option(help: "How many blobs to upload at once.")
    var parallel = 8

    @Option(
        help:
            "The licence class you claim (permissive, conditional, research, commercial, restricted, non-commercial, research-only); refused if the licence says otherwise."
    )
    var licenseClass: String?

    @Flag(help: "Scan the bundle here first and refuse to upload anything dangerous (the registry scans it either way).")
    var scan = false

    @Flag(help: "No progress display.")
    var quiet = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    @OptionGroup var remote: RemoteOptions

    func validate() throws {
        guard (1...64).contains(parallel) else { throw ValidationError("--parallel must be between 1 and 64") }
    }

    func run() async throws {
        let model = try ModelName(parsing: name)
        var annotations: [String: String] = [:]
        for item in annotation {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw CustodyError(.invalidArgument, "annotation '\(item)' must be KEY=VALUE")
            }
            annotations[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        let licenseInfo = API.License(id: license, name: licenseName, link: licenseLink)
        let source = source == nil && sourceRevision == nil ? nil : API.Source(uri: source, revision: sourceRevision)
        let provenance = API.Provenance(
            source: source, baseModels: baseModel, datasets: dataset, pipelineRun: pipelineRun, annotations: annotations)
        let key = try signKey.map { path throws(CustodyError) in try PrivateSigningKey(contentsOf: path) }
        let options = Publisher.Options(
            model: model, version: version, license: licenseInfo.isEmpty ? nil : licenseInfo, provenance: provenance, signingKey: key,
            quiet: quiet, parallelUploads: parallel, licenseClass: licenseClass)

        var directory = path
        var extracted: String?
        if BundleArchive.isArchive(path) {
            let scratch = NSTemporaryDirectory() + "custody-publish-" + UUID().uuidString
            try BundleArchive().extract(path, into: scratch)
            directory = scratch
            extracted = scratch
        }
        defer { if let extracted { try? FileManager.default.removeItem(atPath: extracted) } }
        if scan { try preScan(directory) }
        let response = try await withClient(remote) { client in
            try await Publisher(client: client).publish(directory: directory, options: options)
        }
        if json {
            try printJSON(response)
        } else {
            let verb = response.created ? "published" : "unchanged (already published with the same content):"
            print("\(verb) \(response.version.model)@\(response.version.version) \(response.version.bundleDigest)")
        }
    }
}

extension Publish {
    /// The client-side scan: the same scanner the registry runs, so a pipeline can stop before uploading.
    func preScan(_ directory: String) throws(CustodyError) {
        let files = try ModelTree.files(at: directory, allowSymlinks: false, ignorePaths: ModelTree.bundleIgnorePaths)
        let report = try ModelScanner().scanBundle(root: directory, files: files.map(\.name))
        guard report.verdict != .clean || !report.allValid else { return }
        writeStandardError(InspectTable.render(BundleReport(files: report.files.filter { $0.verdict != .clean || !$0.isValid })))
        if report.verdict == .dangerous {
            throw CustodyError(
                .verificationFailed,
                "the scan found code that runs when the model loads in \(report.dangerousFiles.map(\.path).joined(separator: ", ")); not publishing")
        }
    }
}

struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a version, verifying every byte and the registry's signature; writes DIR/model.sig and DIR.receipt.",
        discussion: """
            The registry key comes from --registry-key, or is fetched once and pinned (trust on first use) in \
            ~/.config/custody/known_registries; a changed key is refused. Which environment a pull is for is decided \
            by the consumer token, not by the client. DIR.receipt (beside the directory) is the C2SP tlog-proof that the \
            version's publish event is in the registry's transparency log.
            """)

    @Argument(help: "NAMESPACE/NAME@VERSION or NAMESPACE/NAME@sha256:<bundle digest>.")
    var reference: String

    static func receiptPath(_ output: String) -> String {
        (output.hasSuffix("/") ? String(output.dropLast()) : output) + ".receipt"
    }

    @Option(help: "The directory to create.")
    var output: String

    @Option(help: "The registry's public key (Keys/registry.pub) instead of the pinned one.")
    var registryKey: String?

    @Flag(help: "No progress display.")
    var quiet = false

    @OptionGroup var remote: RemoteOptions

    func run() async throws {
        let reference = try ModelReference(parsing: reference)
        let result = try await withClient(remote) { client in
            let key: PublicVerifyingKey
            if let registryKey {
                key = try PublicVerifyingKey(contentsOf: registryKey)
            } else {
                key = try await KnownRegistries().verifiedKey(for: client) { message in
                    writeStandardError("custody: \(message)\n")
                }
            }
            let result = try await Puller(client: client).pull(reference, into: output, registryKey: key, quiet: quiet)
            // The publish event's receipt goes beside the directory: a file inside it would not be covered by
            // model.sig, and model_signing would refuse the directory.
            do throws(CustodyError) {
                let receipt = try await client.publishReceipt(of: reference.model, version: result.version.version)
                try PosixFile.writeAtomically(Array(receipt.utf8), to: Self.receiptPath(result.output))
            } catch {
                writeStandardError("custody: warning: no log receipt for the publish event: \(error.message)\n")
            }
            return result
        }
        print("pulled \(result.version.model)@\(result.version.version) \(result.version.bundleDigest) into \(result.output)")
    }
}

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show a model's versions, or one version's files, signatures, licence, provenance and events.",
        aliases: ["info"])

    @Argument(help: "NAMESPACE/NAME or NAMESPACE/NAME@VERSION.")
    var reference: String

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var remote: RemoteOptions

    func run() async throws {
        if reference.contains("@") {
            let parsed = try ModelReference(parsing: reference)
            let detail: API.VersionDetail = try await withClient(remote) { client in
                try await client.get(Puller.versionPath(parsed) + "?events=true")
            }
            if json { return try printJSON(detail) }
            print(VersionText.render(detail))
        } else {
            let model = try ModelName(parsing: reference)
            let detail: API.ModelDetail = try await withClient(remote) { client in
                try await client.get("/v1/models/\(model.namespace)/\(model.name)")
            }
            if json { return try printJSON(detail) }
            print("\(detail.model)  (since \(detail.createdAt))")
            for version in detail.versions {
                print(
                    "  \(version.version)  \(version.bundleDigest)  \(version.fileCount) files, \(TransferProgress.bytes(Int64(version.totalSize)))  \(version.createdAt)"
                )
            }
        }
    }
}

enum VersionText {
    static func render(_ detail: API.VersionDetail) -> String {
        var lines = [
            "\(detail.model)@\(detail.version)", "  bundle digest  \(detail.bundleDigest)",
            "  published      \(detail.createdAt) by \(detail.publishedBy ?? "unknown")",
        ]
        let license = [detail.license.id, detail.license.name, detail.license.link].compactMap { $0 }.joined(separator: ", ")
        lines.append("  licence        \(license.isEmpty ? "not declared" : license)")
        let provenance = detail.provenance
        if let source = provenance.source {
            lines.append("  source         \([source.uri, source.revision].compactMap { $0 }.joined(separator: " @ "))")
        }
        if let resolutions = detail.baseModelResolutions, !resolutions.isEmpty {
            let described = resolutions.map { resolution in
                if let resolved = resolution.resolved {
                    if resolution.named == resolved { return resolved }
                    return "\(resolution.named) → \(resolved)" + (resolution.by == "name" ? "" : " (by \(resolution.by ?? "?"))")
                }
                return "\(resolution.named) (\(resolution.by ?? "not in this registry"))"
            }
            lines.append("  base models    \(described.joined(separator: ", "))")
        } else if !provenance.baseModels.isEmpty {
            lines.append("  base models    \(provenance.baseModels.joined(separator: ", "))")
        }
        if !provenance.datasets.isEmpty { lines.append("  datasets       \(provenance.datasets.joined(separator: ", "))") }
        if let run = provenance.pipelineRun { lines.append("  pipeline run   \(run)") }
        for (key, value) in provenance.annotations.sorted(by: { $0.key < $1.key }) { lines.append("  \(key) = \(value)") }
        for signature in detail.signatures {
            lines.append("  signature      \(signature.kind.rawValue): \(signature.status.rawValue)\(signature.keyName.map { " (\($0))" } ?? "")")
        }
        if let scan = detail.scan {
            let counts = Verdict.allCases.compactMap { verdict -> String? in
                let count = scan.files.filter { $0.verdict == verdict }.count
                return count == 0 ? nil : "\(count) \(verdict.rawValue)"
            }
            let invalid = scan.invalidFiles.count
            lines.append(
                "  scan           \(scan.verdict.rawValue.uppercased()) (\(counts.joined(separator: ", "))\(invalid > 0 ? ", \(invalid) invalid" : ""))"
            )
        }
        let reports = Dictionary((detail.scan?.files ?? []).map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        lines.append("  files")
        for file in detail.files {
            let report = reports[file.path]
            let scanned = report.map { "  \($0.format.rawValue), \($0.verdict.rawValue)\($0.isValid ? "" : ", invalid")" } ?? ""
            lines.append("    \(file.digest)  \(String(file.size).leftPadded(to: 12))  \(file.path)\(scanned)")
            for finding in report?.findings ?? [] where finding.verdict != .clean {
                let place = finding.member.map { " in \($0)" } ?? ""
                lines.append("        \(finding.verdict.rawValue): \(finding.subject)\(place) — \(finding.reason)")
            }
            if let invalid = report?.invalid { lines.append("        invalid: \(invalid)") }
        }
        if let events = detail.events, !events.isEmpty {
            lines.append("  events")
            for event in events { lines.append("    \(event.at)  \(event.type)  \(event.actor ?? "-")  \(event.detail ?? "")") }
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
