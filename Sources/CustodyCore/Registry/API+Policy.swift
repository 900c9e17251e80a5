/// Wire documents of the deployment gate: decisions, version status, advisories and their exposure.
extension API {
    /// The answer to "may this version run in this environment?" — the same document from every entry point.
    public struct Decision: Codable, Sendable, Hashable {
        public struct PolicyRef: Codable, Sendable, Hashable {
            public var name: String
            public var digest: String
            public init(name: String, digest: String) {
                self.name = name
                self.digest = digest
            }
        }

        public struct Check: Codable, Sendable, Hashable {
            public enum Result: String, Codable, Sendable {
                case passed, failed, warning
                case notApplicable = "not-applicable"
            }
            public var check: String
            public var result: Result
            public var reason: String
            public init(check: String, result: Result, reason: String) {
                self.check = check
                self.result = result
                self.reason = reason
            }
        }

        public struct Rollback: Codable, Sendable, Hashable {
            public var version: String
            public var bundleDigest: ContentDigest
            public init(version: String, bundleDigest: ContentDigest) {
                self.version = version
                self.bundleDigest = bundleDigest
            }
        }

        public var allowed: Bool
        public var environment: String
        public var policy: PolicyRef
        public var model: String
        public var version: String
        public var bundleDigest: ContentDigest
        public var checks: [Check]
        /// The licence class the decision used (the most restrictive of the version's and its base models').
        public var licence: LicenceClassification
        /// What a deployment of this version takes on (conditional licences).
        public var obligations: [String]
        /// When denied: the newest other version of the model this environment allows.
        public var rollback: Rollback?
        public var evaluatedAt: String

        public init(
            allowed: Bool, environment: String, policy: PolicyRef, model: String, version: String, bundleDigest: ContentDigest,
            checks: [Check], licence: LicenceClassification, obligations: [String], rollback: Rollback?, evaluatedAt: String
        ) {
            self.allowed = allowed
            self.environment = environment
            self.policy = policy
            self.model = model
            self.version = version
            self.bundleDigest = bundleDigest
            self.checks = checks
            self.licence = licence
            self.obligations = obligations
            self.rollback = rollback
            self.evaluatedAt = evaluatedAt
        }

        /// The reasons of the failed checks, one line each.
        public var reasons: [String] { checks.filter { $0.result == .failed }.map { "\($0.check): \($0.reason)" } }
        public var warnings: [String] { checks.filter { $0.result == .warning }.map { "\($0.check): \($0.reason)" } }
    }

    public struct VerifyRequest: Codable, Sendable {
        /// `ns/name`, `ns/name@version` or `ns/name@sha256:…`.
        public var model: String
        public var version: String?
        public var digest: String?
        public var environment: String
        public init(model: String, version: String? = nil, digest: String? = nil, environment: String) {
            self.model = model
            self.version = version
            self.digest = digest
            self.environment = environment
        }
    }

    /// Whether a version may be used at all: yanked and quarantined versions fail every policy.
    public struct VersionStatus: Codable, Sendable, Hashable {
        public enum State: String, Codable, Sendable { case active, yanked, quarantined }
        public var state: State
        public var reason: String?
        public var by: String?
        public var at: String?
        public init(state: State, reason: String? = nil, by: String? = nil, at: String? = nil) {
            self.state = state
            self.reason = reason
            self.by = by
            self.at = at
        }
        public static let active = VersionStatus(state: .active)
    }

    public struct StatusRequest: Codable, Sendable {
        public var state: VersionStatus.State
        public var reason: String?
        public init(state: VersionStatus.State, reason: String?) {
            self.state = state
            self.reason = reason
        }
    }

    public struct AdvisorySummary: Codable, Sendable, Hashable {
        public var id: String
        public var modified: String
        public var withdrawn: String?
        public var summary: String?
        public var severity: String
        public var score: Double?
        public var models: [String]
        public init(id: String, modified: String, withdrawn: String?, summary: String?, severity: String, score: Double?, models: [String]) {
            self.id = id
            self.modified = modified
            self.withdrawn = withdrawn
            self.summary = summary
            self.severity = severity
            self.score = score
            self.models = models
        }
    }

    /// Who used the versions an advisory affects: every pull, verify and admission decision about them.
    public struct Exposure: Codable, Sendable, Hashable {
        /// One kind of use of a version: by one token, in one environment, from one address — how often and when.
        public struct Use: Codable, Sendable, Hashable {
            /// `pull`, `pull.denied`, `decision` or `admission`.
            public var type: String
            /// Whether the gate let the version through: a denied verify or admission is a use of another kind
            /// than an allowed one, and is counted apart.
            public var allowed: Bool
            public var actor: String?
            public var environment: String?
            public var client: String?
            public var count: Int
            public var first: String
            public var last: String
            public init(
                type: String, allowed: Bool, actor: String?, environment: String?, client: String?, count: Int, first: String, last: String
            ) {
                self.type = type
                self.allowed = allowed
                self.actor = actor
                self.environment = environment
                self.client = client
                self.count = count
                self.first = first
                self.last = last
            }
        }

        public struct AffectedVersion: Codable, Sendable, Hashable {
            public var model: String
            public var version: String
            public var bundleDigest: ContentDigest
            public var uses: [Use]
            public init(model: String, version: String, bundleDigest: ContentDigest, uses: [Use]) {
                self.model = model
                self.version = version
                self.bundleDigest = bundleDigest
                self.uses = uses
            }
        }

        public var advisory: AdvisorySummary
        public var versions: [AffectedVersion]
        /// Models the advisory names that this registry does not hold.
        public var unknownModels: [String]
        public var environments: [String]
        public var tokens: [String]
        public init(advisory: AdvisorySummary, versions: [AffectedVersion], unknownModels: [String], environments: [String], tokens: [String]) {
            self.advisory = advisory
            self.versions = versions
            self.unknownModels = unknownModels
            self.environments = environments
            self.tokens = tokens
        }
    }

    /// A version's place among base models and derivatives.
    public struct Lineage: Codable, Sendable {
        public struct Node: Codable, Sendable {
            public var reference: String
            /// False for base models named in provenance that this registry does not hold.
            public var inRegistry: Bool
            public var licence: String?
            public var children: [Node]
            /// The base model as the provenance names it, when that is not the registry reference (a Hugging Face id).
            public var namedAs: String?
            /// How the name was resolved: `name`, `source` (a registry model recorded with that Hub repository as its
            /// source), `name, ignoring case`; or `ambiguous: a/b, c/d`.
            public var resolvedBy: String?
            public init(reference: String, inRegistry: Bool, licence: String?, children: [Node], namedAs: String? = nil, resolvedBy: String? = nil) {
                self.reference = reference
                self.inRegistry = inRegistry
                self.licence = licence
                self.children = children
                self.namedAs = namedAs
                self.resolvedBy = resolvedBy
            }
        }
        public var reference: String
        public var upstream: [Node]
        public var downstream: [Node]
        public init(reference: String, upstream: [Node], downstream: [Node]) {
            self.reference = reference
            self.upstream = upstream
            self.downstream = downstream
        }
    }

    public struct AdvisoryAdded: Codable, Sendable {
        public var created: Bool
        /// `created`, `updated` (a later `modified`) or `unchanged` (the same document again).
        public var result: String?
        public var exposure: Exposure
        public init(created: Bool, result: String? = nil, exposure: Exposure) {
            self.created = created
            self.result = result
            self.exposure = exposure
        }
    }
}

extension API {
    /// `GET /v1/audit/proof/inclusion`: that the leaf at `index` is in the tree of `size` leaves (RFC 9162 §2.1.3).
    public struct InclusionProof: Codable, Sendable, Hashable {
        public var index: UInt64
        public var size: UInt64
        /// The leaf's hash, base64.
        public var leafHash: String
        /// The audit path, leaf to root, each base64.
        public var hashes: [String]

        public init(index: UInt64, size: UInt64, leafHash: String, hashes: [String]) {
            self.index = index
            self.size = size
            self.leafHash = leafHash
            self.hashes = hashes
        }
    }

    /// `GET /v1/audit/proof/consistency`: that the tree of `to` leaves extends the tree of `from` (RFC 9162 §2.1.4).
    public struct ConsistencyProof: Codable, Sendable, Hashable {
        public var from: UInt64
        public var to: UInt64
        /// The proof's hashes, each base64.
        public var hashes: [String]

        public init(from: UInt64, to: UInt64, hashes: [String]) {
            self.from = from
            self.to = to
            self.hashes = hashes
        }
    }

    /// `GET /v1/audit/exposure/{model}/{version}`: every use of one version, and the environments and tokens behind them.
    public struct VersionExposure: Codable, Sendable, Hashable {
        public var versions: [Exposure.AffectedVersion]
        public var environments: [String]
        public var tokens: [String]

        public init(versions: [Exposure.AffectedVersion], environments: [String], tokens: [String]) {
            self.versions = versions
            self.environments = environments
            self.tokens = tokens
        }
    }
}
