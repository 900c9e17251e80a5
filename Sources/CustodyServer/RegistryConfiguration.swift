public import CustodyCore
import Foundation
import Yams

/// Where the registry lives and how it listens. Sources, later ones winning: built-in defaults,
/// `HOME/custody.yaml`, `CUSTODY_*` environment variables, command-line flags.
public struct RegistryConfiguration: Sendable {
    /// The registry home (`Registry/`): `custody.yaml`, `policies/`, `data/`.
    public var home: String
    /// The keys directory (`Keys/`): `trusted/*.pub`, `registry.key|.pub`.
    public var keys: String
    public var host: String = "127.0.0.1"
    public var port: Int = 8080
    /// The data directory; relative paths are relative to `home`.
    public var data: String = "data"
    /// The largest blob one upload may carry.
    public var maxBlobSize: UInt64 = 1 << 40
    /// The largest JSON request body (a publish request lists every file).
    public var maxRequestSize: Int = 64 << 20
    public var tlsCertificate: String?
    public var tlsKey: String?
    public var logLevel: String = "info"
    /// Kubernetes namespace → deployment environment, for the admission webhook.
    public var admissionNamespaces: [String: String] = [:]
    /// The environment of namespaces not in `admissionNamespaces`; nil denies their pods.
    public var admissionDefaultEnvironment: String?

    /// The transparency log's origin: the first line of every checkpoint and the name of its key.
    public var logOrigin: String = "custody.localhost/log"
    /// Identical gate decisions within this long of a recorded one are counted into one event; zero records each.
    public var decisionRepeatWindow: Duration = .seconds(1)

    /// One policy file per environment: `policies/ENV.yaml`.
    public var policiesDirectory: String { home + "/policies" }
    /// Additions and overrides to the built-in licence table.
    public var licenceTablePath: String { home + "/licenses.yaml" }

    public init(home: String = "Registry", keys: String = "Keys") {
        self.home = home
        self.keys = keys
    }

    public var dataDirectory: String { data.hasPrefix("/") ? data : home + "/" + data }
    public var databasePath: String { dataDirectory + "/custody.sqlite" }

    /// Loads `home/custody.yaml` (when present) and then the environment over the defaults.
    public static func load(home: String, keys: String, environment: [String: String]) throws(CustodyError) -> RegistryConfiguration {
        var configuration = RegistryConfiguration(home: home, keys: keys)
        let file = home + "/custody.yaml"
        if FileManager.default.fileExists(atPath: file) {
            let bytes = try FileIO.contents(of: file, limit: 1 << 20)
            let document: FileDocument
            do {
                document = try YAMLDecoder().decode(FileDocument.self, from: Data(bytes))
            } catch {
                throw CustodyError(.invalidArgument, "\(file): \(Self.describe(error))")
            }
            try configuration.apply(document, source: file)
        }
        try configuration.apply(environment: environment)
        return configuration
    }

    /// Applies `HOST:PORT`.
    public mutating func setListen(_ text: String, source: String) throws(CustodyError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw CustodyError(.invalidArgument, "\(source): listen address '\(text)' must be HOST:PORT")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw CustodyError(.invalidArgument, "\(source): listen address '\(text)' has no host") }
        self.host = host
        self.port = port
    }

    mutating func apply(_ document: FileDocument, source: String) throws(CustodyError) {
        if let listen = document.listen { try setListen(listen, source: source) }
        if let data = document.data { self.data = data }
        if let size = document.limits?.maxBlobSize { maxBlobSize = try ByteSize.parse(size, source: "\(source): limits.maxBlobSize") }
        if let size = document.limits?.maxRequestSize {
            maxRequestSize = Int(try ByteSize.parse(size, source: "\(source): limits.maxRequestSize"))
        }
        if let tls = document.tls {
            tlsCertificate = tls.certificate
            tlsKey = tls.key
        }
        if let level = document.log?.level { logLevel = level }
        if let namespaces = document.admission?.namespaces { admissionNamespaces = namespaces }
        if let origin = document.audit?.origin {
            guard !origin.isEmpty, !origin.contains(" "), !origin.contains("\n") else {
                throw CustodyError(.invalidArgument, "\(source): audit.origin '\(origin)' must be one word (for example registry.example.com/log)")
            }
            logOrigin = origin
        }
        if let window = document.audit?.repeatWindow {
            decisionRepeatWindow = try Self.duration(window, source: "\(source): audit.repeatWindow")
        }
        if let environment = document.admission?.defaultEnvironment { admissionDefaultEnvironment = environment }
    }

    mutating func apply(environment: [String: String]) throws(CustodyError) {
        if let listen = environment["CUSTODY_LISTEN"] { try setListen(listen, source: "CUSTODY_LISTEN") }
        if let data = environment["CUSTODY_DATA"] { self.data = data }
        if let size = environment["CUSTODY_MAX_BLOB_SIZE"] { maxBlobSize = try ByteSize.parse(size, source: "CUSTODY_MAX_BLOB_SIZE") }
        if let cert = environment["CUSTODY_TLS_CERT"] { tlsCertificate = cert }
        if let key = environment["CUSTODY_TLS_KEY"] { tlsKey = key }
        if let level = environment["CUSTODY_LOG_LEVEL"] { logLevel = level }
    }

    struct FileDocument: Decodable {
        struct Limits: Decodable {
            var maxBlobSize: String?
            var maxRequestSize: String?
        }
        struct TLS: Decodable {
            var certificate: String?
            var key: String?
        }
        struct Log: Decodable {
            var level: String?
        }
        struct Admission: Decodable {
            var namespaces: [String: String]?
            var defaultEnvironment: String?
        }
        var admission: Admission?
        struct Audit: Decodable {
            var origin: String?
            var repeatWindow: String?
        }
        var audit: Audit?
        var listen: String?
        var data: String?
        var limits: Limits?
        var tls: TLS?
        var log: Log?
    }

    /// `1s`, `250ms`, `0`: at most a minute, since repeats wait that long to be written.
    static func duration(_ text: String, source: String) throws(CustodyError) -> Duration {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let (number, scale): (Substring, Double) =
            trimmed.hasSuffix("ms") ? (trimmed.dropLast(2), 0.001) : trimmed.hasSuffix("s") ? (trimmed.dropLast(), 1) : (Substring(trimmed), 1)
        guard let value = Double(number), value >= 0, value * scale <= 60 else {
            throw CustodyError(.invalidArgument, "\(source): '\(text)' is not a duration from 0 to 60s (for example 1s or 250ms)")
        }
        return .milliseconds(Int64((value * scale * 1000).rounded()))
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? YamlError { return "\(error)".replacingOccurrences(of: "\n", with: " ") }
        if let error = error as? DecodingError {
            switch error {
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context), .dataCorrupted(let context):
                let path = context.codingPath.map(\.stringValue).joined(separator: ".")
                return "field '\(path)': \(context.debugDescription)"
            @unknown default: break
            }
        }
        return "\(error)"
    }
}

/// Sizes written as `1099511627776`, `512MiB`, `1 TiB`, `10GB`.
public enum ByteSize {
    public static func parse(_ text: String, source: String) throws(CustodyError) -> UInt64 {
        let trimmed = text.replacingOccurrences(of: " ", with: "")
        let digits = trimmed.prefix { $0.isNumber }
        let units: [String: UInt64] = [
            "": 1, "B": 1, "KB": 1000, "MB": 1_000_000, "GB": 1_000_000_000, "TB": 1_000_000_000_000,
            "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
        ]
        guard let value = UInt64(digits), let unit = units[String(trimmed.dropFirst(digits.count))] else {
            throw CustodyError(.invalidArgument, "\(source): '\(text)' is not a size (for example 512MiB or 1TiB)")
        }
        let (product, overflow) = value.multipliedReportingOverflow(by: unit)
        guard !overflow else { throw CustodyError(.invalidArgument, "\(source): '\(text)' is too large") }
        return product
    }
}
