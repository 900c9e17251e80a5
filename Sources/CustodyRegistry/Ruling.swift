package import CustodyCore
package import CustodyPolicy
package import CustodyStorage
package import Foundation

/// A decision as the gate keeps it: the decision, its JSON answer cut where the evaluation time goes (so that an
/// answer costs two copies, not an encoding), its event detail, and how long it holds.
package struct Ruling: Sendable {
    /// `evaluatedAt` is when it was evaluated; answers carry the time they are given.
    package let decision: API.Decision
    package let eventDetail: String
    /// The first instant at which evaluating again could answer differently; nil when only a change could.
    package let changesAt: Date?
    /// The policy snapshot it was evaluated under.
    package let policies: UInt64
    private let before: [UInt8]
    private let after: [UInt8]

    package init(_ evaluation: Evaluation, policies: UInt64) throws(CustodyError) {
        decision = evaluation.decision
        changesAt = evaluation.changesAt
        self.policies = policies
        eventDetail = Self.eventDetail(decision)
        (before, after) = try Self.template(decision)
    }

    package func holds(for snapshot: PolicySet.Snapshot, at now: Date) -> Bool {
        policies == snapshot.generation && changesAt.map { now < $0 } ?? true
    }

    package func decision(at time: String) -> API.Decision {
        var decision = decision
        decision.evaluatedAt = time
        return decision
    }

    /// The JSON answer cut around `evaluatedAt`'s value: `prefix + time + suffix` is byte for byte what
    /// ``API/encoder()`` writes for `decision(at: time)`.
    package var answer: (prefix: [UInt8], suffix: [UInt8]) { (before, after) }

    /// The event detail of a decision: its verdict, policy digest, reasons and rollback target.
    package static func eventDetail(_ decision: API.Decision) -> String {
        let verdict = decision.allowed ? "allowed" : "denied"
        var detail = "\(verdict) by policy \(decision.policy.name) \(decision.policy.digest)"
        if !decision.allowed { detail += ": " + decision.reasons.joined(separator: "; ") }
        if let rollback = decision.rollback { detail += "; rollback target \(rollback.version)" }
        return detail
    }

    /// The decision's JSON split around the value of `evaluatedAt`. The key occurs once, and its quotes cannot be
    /// matched inside another string, where every quote is escaped.
    private static func template(_ decision: API.Decision) throws(CustodyError) -> ([UInt8], [UInt8]) {
        let marker = "0000-00-00T00:00:00Z"
        var probe = decision
        probe.evaluatedAt = marker
        let encoded: [UInt8]
        do {
            encoded = Array(try API.encoder().encode(probe))
        } catch {
            throw CustodyError(.io, "cannot encode a decision: \(error)")
        }
        let needle = Array("\"evaluatedAt\":\"\(marker)\"".utf8)
        guard let start = encoded.firstRange(of: needle)?.lowerBound else {
            throw CustodyError(.io, "an encoded decision has no evaluatedAt")
        }
        let valueStart = start + needle.count - marker.utf8.count - 1
        return (Array(encoded[..<valueStart]), Array(encoded[(valueStart + marker.utf8.count)...]))
    }
}
