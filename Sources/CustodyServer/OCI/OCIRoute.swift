import CustodyCore
import CustodyRegistry
import CustodyStorage
import Foundation
import Synchronization

/// A distribution API path below `/v2/`, split the way the spec's grammar does it: the repository name is everything
/// before the last `/manifests/`, `/blobs/`, `/tags/list` or `/referrers/`, so names of any depth parse (and are then
/// checked against this registry's `namespace/name`).
struct OCIRoute: Equatable {
    enum Endpoint: Equatable {
        case manifest(String)
        case blob(String)
        /// `…/blobs/uploads/` (nil) or `…/blobs/uploads/<id>`.
        case upload(String?)
        case tags
        case referrers(String)
    }

    let name: String
    let endpoint: Endpoint

    struct NotARoute: Error {}

    init(name: String, endpoint: Endpoint) {
        self.name = name
        self.endpoint = endpoint
    }

    init(path: String) throws(NotARoute) {
        guard path.hasPrefix("/v2/") else { throw NotARoute() }
        let rest = String(path.dropFirst(4))
        func split(_ marker: String) -> (String, String)? {
            guard let range = rest.range(of: marker, options: .backwards) else { return nil }
            return (String(rest[..<range.lowerBound]), String(rest[range.upperBound...]))
        }
        if rest.hasSuffix("/tags/list") {
            (name, endpoint) = (String(rest.dropLast("/tags/list".count)), .tags)
        } else if let (name, id) = split("/blobs/uploads/") ?? (rest.hasSuffix("/blobs/uploads") ? (String(rest.dropLast(14)), "") : nil) {
            guard !id.contains("/") else { throw NotARoute() }
            (self.name, endpoint) = (name, .upload(id.isEmpty ? nil : id))
        } else if let (name, reference) = split("/manifests/") {
            (self.name, endpoint) = (name, .manifest(reference))
        } else if let (name, digest) = split("/blobs/") {
            (self.name, endpoint) = (name, .blob(digest))
        } else if let (name, digest) = split("/referrers/") {
            (self.name, endpoint) = (name, .referrers(digest))
        } else {
            throw NotARoute()
        }
        guard !name.isEmpty else { throw NotARoute() }
    }
}

/// Which token started each OCI upload session, and into which repository: a session is continued only by the token
/// that started it, in that repository (another token's PATCH is `BLOB_UPLOAD_UNKNOWN`). Kept in memory: a
/// restarted daemon forgets its sessions (the staged bytes expire with `limits.uploadExpiry`).
final class OCIUploadOwners: Sendable {
    struct Owner: Equatable {
        let token: String
        let repository: String
    }

    private let owners = Mutex<[String: Owner]>([:])

    /// Sessions not finished or cancelled are forgotten with their staged bytes (``UploadJanitor``): at most this
    /// many are kept, the oldest forgotten first.
    static let limit = 100_000
    private let order = Mutex<[String]>([])

    func start(_ id: UploadID, _ owner: Owner) {
        owners.withLock { $0[id.rawValue] = owner }
        let dropped: [String] = order.withLock { order in
            order.append(id.rawValue)
            guard order.count > Self.limit else { return [] }
            let excess = Array(order.prefix(order.count - Self.limit))
            order.removeFirst(excess.count)
            return excess
        }
        owners.withLock { owners in for id in dropped { owners.removeValue(forKey: id) } }
    }
    func owner(of id: String) -> Owner? { owners.withLock { $0[id] } }
    func end(_ id: UploadID) { _ = owners.withLock { $0.removeValue(forKey: id.rawValue) } }
}
