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

    /// One file of a version: its path in the bundle, size and content digest.
    public struct FileEntry: Codable, Hashable, Sendable {
        /// The path relative to the bundle root, `/`-separated.
        public var path: String
        /// The size in bytes.
        public var size: UInt64
        /// The SHA-256 of the file's bytes, which is also its blob's key.
        public var digest: ContentDigest

        /// Creates the document from its fields.
        public init(path: String, size: UInt64, digest: ContentDigest) {
            self.path = path
            self.size = size
            self.digest = digest
        }
    }

    /// A version's licence as declared (model card, request or weight-file header).
    public struct License: Codable, Hashable, Sendable {
        /// A Hugging Face or SPDX licence id (`apache-2.0`, `llama3.1`, `other`, …).
        public var id: String?
        /// For `other`: the licence's name (`license_name` in a model card).
        public var name: String?
        /// Where the licence text is (`license_link` in a model card).
        public var link: String?

        /// Creates the document from its fields.
        public init(id: String? = nil, name: String? = nil, link: String? = nil) {
            self.id = id
            self.name = name
            self.link = link
        }

        /// Whether nothing at all was declared.
        public var isEmpty: Bool { id == nil && name == nil && link == nil }
    }

    /// Where a version's weights came from: a repository and a revision in it.
    public struct Source: Codable, Hashable, Sendable {
        /// The repository (`https://huggingface.co/org/name`, a git URL, …).
        public var uri: String?
        /// The commit, tag or branch the weights were taken at.
        public var revision: String?

        /// Creates the document from its fields.
        public init(uri: String? = nil, revision: String? = nil) {
            self.uri = uri
            self.revision = revision
        }
    }

    /// What a version was made from and by: its source, base models, datasets and pipeline run.
    public struct Provenance: Codable, Hashable, Sendable {
        /// Where the weights were taken from, if they were.
        public var source: Source?
        /// Base models: `ns/name@version` for models in this registry, or any external identifier.
        public var baseModels: [String]
        /// The datasets it was trained or tuned on, as named by the publisher.
        public var datasets: [String]
        /// The run that produced it (a CI job URL or id).
        public var pipelineRun: String?
        /// Free-form key/value facts the publisher recorded.
        public var annotations: [String: String]

        /// Creates the document from its fields.
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

        /// Decodes a provenance document, reading absent lists and maps as empty.
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
        /// The version tag to create (`v1.2`, `2026-11-30`, …).
        public var version: String
        /// Every file of the bundle; their blobs must have been uploaded.
        public var files: [FileEntry]
        /// The licence, when the request declares it (else the model card's).
        public var license: License?
        /// The provenance, when the request declares it (else the model card's).
        public var provenance: Provenance?
        /// The publisher's OMS bundle (`model.sig`), base64 of its exact bytes.
        public var signature: String?
        /// The licence class the publisher claims (`permissive`, `conditional`, `research`, `commercial`, …): refused
        /// when the licence table classifies the licence otherwise.
        public var licenseClass: String?

        /// Creates the document from its fields.
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

    /// A signature over a version's manifest: who made it and what came of checking it.
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

        /// Who signed.
        public var kind: Kind
        /// Whether it was verified.
        public var status: Status
        /// The trusted key's name (its file name in `Keys/trusted/` without `.pub`) or `registry`.
        public var keyName: String?
        /// The signing key's hint (the first bytes of its SPKI digest, hex).
        public var keyHint: String?

        /// Creates the document from its fields.
        public init(kind: Kind, status: Status, keyName: String? = nil, keyHint: String? = nil) {
            self.kind = kind
            self.status = status
            self.keyName = keyName
            self.keyHint = keyHint
        }
    }

    /// One entry of the registry's tamper-evident event log.
    public struct Event: Codable, Hashable, Sendable {
        /// The event's position in the log, from 1.
        public var id: Int64
        /// When it happened, RFC 3339 UTC.
        public var at: String
        /// The event kind (`publish`, `pull`, `decision`, …): the raw value of an ``EventKind``.
        public var type: String
        /// The token (or `registry`, `cli`) that caused it.
        public var actor: String?
        /// The model concerned, `ns/name`.
        public var model: String?
        /// The version concerned.
        public var version: String?
        /// What else the event records, as free text (a decision's reasons, a status reason, …).
        public var detail: String?
        /// The environment a gate decision was made for.
        public var environment: String?
        /// The client's address (for pulls and decisions).
        public var client: String?
        /// How many identical events this one stands for, when more than one: repeats of a gate decision within the
        /// registry's repeat window are recorded as one event with their count.
        public var count: Int64?

        /// Creates the document from its fields.
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
        /// The model, `ns/name`.
        public var model: String
        /// The version tag.
        public var version: String
        /// The OMS bundle digest over every file, as model_signing computes it.
        public var bundleDigest: ContentDigest
        /// When it was published, RFC 3339 UTC.
        public var createdAt: String
        /// The token that published it.
        public var publishedBy: String?
        /// Every file of the bundle, in path order.
        public var files: [FileEntry]
        /// The licence as recorded at publish.
        public var license: License
        /// The provenance as recorded at publish.
        public var provenance: Provenance
        /// The publisher's and the registry's signatures.
        public var signatures: [SignatureInfo]
        /// What the registry's scan found in every file when the version was published.
        public var scan: BundleReport?
        /// Active, or yanked / quarantined (with who, when and why).
        public var status: VersionStatus?
        /// The log's events about this version, when asked for.
        public var events: [Event]?
        /// How each base model the provenance names resolves in this registry now (answers to `GET …/versions/V`).
        public var baseModelResolutions: [BaseModelResolution]?

        /// Creates the document from its fields.
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

    /// A version in a model's listing.
    public struct VersionSummary: Codable, Hashable, Sendable {
        /// The version tag.
        public var version: String
        /// The OMS bundle digest.
        public var bundleDigest: ContentDigest
        /// When it was published, RFC 3339 UTC.
        public var createdAt: String
        /// How many files the bundle has.
        public var fileCount: Int
        /// The bundle's size in bytes.
        public var totalSize: UInt64

        /// Creates the document from its fields.
        public init(version: String, bundleDigest: ContentDigest, createdAt: String, fileCount: Int, totalSize: UInt64) {
            self.version = version
            self.bundleDigest = bundleDigest
            self.createdAt = createdAt
            self.fileCount = fileCount
            self.totalSize = totalSize
        }
    }

    /// `GET /v1/models/{ns}/{name}`: a model and its versions.
    public struct ModelDetail: Codable, Sendable {
        /// The model, `ns/name`.
        public var model: String
        /// When its first version was published, RFC 3339 UTC.
        public var createdAt: String
        /// Its versions, oldest first.
        public var versions: [VersionSummary]

        /// Creates the document from its fields.
        public init(model: String, createdAt: String, versions: [VersionSummary]) {
            self.model = model
            self.createdAt = createdAt
            self.versions = versions
        }
    }

    /// The answer to a publish: whether a version was created or already existed with the same content.
    public struct PublishResponse: Codable, Sendable {
        /// False when the same version with the same bundle digest already existed.
        public var created: Bool
        /// The version as recorded.
        public var version: VersionDetail

        /// Creates the document from its fields.
        public init(created: Bool, version: VersionDetail) {
            self.created = created
            self.version = version
        }
    }

    /// A publisher key the registry trusts (`GET /v1/trust`, `POST /v1/trust`).
    public struct TrustedKey: Codable, Hashable, Sendable {
        /// The key's name: its file name in `Keys/trusted/` without `.pub`, and what signature checks call it.
        public var name: String
        /// The key's hint (the first bytes of its SPKI digest, hex).
        public var keyHint: String
        /// SPKI PEM.
        public var publicKey: String

        /// Creates the document from its fields.
        public init(name: String, keyHint: String, publicKey: String) {
            self.name = name
            self.keyHint = keyHint
            self.publicKey = publicKey
        }
    }

    /// `POST /v1/trust`: trust a public key (SPKI PEM) under a name.
    public struct TrustAddRequest: Codable, Sendable {
        /// The name to trust the key under (a file name: letters, digits, `.`, `_`, `-`).
        public var name: String
        /// The public key, SPKI PEM.
        public var publicKey: String

        /// Creates the document from its fields.
        public init(name: String, publicKey: String) {
            self.name = name
            self.publicKey = publicKey
        }
    }

    /// `GET /v1/trust`.
    public struct TrustList: Codable, Sendable {
        /// Every trusted key, by name.
        public var keys: [TrustedKey]

        /// Creates the document from its fields.
        public init(keys: [TrustedKey]) {
            self.keys = keys
        }
    }

    /// A base model as the provenance names it, and the registry version it resolves to (nil: not in this registry,
    /// or ambiguous), with how it was resolved: `name`, `source`, `name, ignoring case`, or `ambiguous: a/b, c/d`.
    public struct BaseModelResolution: Codable, Hashable, Sendable {
        /// The base model as the provenance names it.
        public var named: String
        /// The registry reference it resolves to, `ns/name@version`.
        public var resolved: String?
        /// How it was resolved.
        public var by: String?

        /// Creates the document from its fields.
        public init(named: String, resolved: String?, by: String?) {
            self.named = named
            self.resolved = resolved
            self.by = by
        }
    }

    /// `POST /v1/tokens`: a new token's role and scope.
    public struct TokenCreateRequest: Codable, Sendable {
        /// `admin`, `publisher`, `consumer` or `auditor`.
        public var role: String
        /// A name for people (`ci-llama`, `prod-inference`).
        public var name: String?
        /// The namespaces it may act in; empty for all.
        public var namespaces: [String]
        /// For a consumer: the environments whose policies decide its pulls.
        public var environments: [String]
        /// RFC 3339 expiry, or nil for a token that does not expire.
        public var expiresAt: String?

        /// Creates the document from its fields.
        public init(role: String, name: String?, namespaces: [String], environments: [String], expiresAt: String?) {
            self.role = role
            self.name = name
            self.namespaces = namespaces
            self.environments = environments
            self.expiresAt = expiresAt
        }
    }

    /// A token as listed: its scope, never its secret.
    public struct TokenInfo: Codable, Hashable, Sendable {
        /// The token's public id (`tok_…`), as events name it.
        public var id: String
        /// Its name for people.
        public var name: String?
        /// What it may do.
        public var role: Role
        /// The namespaces it may act in; empty for all.
        public var namespaces: [String]
        /// The environments whose policies decide its pulls.
        public var environments: [String]
        /// When it was created, RFC 3339 UTC.
        public var createdAt: String
        /// When it expires, RFC 3339 UTC; nil if never.
        public var expiresAt: String?
        /// When it was revoked, RFC 3339 UTC.
        public var revokedAt: String?

        /// Creates the document from its fields.
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

    /// The answer to `POST /v1/gc`: the blobs garbage collection deleted (or, in a dry run, would delete).
    public struct GarbageCollection: Codable, Sendable {
        public struct Blob: Codable, Sendable, Hashable {
            public var digest: ContentDigest
            public var size: UInt64

            public init(digest: ContentDigest, size: UInt64) {
                self.digest = digest
                self.size = size
            }
        }

        public var dryRun: Bool
        /// How long an unreferenced blob is kept after it was last written.
        public var grace: String
        /// Blobs written after this time (RFC 3339) were kept whatever references them.
        public var cutoff: String
        public var blobs: [Blob]
        public var bytes: UInt64

        public init(dryRun: Bool, grace: String, cutoff: String, blobs: [Blob], bytes: UInt64) {
            self.dryRun = dryRun
            self.grace = grace
            self.cutoff = cutoff
            self.blobs = blobs
            self.bytes = bytes
        }
    }

    /// The answer to `POST /v1/tokens`: the token and, once, its secret.
    public struct TokenCreated: Codable, Sendable {
        /// The token as listed from now on.
        public var token: TokenInfo
        /// The bearer secret: shown once, stored only as a hash.
        public var secret: String

        /// Creates the document from its fields.
        public init(token: TokenInfo, secret: String) {
            self.token = token
            self.secret = secret
        }
    }

    /// RFC 9457 problem details.
    public struct Problem: Codable, Sendable, Error {
        /// A URI naming the problem type; `about:blank` when the status says it all.
        public var type: String
        /// A short summary of the problem type.
        public var title: String
        /// The HTTP status code.
        public var status: Int
        /// What went wrong in this request, for people.
        public var detail: String
        /// For a pull the gate refused: the decision in each of the token's environments.
        public var decisions: [Decision]?

        /// Creates the document from its fields.
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
        /// The registry's public key, SPKI PEM.
        public var publicKey: String
        /// The key's hint (the first bytes of its SPKI digest, hex).
        public var keyHint: String

        /// Creates the document from its fields.
        public init(publicKey: String, keyHint: String) {
            self.publicKey = publicKey
            self.keyHint = keyHint
        }
    }

    /// `POST /v1/blobs/missing`, both ways: the digests asked about, and those the registry lacks.
    public struct BlobQuery: Codable, Sendable {
        /// The digests.
        public var digests: [ContentDigest]

        /// Creates the document from its fields.
        public init(digests: [ContentDigest]) {
            self.digests = digests
        }
    }
}

extension ContentDigest: Codable {
    /// Decodes `sha256:<64 hex>`, failing with the parser's message on anything else.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    /// Encodes as `sha256:<64 hex>`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
