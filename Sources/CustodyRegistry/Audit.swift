package import CustodyCore
import CustodyPolicy
package import CustodyStorage
import Foundation

/// What auditors ask, for every front door: the signed checkpoint, proofs, filtered events, lineage, exposure, the
/// AI-BOM and the export. Answers are the wire documents; an adapter only encodes them.
package struct Audit: Sendable {
    let gate: GateService
    let catalog: any ModelCatalog
    let log: any EventLog
    let signer: CheckpointSigner
    let policies: PolicySet

    package init(gate: GateService, catalog: any ModelCatalog, log: any EventLog, signer: CheckpointSigner, policies: PolicySet) {
        self.gate = gate
        self.catalog = catalog
        self.log = log
        self.signer = signer
        self.policies = policies
    }

    /// The newest signed checkpoint note, signed now if the log grew since the last one.
    package func checkpoint() async throws -> String {
        try await signer.checkpoint()
        guard let latest = try await log.latestCheckpoint() else { throw CustodyError(.notFound, "the log has no checkpoint yet") }
        return latest.note
    }

    package func inclusion(index: UInt64, size: UInt64) async throws(CustodyError) -> API.InclusionProof {
        let logSize = try await log.logSize()
        guard index < size, size <= logSize else {
            throw CustodyError(.invalidArgument, "need index < size <= \(logSize) (the log's size); got index \(index), size \(size)")
        }
        let (leaf, proof) = try await log.inclusionProof(index: index, size: size)
        return API.InclusionProof(index: index, size: size, leafHash: Self.base64(leaf), hashes: proof.map(Self.base64))
    }

    package func consistency(from: UInt64, to: UInt64) async throws(CustodyError) -> API.ConsistencyProof {
        let logSize = try await log.logSize()
        guard from > 0, from <= to, to <= logSize else {
            throw CustodyError(.invalidArgument, "need 0 < from <= to <= \(logSize) (the log's size); got from \(from), to \(to)")
        }
        return API.ConsistencyProof(from: from, to: to, hashes: try await log.consistencyProof(from: from, to: to).map(Self.base64))
    }

    package func events(_ filter: EventFilter) async throws(CustodyError) -> [API.Event] {
        try await log.events(filter)
    }

    /// `{"events": [...]}`, each event its canonical JSON (the log leaf): the documented shape, and much faster than
    /// a generic encoder for thousands of rows.
    package static func eventsDocument(_ events: [API.Event]) -> [UInt8] {
        var bytes: [UInt8] = Array(#"{"events":["#.utf8)
        for (index, event) in events.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += EventLeaf.canonicalJSON(event)
        }
        bytes += Array("]}".utf8)
        return bytes
    }

    private func existing(_ model: ModelName, _ version: String) async throws -> API.VersionDetail {
        guard let detail = try await gate.detail(model, version: version) else {
            throw CustodyError(.notFound, "\(model)@\(version) is not in the registry")
        }
        return detail
    }

    // MARK: lineage

    /// Base models upstream (from provenance, recursively) and derivatives downstream (versions naming this one).
    package func lineage(_ model: ModelName, version: String) async throws -> API.Lineage {
        _ = try await existing(model, version)
        var seen = Set<String>()
        let upstream = try await self.upstream(model, version, depth: 0, seen: &seen)
        seen = []
        let downstream = try await self.downstream(model, version, depth: 0, seen: &seen)
        return API.Lineage(reference: "\(model)@\(version)", upstream: upstream, downstream: downstream)
    }

    private func upstream(_ model: ModelName, _ version: String, depth: Int, seen: inout Set<String>) async throws -> [API.Lineage.Node] {
        guard depth < 8, seen.insert("\(model)@\(version)").inserted, let detail = try await gate.detail(model, version: version) else {
            return []
        }
        var nodes: [API.Lineage.Node] = []
        for base in detail.provenance.baseModels {
            switch try await gate.resolveBase(base) {
            case .registry(let baseModel, let resolved, let by):
                let baseDetail = try await gate.detail(baseModel, version: resolved)
                nodes.append(
                    API.Lineage.Node(
                        reference: "\(baseModel)@\(resolved)", inRegistry: true, licence: baseDetail?.license.id,
                        children: try await upstream(baseModel, resolved, depth: depth + 1, seen: &seen),
                        namedAs: by == "name" ? nil : base, resolvedBy: by))
            case .external:
                nodes.append(API.Lineage.Node(reference: base, inRegistry: false, licence: nil, children: []))
            case .ambiguous(let candidates):
                nodes.append(
                    API.Lineage.Node(
                        reference: base, inRegistry: false, licence: nil, children: [],
                        resolvedBy: "ambiguous: " + candidates.joined(separator: ", ")))
            }
        }
        return nodes
    }

    /// Versions whose base models resolve to this one, the inverse of `upstream`: named by registry reference, or by
    /// the Hub id this version was published from (`meta-llama/Llama-3.1-8B-Instruct`, in any case).
    private func downstream(_ model: ModelName, _ version: String, depth: Int, seen: inout Set<String>) async throws -> [API.Lineage.Node] {
        guard depth < 8, seen.insert("\(model)@\(version)").inserted, let detail = try await gate.detail(model, version: version) else {
            return []
        }
        var names = [model.description]
        if let id = detail.provenance.source?.uri.flatMap(GateService.hubID(ofSource:)) { names.append(id) }
        let references = [model.description, "\(model)@\(version)", "\(model)@\(detail.bundleDigest)"]
        var nodes: [API.Lineage.Node] = []
        for derivative in try await catalog.derivatives(naming: names) {
            guard let derivedModel = try? ModelName(parsing: derivative.model),
                let naming = try await naming(derivative.baseModels, model, version, references: references)
            else { continue }
            let derivedDetail = try await gate.detail(derivedModel, version: derivative.version)
            nodes.append(
                API.Lineage.Node(
                    reference: "\(derivative.model)@\(derivative.version)", inRegistry: true, licence: derivedDetail?.license.id,
                    children: try await downstream(derivedModel, derivative.version, depth: depth + 1, seen: &seen),
                    namedAs: naming.namedAs, resolvedBy: naming.resolvedBy))
        }
        return nodes
    }

    /// How a derivative's base models name `model@version`: by one of its registry references (no annotation), or by a
    /// Hub id that resolves to it now, the same resolution upstream and the licence use; nil when none does.
    private func naming(
        _ bases: [String], _ model: ModelName, _ version: String, references: [String]
    ) async throws -> (namedAs: String?, resolvedBy: String?)? {
        if bases.contains(where: references.contains) { return (nil, nil) }
        for base in bases {
            if case .registry(let baseModel, let resolved, let by) = try await gate.resolveBase(base), by != "name", baseModel == model,
                resolved == version
            {
                return (base, by)
            }
        }
        return nil
    }

    // MARK: exposure and AI-BOM

    /// Who pulled, or was allowed or denied, this version: every pull, verify and admission decision about it.
    package func exposure(_ model: ModelName, version: String) async throws -> API.VersionExposure {
        let detail = try await existing(model, version)
        let uses = try await log.uses(of: [(model.description, version)])
        let affected = API.Exposure.AffectedVersion(
            model: model.description, version: version, bundleDigest: detail.bundleDigest, uses: uses.map(\.use))
        return API.VersionExposure(
            versions: [affected], environments: Set(uses.compactMap(\.use.environment)).sorted(),
            tokens: Set(uses.compactMap(\.use.actor)).sorted())
    }

    /// The version as a CycloneDX 1.6 AI-BOM, pretty-printed JSON with sorted keys. `asPublished` leaves out what
    /// changes after publish (status, advisories), for a document that must stay the same (an OCI referrer).
    package func bom(_ model: ModelName, version: String, asPublished: Bool = false) async throws -> [UInt8] {
        var detail = try await existing(model, version)
        if asPublished { detail.status = nil }
        guard let order = try await gate.order(model) else { throw CustodyError(.notFound, "\(model)@\(version) is not in the registry") }
        let licence = try await gate.effectiveLicence(detail, licences: policies.snapshot.licences, depth: 0)
        var bases: [(reference: String, inRegistry: Bool, digest: ContentDigest?)] = []
        for base in detail.provenance.baseModels {
            if let (baseModel, selector) = GateService.reference(base), let baseOrder = try await gate.order(baseModel),
                let match = VersionOrder.resolve(selector, in: baseOrder)
            {
                bases.append(("\(baseModel)@\(match.version)", true, match.digest))
            } else {
                bases.append((base, false, nil))
            }
        }
        let versions = order.map(\.version)
        let advisories =
            asPublished
            ? []
            : try await gate.advisories().filter {
                $0.affects(model: model.description, version: version, digest: detail.bundleDigest.description, order: versions)
            }
        let document = AIBOM.document(detail: detail, licence: licence, bases: bases, advisories: advisories)
        return Array(try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]))
    }

    // MARK: export

    /// The formats of ``export(_:into:)``.
    package enum ExportFormat: String, Sendable {
        case jsonl
        case csv
    }

    /// Every event in log order, in pages of text handed to `write`: JSON lines (each the canonical leaf JSON) or CSV
    /// with a header row, for SIEMs.
    package func export(_ format: ExportFormat, into write: (String) async throws -> Void) async throws {
        if format == .csv { try await write("index,id,at,type,actor,model,version,environment,client,detail,count\n") }
        try await log.forEachEvent(after: 0, page: 5000) { events in
            var text = ""
            for event in events {
                switch format {
                case .jsonl:
                    text += String(decoding: EventLeaf.canonicalJSON(event), as: UTF8.self) + "\n"
                case .csv:
                    let fields = [
                        String(event.id - 1), String(event.id), event.at, event.type, event.actor ?? "", event.model ?? "",
                        event.version ?? "", event.environment ?? "", event.client ?? "", event.detail ?? "", String(event.count ?? 1),
                    ]
                    text += fields.map(Self.csv).joined(separator: ",") + "\n"
                }
            }
            try await write(text)
        }
    }

    static func csv(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
}
