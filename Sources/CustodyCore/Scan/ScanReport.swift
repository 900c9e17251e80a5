/// What a scan concluded about one file: whether loading it can run code.
///
/// Ordered from best to worst so that a container's verdict is the maximum of its parts. `unscannable` ranks above
/// `suspicious`: a file Custody could not read is never evidence of safety.
public enum Verdict: String, Codable, Sendable, DeclarationOrdered {
    /// Nothing in the file can run code when it is loaded (or every import is on the allow-list).
    case clean
    /// Imports or constructs that are not known to be safe, nor known to be dangerous.
    case suspicious
    /// Part of the file could not be read (encrypted, unsupported compression, nested too deep, truncated).
    case unscannable
    /// Loading the file runs code that Custody knows to be dangerous, or hides what it imports.
    case dangerous

}

/// A file format, recognised from content (never from the file name).
public enum FileFormat: String, Codable, Sendable, CaseIterable {
    case safetensors
    case safetensorsIndex = "safetensors-index"
    case gguf
    case pickle
    case pytorchZip = "pytorch-zip"
    case pytorchLegacy = "pytorch-legacy"
    case torchscript
    case numpy
    case numpyZip = "numpy-zip"
    case onnx
    case hdf5
    case kerasZip = "keras-zip"
    case zip
    case archive
    case json
    case text
    case empty
    case unknown

    /// Formats whose loading unpickles: a pickle can import and call anything, whatever the scan found.
    public var isPickleBased: Bool {
        switch self {
        case .pickle, .pytorchZip, .pytorchLegacy, .torchscript: true
        default: false
        }
    }
}

/// One fact a scan found: an import, an unsafe construct, a part that could not be read.
public struct Finding: Codable, Sendable, Hashable {
    /// What sort of fact a finding is; the raw values are stored with the version.
    public enum Kind: String, Codable, Sendable {
        /// A pickle imports `module.name` (GLOBAL, INST, STACK_GLOBAL, EXT).
        case `import`
        /// A construct that runs code on load outside pickle imports (chat template, Keras Lambda, TorchScript).
        case code
        /// Part of the file could not be scanned.
        case unscannable
        /// The file breaks its format's rules in a way that matters for safety (not merely invalid).
        case malformed
        /// The bundle's files contradict each other (sharded index vs shards).
        case inconsistent
    }

    /// What sort of fact.
    public var kind: Kind
    /// What the fact alone makes of the file.
    public var verdict: Verdict
    /// `module.name` for imports; otherwise a short label.
    public var subject: String
    /// Why it matters, for people.
    public var reason: String
    /// Byte offset inside the file, or inside `member` when set.
    public var offset: UInt64?
    /// The archive member (nested members joined by `!`) the finding is in.
    public var member: String?

    /// Creates a finding.
    public init(
        _ kind: Kind, _ verdict: Verdict, subject: String, reason: String, offset: UInt64? = nil, member: String? = nil
    ) {
        self.kind = kind
        self.verdict = verdict
        self.subject = subject
        self.reason = reason
        self.offset = offset
        self.member = member
    }
}

/// What a weight file declares about itself, extracted from its header.
public struct ExtractedMetadata: Codable, Sendable, Hashable {
    /// How many tensors the header declares.
    public var tensorCount: Int?
    /// The sum of the tensors' element counts.
    public var parameterCount: UInt64?
    /// Parameters per dtype (safetensors dtype names, GGML type names).
    public var dtypes: [String: UInt64]?
    /// The architecture (`general.architecture`, `config.json` `architectures`).
    public var architecture: String?
    /// The model's name as the file gives it (`general.name`).
    public var name: String?
    /// The licence the file declares (`general.license`).
    public var license: String?
    /// The base models the file names (`general.base_model.N.repo_url`, …).
    public var baseModels: [String]?
    /// The datasets the file names.
    public var datasets: [String]?
    /// safetensors `__metadata__`, string to string.
    public var attributes: [String: String]?

    /// Metadata with nothing extracted.
    public init() {}

    /// Whether nothing was extracted.
    public var isEmpty: Bool { self == ExtractedMetadata() }
}

/// The scan of one file.
public struct FileReport: Codable, Sendable, Hashable {
    /// The file's path in the bundle.
    public var path: String
    /// Its size in bytes.
    public var size: UInt64
    /// Its format, recognised from its content.
    public var format: FileFormat
    /// Nil when the file follows its format's rules; otherwise why not.
    public var invalid: String?
    /// The worst verdict of its findings (`clean` with none).
    public var verdict: Verdict
    /// What the scan found, in file order.
    public var findings: [Finding]
    /// What the file's header declares about the model.
    public var metadata: ExtractedMetadata?

    /// A report with no findings yet.
    public init(path: String, size: UInt64, format: FileFormat) {
        self.path = path
        self.size = size
        self.format = format
        self.invalid = nil
        self.verdict = .clean
        self.findings = []
        self.metadata = nil
    }

    /// Whether the file follows its format's rules.
    public var isValid: Bool { invalid == nil }

    /// Records findings, raising the file's verdict to the worst of them.
    public mutating func add(_ finding: Finding) {
        findings.append(finding)
        verdict = max(verdict, finding.verdict)
    }

    /// Records findings, raising the file's verdict to the worst of them.
    public mutating func add(contentsOf more: some Sequence<Finding>) {
        for finding in more { add(finding) }
    }

    /// Records the first reason the file is invalid (later ones are usually consequences).
    public mutating func markInvalid(_ reason: String) {
        if invalid == nil { invalid = reason }
    }
}

/// The scan of a whole bundle: every file, plus what only shows across files.
public struct BundleReport: Codable, Sendable, Hashable {
    /// Every file's report, in path order.
    public var files: [FileReport]

    /// The bundle's overall verdict, stored with the version (derived from `files`).
    enum CodingKeys: String, CodingKey { case verdict, files }

    /// Encodes the files and the derived `verdict`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(verdict, forKey: .verdict)
        try container.encode(files, forKey: .files)
    }

    /// Decodes the files; the stored `verdict` is derived again, never trusted.
    public init(from decoder: any Decoder) throws {
        files = try decoder.container(keyedBy: CodingKeys.self).decode([FileReport].self, forKey: .files)
    }

    /// A bundle report over `files`.
    public init(files: [FileReport]) {
        self.files = files
    }

    /// The worst verdict of any file.
    public var verdict: Verdict { files.map(\.verdict).max() ?? .clean }
    /// Files that do not follow their format's rules.
    public var invalidFiles: [FileReport] { files.filter { !$0.isValid } }
    /// Whether every file follows its format's rules.
    public var allValid: Bool { files.allSatisfy(\.isValid) }
    /// Files whose loading runs code Custody knows to be dangerous.
    public var dangerousFiles: [FileReport] { files.filter { $0.verdict == .dangerous } }
}
