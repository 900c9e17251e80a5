package import CustodyCore
package import Foundation

/// Everything a decision is made from, gathered by the registry; evaluation itself is pure.
package struct DecisionSubject: Sendable {
    package var detail: API.VersionDetail
    package var status: API.VersionStatus
    /// The effective licence class: the most restrictive of the version's own and its base models'.
    package var licence: LicenceClassification
    /// Open (not withdrawn) advisories that affect this version.
    package var advisories: [Advisory]

    /// The publisher keys trusted now, by key hint (their names as values); nil when not known (a draft test).
    package var trustedKeys: [String: String]?

    package init(
        detail: API.VersionDetail, status: API.VersionStatus, licence: LicenceClassification, advisories: [Advisory],
        trustedKeys: [String: String]? = nil
    ) {
        self.detail = detail
        self.status = status
        self.licence = licence
        self.advisories = advisories
        self.trustedKeys = trustedKeys
    }
}

/// A decision and the first instant at which evaluating the same subject again could answer differently (an
/// accepted advisory's acceptance running out, the age in days of the version growing); nil when only a change of
/// the subject or the policy could.
package struct Evaluation: Sendable {
    package var decision: API.Decision
    package var changesAt: Date?

    package init(decision: API.Decision, changesAt: Date?) {
        self.decision = decision
        self.changesAt = changesAt
    }
}

/// The one evaluator behind verify, gated pulls, admission and `policy test`.
package enum Evaluator {
    package static func evaluate(_ subject: DecisionSubject, policy: Policy, environment: String, now: Date) -> API.Decision {
        evaluation(subject, policy: policy, environment: environment, now: now).decision
    }

    package static func evaluation(_ subject: DecisionSubject, policy: Policy, environment: String, now: Date) -> Evaluation {
        typealias Check = API.Decision.Check
        var checks: [Check] = []
        var changesAt: Date?
        func changes(at date: Date) {
            if changesAt.map({ date < $0 }) ?? true { changesAt = date }
        }
        let detail = subject.detail

        func judge(_ name: String, _ mode: Policy.Mode, failure: String?, success: String) {
            if let failure {
                checks.append(Check(check: name, result: mode == .deny ? .failed : .warning, reason: failure))
            } else {
                checks.append(Check(check: name, result: .passed, reason: success))
            }
        }
        func notRequired(_ name: String) {
            checks.append(Check(check: name, result: .notApplicable, reason: "not required by the \(policy.name) policy"))
        }

        switch subject.status.state {
        case .active:
            checks.append(Check(check: "status", result: .passed, reason: "the version is active"))
        case .yanked, .quarantined:
            let by = subject.status.by.map { " by \($0)" } ?? ""
            let why = subject.status.reason.map { ": \($0)" } ?? ""
            checks.append(Check(check: "status", result: .failed, reason: "the version was \(subject.status.state.rawValue)\(by)\(why)"))
        }

        if let rule = policy.signature {
            let publisher = detail.signatures.first { $0.kind == .publisher }
            let key = publisher?.keyName
            if publisher?.status != .verified {
                judge("signature", rule.mode, failure: "the version is not signed by a trusted publisher key", success: "")
            } else if let keys = rule.keys, !keys.contains(key ?? "") {
                judge(
                    "signature", rule.mode, failure: "signed by \(key ?? "an unnamed key"), not by one of \(keys.joined(separator: ", "))",
                    success: "")
            } else if let trusted = subject.trustedKeys, let hint = publisher?.keyHint, trusted[hint] == nil {
                // Verified at publish by a key that has since been removed from the trusted keys.
                let signer = "\(key ?? "an unnamed key") (key hint \(hint))"
                if rule.requireCurrentlyTrusted {
                    judge("signature", rule.mode, failure: "signed by \(signer), which is no longer trusted", success: "")
                } else {
                    judge("signature", rule.mode, failure: nil, success: "signed by \(signer), trusted when published and no longer trusted now")
                }
            } else if subject.trustedKeys == nil, rule.requireCurrentlyTrusted {
                judge("signature", rule.mode, failure: "the keys trusted now are not known here", success: "")
            } else {
                let now = subject.trustedKeys == nil ? "" : ", still trusted"
                judge("signature", rule.mode, failure: nil, success: "signed by the trusted publisher key \(key ?? "?")\(now)")
            }
        } else {
            notRequired("signature")
        }

        let licence = subject.licence
        if let rule = policy.licence {
            let allowed = rule.allowed.map(\.rawValue).joined(separator: ", ")
            judge(
                "licence", rule.mode,
                failure: rule.allowed.contains(licence.licenceClass)
                    ? nil
                    : "licence class \(licence.licenceClass.rawValue) (\(licence.basis)) is not allowed in \(environment) (allowed: \(allowed))",
                success: "licence class \(licence.licenceClass.rawValue) (\(licence.basis))")
        } else {
            notRequired("licence")
        }

        if let rule = policy.advisories {
            var blocking: [String] = []
            var accepted: [String] = []
            var unscored: [String] = []
            for advisory in subject.advisories.sorted(by: { $0.id < $1.id })
            where advisory.severity > rule.maxSeverity || (advisory.severity == .unknown && rule.unscored != .ignore) {
                let label = "\(advisory.id) (\(advisory.severity.rawValue)\(advisory.score.map { " \($0)" } ?? ""))"
                if advisory.severity == .unknown, rule.unscored == .warn, !rule.accepted.contains(where: { $0.id == advisory.id }) {
                    unscored.append(label)
                    continue
                }
                if let acceptance = rule.accepted.first(where: { $0.id == advisory.id }) {
                    if acceptance.until >= now {
                        changes(at: acceptance.until.addingTimeInterval(0.001))
                        accepted.append("\(label) accepted until \(acceptance.untilText): \(acceptance.reason)")
                        continue
                    }
                    blocking.append("\(label), whose acceptance expired on \(acceptance.untilText)")
                } else {
                    blocking.append(label)
                }
            }
            let below = subject.advisories.count - blocking.count - accepted.count - unscored.count
            var success = "no open advisory above \(rule.maxSeverity.rawValue)"
            if !accepted.isEmpty { success += "; " + accepted.joined(separator: "; ") }
            if below > 0 { success += "; \(below) at or below \(rule.maxSeverity.rawValue)" + (rule.unscored == .ignore ? " or unscored" : "") }
            if !blocking.isEmpty {
                judge(
                    "advisories", rule.mode,
                    failure: "open advisor\(blocking.count == 1 ? "y" : "ies") above \(rule.maxSeverity.rawValue)"
                        + (blocking.contains { $0.contains("(unknown") } ? " or unscored" : "") + ": \(blocking.joined(separator: "; "))",
                    success: success)
            } else if !unscored.isEmpty {
                // advisories.unscored: warn — an advisory nobody scored is reported, not enforced.
                checks.append(
                    Check(
                        check: "advisories", result: .warning,
                        reason: "unscored open advisor\(unscored.count == 1 ? "y" : "ies") (unscored: warn): \(unscored.joined(separator: "; ")); "
                            + success))
            } else {
                judge("advisories", rule.mode, failure: nil, success: success)
            }
        } else {
            notRequired("advisories")
        }

        if let rule = policy.provenance {
            let provenance = detail.provenance
            let missing = rule.required.filter { field in
                switch field {
                case .source: provenance.source?.uri?.isEmpty ?? true
                case .sourceRevision: provenance.source?.revision?.isEmpty ?? true
                case .baseModels: provenance.baseModels.isEmpty
                case .datasets: provenance.datasets.isEmpty
                case .pipelineRun: provenance.pipelineRun?.isEmpty ?? true
                }
            }
            judge(
                "provenance", rule.mode,
                failure: missing.isEmpty ? nil : "missing provenance: \(missing.map(\.rawValue).joined(separator: ", "))",
                success: "has \(rule.required.map(\.rawValue).joined(separator: ", "))")
        } else {
            notRequired("provenance")
        }

        let namespace = detail.model.split(separator: "/").first.map(String.init) ?? ""
        if let rule = policy.namespaces {
            judge(
                "namespaces", rule.mode,
                failure: rule.allowed.contains(namespace)
                    ? nil
                    : "namespace \(namespace) is not allowed in \(environment) (allowed: \(rule.allowed.joined(separator: ", ")))",
                success: "namespace \(namespace) is allowed")
        } else {
            notRequired("namespaces")
        }

        if let rule = policy.scan {
            if let scan = detail.scan {
                let worse = scan.files.filter { $0.verdict > rule.maxVerdict }
                let named = worse.prefix(3).map { file in
                    let subjects = Set(file.findings.filter { $0.verdict > rule.maxVerdict }.map(\.subject)).sorted().prefix(3)
                    return "\(file.path) is \(file.verdict.rawValue)" + (subjects.isEmpty ? "" : " (\(subjects.joined(separator: ", ")))")
                }
                judge(
                    "scan", rule.mode,
                    failure: worse.isEmpty
                        ? nil
                        : "\(named.joined(separator: "; "))\(worse.count > 3 ? "; \(worse.count - 3) more" : ""); at most \(rule.maxVerdict.rawValue) is allowed",
                    success:
                        "every file scanned \(rule.maxVerdict == .clean ? "clean" : "\(rule.maxVerdict.rawValue) or better") (bundle verdict \(scan.verdict.rawValue))"
                )
            } else {
                judge("scan", rule.mode, failure: "the version has no scan results", success: "")
            }
        } else {
            notRequired("scan")
        }

        if let rule = policy.formats {
            if let scan = detail.scan {
                let always: Set<FileFormat> = [.json, .text, .empty]
                var problems: [String] = []
                for file in scan.files {
                    if rule.denyPickleBased, file.format.isPickleBased {
                        problems.append("\(file.path) is \(file.format.rawValue), a pickle-based format")
                    } else if rule.denied.contains(file.format) {
                        problems.append("\(file.path) is \(file.format.rawValue), a denied format")
                    } else if let allowed = rule.allowed, !allowed.contains(file.format), !always.contains(file.format) {
                        problems.append("\(file.path) is \(file.format.rawValue), not an allowed format")
                    }
                }
                judge(
                    "formats", rule.mode,
                    failure: problems.isEmpty
                        ? nil : problems.prefix(3).joined(separator: "; ") + (problems.count > 3 ? "; \(problems.count - 3) more" : ""),
                    success: "formats: \(Set(scan.files.map(\.format.rawValue)).sorted().joined(separator: ", "))")
            } else {
                judge("formats", rule.mode, failure: "the version has no scan results", success: "")
            }
        } else {
            notRequired("formats")
        }

        if let rule = policy.maxAge {
            let created = RFC3339.date(detail.createdAt) ?? now
            let days = Int(now.timeIntervalSince(created) / 86_400)
            changes(at: created.addingTimeInterval(Double(max(days, 0) + 1) * 86_400))
            judge(
                "max_age", rule.mode,
                failure: days > rule.days ? "published \(days) days ago, more than \(rule.days)" : nil,
                success: "published \(days) days ago")
        } else {
            notRequired("max_age")
        }

        let decision = API.Decision(
            allowed: !checks.contains { $0.result == .failed }, environment: environment,
            policy: .init(name: policy.name, digest: policy.digest), model: detail.model, version: detail.version,
            bundleDigest: detail.bundleDigest, checks: checks, licence: licence, obligations: licence.obligations,
            rollback: nil, evaluatedAt: RFC3339.string(now))
        return Evaluation(decision: decision, changesAt: changesAt)
    }
}
