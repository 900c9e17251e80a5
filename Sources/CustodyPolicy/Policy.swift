import Crypto
package import CustodyCore
package import Foundation
import Yams

/// What one deployment environment allows: a set of optional checks, each denying or only warning.
package struct Policy: Sendable {
    package enum Mode: String, Sendable { case deny, warn }

    package enum ProvenanceField: String, Sendable, CaseIterable {
        case source
        case sourceRevision = "source_revision"
        case baseModels = "base_models"
        case datasets
        case pipelineRun = "pipeline_run"
    }

    package struct Acceptance: Sendable {
        package var id: String
        package var until: Date
        package var untilText: String
        package var reason: String
    }

    package struct Signature: Sendable {
        package var mode: Mode
        package var keys: [String]?
        /// The signing key must still be trusted now, not only when the version was published.
        package var requireCurrentlyTrusted: Bool = false
    }
    package struct Licence: Sendable {
        package var mode: Mode
        package var allowed: [LicenceClass]
    }
    package struct Advisories: Sendable {
        package var mode: Mode
        package var maxSeverity: Severity
        package var accepted: [Acceptance]
        /// What an advisory without a score means: it blocks (deny, the default), warns, or is ignored.
        package var unscored: Unscored = .deny
    }
    package enum Unscored: String, Sendable, CaseIterable { case deny, warn, ignore }
    package struct Provenance: Sendable {
        package var mode: Mode
        package var required: [ProvenanceField]
    }
    package struct Namespaces: Sendable {
        package var mode: Mode
        package var allowed: [String]
    }
    package struct Scan: Sendable {
        package var mode: Mode
        package var maxVerdict: Verdict
    }
    package struct Formats: Sendable {
        package var mode: Mode
        package var allowed: [FileFormat]?
        package var denied: [FileFormat]
        package var denyPickleBased: Bool
    }
    package struct MaxAge: Sendable {
        package var mode: Mode
        package var days: Int
    }

    package var name: String
    package var description: String?
    /// `sha256:` of the policy file's bytes, recorded with every decision.
    package var digest: String
    package var source: String
    package var yaml: String
    package var signature: Signature?
    package var licence: Licence?
    package var advisories: Advisories?
    package var provenance: Provenance?
    package var namespaces: Namespaces?
    package var scan: Scan?
    package var formats: Formats?
    package var maxAge: MaxAge?

    /// The check names a policy file may use, in evaluation order.
    package static let checkNames = ["signature", "licence", "advisories", "provenance", "namespaces", "scan", "formats", "max_age"]

    package struct Invalid: Error, CustomStringConvertible {
        package let description: String
    }

    /// Parses a policy; errors name the file, the line and the field (`production.yaml:7: checks.licence.allowed: …`).
    package init(name: String, yaml: String, source: String) throws(Invalid) {
        self.name = name
        self.source = source
        self.yaml = yaml
        self.digest = "sha256:" + SHA256.hash(data: Array(yaml.utf8)).map { String(format: "%02x", $0) }.joined()
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else { throw Invalid(description: "\(source): the policy is empty") }
            root = node
        } catch let error as Invalid {
            throw error
        } catch {
            throw Invalid(description: "\(source): not valid YAML: \(error)")
        }
        let reader = Reader(source: source)
        let top = try reader.mapping(root, "", allowed: ["description", "checks"])
        description = try top["description"].map { node throws(Invalid) in try reader.string(node, "description") }
        guard let checksNode = top["checks"] else { return }
        let checks = try reader.mapping(checksNode, "checks", allowed: Self.checkNames)
        for (key, node) in checks {
            let field = "checks.\(key)"
            switch key {
            case "signature":
                let map = try reader.mapping(node, field, allowed: ["mode", "keys", "require_currently_trusted"])
                signature = Signature(
                    mode: try reader.mode(map, field),
                    keys: try map["keys"].map { node throws(Invalid) in try reader.strings(node, field + ".keys") },
                    requireCurrentlyTrusted: try map["require_currently_trusted"].map { node throws(Invalid) in
                        try reader.bool(node, field + ".require_currently_trusted")
                    } ?? false)
            case "licence":
                let map = try reader.mapping(node, field, allowed: ["mode", "allowed"])
                guard let list = map["allowed"] else { throw reader.fail(node, field, "needs 'allowed', a list of licence classes") }
                licence = Licence(
                    mode: try reader.mode(map, field),
                    allowed: try reader.values(list, field + ".allowed", of: LicenceClass.self, kind: "a licence class"))
            case "advisories":
                let map = try reader.mapping(node, field, allowed: ["mode", "max_severity", "accepted", "unscored"])
                guard let levelNode = map["max_severity"] else {
                    throw reader.fail(node, field, "needs 'max_severity' (none, low, medium, high, critical)")
                }
                let level = try reader.string(levelNode, field + ".max_severity")
                guard let severity = Severity(level: level) else {
                    throw reader.fail(levelNode, field + ".max_severity", "'\(level)' is not one of none, low, medium, high, critical")
                }
                var accepted: [Acceptance] = []
                if let list = map["accepted"] {
                    guard let items = list.sequence else { throw reader.fail(list, field + ".accepted", "must be a list") }
                    for (index, item) in items.enumerated() {
                        let itemField = "\(field).accepted[\(index)]"
                        let entry = try reader.mapping(item, itemField, allowed: ["id", "until", "reason"])
                        guard let id = entry["id"], let until = entry["until"], let reason = entry["reason"] else {
                            throw reader.fail(item, itemField, "needs id, until (a date) and reason")
                        }
                        let untilText = try reader.string(until, itemField + ".until")
                        guard let date = Self.date(untilText) else {
                            throw reader.fail(until, itemField + ".until", "'\(untilText)' is not a date (YYYY-MM-DD or RFC 3339)")
                        }
                        accepted.append(
                            Acceptance(
                                id: try reader.string(id, itemField + ".id"), until: date, untilText: untilText,
                                reason: try reader.string(reason, itemField + ".reason")))
                    }
                }
                var unscored = Unscored.deny
                if let node = map["unscored"] {
                    let text = try reader.string(node, field + ".unscored")
                    guard let value = Unscored(rawValue: text) else {
                        throw reader.fail(node, field + ".unscored", "'\(text)' is not deny, warn or ignore")
                    }
                    unscored = value
                }
                advisories = Advisories(mode: try reader.mode(map, field), maxSeverity: severity, accepted: accepted, unscored: unscored)
            case "provenance":
                let map = try reader.mapping(node, field, allowed: ["mode", "required"])
                guard let list = map["required"] else { throw reader.fail(node, field, "needs 'required', a list of provenance fields") }
                provenance = Provenance(
                    mode: try reader.mode(map, field),
                    required: try reader.values(list, field + ".required", of: ProvenanceField.self, kind: "a provenance field"))
            case "namespaces":
                let map = try reader.mapping(node, field, allowed: ["mode", "allowed"])
                guard let list = map["allowed"] else { throw reader.fail(node, field, "needs 'allowed', a list of namespaces") }
                namespaces = Namespaces(mode: try reader.mode(map, field), allowed: try reader.strings(list, field + ".allowed"))
            case "scan":
                let map = try reader.mapping(node, field, allowed: ["mode", "max_verdict"])
                guard let verdictNode = map["max_verdict"] else {
                    throw reader.fail(node, field, "needs 'max_verdict' (clean, suspicious, unscannable)")
                }
                let text = try reader.string(verdictNode, field + ".max_verdict")
                guard let verdict = Verdict(rawValue: text) else {
                    throw reader.fail(
                        verdictNode, field + ".max_verdict",
                        "'\(text)' is not a verdict (\(Verdict.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                scan = Scan(mode: try reader.mode(map, field), maxVerdict: verdict)
            case "formats":
                let map = try reader.mapping(node, field, allowed: ["mode", "allowed", "denied", "deny_pickle_based"])
                func formatList(_ key: String) throws(Invalid) -> [FileFormat]? {
                    guard let list = map[key] else { return nil }
                    return try reader.values(list, "\(field).\(key)", of: FileFormat.self, kind: "a format")
                }
                formats = Formats(
                    mode: try reader.mode(map, field), allowed: try formatList("allowed"), denied: try formatList("denied") ?? [],
                    denyPickleBased: try map["deny_pickle_based"].map { node throws(Invalid) in try reader.bool(node, field + ".deny_pickle_based") }
                        ?? false)
            case "max_age":
                let map = try reader.mapping(node, field, allowed: ["mode", "days"])
                guard let daysNode = map["days"], let days = Int(try reader.string(daysNode, field + ".days")), days > 0 else {
                    throw reader.fail(node, field, "needs 'days', a positive whole number")
                }
                maxAge = MaxAge(mode: try reader.mode(map, field), days: days)
            default:
                break
            }
        }
    }

    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        if text.count == 10, let day = formatter.date(from: text) {
            return day.addingTimeInterval(86_400 - 1)  // a day is accepted to its end
        }
        return RFC3339.date(text)
    }

    /// Reads YAML nodes with errors that say where.
    private struct Reader {
        let source: String

        func fail(_ node: Node, _ field: String, _ message: String) -> Invalid {
            let line = node.mark.map { ":\($0.line)" } ?? ""
            return Invalid(description: "\(source)\(line): \(field.isEmpty ? "" : field + ": ")\(message)")
        }

        func mapping(_ node: Node, _ field: String, allowed: [String]) throws(Invalid) -> [(String, Node)] {
            guard let mapping = node.mapping else { throw fail(node, field, "must be a mapping") }
            var seen = Set<String>()
            var pairs: [(String, Node)] = []
            for (keyNode, value) in mapping {
                guard let key = keyNode.string else { throw fail(keyNode, field, "keys must be strings") }
                let path = field.isEmpty ? key : "\(field).\(key)"
                guard allowed.contains(key) else {
                    throw fail(keyNode, path, "unknown \(field == "checks" ? "check" : "field") (expected one of \(allowed.joined(separator: ", ")))")
                }
                guard seen.insert(key).inserted else { throw fail(keyNode, path, "given twice") }
                pairs.append((key, value))
            }
            return pairs
        }

        func string(_ node: Node, _ field: String) throws(Invalid) -> String {
            guard let text = node.scalar?.string else { throw fail(node, field, "must be a single value") }
            return text
        }

        func strings(_ node: Node, _ field: String) throws(Invalid) -> [String] {
            guard let items = node.sequence else { throw fail(node, field, "must be a list") }
            var out: [String] = []
            for item in items { out.append(try string(item, field)) }
            return out
        }

        /// A list of an enumeration's raw values; an unknown one is named with every value allowed.
        func values<T: RawRepresentable & CaseIterable>(_ node: Node, _ field: String, of type: T.Type, kind: String) throws(Invalid) -> [T]
        where T.RawValue == String {
            var out: [T] = []
            for text in try strings(node, field) {
                guard let value = T(rawValue: text) else {
                    throw fail(node, field, "'\(text)' is not \(kind) (\(T.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                out.append(value)
            }
            return out
        }

        func bool(_ node: Node, _ field: String) throws(Invalid) -> Bool {
            switch try string(node, field) {
            case "true", "yes": return true
            case "false", "no": return false
            case let other: throw fail(node, field, "'\(other)' is not true or false")
            }
        }

        func mode(_ map: [(String, Node)], _ field: String) throws(Invalid) -> Mode {
            guard let node = map["mode"] else { return .deny }
            let text = try string(node, field + ".mode")
            guard let mode = Mode(rawValue: text) else { throw fail(node, field + ".mode", "'\(text)' is not deny or warn") }
            return mode
        }
    }
}

extension [(String, Node)] {
    subscript(key: String) -> Node? { first { $0.0 == key }?.1 }
}
