import Synchronization

/// Limits failed authentications per client address with a token bucket: an address may fail `burst` times at once
/// and then once per `burst`-th of `window`; past that its failures are answered 429 with the seconds until the next
/// one would be let through. A valid token is never limited: the bucket guards the log and the daemon against
/// floods (secrets are 256-bit random, so guessing is not the threat), and one bad client behind a NAT must not lock
/// out the gates that share its address.
///
/// The clock is injected; the table is bounded (an address whose bucket has refilled is forgotten, and when the table
/// is full the fullest buckets are dropped first).
final class FailureLimiter: Sendable {
    let burst: Int
    let window: Duration
    /// How long a limited answer is held back: a client that floods on a few connections then gets a few answers a
    /// second per connection instead of thousands, and costs the daemon next to nothing.
    let delay: Duration
    private let now: @Sendable () -> ContinuousClock.Instant
    private let buckets = Mutex<[String: Bucket]>([:])
    static let maximumAddresses = 65_536

    private struct Bucket {
        /// Failures still allowed, fractional while refilling.
        var available: Double
        var updated: ContinuousClock.Instant
    }

    enum Outcome: Equatable {
        /// The failure is answered as usual (401).
        case allowed
        /// Too many: answer 429, with `Retry-After` in whole seconds.
        case limited(retryAfter: Int)
    }

    /// A limiter that lets everything through when `burst` is zero.
    init(burst: Int, window: Duration, delay: Duration = .zero, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.burst = burst
        self.window = window
        self.delay = delay
        self.now = now
    }

    var isEnabled: Bool { burst > 0 && window > .zero }

    /// Counts one failed authentication from `address`.
    func failure(from address: String) -> Outcome {
        guard isEnabled else { return .allowed }
        let now = now()
        let perSecond = Double(burst) / window.seconds
        return buckets.withLock { buckets in
            var bucket = buckets[address] ?? Bucket(available: Double(burst), updated: now)
            bucket.available = min(Double(burst), bucket.available + (now - bucket.updated).seconds * perSecond)
            bucket.updated = now
            defer {
                if buckets.count >= Self.maximumAddresses, buckets[address] == nil {
                    Self.prune(&buckets, now: now, perSecond: perSecond, burst: burst)
                }
                buckets[address] = bucket
            }
            if bucket.available >= 1 {
                bucket.available -= 1
                return .allowed
            }
            return .limited(retryAfter: max(1, Int(((1 - bucket.available) / perSecond).rounded(.up))))
        }
    }

    /// Drops buckets that have refilled; if none has, the half with the most left.
    private static func prune(_ buckets: inout [String: Bucket], now: ContinuousClock.Instant, perSecond: Double, burst: Int) {
        buckets = buckets.filter { $0.value.available + (now - $0.value.updated).seconds * perSecond < Double(burst) }
        if buckets.count >= maximumAddresses {
            let kept = buckets.sorted { $0.value.available < $1.value.available }.prefix(maximumAddresses / 2)
            buckets = Dictionary(uniqueKeysWithValues: kept.map { ($0.key, $0.value) })
        }
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
