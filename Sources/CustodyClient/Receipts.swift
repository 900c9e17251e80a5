public import CustodyCore
import Foundation

extension RegistryClient {
    /// A C2SP tlog-proof receipt that event `id` is in the registry's log: the leaf index, the inclusion hashes and
    /// the signed checkpoint they lead to.
    public func receipt(forEvent id: UInt64) async throws(CustodyError) -> String {
        guard id > 0 else { throw CustodyError(.invalidArgument, "event ids start at 1") }
        let note = String(decoding: try await bytes("/v1/audit/checkpoint", limit: 1 << 16), as: UTF8.self)
        let lines = note.split(separator: "\n")
        guard lines.count > 2, let size = UInt64(lines[1]) else { throw CustodyError(.remote, "the registry's checkpoint is malformed") }
        guard id <= size else { throw CustodyError(.notFound, "event \(id) is not in the log (it has \(size) events)") }
        struct Inclusion: Decodable { var hashes: [String] }
        let proof: Inclusion = try await get("/v1/audit/proof/inclusion?index=\(id - 1)&size=\(size)")
        return "c2sp.org/tlog-proof@v1\nindex \(id - 1)\n" + proof.hashes.map { $0 + "\n" }.joined() + "\n" + note
    }

    /// The id of the event that recorded a version's publication.
    public func publishEvent(of model: ModelName, version: String) async throws(CustodyError) -> UInt64 {
        let detail: API.VersionDetail = try await get("/v1/models/\(model.namespace)/\(model.name)/versions/\(version)?events=true")
        guard let event = detail.events?.first(where: { $0.type == "publish" }) else {
            throw CustodyError(.notFound, "\(model)@\(version) has no publish event")
        }
        return UInt64(event.id)
    }
}
