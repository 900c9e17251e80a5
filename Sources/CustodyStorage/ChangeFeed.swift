package import CustodyCore
import Synchronization

/// A change to what gate decisions depend on.
package enum RegistryChange: Sendable, Hashable {
    /// A version of the model was published: its version order changed (and with it anything naming the model
    /// without a version).
    case published(ModelName)
    /// A version's status (yanked, quarantined, restored).
    case status(ModelName, version: String)
    /// An advisory was added, updated or withdrawn.
    case advisories
    /// The trusted publisher keys.
    case trust
    /// Announcements may have been missed (a feed that reconnected): anything may have changed.
    case unknown

    /// The change as one line of text, for a feed that carries it between processes.
    package var encoded: String {
        switch self {
        case .published(let model): "published \(model)"
        case .status(let model, let version): "status \(model)@\(version)"
        case .advisories: "advisories"
        case .trust: "trust"
        case .unknown: "unknown"
        }
    }

    /// Reads ``encoded``; text it does not know is ``unknown`` (a newer daemon's change is still a change).
    package init(encoded text: String) {
        let parts = text.split(separator: " ", maxSplits: 1).map(String.init)
        switch (parts.first, parts.count > 1 ? parts[1] : nil) {
        case ("published", let name?): self = (try? ModelName(parsing: name)).map { .published($0) } ?? .unknown
        case ("status", let reference?):
            if let at = reference.lastIndex(of: "@"), let model = try? ModelName(parsing: String(reference[..<at])) {
                self = .status(model, version: String(reference[reference.index(after: at)...]))
            } else {
                self = .unknown
            }
        case ("advisories", nil): self = .advisories
        case ("trust", nil): self = .trust
        default: self = .unknown
        }
    }
}

/// Where writers announce changes and caches hear of them: every cache invalidation goes through it, so that a
/// backend shared by several daemons can carry announcements between them (PostgreSQL `LISTEN`/`NOTIFY`).
package protocol ChangeFeed: Sendable {
    /// Announces a change after it is committed; returns once every subscriber in this process has applied it.
    func announce(_ change: RegistryChange) async throws(CustodyError)
    /// Adds a subscriber, called for every change in announcement order.
    func subscribe(_ subscriber: @escaping @Sendable (RegistryChange) async throws(CustodyError) -> Void)
}

/// The feed of a single process (the embedded SQLite registry): subscribers are called in the announcing task, so
/// that when a write returns to its caller no cache in the process still holds what it replaced.
package final class InProcessChangeFeed: ChangeFeed {
    private let subscribers = Mutex<[@Sendable (RegistryChange) async throws(CustodyError) -> Void]>([])

    package init() {}

    package func announce(_ change: RegistryChange) async throws(CustodyError) {
        for subscriber in subscribers.withLock({ $0 }) { try await subscriber(change) }
    }

    package func subscribe(_ subscriber: @escaping @Sendable (RegistryChange) async throws(CustodyError) -> Void) {
        subscribers.withLock { $0.append(subscriber) }
    }
}

/// A lease several daemons contend for, so that one of them at a time does a job (the checkpoint signer's).
package protocol SigningLease: Sendable {
    /// Takes or renews the lease; true while this daemon holds it.
    func acquire() async throws(CustodyError) -> Bool
    /// Gives it up, so that another daemon may take it at once.
    func release() async throws(CustodyError)
}
