package import CustodyCore
package import CustodyPolicy
package import CustodyStorage
package import Foundation
import Synchronization

/// Decides whether a version may run in an environment — for verify, gated pulls, admission and policy tests — and
/// records every decision.
///
/// Decisions are kept once made, with what the registry knew when it made them. Every change a decision can depend on
/// — a publish, a status change, an advisory added or withdrawn — bumps one generation and drops every kept decision
/// (a publish can change the licence of a fine-tune whose base model is named without a version, so nothing narrower is
/// safe); a policy reload makes a new snapshot that kept decisions do not match; and a decision that time can change (an
/// accepted advisory's expiry, the age of a version) is kept only until that instant. What a request gets is therefore
/// always what evaluating afresh would give, and only its `evaluatedAt` is new.
package final class GateService: Sendable {
    package let catalog: any ModelCatalog
    package let advisoryRecords: any AdvisoryRecords
    package let policies: PolicySet
    package let trust: TrustStore
    package let recorder: EventRecorder
    private let caches = Mutex(Caches())

    private struct Caches {
        var generation: UInt64 = 0
        var orders: [ModelName: [(version: String, digest: ContentDigest)]] = [:]
        var details: [String: API.VersionDetail] = [:]
        var advisories: [Advisory]?
        var rulings: [RulingKey: Ruling] = [:]
        /// Reads of a model's versions under way.
        var loading: [ModelName: Task<[API.VersionDetail], any Error>] = [:]

        /// Something a decision may depend on changed: what was decided before is no longer known to hold.
        mutating func changed() {
            generation &+= 1
            rulings.removeAll(keepingCapacity: true)
            // Reads under way may predate the change: later requests must not share them.
            loading.removeAll()
        }
    }

    private struct RulingKey: Hashable {
        var model: ModelName
        var version: String
        var environment: String
    }

    /// Kept decisions are dropped all at once beyond this many; they are rebuilt as asked for.
    package static let rulingLimit = 50_000

    /// A gate that records its decisions through `recorder`, the registry's one writer of events.
    package init(
        catalog: any ModelCatalog, advisories: any AdvisoryRecords, recorder: EventRecorder, policies: PolicySet, trust: TrustStore
    ) {
        self.catalog = catalog
        self.advisoryRecords = advisories
        self.policies = policies
        self.trust = trust
        self.recorder = recorder
    }

    /// A gate with a recorder of its own over `log` (tests, and tools that open a registry home).
    package convenience init(
        catalog: any ModelCatalog, advisories: any AdvisoryRecords, log: any EventLog, policies: PolicySet, trust: TrustStore,
        repeatWindow: Duration
    ) {
        self.init(
            catalog: catalog, advisories: advisories, recorder: EventRecorder(log: log, repeatWindow: repeatWindow), policies: policies,
            trust: trust)
    }

    // MARK: invalidation

    /// Applies an announced change (``ChangeFeed``).
    package func apply(_ change: RegistryChange) async throws(CustodyError) {
        switch change {
        case .published(let model): modelChanged(model)
        case .status(let model, let version): versionChanged(model, version: version)
        case .advisories: try await advisoriesChanged()
        case .trust: trustChanged()
        case .unknown: try await everythingChanged()
        }
    }

    /// Forgets everything kept (announcements were missed): orders, records, advisories.
    package func everythingChanged() async throws(CustodyError) {
        caches.withLock {
            $0.orders.removeAll()
            $0.details.removeAll()
        }
        try await advisoriesChanged()
    }

    package func modelChanged(_ model: ModelName) {
        caches.withLock {
            $0.orders.removeValue(forKey: model)
            $0.changed()
        }
    }

    package func versionChanged(_ model: ModelName, version: String) {
        caches.withLock {
            $0.details.removeValue(forKey: "\(model)@\(version)")
            $0.changed()
        }
    }

    /// The trusted publisher keys changed: a decision may say whether its signer is still trusted.
    package func trustChanged() {
        caches.withLock { $0.changed() }
    }

    /// Drops the open advisories and reads them again at once. Until that read is kept, a request reads them itself:
    /// keeping the old list meanwhile would let a request that starts after the change decide (and keep) with it, and
    /// a change that lands during the read would leave the old list in place for good.
    package func advisoriesChanged() async throws(CustodyError) {
        let generation = caches.withLock {
            $0.changed()
            $0.advisories = nil
            return $0.generation
        }
        let parsed = try await loadAdvisories()
        caches.withLock { caches in
            // A later change reads them again itself; this read may already be stale.
            if caches.generation == generation { caches.advisories = parsed }
        }
    }

    /// Loads what every decision needs before the first request: the open advisories.
    package func prime() async throws(CustodyError) {
        try await advisoriesChanged()
    }

    // MARK: lookups

    /// Fills a cache with what was read from the database — unless something changed meanwhile, in which case the
    /// value serves the request that read it and nothing else.
    private func keep(_ generation: UInt64, _ store: (inout Caches) -> Void) {
        caches.withLock { caches in
            if caches.generation == generation { store(&caches) }
        }
    }

    package func order(_ model: ModelName) async throws(CustodyError) -> [(version: String, digest: ContentDigest)]? {
        let (generation, cached) = caches.withLock { ($0.generation, $0.orders[model]) }
        if let cached { return cached }
        guard let order = try await catalog.versionOrder(model) else { return nil }
        keep(generation) { $0.orders[model] = order }
        return order
    }

    /// A version's details. A miss loads every version of the model in one read (when it has no more than
    /// ``bulkLoadLimit``), since a denial evaluates the other versions for the rollback target next; requests that
    /// miss while that read is under way wait for it instead of reading the same rows again.
    package func detail(_ model: ModelName, version: String) async throws(CustodyError) -> API.VersionDetail? {
        let key = "\(model)@\(version)"
        let (generation, cached, inFlight) = caches.withLock { ($0.generation, $0.details[key], $0.loading[model]) }
        if let cached { return cached }
        if let inFlight, let loaded = try? await inFlight.value, let detail = loaded.first(where: { $0.version == version }) {
            return detail
        }
        let loaded: [API.VersionDetail]
        if let order = try await order(model), order.count <= Self.bulkLoadLimit {
            let catalog = catalog
            let load = Task { try await catalog.versionDetails(model) }
            caches.withLock { $0.loading[model] = load }
            defer { caches.withLock { if $0.loading[model] == load { $0.loading.removeValue(forKey: model) } } }
            do {
                loaded = try await load.value
            } catch let error as CustodyError {
                throw error
            } catch {
                throw CustodyError(.io, "cannot read the versions of \(model): \(error)")
            }
        } else {
            loaded = try await catalog.version(model, .version(version), includeEvents: false).map { [$0] } ?? []
        }
        keep(generation) { caches in
            if caches.details.count + loaded.count > Self.detailLimit { caches.details.removeAll(keepingCapacity: true) }
            for detail in loaded { caches.details["\(model)@\(detail.version)"] = detail }
        }
        return loaded.first { $0.version == version }
    }

    package static let bulkLoadLimit = 64
    /// Kept version details are dropped all at once beyond this many.
    package static let detailLimit = 20_000

    package func advisories() async throws(CustodyError) -> [Advisory] {
        let (generation, cached) = caches.withLock { ($0.generation, $0.advisories) }
        if let cached { return cached }
        let parsed = try await loadAdvisories()
        keep(generation) { $0.advisories = parsed }
        return parsed
    }

    private func loadAdvisories() async throws(CustodyError) -> [Advisory] {
        var parsed: [Advisory] = []
        for stored in try await advisoryRecords.advisories() where stored.withdrawn == nil {
            do { parsed.append(try Advisory(osv: stored.document)) } catch {
                throw CustodyError(.io, "stored advisory \(stored.id) no longer parses: \(error)")
            }
        }
        return parsed
    }

    /// Resolves a reference to a version of a model this registry holds; a digest names its newest version.
    package func resolve(
        _ model: ModelName, _ selector: ModelReference.Selector
    ) async throws(CustodyError) -> (version: String, order: [(version: String, digest: ContentDigest)]) {
        guard let order = try await order(model), !order.isEmpty else {
            throw CustodyError(.notFound, "model \(model) is not in this registry")
        }
        guard let match = VersionOrder.resolve(selector, in: order) else {
            switch selector {
            case .version(let version): throw CustodyError(.notFound, "\(model) has no version \(version)")
            case .digest(let digest): throw CustodyError(.notFound, "\(model) has no version with bundle digest \(digest)")
            }
        }
        return (match.version, order)
    }

    // MARK: decisions

    /// The decision for one version in one environment, with the rollback target when denied. `draft` evaluates a
    /// policy that is not deployed (`policy test`), and is never kept.
    package func decide(
        _ model: ModelName, _ selector: ModelReference.Selector, environment: String, draft: Policy? = nil
    ) async throws(CustodyError) -> API.Decision {
        let now = Date.now
        if let draft {
            let snapshot = policies.snapshot
            let (version, order) = try await resolve(model, selector)
            return try await evaluate(
                model, version: version, order: order, policy: draft, environment: environment, licences: snapshot.licences, now: now
            ).decision
        }
        return try await ruling(model, selector, environment: environment, now: now).decision(at: RFC3339.string(now))
    }

    /// The decision for one version in one environment as kept: answered from memory when nothing it depends on has
    /// changed, evaluated (and kept) otherwise.
    package func ruling(
        _ model: ModelName, _ selector: ModelReference.Selector, environment: String, now: Date = .now
    ) async throws(CustodyError) -> Ruling {
        // A key file added or removed by hand is noticed here (one stat), and drops the kept decisions.
        _ = try await trust.keys()
        let snapshot = policies.snapshot
        guard let policy = snapshot.policies[environment] else {
            let known = snapshot.policies.keys.sorted().joined(separator: ", ")
            throw CustodyError(.notFound, "environment \(environment) has no policy (known: \(known.isEmpty ? "none" : known))")
        }
        if case .version(let version) = selector {
            let key = RulingKey(model: model, version: version, environment: environment)
            if let kept = caches.withLock({ $0.rulings[key] }), kept.holds(for: snapshot, at: now) { return kept }
        }
        let generation = caches.withLock { $0.generation }
        let (version, order) = try await resolve(model, selector)
        let key = RulingKey(model: model, version: version, environment: environment)
        if let kept = caches.withLock({ $0.rulings[key] }), kept.holds(for: snapshot, at: now) { return kept }
        let evaluation = try await evaluate(
            model, version: version, order: order, policy: policy, environment: environment, licences: snapshot.licences, now: now)
        let ruling = try Ruling(evaluation, policies: snapshot.generation)
        keep(generation) { caches in
            if caches.rulings.count >= Self.rulingLimit { caches.rulings.removeAll(keepingCapacity: true) }
            caches.rulings[key] = ruling
        }
        return ruling
    }

    /// Evaluates a version and, when it is denied, the newer-first other versions until one is allowed (the rollback
    /// target). The evaluation changes when the first of them does.
    private func evaluate(
        _ model: ModelName, version: String, order: [(version: String, digest: ContentDigest)], policy: Policy, environment: String,
        licences: LicenceTable, now: Date
    ) async throws(CustodyError) -> Evaluation {
        var result = try await evaluateOne(
            model, version: version, order: order, policy: policy, environment: environment, licences: licences, now: now)
        guard !result.decision.allowed else { return result }
        for candidate in order.reversed() where candidate.version != version {
            let other = try await evaluateOne(
                model, version: candidate.version, order: order, policy: policy, environment: environment, licences: licences, now: now)
            if let date = other.changesAt, result.changesAt.map({ date < $0 }) ?? true { result.changesAt = date }
            if other.decision.allowed {
                result.decision.rollback = .init(version: candidate.version, bundleDigest: candidate.digest)
                break
            }
        }
        return result
    }

    private func evaluateOne(
        _ model: ModelName, version: String, order: [(version: String, digest: ContentDigest)], policy: Policy, environment: String,
        licences: LicenceTable, now: Date
    ) async throws(CustodyError) -> Evaluation {
        guard let detail = try await detail(model, version: version) else {
            throw CustodyError(.notFound, "\(model) has no version \(version)")
        }
        let licence = try await effectiveLicence(detail, licences: licences, depth: 0)
        let versions = order.map(\.version)
        let name = model.description
        let digest = detail.bundleDigest.description
        let affecting = try await advisories().filter { $0.affects(model: name, version: version, digest: digest, order: versions) }
        let trusted = Dictionary(try await trust.keys().map { ($0.key.hint, $0.name) }, uniquingKeysWith: { first, _ in first })
        let subject = DecisionSubject(
            detail: detail, status: detail.status ?? .active, licence: licence, advisories: affecting, trustedKeys: trusted)
        return Evaluator.evaluation(subject, policy: policy, environment: environment, now: now)
    }

    /// The most restrictive class of the version's own licence and its base models' (looked up in this registry;
    /// bases elsewhere are named in the note, unchecked).
    /// How a base model named in a version's provenance resolves to a version in this registry.
    package enum BaseResolution: Sendable, Equatable {
        /// `by` says how: `name` (a registry reference), `source` (a registry model whose recorded source is that
        /// Hugging Face repository), or `name, ignoring case`.
        case registry(ModelName, version: String, by: String)
        case external
        case ambiguous([String])
    }

    /// The Hugging Face repository id (`owner/name`) a base-model entry or a recorded source names: a bare id or a
    /// Hub URL (`https://huggingface.co/ID`, `hf.co/ID`); nil for anything else.
    package static func hubID(ofSource source: String) -> String? {
        var id = HubID.removingPrefix(source) ?? source
        if id.hasSuffix("/") { id.removeLast() }
        guard id.split(separator: "/", omittingEmptySubsequences: false).count == 2, !id.contains(" "), !id.contains(":") else { return nil }
        return id
    }

    /// Resolves a base model reference: a registry reference (`ns/name[@version|@sha256:…]`) that names a model here;
    /// otherwise a Hugging Face id (`meta-llama/Llama-3.1-8B-Instruct`, optionally `@revision`) through the registry
    /// models whose recorded source is that repository (at that revision when one is given), or through a registry
    /// name equal to it but for case. Several different models matching is ambiguous, never guessed between.
    package func resolveBase(_ reference: String) async throws(CustodyError) -> BaseResolution {
        if let (model, selector) = Self.reference(reference), let order = try await order(model), !order.isEmpty {
            return VersionOrder.resolve(selector, in: order).map { .registry(model, version: $0.version, by: "name") } ?? .external
        }
        var id = reference
        var revision: String?
        if let at = reference.lastIndex(of: "@") {
            id = String(reference[..<at])
            revision = String(reference[reference.index(after: at)...])
        }
        guard let hubID = Self.hubID(ofSource: id) else { return .external }
        id = hubID
        let sources = ["https://huggingface.co/\(id)", "https://huggingface.co/\(id)/", "https://hf.co/\(id)", "hf.co/\(id)", "huggingface.co/\(id)"]
        var bySource = try await catalog.versions(withSources: sources)
        if let revision {
            bySource = bySource.filter { match in
                guard let recorded = match.revision?.lowercased(), !recorded.isEmpty else { return false }
                let wanted = revision.lowercased()
                return recorded.hasPrefix(wanted) || wanted.hasPrefix(recorded)
            }
        }
        var candidates: [String: (version: String, by: String)] = [:]
        for match in bySource { candidates[match.model] = (match.version, "source") }  // oldest first: the newest wins
        if revision == nil, let model = try? ModelName(parsing: id.lowercased()), let order = try await order(model), let newest = order.last {
            if candidates[model.description] == nil { candidates[model.description] = (newest.version, "name, ignoring case") }
        }
        guard !candidates.isEmpty else { return .external }
        guard candidates.count == 1, let (name, match) = candidates.first, let model = try? ModelName(parsing: name) else {
            return .ambiguous(candidates.keys.sorted())
        }
        return .registry(model, version: match.version, by: match.by)
    }

    package func effectiveLicence(_ detail: API.VersionDetail, licences: LicenceTable, depth: Int) async throws(CustodyError) -> LicenceClassification
    {
        var result = licences.classify(id: detail.license.id, name: detail.license.name)
        guard depth < 8 else { return result }
        var external: [String] = []
        for base in detail.provenance.baseModels {
            guard case .registry(let baseModel, let version, _) = try await resolveBase(base) else {
                external.append(base)
                continue
            }
            guard let baseDetail = try await self.detail(baseModel, version: version) else {
                external.append(base)
                continue
            }
            let inherited = try await effectiveLicence(baseDetail, licences: licences, depth: depth + 1)
            for obligation in inherited.obligations where !result.obligations.contains(obligation) {
                result.obligations.append(obligation)
            }
            if inherited.licenceClass > result.licenceClass {
                result.licenceClass = inherited.licenceClass
                result.basis = "\(inherited.basis), inherited from base model \(baseModel)@\(version)"
            }
        }
        if !external.isEmpty {
            let note = "base model\(external.count == 1 ? "" : "s") \(external.joined(separator: ", ")) not in this registry: licence not checked"
            result.note = [result.note, note].compactMap { $0 }.joined(separator: "; ")
        }
        return result
    }

    /// `ns/name@version`, `ns/name@sha256:…` or `ns/name` (its newest version); nil for anything else.
    package static func reference(_ text: String) -> (ModelName, ModelReference.Selector?)? {
        try? ModelReference.parse(allowingBareName: text)
    }

    /// Records a decision as an event: `decision` (verify), `admission`, `pull`, `pull.denied`.
    /// `via`, when given, is appended to the event's detail (the front door and its client's user agent).
    package func record(
        _ decision: API.Decision, type: EventKind, actor: String, client: String?, via: String? = nil
    ) async throws(CustodyError) {
        let detail = Ruling.eventDetail(decision) + (via.map { "; \($0)" } ?? "")
        try await record(decision, detail: detail, type: type, actor: actor, client: client)
    }

    package func record(_ ruling: Ruling, type: EventKind, actor: String, client: String?) async throws(CustodyError) {
        try await record(ruling.decision, detail: ruling.eventDetail, type: type, actor: actor, client: client)
    }

    private func record(_ decision: API.Decision, detail: String, type: EventKind, actor: String, client: String?) async throws(CustodyError) {
        let event = NewEvent(
            type: type, actor: actor, model: decision.model, version: decision.version, detail: detail,
            environment: decision.environment, client: client)
        if type.isRepeatable {
            try await recorder.record(repeatable: event)
        } else {
            try await recorder.record(event)
        }
    }
}
