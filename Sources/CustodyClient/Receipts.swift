package import CustodyCore
import Foundation

extension RegistryClient {
    /// A C2SP tlog-proof receipt that event `id` is in the registry's log: the leaf index, the inclusion hashes and
    /// the signed checkpoint they lead to.
    /// `event` is the event itself when the caller has it (a version's publish event, readable by consumers); else it
    /// is read from the audit API.
    package func receipt(forEvent id: UInt64, event known: API.Event? = nil) async throws(CustodyError) -> String {
        guard id > 0 else { throw CustodyError(.invalidArgument, "event ids start at 1") }
        let note = String(decoding: try await bytes("/v1/audit/checkpoint", limit: 1 << 16), as: UTF8.self)
        let lines = note.split(separator: "\n")
        guard lines.count > 2, let size = UInt64(lines[1]) else { throw CustodyError(.remote, "the registry's checkpoint is malformed") }
        guard id <= size else { throw CustodyError(.notFound, "event \(id) is not in the log (it has \(size) events)") }
        let proof: API.InclusionProof = try await get("/v1/audit/proof/inclusion?index=\(id - 1)&size=\(size)")
        // The event itself rides along as the receipt's extra data: its canonical JSON is the leaf.
        struct Events: Decodable { var events: [API.Event] }
        let event: API.Event
        if let known {
            event = known
        } else {
            let page: Events = try await get("/v1/audit/events?after=\(id - 1)&limit=1")
            guard let first = page.events.first else { throw CustodyError(.remote, "the registry did not return event \(id)") }
            event = first
        }
        guard event.id == Int64(id) else { throw CustodyError(.remote, "the registry returned event \(event.id), not \(id)") }
        let hashes = proof.hashes.compactMap { Data(base64Encoded: $0).map(Array.init) }
        guard hashes.count == proof.hashes.count, lines.count > 2, let root = Data(base64Encoded: String(lines[2])) else {
            throw CustodyError(.remote, "the registry's inclusion proof is malformed")
        }
        // A receipt is written only if it proves what it says up to the checkpoint (its signature needs the log's
        // key: `custody audit verify-receipt`).
        let leaf = EventLeaf.canonicalJSON(event)
        guard Merkle.verifyInclusion(leafHash: Merkle.leafHash(leaf), index: id - 1, size: size, proof: hashes, root: Array(root)) else {
            throw CustodyError(.verificationFailed, "the registry's inclusion proof for event \(id) does not lead to its checkpoint's root")
        }
        return TlogProof(extra: leaf, index: id - 1, hashes: hashes, checkpoint: note).text
    }

    /// The event that recorded a version's publication.
    package func publishEvent(of model: ModelName, version: String) async throws(CustodyError) -> API.Event {
        let detail: API.VersionDetail = try await get("/v1/models/\(model.namespace)/\(model.name)/versions/\(version)?events=true")
        guard let event = detail.events?.first(where: { $0.type == "publish" }) else {
            throw CustodyError(.notFound, "\(model)@\(version) has no publish event")
        }
        return event
    }

    /// The receipt of a version's publish event.
    package func publishReceipt(of model: ModelName, version: String) async throws(CustodyError) -> String {
        let event = try await publishEvent(of: model, version: version)
        return try await receipt(forEvent: UInt64(event.id), event: event)
    }
}
