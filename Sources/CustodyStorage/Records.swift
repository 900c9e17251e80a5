package import CustodyCore

/// An advisory as stored: its OSV document and the columns lists and filters need.
package struct StoredAdvisory: Sendable {
    package var id: String
    package var modified: String
    package var withdrawn: String?
    package var severity: String
    package var score: Double?
    package var summary: String?
    package var models: [String]
    package var document: [UInt8]

    package init(
        id: String, modified: String, withdrawn: String?, severity: String, score: Double?, summary: String?, models: [String], document: [UInt8]
    ) {
        self.id = id
        self.modified = modified
        self.withdrawn = withdrawn
        self.severity = severity
        self.score = score
        self.summary = summary
        self.models = models
        self.document = document
    }
}

package enum AdvisoryWrite: Sendable {
    case created, updated, unchanged
}

/// Everything a new version is made of, checked and signed by the server before it reaches the store.
package struct NewVersion: Sendable {
    package var model: ModelName
    package var version: String
    package var bundleDigest: ContentDigest
    /// In OMS resource order.
    package var files: [API.FileEntry]
    package var license: API.License
    package var provenance: API.Provenance
    package var publisherSignature: SignatureRecord?
    package var registrySignature: SignatureRecord
    package var publishedBy: String?
    package var scan: BundleReport?

    package init(
        model: ModelName, version: String, bundleDigest: ContentDigest, files: [API.FileEntry], license: API.License,
        provenance: API.Provenance, publisherSignature: SignatureRecord?, registrySignature: SignatureRecord,
        publishedBy: String?, scan: BundleReport? = nil
    ) {
        self.scan = scan
        self.model = model
        self.version = version
        self.bundleDigest = bundleDigest
        self.files = files
        self.license = license
        self.provenance = provenance
        self.publisherSignature = publisherSignature
        self.registrySignature = registrySignature
        self.publishedBy = publishedBy
    }
}

package struct SignatureRecord: Sendable {
    package var status: API.SignatureInfo.Status
    package var keyName: String?
    package var keyHint: String?
    package var bundle: [UInt8]?

    package init(status: API.SignatureInfo.Status, keyName: String?, keyHint: String?, bundle: [UInt8]?) {
        self.status = status
        self.keyName = keyName
        self.keyHint = keyHint
        self.bundle = bundle
    }
}

package enum PublishOutcome: Sendable {
    case created(API.VersionDetail)
    /// The same content was already published under this version: nothing changed.
    case unchanged(API.VersionDetail)
}

package struct NewToken: Sendable {
    package var role: Role
    package var name: String?
    package var namespaces: [String]
    package var environments: [String]
    package var expiresAt: String?

    package init(role: Role, name: String?, namespaces: [String], environments: [String], expiresAt: String?) {
        self.role = role
        self.name = name
        self.namespaces = namespaces
        self.environments = environments
        self.expiresAt = expiresAt
    }
}

/// A token as the server checks it.
package struct NewEvent: Sendable, Hashable {
    package var type: EventKind
    package var actor: String?
    package var model: String?
    package var version: String?
    package var detail: String?
    /// The deployment environment a decision or pull was for.
    package var environment: String?
    /// The client's address, for pulls and decisions.
    package var client: String?
    /// How many identical events this one stands for (repeats of a gate decision).
    package var count: Int64 = 1

    package init(
        type: EventKind, actor: String?, model: String? = nil, version: String? = nil, detail: String? = nil,
        environment: String? = nil, client: String? = nil
    ) {
        self.type = type
        self.actor = actor
        self.model = model
        self.version = version
        self.detail = detail
        self.environment = environment
        self.client = client
    }
}

/// What auditors ask of the event history.
package struct EventFilter: Sendable {
    package var model: String?
    package var version: String?
    package var types: [String] = []
    package var actor: String?
    package var environment: String?
    /// RFC 3339 bounds, inclusive.
    package var since: String?
    package var until: String?
    /// Only events with a larger id (pagination).
    package var after: Int64 = 0
    package var limit: Int = 1000

    package init() {}
}
