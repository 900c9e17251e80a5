package import CustodyCore
import Foundation

/// Trust on first use for registry signing keys: the first pull from a registry records its key hint in
/// `~/.config/custody/known_registries` (one `URL HINT` line per registry); later pulls must see the same key.
package struct KnownRegistries: Sendable {
    package let path: String

    package init(path: String? = nil) {
        if let path {
            self.path = path
        } else {
            let environment = ProcessInfo.processInfo.environment
            let config = environment["XDG_CONFIG_HOME"] ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.config"
            self.path = config + "/custody/known_registries"
        }
    }

    /// The registry's key, checked against the pinned one or pinned now. `reportPinned` is told when a new
    /// registry was pinned.
    package func verifiedKey(for client: RegistryClient, reportPinned: (String) -> Void) async throws(CustodyError) -> PublicVerifyingKey {
        let info: API.RegistryInfo = try await client.get("/v1/registry")
        let key = try PublicVerifyingKey(pem: info.publicKey, source: "\(client.baseURL)/v1/registry")
        let entries = load()
        if let pinned = entries[client.baseURL] {
            guard pinned == key.hint else {
                throw CustodyError(
                    .verificationFailed,
                    "REGISTRY KEY CHANGED for \(client.baseURL): pinned \(pinned), now \(key.hint). Someone may be impersonating the registry, "
                        + "or its key was rotated; check with its operators, then remove the line from \(path) or pass --registry-key")
            }
            return key
        }
        var lines = entries.map { "\($0.key) \($0.value)" }.sorted()
        lines.append("\(client.baseURL) \(key.hint)")
        let directory = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try PosixFile.writeAtomically(Array((lines.joined(separator: "\n") + "\n").utf8), to: path, mode: 0o600)
        reportPinned("pinned the signing key of \(client.baseURL) (\(key.hint)) in \(path)")
        return key
    }

    func load() -> [String: String] {
        guard let bytes = try? PosixFile.contents(of: path, limit: 1 << 20) else { return [:] }
        var entries: [String: String] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { entries[String(parts[0])] = String(parts[1]) }
        }
        return entries
    }
}
