import CustodyCore
import CustodyStore
import Foundation
import Synchronization

/// Token lookups without a database read per request: records are kept for a second. Revocations through the API
/// clear the cache at once; a revocation written straight into the database (`custody token revoke --home`) takes
/// effect within a second. Expiry is checked on every use against the cached record.
final class TokenCache: Sendable {
    private let database: RegistryDatabase
    private let entries = Mutex<[String: (record: TokenRecord?, loaded: ContinuousClock.Instant)]>([:])
    static let lifetime = Duration.seconds(1)

    init(database: RegistryDatabase) {
        self.database = database
    }

    func token(secret: String) async throws(CustodyError) -> TokenRecord? {
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[secret] }), now - entry.loaded < Self.lifetime { return entry.record }
        let record = try await database.token(secret: secret)
        // Unknown secrets are not cached: a guessing client must not grow the cache.
        entries.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            if record != nil { cache[secret] = (record, now) }
        }
        return record
    }

    func invalidate() {
        entries.withLock { $0.removeAll() }
    }
}
