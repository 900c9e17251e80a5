package import CustodyCore
package import CustodyStorage
package import Foundation
import Synchronization

/// Token lookups without a database read per request: records are kept for a second. Revocations through the API
/// clear the cache at once; a revocation written straight into the database (`custody token revoke --home`) takes
/// effect within a second. Expiry is checked on every use against the cached record.
package final class TokenCache: Sendable {
    private let records: any TokenRecords
    private let entries = Mutex<[String: (record: TokenRecord?, loaded: ContinuousClock.Instant)]>([:])
    private let unknown = Mutex<[String: ContinuousClock.Instant]>([:])
    package static let lifetime = Duration.seconds(1)
    package static let unknownLimit = 1024

    package init(records: any TokenRecords) {
        self.records = records
    }

    package func token(secret: String) async throws(CustodyError) -> TokenRecord? {
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[secret] }), now - entry.loaded < Self.lifetime { return entry.record }
        if let refused = unknown.withLock({ $0[secret] }), now - refused < Self.lifetime { return nil }
        let record = try await records.token(secret: secret)
        entries.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            if record != nil { cache[secret] = (record, now) }
        }
        // Unknown secrets are remembered apart, briefly and in a small table, so that a client repeating a bad token
        // costs no database read, while one guessing new ones cannot push valid tokens out of the cache.
        if record == nil {
            unknown.withLock { unknown in
                if unknown.count >= Self.unknownLimit { unknown.removeAll(keepingCapacity: true) }
                unknown[secret] = now
            }
        }
        return record
    }

    package func invalidate() {
        entries.withLock { $0.removeAll() }
        unknown.withLock { $0.removeAll() }
    }
}
