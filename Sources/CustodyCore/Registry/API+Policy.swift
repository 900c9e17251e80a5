/// Wire documents of the deployment gate: decisions, version status, advisories and their exposure.
extension API {
    /// The answer to "may this version run in this environment?" — the same document from every entry point.
    public struct Decision: Codable, Sendable, Hashable {
        /// The policy that decided, and the digest of its file, so a decision names exactly the rules applied.
        public struct PolicyRef: Codable, Sendable, Hashable {
            /// The policy's name (its environment).
            public var name: String
            /// The SHA-256 of the policy file as loaded.
            public var digest: String
            /// Creates the document from its fields.
            public init(name: String, digest: String) {
                self.name = name
                self.digest = digest
            }
        }

        /// One check of the policy and how the version fared.
        public struct Check: Codable, Sendable, Hashable {
            /// A check's outcome; the raw values are the wire's.
            public enum Result: String, Codable, Sendable {
                case passed, failed, warning
                case notApplicable = "not-applicable"
            }
            /// The check's name (`signature`, `licence`, `advisories`, `scan`, `status`, …).
            public var check: String
            /// How it came out.
            public var result: Result
            /// Why, for people.
            public var reason: String
            /// Creates the document from its fields.
            public init(check: String, result: Result, reason: String) {
                self.check = check
                self.result = result
                self.reason = reason
            }
        }

        /// A version to roll back to.
        public struct Rollback: Codable, Sendable, Hashable {
            /// Its tag.
            public var version: String
            /// Its bundle digest.
            public var bundleDigest: ContentDigest
            /// Creates the document from its fields.
            public init(version: String, bundleDigest: ContentDigest) {
                self.version = version
                self.bundleDigest = bundleDigest
            }
        }

        /// Whether the version may run in the environment.
        public var allowed: Bool
        /// The environment asked about.
        public var environment: String
        /// The policy that decided.
        public var policy: PolicyRef
        /// The model, `ns/name`.
        public var model: String
        /// The version tag.
        public var version: String
        /// The version's bundle digest.
        public var bundleDigest: ContentDigest
        /// Every check, in the policy's order.
        public var checks: [Check]
        /// The licence class the decision used (the most restrictive of the version's and its base models').
        public var licence: LicenceClassification
        /// What a deployment of this version takes on (conditional licences).
        public var obligations: [String]
        /// When denied: the newest other version of the model this environment allows.
        public var rollback: Rollback?
        /// When the decision was made, RFC 3339 UTC (a kept decision keeps its time).
        public var evaluatedAt: String

        /// Creates the document from its fields.
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
        /// The reasons of the checks that warned, one line each.
        public var warnings: [String] { checks.filter { $0.result == .warning }.map { "\($0.check): \($0.reason)" } }
    }

    /// `POST /v1/verify`: may this version run in this environment?
    public struct VerifyRequest: Codable, Sendable {
        /// `ns/name`, `ns/name@version` or `ns/name@sha256:…`.
        public var model: String
        /// The version tag, when `model` does not carry it.
        public var version: String?
        /// The bundle digest, when `model` does not carry it: it must be the version's.
        public var digest: String?
        /// The environment whose policy decides.
        public var environment: String
        /// Creates the document from its fields.
        public init(model: String, version: String? = nil, digest: String? = nil, environment: String) {
            self.model = model
            self.version = version
            self.digest = digest
            self.environment = environment
        }
    }

    /// Whether a version may be used at all: yanked and quarantined versions fail every policy.
    public struct VersionStatus: Codable, Sendable, Hashable {
        /// A version's state; the raw values are the wire's and the database's.
        public enum State: String, Codable, Sendable { case active, yanked, quarantined }
        /// The state.
        public var state: State
        /// Why it was yanked or quarantined.
        public var reason: String?
        /// Who changed it.
        public var by: String?
        /// When, RFC 3339 UTC.
        public var at: String?
        /// Creates the document from its fields.
        public init(state: State, reason: String? = nil, by: String? = nil, at: String? = nil) {
            self.state = state
            self.reason = reason
            self.by = by
            self.at = at
        }
        /// The status of a version nobody has yanked or quarantined.
        public static let active = VersionStatus(state: .active)
    }

    /// `PUT /v1/models/{ns}/{name}/versions/{v}/status`.
    public struct StatusRequest: Codable, Sendable {
        /// The new state.
        public var state: VersionStatus.State
        /// Why; required for yank and quarantine.
        public var reason: String?
        /// Creates the document from its fields.
        public init(state: VersionStatus.State, reason: String?) {
            self.state = state
            self.reason = reason
        }
    }

    /// An advisory as listed: its id, dates, severity and the models it names.
    public struct AdvisorySummary: Codable, Sendable, Hashable {
        /// The advisory's id (OSV `id`).
        public var id: String
        /// When it was last modified, RFC 3339.
        public var modified: String
        /// When it was withdrawn, RFC 3339: a withdrawn advisory blocks nothing.
        public var withdrawn: String?
        /// Its one-line summary.
        public var summary: String?
        /// `critical`, `high`, `medium`, `low` or `none`, from its CVSS score.
        public var severity: String
        /// The CVSS base score, when it has a vector.
        public var score: Double?
        /// The models it affects, `ns/name`.
        public var models: [String]
        /// Creates the document from its fields.
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
            /// The token.
            public var actor: String?
            /// The environment decided for.
            public var environment: String?
            /// The client's address.
            public var client: String?
            /// How many times.
            public var count: Int
            /// The first time, RFC 3339 UTC.
            public var first: String
            /// The last time, RFC 3339 UTC.
            public var last: String
            /// Creates the document from its fields.
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

        /// A version an advisory affects, and every use of it.
        public struct AffectedVersion: Codable, Sendable, Hashable {
            /// The model, `ns/name`.
            public var model: String
            /// The version tag.
            public var version: String
            /// Its bundle digest.
            public var bundleDigest: ContentDigest
            /// Its uses, grouped by kind, token, environment and client.
            public var uses: [Use]
            /// Creates the document from its fields.
            public init(model: String, version: String, bundleDigest: ContentDigest, uses: [Use]) {
                self.model = model
                self.version = version
                self.bundleDigest = bundleDigest
                self.uses = uses
            }
        }

        /// The advisory.
        public var advisory: AdvisorySummary
        /// The affected versions this registry holds.
        public var versions: [AffectedVersion]
        /// Models the advisory names that this registry does not hold.
        public var unknownModels: [String]
        /// Every environment the affected versions were used in.
        public var environments: [String]
        /// Every token that used them.
        public var tokens: [String]
        /// Creates the document from its fields.
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
        /// A model version in the lineage tree, with the models it derives from or that derive from it.
        public struct Node: Codable, Sendable {
            /// The registry reference `ns/name@version`, or the base model's name outside the registry.
            public var reference: String
            /// False for base models named in provenance that this registry does not hold.
            public var inRegistry: Bool
            /// Its licence id, when in the registry.
            public var licence: String?
            /// Its base models (upstream) or derivatives (downstream).
            public var children: [Node]
            /// The base model as the provenance names it, when that is not the registry reference (a Hugging Face id).
            public var namedAs: String?
            /// How the name was resolved: `name`, `source` (a registry model recorded with that Hub repository as its
            /// source), `name, ignoring case`; or `ambiguous: a/b, c/d`.
            public var resolvedBy: String?
            /// Creates the document from its fields.
            public init(reference: String, inRegistry: Bool, licence: String?, children: [Node], namedAs: String? = nil, resolvedBy: String? = nil) {
                self.reference = reference
                self.inRegistry = inRegistry
                self.licence = licence
                self.children = children
                self.namedAs = namedAs
                self.resolvedBy = resolvedBy
            }
        }
        /// The version asked about.
        public var reference: String
        /// What it was made from, transitively.
        public var upstream: [Node]
        /// What was made from it, transitively.
        public var downstream: [Node]
        /// Creates the document from its fields.
        public init(reference: String, upstream: [Node], downstream: [Node]) {
            self.reference = reference
            self.upstream = upstream
            self.downstream = downstream
        }
    }

    /// The answer to `POST /v1/advisories`: whether it was new, and who is exposed.
    public struct AdvisoryAdded: Codable, Sendable {
        /// True for an advisory id not seen before.
        public var created: Bool
        /// `created`, `updated` (a later `modified`) or `unchanged` (the same document again).
        public var result: String?
        /// Who used the versions it affects, up to now.
        public var exposure: Exposure
        /// Creates the document from its fields.
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
        /// The leaf's index, from 0.
        public var index: UInt64
        /// The size of the tree the proof is for.
        public var size: UInt64
        /// The leaf's hash, base64.
        public var leafHash: String
        /// The audit path, leaf to root, each base64.
        public var hashes: [String]

        /// Creates the document from its fields.
        public init(index: UInt64, size: UInt64, leafHash: String, hashes: [String]) {
            self.index = index
            self.size = size
            self.leafHash = leafHash
            self.hashes = hashes
        }
    }

    /// `GET /v1/audit/proof/consistency`: that the tree of `to` leaves extends the tree of `from` (RFC 9162 §2.1.4).
    public struct ConsistencyProof: Codable, Sendable, Hashable {
        /// The size of the older tree.
        public var from: UInt64
        /// The size of the newer tree.
        public var to: UInt64
        /// The proof's hashes, each base64.
        public var hashes: [String]

        /// Creates the document from its fields.
        public init(from: UInt64, to: UInt64, hashes: [String]) {
            self.from = from
            self.to = to
            self.hashes = hashes
        }
    }

    /// `GET /v1/audit/exposure/{model}/{version}`: every use of one version, and the environments and tokens behind them.
    public struct VersionExposure: Codable, Sendable, Hashable {
        /// The version (one entry) and its uses.
        public var versions: [Exposure.AffectedVersion]
        /// Every environment it was used in.
        public var environments: [String]
        /// Every token that used it.
        public var tokens: [String]

        /// Creates the document from its fields.
        public init(versions: [Exposure.AffectedVersion], environments: [String], tokens: [String]) {
            self.versions = versions
            self.environments = environments
            self.tokens = tokens
        }
    }
}
