package import CustodyCore
package import CustodyPolicy
package import CustodyStorage
package import Foundation

/// What the security team records, for every front door: advisories (added, updated, withdrawn, with the exposure
/// of the versions they affect) and version status (yank, quarantine). Each change is an event and is announced on the
/// change feed, so that no kept decision outlives it.
package struct Curation: Sendable {
    let gate: GateService
    let catalog: any ModelCatalog
    let records: any AdvisoryRecords
    let log: any EventLog
    let changes: any ChangeFeed
    let now: @Sendable () -> Date

    package init(
        gate: GateService, catalog: any ModelCatalog, records: any AdvisoryRecords, log: any EventLog, changes: any ChangeFeed,
        now: @escaping @Sendable () -> Date = { .now }
    ) {
        self.gate = gate
        self.catalog = catalog
        self.records = records
        self.log = log
        self.changes = changes
        self.now = now
    }

    // MARK: advisories

    /// Records an OSV advisory (a later `modified` updates it, the same document again changes nothing) and answers
    /// with what it affects.
    package func add(osv document: [UInt8], actor: String) async throws(CustodyError) -> API.AdvisoryAdded {
        let advisory: Advisory
        do { advisory = try Advisory(osv: document) } catch {
            throw CustodyError(.invalidArgument, "invalid OSV advisory: \(error.description)")
        }
        let write = try await save(advisory, actor: actor, kind: .advisoryAdded)
        let result =
            switch write {
            case .created: "created"
            case .updated: "updated"
            case .unchanged: "unchanged"
            }
        return API.AdvisoryAdded(created: write == .created, result: result, exposure: try await exposure(of: advisory))
    }

    /// Marks an advisory withdrawn now; withdrawing one twice is a conflict.
    package func withdraw(id: String, actor: String) async throws(CustodyError) -> API.AdvisorySummary {
        let advisory = try await advisory(id: id)
        if let withdrawn = advisory.withdrawn {
            throw CustodyError(.conflict, "advisory \(advisory.id) was already withdrawn on \(withdrawn)")
        }
        let bytes: [UInt8]
        do {
            guard var document = try JSONSerialization.jsonObject(with: Data(advisory.document)) as? [String: Any] else {
                throw CustodyError(.io, "stored advisory \(advisory.id) is not an object")
            }
            let time = now().formatted(.iso8601)
            document["withdrawn"] = time
            document["modified"] = time
            bytes = Array(try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes]))
        } catch {
            throw error as? CustodyError ?? CustodyError(.io, "cannot withdraw \(advisory.id): \(error)")
        }
        let withdrawn: Advisory
        do { withdrawn = try Advisory(osv: bytes) } catch { throw CustodyError(.io, "cannot withdraw \(advisory.id): \(error)") }
        _ = try await save(withdrawn, actor: actor, kind: .advisoryWithdrawn)
        return Self.summary(withdrawn)
    }

    /// A recorded advisory, withdrawn or not.
    package func advisory(id: String) async throws(CustodyError) -> Advisory {
        guard let stored = try await records.advisories().first(where: { $0.id == id }) else {
            throw CustodyError(.notFound, "advisory \(id) is not recorded")
        }
        do { return try Advisory(osv: stored.document) } catch { throw CustodyError(.io, "stored advisory \(id) no longer parses: \(error)") }
    }

    package func advisories() async throws(CustodyError) -> [API.AdvisorySummary] {
        try await records.advisories().map {
            API.AdvisorySummary(
                id: $0.id, modified: $0.modified, withdrawn: $0.withdrawn, summary: $0.summary, severity: $0.severity, score: $0.score,
                models: $0.models)
        }
    }

    private func save(_ advisory: Advisory, actor: String, kind: EventKind) async throws(CustodyError) -> AdvisoryWrite {
        let stored = StoredAdvisory(
            id: advisory.id, modified: advisory.modified, withdrawn: advisory.withdrawn, severity: advisory.severity.rawValue,
            score: advisory.score, summary: advisory.summary, models: advisory.models.sorted(), document: advisory.document)
        let detail =
            "\(advisory.id): \(advisory.severity.rawValue) (\(advisory.severityBasis)), models \(advisory.models.sorted().joined(separator: ", "))"
            + (advisory.withdrawn.map { ", withdrawn \($0)" } ?? "")
        let write = try await records.saveAdvisory(stored, event: NewEvent(type: kind, actor: actor, detail: detail))
        try await changes.announce(.advisories)
        return write
    }

    package static func summary(_ advisory: Advisory) -> API.AdvisorySummary {
        API.AdvisorySummary(
            id: advisory.id, modified: advisory.modified, withdrawn: advisory.withdrawn, summary: advisory.summary,
            severity: advisory.severity.rawValue, score: advisory.score, models: advisory.models.sorted())
    }

    /// The versions an advisory affects — by model and version range, or by bundle digest — and every pull and
    /// decision about them.
    package func exposure(of advisory: Advisory) async throws(CustodyError) -> API.Exposure {
        var affected: [(model: String, version: String, digest: ContentDigest)] = []
        var unknown: [String] = []
        for name in advisory.models.sorted() {
            guard let model = try? ModelName(parsing: name), let order = try await gate.order(model) else {
                unknown.append(name)
                continue
            }
            let versions = order.map(\.version)
            for entry in order where advisory.affects(model: name, version: entry.version, digest: entry.digest.description, order: versions) {
                affected.append((name, entry.version, entry.digest))
            }
        }
        let digests = advisory.affected.flatMap(\.digests).sorted()
        for match in try await catalog.versions(withBundleDigests: digests)
        where !affected.contains(where: { $0.model == match.model && $0.version == match.version }) {
            if let model = try? ModelName(parsing: match.model), let order = try await gate.order(model),
                let entry = order.first(where: { $0.version == match.version })
            {
                affected.append((match.model, match.version, entry.digest))
            }
        }
        let uses = try await log.uses(of: affected.map { ($0.model, $0.version) })
        let versions = affected.map { item in
            API.Exposure.AffectedVersion(
                model: item.model, version: item.version, bundleDigest: item.digest,
                uses: uses.filter { $0.model == item.model && $0.version == item.version }.map(\.use))
        }
        return API.Exposure(
            advisory: Self.summary(advisory), versions: versions, unknownModels: unknown,
            environments: Set(uses.compactMap(\.use.environment)).sorted(), tokens: Set(uses.compactMap(\.use.actor)).sorted())
    }

    // MARK: version status

    /// Sets a version's status (a yank or quarantine needs a reason) and announces it.
    package func setStatus(
        _ model: ModelName, version: String, to request: API.StatusRequest, actor: String
    ) async throws(CustodyError) -> API.VersionStatus {
        if request.state != .active, (request.reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw CustodyError(.invalidArgument, "a \(request.state.rawValue) version needs a reason")
        }
        let status = API.VersionStatus(state: request.state, reason: request.reason, by: actor, at: RFC3339.string(now()))
        guard try await catalog.setStatus(model, version: version, status) else {
            throw CustodyError(.notFound, "\(model)@\(version) is not in the registry")
        }
        try await changes.announce(.status(model, version: version))
        return status
    }
}
