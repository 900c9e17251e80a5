/// A model's name: `namespace/name`, each part lowercase OCI-style (`[a-z0-9]+([._-][a-z0-9]+)*`, ≤ 64 characters).
public struct ModelName: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    /// The namespace (an organisation or team).
    public let namespace: String
    /// The model's name within the namespace.
    public let name: String

    /// Checks both parts and makes the name, refusing a part that is not lowercase OCI-style.
    public init(namespace: String, name: String) throws(CustodyError) {
        for part in [namespace, name] where !Self.isValidComponent(part) {
            throw CustodyError(
                .invalidArgument,
                "'\(part)' is not a valid model namespace or name (lowercase letters and digits, separated by single '.', '_' or '-')")
        }
        self.namespace = namespace
        self.name = name
    }

    /// Parses `namespace/name`.
    public init(parsing text: String) throws(CustodyError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw CustodyError(.invalidArgument, "model '\(text)' must be NAMESPACE/NAME") }
        try self.init(namespace: String(parts[0]), name: String(parts[1]))
    }

    /// `namespace/name`.
    public var description: String { "\(namespace)/\(name)" }

    /// Orders names by their text.
    public static func < (lhs: ModelName, rhs: ModelName) -> Bool { lhs.description < rhs.description }

    /// Whether `text` is a valid namespace or name.
    public static func isValidComponent(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 64 else { return false }
        var previousWasSeparator = true
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                previousWasSeparator = false
            case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                if previousWasSeparator { return false }
                previousWasSeparator = true
            default:
                return false
            }
        }
        return !previousWasSeparator
    }

    /// Decodes `namespace/name`, refusing an invalid name.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    /// Encodes as `namespace/name`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Validation of version tags: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`, like OCI tags (`1.0.0`, `2026-11-01`).
public enum VersionTag {
    /// Throws `invalidArgument`, naming the tag, when `tag` is not a valid version tag.
    public static func validate(_ tag: String) throws(CustodyError) {
        let bytes = Array(tag.utf8)
        let valid =
            !bytes.isEmpty && bytes.count <= 128
            && bytes.enumerated().allSatisfy { index, byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
                    true
                case UInt8(ascii: "."), UInt8(ascii: "-"): index > 0
                default: false
                }
            }
        guard valid, !tag.hasPrefix("sha256") else {
            throw CustodyError(.invalidArgument, "'\(tag)' is not a valid version (letters, digits, '.', '_', '-'; at most 128)")
        }
    }
}

/// `namespace/name@version` or `namespace/name@sha256:<hex>`.
public struct ModelReference: Hashable, Sendable, CustomStringConvertible {
    /// Which version of the model: by tag or by bundle digest.
    public enum Selector: Hashable, Sendable {
        case version(String)
        case digest(ContentDigest)
    }

    /// The model.
    public let model: ModelName
    /// Which of its versions.
    public let selector: Selector

    /// A reference to `selector` of `model`.
    public init(model: ModelName, selector: Selector) {
        self.model = model
        self.selector = selector
    }

    /// Parses `ns/name@version` or `ns/name@sha256:<hex>`; the selector is required.
    public init(parsing text: String) throws(CustodyError) {
        guard let at = text.firstIndex(of: "@") else {
            throw CustodyError(.invalidArgument, "'\(text)' must be NAMESPACE/NAME@VERSION or NAMESPACE/NAME@sha256:<hex>")
        }
        model = try ModelName(parsing: String(text[..<at]))
        selector = try Selector(parsing: String(text[text.index(after: at)...]))
    }

    /// `ns/name@version`, `ns/name@sha256:…` or, with no `@`, `ns/name` (no selector: its newest version). The `@`
    /// is looked for as a byte: this runs for every verify request, and a scan of Characters costs more.
    public static func parse(allowingBareName text: String) throws(CustodyError) -> (model: ModelName, selector: Selector?) {
        guard text.utf8.contains(UInt8(ascii: "@")) else { return (try ModelName(parsing: text), nil) }
        let reference = try ModelReference(parsing: text)
        return (reference.model, reference.selector)
    }

    /// The reference's text, as parsed.
    public var description: String {
        switch selector {
        case .version(let version): "\(model)@\(version)"
        case .digest(let digest): "\(model)@\(digest)"
        }
    }
}

/// Checks a file path inside a model bundle: relative POSIX, no empty, `.` or `..` components, no NUL, valid UTF-8.
public enum BundlePath {
    /// Throws `invalidArgument`, naming the path and what is wrong, when `path` may not name a bundle file.
    public static func validate(_ path: String) throws(CustodyError) {
        guard !path.isEmpty, !path.hasPrefix("/"), !path.utf8.contains(0), path.utf8.count <= 4096 else {
            throw CustodyError(.invalidArgument, "file path '\(path)' must be a relative path")
        }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            guard !component.isEmpty, component != ".", component != ".." else {
                throw CustodyError(.invalidArgument, "file path '\(path)' must not contain empty, '.' or '..' components")
            }
        }
    }
}

extension ModelReference.Selector {
    /// A version tag, or `sha256:<hex>` for a bundle digest.
    public init(parsing text: String) throws(CustodyError) {
        if text.hasPrefix("sha256:") {
            self = .digest(try ContentDigest(parsing: text))
        } else {
            try VersionTag.validate(text)
            self = .version(text)
        }
    }
}
