public import Foundation

/// The JSON documents of the registry's HTTP API, shared by the server and the client so both agree on the wire.
public enum API {
    /// The encoder behind every JSON answer of the registry: keys sorted, slashes unescaped, so that equal documents
    /// are equal bytes.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public struct FileEntry: Codable, Hashable, Sendable {
        public var path: String
        public var size: UInt64
        public var digest: ContentDigest

        public init(path: String, size: UInt64, digest: ContentDigest) {
            self.path = path
            self.size = size
            self.digest = digest
        }
    }

    public struct License: Codable, Hashable, Sendable {
        /// A Hugging Face or SPDX licence id (`apache-2.0`, `llama3.1`, `other`, …).
        public var id: String?
        /// For `other`: the licence's name (`license_name` in a model card).
        public var name: String?
        public var link: String?

        public init(id: String? = nil, name: String? = nil, link: String? = nil) {
            self.id = id
            self.name = name
            self.link = link
        }

        public var isEmpty: Bool { id == nil && name == nil && link == nil }
    }

    public struct Source: Codable, Hashable, Sendable {
        public var uri: String?
        public var revision: String?

        public init(uri: String? = nil, revision: String? = nil) {
            self.uri = uri
            self.revision = revision
        }
    }

    public struct Provenance: Codable, Hashable, Sendable {
        public var source: Source?
        /// Base models: `ns/name@version` for models in this registry, or any external identifier.
        public var baseModels: [String]
        public var datasets: [String]
        public var pipelineRun: String?
        public var annotations: [String: String]

        public init(
            source: Source? = nil, baseModels: [String] = [], datasets: [String] = [], pipelineRun: String? = nil,
            annotations: [String: String] = [:]
        ) {
            self.source = source
            self.baseModels = baseModels
            self.datasets = datasets
            self.pipelineRun = pipelineRun
            self.annotations = annotations
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            source = try container.decodeIfPresent(Source.self, forKey: .source)
            baseModels = try container.decodeIfPresent([String].self, forKey: .baseModels) ?? []
            datasets = try container.decodeIfPresent([String].self, forKey: .datasets) ?? []
            pipelineRun = try container.decodeIfPresent(String.self, forKey: .pipelineRun)
            annotations = try container.decodeIfPresent([String: String].self, forKey: .annotations) ?? [:]
        }
    }

    /// `POST /v1/models/{ns}/{name}/versions`.
    public struct PublishRequest: Codable, Sendable {
        public var version: String
        public var files: [FileEntry]
        public var license: License?
        public var provenance: Provenance?
        /// The publisher's OMS bundle (`model.sig`), base64 of its exact bytes.
        public var signature: String?
        /// The licence class the publisher claims (`permissive`, `conditional`, `research`, `commercial`, …): refused
        /// when the licence table classifies the licence otherwise.
        public var licenseClass: String?

        public init(version: String, files: [FileEntry], license: License?, provenance: Provenance?, signature: String?, licenseClass: String? = nil)
        {
            self.licenseClass = licenseClass
            self.version = version
            self.files = files
            self.license = license
            self.provenance = provenance
            self.signature = signature
        }
    }

    public struct SignatureInfo: Codable, Hashable, Sendable {
        /// Who signed. The raw values are the wire's and the database's.
        public enum Kind: String, Codable, CaseIterable, Sendable {
            /// The pipeline that published the version, with a key the registry trusts.
            case publisher
            /// The registry itself, at publish.
            case registry
        }

        /// What became of the signature at publish.
        public enum Status: String, Codable, CaseIterable, Sendable {
            /// Checked against a trusted key (or made by the registry).
            case verified
            /// The publisher did not sign.
            case unsigned
        }

        public var kind: Kind
        public var status: Status
        /// The trusted key's name (its file name in `Keys/trusted/` without `.pub`) or `registry`.
        public var keyName: String?
        public var keyHint: String?

        public init(kind: Kind, status: Status, keyName: String? = nil, keyHint: String? = nil) {
            self.kind = kind
            self.status = status
            self.keyName = keyName
            self.keyHint = keyHint
        }
    }

    public struct Event: Codable, Hashable, Sendable {
        public var id: Int64
        public var at: String
        public var type: String
        public var actor: String?
        public var model: String?
        public var version: String?
        public var detail: String?
        public var environment: String?
        public var client: String?
        /// How many identical events this one stands for, when more than one: repeats of a gate decision within the
        /// registry's repeat window are recorded as one event with their count.
        public var count: Int64?

        public init(
            id: Int64, at: String, type: String, actor: String? = nil, model: String? = nil, version: String? = nil, detail: String? = nil,
            environment: String? = nil, client: String? = nil, count: Int64? = nil
        ) {
            self.count = count == 1 ? nil : count
            self.environment = environment
            self.client = client
            self.id = id
            self.at = at
            self.type = type
            self.actor = actor
            self.model = model
            self.version = version
            self.detail = detail
        }
    }

    /// A version as the registry records it.
    public struct VersionDetail: Codable, Sendable {
        public var model: String
        public var version: String
        public var bundleDigest: ContentDigest
        public var createdAt: String
        public var publishedBy: String?
        public var files: [FileEntry]
        public var license: License
        public var provenance: Provenance
        public var signatures: [SignatureInfo]
        /// What the registry's scan found in every file when the version was published.
        public var scan: BundleReport?
        /// Active, or yanked / quarantined (with who, when and why).
        public var status: VersionStatus?
        public var events: [Event]?
        /// How each base model the provenance names resolves in this registry now (answers to `GET …/versions/V`).
        public var baseModelResolutions: [BaseModelResolution]?

        public init(
            model: String, version: String, bundleDigest: ContentDigest, createdAt: String, publishedBy: String? = nil, files: [FileEntry],
            license: License, provenance: Provenance, signatures: [SignatureInfo], scan: BundleReport? = nil, status: VersionStatus? = nil,
            events: [Event]? = nil
        ) {
            self.status = status
            self.model = model
            self.version = version
            self.bundleDigest = bundleDigest
            self.createdAt = createdAt
            self.publishedBy = publishedBy
            self.files = files
            self.license = license
            self.provenance = provenance
            self.signatures = signatures
            self.scan = scan
            self.events = events
        }
    }

    public struct VersionSummary: Codable, Hashable, Sendable {
        public var version: String
        public var bundleDigest: ContentDigest
        public var createdAt: String
        public var fileCount: Int
        public var totalSize: UInt64

        public init(version: String, bundleDigest: ContentDigest, createdAt: String, fileCount: Int, totalSize: UInt64) {
            self.version = version
            self.bundleDigest = bundleDigest
            self.createdAt = createdAt
            self.fileCount = fileCount
            self.totalSize = totalSize
        }
    }

    public struct ModelDetail: Codable, Sendable {
        public var model: String
        public var createdAt: String
        public var versions: [VersionSummary]

        public init(model: String, createdAt: String, versions: [VersionSummary]) {
            self.model = model
            self.createdAt = createdAt
            self.versions = versions
        }
    }

    /// The answer to a publish: whether a version was created or already existed with the same content.
    public struct PublishResponse: Codable, Sendable {
        public var created: Bool
        public var version: VersionDetail

        public init(created: Bool, version: VersionDetail) {
            self.created = created
            self.version = version
        }
    }

    /// A publisher key the registry trusts (`GET /v1/trust`, `POST /v1/trust`).
    public struct TrustedKey: Codable, Hashable, Sendable {
        /// The key's name: its file name in `Keys/trusted/` without `.pub`, and what signature checks call it.
        public var name: String
        public var keyHint: String
        /// SPKI PEM.
        public var publicKey: String

        public init(name: String, keyHint: String, publicKey: String) {
            self.name = name
            self.keyHint = keyHint
            self.publicKey = publicKey
        }
    }

    /// `POST /v1/trust`: trust a public key (SPKI PEM) under a name.
    public struct TrustAddRequest: Codable, Sendable {
        public var name: String
        public var publicKey: String

        public init(name: String, publicKey: String) {
            self.name = name
            self.publicKey = publicKey
        }
    }

    /// `GET /v1/trust`.
    public struct TrustList: Codable, Sendable {
        public var keys: [TrustedKey]

        public init(keys: [TrustedKey]) {
            self.keys = keys
        }
    }

    /// A base model as the provenance names it, and the registry version it resolves to (nil: not in this registry,
    /// or ambiguous), with how it was resolved: `name`, `source`, `name, ignoring case`, or `ambiguous: a/b, c/d`.
    public struct BaseModelResolution: Codable, Hashable, Sendable {
        public var named: String
        public var resolved: String?
        public var by: String?

        public init(named: String, resolved: String?, by: String?) {
            self.named = named
            self.resolved = resolved
            self.by = by
        }
    }

    public struct TokenCreateRequest: Codable, Sendable {
        public var role: String
        public var name: String?
        public var namespaces: [String]
        public var environments: [String]
        /// RFC 3339 expiry, or nil for a token that does not expire.
        public var expiresAt: String?

        public init(role: String, name: String?, namespaces: [String], environments: [String], expiresAt: String?) {
            self.role = role
            self.name = name
            self.namespaces = namespaces
            self.environments = environments
            self.expiresAt = expiresAt
        }
    }

    public struct TokenInfo: Codable, Hashable, Sendable {
        public var id: String
        public var name: String?
        public var role: Role
        public var namespaces: [String]
        public var environments: [String]
        public var createdAt: String
        public var expiresAt: String?
        public var revokedAt: String?

        public init(
            id: String, name: String? = nil, role: Role, namespaces: [String], environments: [String], createdAt: String, expiresAt: String? = nil,
            revokedAt: String? = nil
        ) {
            self.id = id
            self.name = name
            self.role = role
            self.namespaces = namespaces
            self.environments = environments
            self.createdAt = createdAt
            self.expiresAt = expiresAt
            self.revokedAt = revokedAt
        }
    }

    public struct TokenCreated: Codable, Sendable {
        public var token: TokenInfo
        /// The bearer secret: shown once, stored only as a hash.
        public var secret: String

        public init(token: TokenInfo, secret: String) {
            self.token = token
            self.secret = secret
        }
    }

    /// RFC 9457 problem details.
    public struct Problem: Codable, Sendable, Error {
        public var type: String
        public var title: String
        public var status: Int
        public var detail: String
        /// For a pull the gate refused: the decision in each of the token's environments.
        public var decisions: [Decision]?

        public init(status: Int, title: String, detail: String, type: String = "about:blank", decisions: [Decision]? = nil) {
            self.decisions = decisions
            self.type = type
            self.title = title
            self.status = status
            self.detail = detail
        }
    }

    /// `GET /v1/registry`: the key that signs every version's manifest.
    public struct RegistryInfo: Codable, Sendable {
        public var publicKey: String
        public var keyHint: String

        public init(publicKey: String, keyHint: String) {
            self.publicKey = publicKey
            self.keyHint = keyHint
        }
    }

    /// `POST /v1/blobs/missing`, both ways: the digests asked about, and those the registry lacks.
    public struct BlobQuery: Codable, Sendable {
        public var digests: [ContentDigest]

        public init(digests: [ContentDigest]) {
            self.digests = digests
        }
    }
}

extension ContentDigest: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
