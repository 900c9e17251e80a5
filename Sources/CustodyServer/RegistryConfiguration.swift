package import CustodyCore
package import CustodyPostgres
package import CustodyRegistry
package import CustodyS3
import CustodyStorage
import Foundation
import Yams

/// Where the registry lives and how it listens. Sources, later ones winning: built-in defaults,
/// `HOME/custody.yaml`, `CUSTODY_*` environment variables, command-line flags.
package struct RegistryConfiguration: Sendable {
    /// The registry home (`Registry/`): `custody.yaml`, `policies/`, `data/`.
    package var home: String
    /// The keys directory (`Keys/`): `trusted/*.pub`, `registry.key|.pub`.
    package var keys: String
    package var host: String = "127.0.0.1"
    package var port: Int = 8080
    /// The data directory; relative paths are relative to `home`.
    package var data: String = "data"
    /// The largest blob one upload may carry.
    package var maxBlobSize: UInt64 = 1 << 40
    /// The largest JSON request body (a publish request lists every file); every JSON endpoint reads under it.
    package var maxRequestSize: Int = 64 << 20
    /// Failed authentications an address may make at once before it is answered 429; zero turns the limit off.
    package var authFailureBurst: Int = 20
    /// The time in which an address's failure budget refills completely.
    package var authFailureWindow: Duration = .seconds(60)
    /// How long an answer past the budget (429) is held back.
    package var authFailureDelay: Duration = .milliseconds(100)
    /// Staged uploads untouched for this long are deleted.
    package var uploadExpiry: Duration = .seconds(24 * 3600)
    /// How long garbage collection keeps an unreferenced blob after it was last written (`gc.grace`).
    package var gcGrace: Duration = .seconds(24 * 3600)
    /// The free space the data directory keeps: below it the registry is not ready, and blob uploads that would
    /// take it are refused (507), so that the database always has room to record events.
    package var minFreeSpace: FreeSpace = .default
    /// How long a connection may take to send a request's header (from when it opened or its last answer).
    package var headerTimeout: Duration = .seconds(30)
    /// How long a connection may stay silent, between requests or within a body, before it is closed.
    package var idleTimeout: Duration = .seconds(120)
    /// Open connections at most; further ones wait in the listen backlog.
    package var maxConnections: Int = 4096
    package var tlsCertificate: String?
    package var tlsKey: String?
    package var logLevel: String = "info"
    /// Kubernetes namespace → deployment environment, for the admission webhook.
    package var admissionNamespaces: [String: String] = [:]
    /// The environment of namespaces not in `admissionNamespaces`; nil denies their pods.
    package var admissionDefaultEnvironment: String?

    /// The transparency log's origin: the first line of every checkpoint and the name of its key.
    package var logOrigin: String = "custody.localhost/log"
    /// Identical gate decisions within this long of a recorded one are counted into one event; zero records each.
    package var decisionRepeatWindow: Duration = .seconds(1)
    /// Downloads of one version by one token from one address with less than this between them are one pull (a Hub
    /// client fetches a snapshot file by file): the first is recorded.
    package var pullSessionWindow: Duration = .seconds(300)
    /// A scan verdict at or above which every publish is refused (`scan.refuse`); nil leaves it to the policies.
    package var scanRefuse: Verdict?
    /// The part size of multipart LFS uploads through the Hub API (`huggingface.partSize`).
    package var hubPartSize: UInt64 = 1 << 30
    /// Namespaces where the OCI API also stores manifests that are not models (`oci.plainNamespaces`).
    package var ociPlainNamespaces: Set<String> = []
    /// The largest manifest the OCI API accepts (`oci.maxManifestSize`; at least the spec's 4 MiB).
    package var ociMaxManifestSize: Int = 4 << 20
    /// The `host[:port]` names clients reach the OCI API by (`oci.hosts`): image references with these hosts are
    /// this registry's, for admission; any other registry's are refused.
    package var ociHosts: Set<String> = []
    /// Which consumers are sent to the blob store itself, and for how long the URL they get is valid.
    package struct BlobRedirect: Sendable, Equatable {
        /// A consumer whose every environment is one of these is redirected.
        package var environments: Set<String>
        package var expiry: Duration = .seconds(300)

        package init(environments: Set<String>, expiry: Duration = .seconds(300)) {
            self.environments = environments
            self.expiry = expiry
        }

        /// Whether a token of `environments` is redirected: only when it has some, and all of them opted in (a token
        /// that may also serve an environment whose hosts cannot reach the store is proxied).
        package func redirects(_ environments: [String]) -> Bool {
            !environments.isEmpty && environments.allSatisfy(self.environments.contains)
        }
    }

    /// Where blobs live (`storage.blobs`): the data directory, or an S3-compatible bucket.
    package var blobStorage: BlobStorage = .filesystem
    /// Where the catalog, tokens, advisories and the log live (`storage.metadata`): the embedded SQLite database, or
    /// a PostgreSQL database that several daemons share.
    package var metadataStorage: MetadataStorage = .sqlite

    package enum MetadataStorage: Sendable, Equatable {
        case sqlite
        case postgres(PostgresLocation)
    }
    /// The S3 credentials (`storage.credentialsFile`, or the environment); never logged.
    package var s3Credentials: S3Credentials?
    /// What `storage.credentialsFile` holds, until the environment is applied over it.
    var credentialsFile: CredentialsFile?
    /// Pulls answered with a presigned redirect to the blob store instead of proxied (`storage.redirect`); nil: every
    /// pull is proxied and verified.
    package var blobRedirect: BlobRedirect?
    /// The most the local copies of S3 blobs may hold (`storage.cacheLimit`).
    package var s3CacheLimit: UInt64 = 64 << 30

    package enum BlobStorage: Sendable, Equatable {
        case filesystem
        case s3(S3Location)
    }

    /// S3 credentials, which print as their access key only.
    package struct S3Credentials: Sendable, CustomStringConvertible {
        package var signing: SigV4.Credentials
        package var description: String { "access key \(signing.accessKey)" }
    }

    /// One policy file per environment: `policies/ENV.yaml`.
    package var policiesDirectory: String { home + "/policies" }
    /// Additions and overrides to the built-in licence table.
    package var licenceTablePath: String { home + "/licenses.yaml" }

    package init(home: String = "Registry", keys: String = "Keys") {
        self.home = home
        self.keys = keys
    }

    package var dataDirectory: String { data.hasPrefix("/") ? data : home + "/" + data }
    package var databasePath: String { dataDirectory + "/custody.sqlite" }

    /// Loads `home/custody.yaml` (when present) and then the environment over the defaults.
    package static func load(home: String, keys: String, environment: [String: String]) throws(CustodyError) -> RegistryConfiguration {
        var configuration = RegistryConfiguration(home: home, keys: keys)
        let file = home + "/custody.yaml"
        if FileManager.default.fileExists(atPath: file) {
            let bytes = try PosixFile.contents(of: file, limit: 1 << 20)
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
    package mutating func setListen(_ text: String, source: String) throws(CustodyError) {
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
        if let limits = document.limits {
            if let burst = limits.authFailures {
                guard burst >= 0 else { throw CustodyError(.invalidArgument, "\(source): limits.authFailures must be 0 or more") }
                authFailureBurst = burst
            }
            if let text = limits.authFailureWindow {
                authFailureWindow = try Self.period(text, source: "\(source): limits.authFailureWindow")
            }
            if let text = limits.authFailureDelay {
                authFailureDelay = try Self.period(text, source: "\(source): limits.authFailureDelay", zero: true)
            }
            if let text = limits.uploadExpiry { uploadExpiry = try Self.period(text, source: "\(source): limits.uploadExpiry") }
            if let text = limits.minFreeSpace { minFreeSpace = try FreeSpace.parse(text, source: "\(source): limits.minFreeSpace") }
            if let text = limits.headerTimeout { headerTimeout = try Self.period(text, source: "\(source): limits.headerTimeout") }
            if let text = limits.idleTimeout { idleTimeout = try Self.period(text, source: "\(source): limits.idleTimeout") }
            if let count = limits.maxConnections {
                guard count > 0 else { throw CustodyError(.invalidArgument, "\(source): limits.maxConnections must be at least 1") }
                maxConnections = count
            }
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
        if let refuse = document.scan?.refuse {
            guard let verdict = Verdict(rawValue: refuse), verdict != .clean else {
                throw CustodyError(.invalidArgument, "\(source): scan.refuse '\(refuse)' must be suspicious, unscannable or dangerous")
            }
            scanRefuse = verdict
        }
        if let part = document.huggingface?.partSize {
            hubPartSize = try ByteSize.parse(part, source: "\(source): huggingface.partSize")
            guard hubPartSize >= 1 << 20 else {
                throw CustodyError(.invalidArgument, "\(source): huggingface.partSize '\(part)' is under the 1 MiB a part needs at least")
            }
        }
        if let oci = document.oci {
            if let namespaces = oci.plainNamespaces { ociPlainNamespaces = Set(namespaces) }
            if let hosts = oci.hosts { ociHosts = Set(hosts.map { $0.lowercased() }) }
            if let size = oci.maxManifestSize {
                let bytes = try ByteSize.parse(size, source: "\(source): oci.maxManifestSize")
                guard bytes >= 4 << 20, bytes <= 64 << 20 else {
                    throw CustodyError(.invalidArgument, "\(source): oci.maxManifestSize '\(size)' must be from 4 MiB (the spec's minimum) to 64 MiB")
                }
                ociMaxManifestSize = Int(bytes)
            }
        }
        if let grace = document.gc?.grace { gcGrace = try Self.gracePeriod(grace, source: "\(source): gc.grace") }
        if let storage = document.storage {
            if let metadata = storage.metadata { try setMetadata(metadata, source: "\(source): storage.metadata") }
            if let blobs = storage.blobs { try setBlobs(blobs, source: "\(source): storage.blobs") }
            if let file = storage.credentialsFile { credentialsFile = try Self.credentials(fromFile: file, source: source) }
            if let limit = storage.cacheLimit { s3CacheLimit = try ByteSize.parse(limit, source: "\(source): storage.cacheLimit") }
            if let redirect = storage.redirect { blobRedirect = try Self.redirect(redirect, source: "\(source): storage.redirect") }
        }
        if let session = document.audit?.pullSession {
            pullSessionWindow = try Self.period(session, source: "\(source): audit.pullSession", zero: true)
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
        if let metadata = environment["CUSTODY_METADATA"] { try setMetadata(metadata, source: "CUSTODY_METADATA") }
        if let blobs = environment["CUSTODY_BLOBS"] { try setBlobs(blobs, source: "CUSTODY_BLOBS") }
        // Credentials: a credentials file first, then Custody's own variables, then the AWS and libpq ones.
        if let file = credentialsFile, let key = file.accessKeyId, let secret = file.secretAccessKey {
            s3Credentials = S3Credentials(signing: .init(accessKey: key, secretKey: secret, sessionToken: file.sessionToken))
        }
        if case .postgres(var location) = metadataStorage {
            if let password = credentialsFile?.postgresPassword ?? environment["CUSTODY_POSTGRES_PASSWORD"] ?? environment["PGPASSWORD"] {
                location.password = password
            }
            metadataStorage = .postgres(location)
        }
        if s3Credentials == nil {
            let key = environment["CUSTODY_S3_ACCESS_KEY_ID"] ?? environment["AWS_ACCESS_KEY_ID"]
            let secret = environment["CUSTODY_S3_SECRET_ACCESS_KEY"] ?? environment["AWS_SECRET_ACCESS_KEY"]
            if let key, let secret, !key.isEmpty, !secret.isEmpty {
                s3Credentials = S3Credentials(
                    signing: .init(
                        accessKey: key, secretKey: secret, sessionToken: environment["CUSTODY_S3_SESSION_TOKEN"] ?? environment["AWS_SESSION_TOKEN"]))
            }
        }
        if blobRedirect != nil, case .filesystem = blobStorage {
            throw CustodyError(
                .invalidArgument,
                "storage.redirect sends consumers to the blob store, but blobs are on the file system: it needs storage.blobs: s3://…")
        }
        if case .s3(let location) = blobStorage, s3Credentials == nil {
            throw CustodyError(
                .invalidArgument,
                "storage.blobs is s3://\(location.bucket) but no credentials were given: set storage.credentialsFile, or CUSTODY_S3_ACCESS_KEY_ID and CUSTODY_S3_SECRET_ACCESS_KEY"
            )
        }
    }

    /// `storage.credentialsFile`: a YAML file (keep it 0600) of the S3 `accessKeyId`, `secretAccessKey` and
    /// optionally `sessionToken`, and the PostgreSQL `postgresPassword`.
    struct CredentialsFile: Decodable, Sendable {
        var accessKeyId: String?
        var secretAccessKey: String?
        var sessionToken: String?
        var postgresPassword: String?
    }

    static func credentials(fromFile path: String, source: String) throws(CustodyError) -> CredentialsFile {
        let bytes = try PosixFile.contents(of: path, limit: 64 << 10)
        let file: CredentialsFile
        do { file = try YAMLDecoder().decode(CredentialsFile.self, from: Data(bytes)) } catch {
            throw CustodyError(
                .invalidArgument, "\(source): storage.credentialsFile \(path) is not YAML of accessKeyId, secretAccessKey, postgresPassword")
        }
        guard (file.accessKeyId == nil) == (file.secretAccessKey == nil) else {
            throw CustodyError(.invalidArgument, "\(source): storage.credentialsFile \(path) needs both accessKeyId and secretAccessKey")
        }
        return file
    }

    mutating func setMetadata(_ text: String, source: String) throws(CustodyError) {
        if text == "sqlite" {
            metadataStorage = .sqlite
            return
        }
        do throws(CustodyError) { metadataStorage = .postgres(try PostgresLocation(parsing: text)) } catch {
            throw CustodyError(.invalidArgument, "\(source): \(error.message) (or sqlite, the default)")
        }
    }

    mutating func setBlobs(_ text: String, source: String) throws(CustodyError) {
        if text == "filesystem" {
            blobStorage = .filesystem
            return
        }
        do throws(S3Error) { blobStorage = .s3(try S3Location(parsing: text)) } catch {
            throw CustodyError(.invalidArgument, "\(source): \(error.message) (or filesystem, the default)")
        }
    }

    struct FileDocument: Decodable {
        struct Limits: Decodable {
            var maxBlobSize: String?
            var maxRequestSize: String?
            var authFailures: Int?
            var authFailureWindow: String?
            var authFailureDelay: String?
            var uploadExpiry: String?
            var minFreeSpace: String?
            var headerTimeout: String?
            var idleTimeout: String?
            var maxConnections: Int?
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
            var pullSession: String?
        }
        var audit: Audit?
        struct HuggingFace: Decodable {
            var partSize: String?
        }
        var huggingface: HuggingFace?
        struct OCI: Decodable {
            var plainNamespaces: [String]?
            var hosts: [String]?
            var maxManifestSize: String?
        }
        var oci: OCI?
        struct Storage: Decodable {
            var metadata: String?
            var blobs: String?
            var credentialsFile: String?
            var cacheLimit: String?
            var redirect: Redirect?
        }
        struct Redirect: Decodable {
            var environments: [String]?
            var expiry: String?
        }
        var storage: Storage?
        struct GC: Decodable {
            var grace: String?
        }
        var gc: GC?
        struct Scan: Decodable {
            var refuse: String?
        }
        var scan: Scan?
        var listen: String?
        var data: String?
        var limits: Limits?
        var tls: TLS?
        var log: Log?
    }

    /// A garbage collection grace period: at least a second (blob records are timed to the second, and an upload's
    /// record must be newer than the cutoff for the collector to leave it alone).
    package static func gracePeriod(_ text: String, source: String) throws(CustodyError) -> Duration {
        let value = try period(text, source: source, zero: true)
        guard value >= .seconds(1) else {
            throw CustodyError(.invalidArgument, "\(source): '\(text)' is shorter than the shortest grace period, 1s")
        }
        return value
    }

    /// `1s`, `250ms`, `0`: at most a minute, since repeats wait that long to be written.
    static func duration(_ text: String, source: String) throws(CustodyError) -> Duration {
        let refusal = CustodyError(.invalidArgument, "\(source): '\(text)' is not a duration from 0 to 60s (for example 1s or 250ms)")
        guard let value = try? period(text, source: source, zero: true), value <= .seconds(60) else { throw refusal }
        return value
    }

    /// `250ms`, `30s`, `5m`, `24h`, `7d`: a period of at least a millisecond (zero where `zero` allows it).
    /// `storage.redirect`: the environments (at least one) and the URLs' lifetime (1 s to 7 days, S3's longest).
    static func redirect(_ document: FileDocument.Redirect, source: String) throws(CustodyError) -> BlobRedirect {
        let environments = Set(document.environments ?? [])
        guard !environments.isEmpty, environments.allSatisfy({ !$0.isEmpty }) else {
            throw CustodyError(.invalidArgument, "\(source): environments must name the environments whose consumers are redirected")
        }
        var redirect = BlobRedirect(environments: environments)
        if let text = document.expiry {
            redirect.expiry = try period(text, source: "\(source).expiry")
            guard redirect.expiry >= .seconds(1), redirect.expiry <= .seconds(7 * 86400) else {
                throw CustodyError(.invalidArgument, "\(source).expiry: '\(text)' must be from 1s to 7d (a presigned URL's limits)")
            }
        }
        return redirect
    }

    static func period(_ text: String, source: String, zero: Bool = false) throws(CustodyError) -> Duration {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        let unit = units.first { trimmed.hasSuffix($0.0) && Double(trimmed.dropLast($0.0.count)) != nil }
        let number = unit.map { Double(trimmed.dropLast($0.0.count)) } ?? Double(trimmed)
        guard let value = number, value.isFinite, value >= 0, value * (unit?.1 ?? 1) <= 365 * 86400, zero || value > 0 else {
            throw CustodyError(.invalidArgument, "\(source): '\(text)' is not a duration (for example 30s, 5m, 24h or 7d)")
        }
        let milliseconds = Int64((value * (unit?.1 ?? 1) * 1000).rounded())
        guard zero || milliseconds > 0 else { throw CustodyError(.invalidArgument, "\(source): '\(text)' is shorter than a millisecond") }
        return .milliseconds(milliseconds)
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
package enum ByteSize {
    package static func parse(_ text: String, source: String) throws(CustodyError) -> UInt64 {
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

extension FreeSpace {
    /// `2GiB`, `5%`, or `1GiB or 1%`.
    static func parse(_ text: String, source: String) throws(CustodyError) -> FreeSpace {
        var space = FreeSpace(bytes: nil, percent: nil)
        for part in text.components(separatedBy: " or ").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if part.hasSuffix("%") {
                guard space.percent == nil, let value = Double(part.dropLast()), value >= 0, value < 100 else {
                    throw CustodyError(.invalidArgument, "\(source): '\(text)' is not a size, a percentage below 100 or 'SIZE or N%'")
                }
                space.percent = value
            } else {
                guard space.bytes == nil else {
                    throw CustodyError(.invalidArgument, "\(source): '\(text)' is not a size, a percentage below 100 or 'SIZE or N%'")
                }
                space.bytes = try ByteSize.parse(part, source: source)
            }
        }
        return space
    }
}
