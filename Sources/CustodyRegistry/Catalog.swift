package import CustodyCore
package import CustodyStorage

/// Reading the registry's models and versions, for every front door: what is there, each version's record, and the
/// registry's signature over it. Nothing here decides a pull (``Pulls`` does) or records one.
package struct Catalog: Sendable {
    package let catalog: any ModelCatalog
    package let gate: GateService

    package init(catalog: any ModelCatalog, gate: GateService) {
        self.catalog = catalog
        self.gate = gate
    }

    /// Every model, `ns/name`, sorted.
    package func models() async throws(CustodyError) -> [String] {
        try await catalog.models()
    }

    /// A model and its versions, oldest first; `notFound` naming it when it is not in the registry.
    package func model(_ name: ModelName) async throws(CustodyError) -> API.ModelDetail {
        guard let detail = try await catalog.model(name) else { throw CustodyError(.notFound, "model \(name) is not in the registry") }
        return detail
    }

    /// The version `selector` names; `notFound` naming the reference when there is none.
    package func version(
        _ name: ModelName, _ selector: ModelReference.Selector, events: Bool = false
    ) async throws(CustodyError) -> API.VersionDetail {
        guard let detail = try await catalog.version(name, selector, includeEvents: events) else {
            throw CustodyError(.notFound, "\(ModelReference(model: name, selector: selector)) is not in the registry")
        }
        return detail
    }

    /// Every version of a model with its record (no events), oldest first; empty for a model not in the registry.
    package func versions(_ name: ModelName) async throws(CustodyError) -> [API.VersionDetail] {
        try await catalog.versionDetails(name)
    }

    /// A model's versions in publish order (oldest first) with their bundle digests, read without their records;
    /// nil for a model not in the registry.
    package func versionOrder(_ name: ModelName) async throws(CustodyError) -> [(version: String, digest: ContentDigest)]? {
        try await catalog.versionOrder(name)
    }

    /// ``version(_:_:events:)`` with how each base model its provenance names resolves in this registry now.
    package func versionResolvingBases(
        _ name: ModelName, _ selector: ModelReference.Selector, events: Bool
    ) async throws(CustodyError) -> API.VersionDetail {
        var detail = try await version(name, selector, events: events)
        guard !detail.provenance.baseModels.isEmpty else { return detail }
        var resolutions: [API.BaseModelResolution] = []
        for base in detail.provenance.baseModels {
            switch try await gate.resolveBase(base) {
            case .registry(let model, let version, let by): resolutions.append(.init(named: base, resolved: "\(model)@\(version)", by: by))
            case .external: resolutions.append(.init(named: base, resolved: nil, by: nil))
            case .ambiguous(let candidates):
                resolutions.append(.init(named: base, resolved: nil, by: "ambiguous: " + candidates.joined(separator: ", ")))
            }
        }
        detail.baseModelResolutions = resolutions
        return detail
    }

    /// The registry's OMS bundle over the version's files (`model.sig`); `notFound` when it has none.
    package func registrySignature(_ name: ModelName, version: String) async throws(CustodyError) -> [UInt8] {
        guard let bundle = try await catalog.registrySignature(name, version: version) else {
            throw CustodyError(.notFound, "\(name)@\(version) has no registry signature")
        }
        return bundle
    }
}

/// Bearer tokens: created with their scope checked (``TokenRules``), listed without secrets, revoked at once (the
/// token cache forgets them).
package struct Tokens: Sendable {
    package let records: any TokenRecords
    package let cache: TokenCache

    package init(records: any TokenRecords, cache: TokenCache) {
        self.records = records
        self.cache = cache
    }

    /// Creates a token; its secret is in the answer and nowhere else.
    package func create(_ request: API.TokenCreateRequest) async throws(CustodyError) -> API.TokenCreated {
        try await records.createToken(try TokenRules.validate(request))
    }

    /// Every token, revoked and expired ones included.
    package func list() async throws(CustodyError) -> [API.TokenInfo] {
        try await records.tokens()
    }

    /// Revokes an active token; `notFound` when there is no active token with that id.
    package func revoke(id: String) async throws(CustodyError) {
        guard try await records.revokeToken(id: id) else { throw CustodyError(.notFound, "no active token '\(id)'") }
        cache.invalidate()
    }
}
