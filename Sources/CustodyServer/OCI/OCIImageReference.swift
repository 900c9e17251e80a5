import CustodyCore
import CustodyRegistry

/// Model references as Kubernetes sees them when a pod mounts a model car: image references
/// (`registry[:port]/ns/name[:tag][@sha256:…]`) that point at this registry, for admission and Gatekeeper. A reference
/// to any other registry is refused: a model of the same name there is not the one the gate decided.
struct OCIImageReferences: Sendable {
    /// The `host[:port]` names this registry is reached by (`oci.hosts`).
    let hosts: Set<String>
    let artifacts: OCIArtifacts

    /// Whether `text` has a registry host (a first component with a `.` or `:`, or `localhost`), as image references do.
    static func host(of text: String) -> String? {
        guard let slash = text.firstIndex(of: "/") else { return nil }
        let first = String(text[..<slash])
        return first.contains(".") || first.contains(":") || first == "localhost" ? first : nil
    }

    /// The model reference an admission names: a Custody reference (`ns/name@version`) as it is, an image reference of
    /// this registry resolved (a manifest digest to the version it is; with a tag too, they must agree).
    func reference(_ text: String) async throws(CustodyError) -> ModelReference {
        guard let host = Self.host(of: text) else { return try ModelReference(parsing: text) }
        guard hosts.contains(host.lowercased()) else {
            let known =
                hosts.isEmpty ? "none are configured (oci.hosts in custody.yaml)" : "it is reached as " + hosts.sorted().joined(separator: ", ")
            throw CustodyError(.invalidArgument, "\(text) names the registry \(host), not this one (\(known))")
        }
        var rest = Substring(text.dropFirst(host.count + 1))
        var digest: String?
        if let at = rest.firstIndex(of: "@") {
            digest = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
        }
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            tag = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
        }
        let model = try ModelName(parsing: String(rest))
        guard let digest else {
            guard let tag else { throw CustodyError(.invalidArgument, "\(text) names no tag or digest; a model car names one") }
            return ModelReference(model: model, selector: .version(tag))
        }
        let version: String
        do {
            version = try await artifacts.manifest(model, reference: digest).version ?? ""
        } catch let refusal as OCIArtifacts.Refusal {
            throw CustodyError(.notFound, "\(text): \(refusal.message)")
        } catch {
            throw CustodyError(.io, "\(text): \(error)")
        }
        guard !version.isEmpty else { throw CustodyError(.invalidArgument, "\(text) is not the manifest of a model version") }
        if let tag, tag != version {
            throw CustodyError(.invalidArgument, "\(text): the digest is the manifest of \(model)@\(version), not of the tag \(tag)")
        }
        return ModelReference(model: model, selector: .version(version))
    }
}
