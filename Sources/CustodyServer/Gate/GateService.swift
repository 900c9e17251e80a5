import CustodyCore
import CustodyPolicy
import CustodyStore
import Foundation
import Synchronization

/// Decides whether a version may run in an environment — for verify, gated pulls, admission and policy tests — and
/// records every decision. Versions are immutable, so their details are cached; status changes, publishes and
/// advisory changes invalidate what they touch.
final class GateService: Sendable {
    let database: RegistryDatabase
    let policies: PolicySet
    let recorder: EventRecorder
    private let details = Mutex<[String: API.VersionDetail]>([:])
    private let orders = Mutex<[ModelName: [(version: String, digest: Digest)]]>([:])
    private let openAdvisories = Mutex<[Advisory]?>(nil)

    init(database: RegistryDatabase, policies: PolicySet) {
        self.database = database
        self.policies = policies
        self.recorder = EventRecorder(database: database)
    }

    // MARK: invalidation

    func modelChanged(_ model: ModelName) {
        _ = orders.withLock { $0.removeValue(forKey: model) }
    }

    func versionChanged(_ model: ModelName, version: String) {
        _ = details.withLock { $0.removeValue(forKey: "\(model)@\(version)") }
    }

    /// Re-reads the open advisories at once, so that requests never find the cache empty and parse them all.
    func advisoriesChanged() async throws(CustodyError) {
        let parsed = try await loadAdvisories()
        openAdvisories.withLock { $0 = parsed }
    }

    /// Loads what every decision needs before the first request: the open advisories.
    func prime() async throws(CustodyError) {
        try await advisoriesChanged()
    }

    // MARK: lookups

    func order(_ model: ModelName) async throws(CustodyError) -> [(version: String, digest: Digest)]? {
        if let cached = orders.withLock({ $0[model] }) { return cached }
        guard let order = try await database.versionOrder(model) else { return nil }
        orders.withLock { $0[model] = order }
        return order
    }

    func detail(_ model: ModelName, version: String) async throws(CustodyError) -> API.VersionDetail? {
        let key = "\(model)@\(version)"
        if let cached = details.withLock({ $0[key] }) { return cached }
        guard let detail = try await database.version(model, .version(version), includeEvents: false) else { return nil }
        details.withLock { $0[key] = detail }
        return detail
    }

    func advisories() async throws(CustodyError) -> [Advisory] {
        if let cached = openAdvisories.withLock({ $0 }) { return cached }
        let parsed = try await loadAdvisories()
        openAdvisories.withLock { $0 = parsed }
        return parsed
    }

    private func loadAdvisories() async throws(CustodyError) -> [Advisory] {
        var parsed: [Advisory] = []
        for stored in try await database.advisories() where stored.withdrawn == nil {
            do { parsed.append(try Advisory(osv: stored.document)) } catch {
                throw CustodyError(.io, "stored advisory \(stored.id) no longer parses: \(error)")
            }
        }
        return parsed
    }

    /// Resolves a reference to a version of a model this registry holds; a digest names its newest version.
    func resolve(_ model: ModelName, _ selector: ModelReference.Selector) async throws(CustodyError) -> (version: String, order: [(version: String, digest: Digest)]) {
        guard let order = try await order(model), !order.isEmpty else {
            throw CustodyError(.notFound, "model \(model) is not in this registry")
        }
        switch selector {
        case .version(let version):
            guard order.contains(where: { $0.version == version }) else {
                throw CustodyError(.notFound, "\(model) has no version \(version)")
            }
            return (version, order)
        case .digest(let digest):
            guard let match = order.last(where: { $0.digest == digest }) else {
                throw CustodyError(.notFound, "\(model) has no version with bundle digest \(digest)")
            }
            return (match.version, order)
        }
    }

    // MARK: decisions

    /// The decision for one version in one environment, with the rollback target when denied. `draft` evaluates a
    /// policy that is not deployed (`policy test`).
    func decide(_ model: ModelName, _ selector: ModelReference.Selector, environment: String, draft: Policy? = nil) async throws(CustodyError) -> API.Decision {
        let snapshot = policies.snapshot
        guard let policy = draft ?? snapshot.policies[environment] else {
            let known = snapshot.policies.keys.sorted().joined(separator: ", ")
            throw CustodyError(.notFound, "environment \(environment) has no policy (known: \(known.isEmpty ? "none" : known))")
        }
        let (version, order) = try await resolve(model, selector)
        let now = Date.now
        var decision = try await evaluate(model, version: version, order: order, policy: policy, environment: environment, licences: snapshot.licences, now: now)
        if !decision.allowed {
            for candidate in order.reversed() where candidate.version != version {
                let other = try await evaluate(
                    model, version: candidate.version, order: order, policy: policy, environment: environment, licences: snapshot.licences, now: now)
                if other.allowed {
                    decision.rollback = .init(version: candidate.version, bundleDigest: candidate.digest)
                    break
                }
            }
        }
        return decision
    }

    private func evaluate(
        _ model: ModelName, version: String, order: [(version: String, digest: Digest)], policy: Policy, environment: String,
        licences: LicenceTable, now: Date
    ) async throws(CustodyError) -> API.Decision {
        guard let detail = try await detail(model, version: version) else {
            throw CustodyError(.notFound, "\(model) has no version \(version)")
        }
        let licence = try await effectiveLicence(detail, licences: licences, depth: 0)
        let versions = order.map(\.version)
        let name = model.description
        let digest = detail.bundleDigest.description
        let affecting = try await advisories().filter { $0.affects(model: name, version: version, digest: digest, order: versions) }
        let subject = DecisionSubject(detail: detail, status: detail.status ?? .active, licence: licence, advisories: affecting)
        return Evaluator.evaluate(subject, policy: policy, environment: environment, now: now)
    }

    /// The most restrictive class of the version's own licence and its base models' (looked up in this registry;
    /// bases elsewhere are named in the note, unchecked).
    func effectiveLicence(_ detail: API.VersionDetail, licences: LicenceTable, depth: Int) async throws(CustodyError) -> LicenceClassification {
        var result = licences.classify(id: detail.license.id, name: detail.license.name)
        guard depth < 8 else { return result }
        var external: [String] = []
        for base in detail.provenance.baseModels {
            guard let (baseModel, selector) = Self.reference(base),
                let order = try await order(baseModel), !order.isEmpty
            else {
                external.append(base)
                continue
            }
            let version: String
            switch selector {
            case .version(let tag)?:
                guard order.contains(where: { $0.version == tag }) else { external.append(base); continue }
                version = tag
            case .digest(let digest)?:
                guard let match = order.last(where: { $0.digest == digest }) else { external.append(base); continue }
                version = match.version
            case nil:
                version = order.last!.version
            }
            guard let baseDetail = try await self.detail(baseModel, version: version) else { external.append(base); continue }
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
    static func reference(_ text: String) -> (ModelName, ModelReference.Selector?)? {
        if text.contains("@") {
            guard let reference = try? ModelReference(parsing: text) else { return nil }
            return (reference.model, reference.selector)
        }
        guard let name = try? ModelName(parsing: text) else { return nil }
        return (name, nil)
    }

    /// Records a decision as an event: `decision` (verify), `admission`, `pull`, `pull.denied`.
    func record(_ decision: API.Decision, type: String, actor: String, client: String?) async throws(CustodyError) {
        let verdict = decision.allowed ? "allowed" : "denied"
        var detail = "\(verdict) by policy \(decision.policy.name) \(decision.policy.digest)"
        if !decision.allowed { detail += ": " + decision.reasons.joined(separator: "; ") }
        if let rollback = decision.rollback { detail += "; rollback target \(rollback.version)" }
        try await recorder.record(NewEvent(
            type: type, actor: actor, model: decision.model, version: decision.version, detail: detail,
            environment: decision.environment, client: client))
    }
}
