package import CustodyCore
package import Foundation

/// A security advisory in OSV form (formats.md §6), reduced to what matching and policies need; the document
/// itself is kept verbatim.
package struct Advisory: Sendable, Hashable {
    package struct Range: Sendable, Hashable {
        package enum Kind: String, Sendable {
            case semver = "SEMVER"
            case ecosystem = "ECOSYSTEM"
        }
        package enum Event: Sendable, Hashable {
            case introduced(String)
            case fixed(String)
            case lastAffected(String)
            case limit(String)
        }
        package var kind: Kind
        package var events: [Event]
    }

    package struct Affected: Sendable, Hashable {
        /// `ns/name`, or nil for an entry naming bundle digests only.
        package var model: String?
        package var versions: Set<String>
        package var ranges: [Range]
        package var digests: Set<String>
    }

    package var id: String
    package var modified: String
    package var modifiedDate: Date
    package var published: String?
    package var withdrawn: String?
    package var summary: String?
    package var aliases: [String]
    package var severity: Severity
    package var score: Double?
    /// Where the severity came from: the CVSS vector, or the plain level.
    package var severityBasis: String
    package var affected: [Affected]
    package var document: [UInt8]

    package var isWithdrawn: Bool { withdrawn != nil }
    package var models: Set<String> { Set(affected.compactMap(\.model)) }

    package struct Invalid: Error, CustomStringConvertible {
        package let description: String
        /// The record is valid OSV but names no Custody model or bundle digest: an import skips it.
        package let isForeign: Bool
        init(_ description: String, foreign: Bool = false) {
            self.description = description
            self.isForeign = foreign
        }
    }

    /// Parses and validates an OSV document; every error names the field at fault.
    package init(osv bytes: [UInt8]) throws(Invalid) {
        guard bytes.count <= 1 << 20 else { throw Invalid("the advisory is over 1 MiB") }
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                throw Invalid("an OSV advisory is a JSON object")
            }
            object = parsed
        } catch let error as Invalid {
            throw error
        } catch {
            throw Invalid("the advisory is not valid JSON: \(error.localizedDescription)")
        }
        guard let id = object["id"] as? String, !id.isEmpty, id.count <= 128,
            id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) })
        else { throw Invalid("id: required, up to 128 characters of letters, digits, '-', '_', '.', ':'") }
        guard let modified = object["modified"] as? String, let modifiedDate = RFC3339.date(modified) else {
            throw Invalid("modified: required, an RFC 3339 timestamp")
        }
        if let published = object["published"], (published as? String).flatMap(RFC3339.date) == nil {
            throw Invalid("published: not an RFC 3339 timestamp")
        }
        if let withdrawn = object["withdrawn"], (withdrawn as? String).flatMap(RFC3339.date) == nil {
            throw Invalid("withdrawn: not an RFC 3339 timestamp")
        }
        self.id = id
        self.modified = modified
        self.modifiedDate = modifiedDate
        self.published = object["published"] as? String
        self.withdrawn = object["withdrawn"] as? String
        self.summary = object["summary"] as? String
        self.aliases = (object["aliases"] as? [String]) ?? []
        self.document = bytes

        // Severity (optional in OSV): the highest CVSS v3 base score of the top-level `severity` and of every
        // `affected[].severity`; otherwise `database_specific.severity`; otherwise unknown, for policies to decide.
        var severity: (Severity, Double?, String)?
        var scored: [(String, [[String: Any]])] = [("severity", (object["severity"] as? [[String: Any]]) ?? [])]
        for (index, entry) in ((object["affected"] as? [[String: Any]]) ?? []).enumerated() {
            scored.append(("affected[\(index)].severity", (entry["severity"] as? [[String: Any]]) ?? []))
        }
        for (field, entries) in scored {
            for (index, entry) in entries.enumerated() {
                let type = entry["type"] as? String ?? ""
                guard type == "CVSS_V3", let vector = entry["score"] as? String else { continue }
                let score: Double
                do { score = try CVSS3.baseScore(vector) } catch { throw Invalid("\(field)[\(index)].score: \(error)") }
                if score > severity?.1 ?? -1 { severity = (Severity(score: score), score, "\(vector) (base score \(score))") }
            }
        }
        if severity == nil, let level = (object["database_specific"] as? [String: Any])?["severity"] as? String {
            guard let parsed = Severity(level: level) else {
                throw Invalid("database_specific.severity: '\(level)' is not one of none, low, medium, high, critical")
            }
            severity = (parsed, nil, "level \(level.lowercased())")
        }
        (self.severity, self.score, self.severityBasis) =
            severity ?? (.unknown, nil, "unscored: no CVSS v3 vector or database_specific.severity (CVSS v4 is not scored here)")

        guard let entries = object["affected"] as? [[String: Any]], !entries.isEmpty else {
            throw Invalid("affected: required, a non-empty list")
        }
        var affected: [Affected] = []
        for (index, entry) in entries.enumerated() {
            let field = "affected[\(index)]"
            var digests = Set<String>()
            for (position, text) in (((entry["database_specific"] as? [String: Any])?["digests"] as? [String]) ?? []).enumerated() {
                guard (try? ContentDigest(parsing: text)) != nil else {
                    throw Invalid("\(field).database_specific.digests[\(position)]: '\(text)' is not sha256:<hex>")
                }
                digests.insert(text)
            }
            var model: String?
            if let package = entry["package"] as? [String: Any] {
                let ecosystem = package["ecosystem"] as? String ?? ""
                guard ecosystem == "Custody" else {
                    if ecosystem.lowercased() == "custody" {
                        throw Invalid("\(field).package.ecosystem: '\(ecosystem)' differs only in case from 'Custody', the ecosystem name")
                    }
                    continue  // another ecosystem's entry: kept in the document, matched against nothing here
                }
                guard let name = package["name"] as? String, (try? ModelName(parsing: name)) != nil else {
                    throw Invalid("\(field).package.name: a model name ns/name is required for the Custody ecosystem")
                }
                model = name
            }
            var versions = Set<String>()
            for version in (entry["versions"] as? [Any]) ?? [] {
                guard let text = version as? String else { throw Invalid("\(field).versions: every entry is a string") }
                if text.hasPrefix("sha256:") {
                    guard (try? ContentDigest(parsing: text)) != nil else { throw Invalid("\(field).versions: '\(text)' is not sha256:<hex>") }
                    digests.insert(text)
                } else {
                    versions.insert(text)
                }
            }
            var ranges: [Range] = []
            for (position, range) in ((entry["ranges"] as? [[String: Any]]) ?? []).enumerated() {
                let rangeField = "\(field).ranges[\(position)]"
                guard let type = range["type"] as? String else { throw Invalid("\(rangeField).type: required") }
                guard let kind = Range.Kind(rawValue: type) else {
                    throw Invalid("\(rangeField).type: '\(type)' is not supported for models (SEMVER or ECOSYSTEM)")
                }
                guard let events = range["events"] as? [[String: Any]], !events.isEmpty else {
                    throw Invalid("\(rangeField).events: required, a non-empty list")
                }
                var parsed: [Range.Event] = []
                for event in events {
                    guard event.count == 1, let (key, raw) = event.first, let value = raw as? String else {
                        throw Invalid("\(rangeField).events: each event has exactly one of introduced, fixed, last_affected, limit")
                    }
                    switch key {
                    case "introduced": parsed.append(.introduced(value))
                    case "fixed": parsed.append(.fixed(value))
                    case "last_affected": parsed.append(.lastAffected(value))
                    case "limit": parsed.append(.limit(value))
                    default: throw Invalid("\(rangeField).events: unknown event '\(key)'")
                    }
                }
                guard parsed.contains(where: { if case .introduced = $0 { true } else { false } }) else {
                    throw Invalid("\(rangeField).events: a range needs an introduced event")
                }
                ranges.append(Range(kind: kind, events: parsed))
            }
            guard model != nil || !digests.isEmpty else {
                throw Invalid("\(field): name a model (package ecosystem Custody, name ns/name) or bundle digests")
            }
            if model != nil, versions.isEmpty, ranges.isEmpty, digests.isEmpty {
                throw Invalid(
                    "\(field): list the affected versions or ranges (an advisory for every version says so with a range introduced at \"0\")")
            }
            affected.append(Affected(model: model, versions: versions, ranges: ranges, digests: digests))
        }
        guard !affected.isEmpty else {
            throw Invalid(
                "affected: no entry is for the Custody ecosystem (package.ecosystem \"Custody\") or names bundle digests",
                foreign: true)
        }
        self.affected = affected
    }

    /// Whether this advisory applies to a version. `order` lists the model's versions oldest first (the ECOSYSTEM
    /// order of a model is its publication order).
    package func affects(model: String, version: String, digest: String, order: [String]) -> Bool {
        affected.contains { entry in
            if entry.digests.contains(digest) { return true }
            guard entry.model == model else { return false }
            if entry.versions.contains(version) { return true }
            return entry.ranges.contains { range in
                switch range.kind {
                case .semver:
                    guard let target = SemanticVersion(version) else { return false }
                    return Self.inRange(range.events, target) { SemanticVersion($0) }
                case .ecosystem:
                    guard let target = order.firstIndex(of: version) else { return false }
                    return Self.inRange(range.events, target) { $0 == "0" ? -1 : order.firstIndex(of: $0) }
                }
            }
        }
    }

    /// OSV range semantics: affected from each `introduced` up to the next `fixed` (exclusive) or `last_affected`
    /// (inclusive); events naming versions that cannot be placed are ignored.
    static func inRange<V: Comparable>(_ events: [Range.Event], _ target: V, _ place: (String) -> V?) -> Bool {
        var points: [(V, Int, Range.Event)] = []
        for event in events {
            switch event {
            case .introduced(let text):
                if text == "0" {
                    points.append((target, -1, event))
                }  // before everything: handled below
                else if let value = place(text) {
                    points.append((value, 0, event))
                }
            case .fixed(let text), .lastAffected(let text), .limit(let text):
                if let value = place(text) { points.append((value, 1, event)) }
            }
        }
        var affected = events.contains { if case .introduced("0") = $0 { true } else { false } }
        for (value, _, event) in points.sorted(by: { ($0.0, $0.1) < ($1.0, $1.1) }) {
            switch event {
            case .introduced(let text) where text != "0":
                if value <= target { affected = true }
            case .fixed:
                if value <= target { affected = false }
            case .lastAffected:
                if value < target { affected = false }
            case .limit:
                if value <= target { affected = false }
            default:
                break
            }
        }
        return affected
    }
}

/// Semantic versions (2.0.0), with an optional leading `v`; ordering follows the specification, build metadata
/// ignored.
package struct SemanticVersion: Comparable, Sendable {
    let core: [Int]
    let prerelease: [String]

    package init?(_ text: String) {
        var body = Substring(text)
        if body.hasPrefix("v") { body = body.dropFirst() }
        if let plus = body.firstIndex(of: "+") { body = body[..<plus] }
        var pre: [String] = []
        if let dash = body.firstIndex(of: "-") {
            pre = body[body.index(after: dash)...].split(separator: ".").map(String.init)
            guard !pre.isEmpty else { return nil }
            body = body[..<dash]
        }
        let numbers = body.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
        guard numbers.count == 3, numbers.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
        core = numbers.map { $0! }
        prerelease = pre
    }

    package static func < (a: SemanticVersion, b: SemanticVersion) -> Bool {
        if a.core != b.core { return a.core.lexicographicallyPrecedes(b.core) }
        if a.prerelease.isEmpty != b.prerelease.isEmpty { return !a.prerelease.isEmpty }
        for (x, y) in zip(a.prerelease, b.prerelease) where x != y {
            switch (Int(x), Int(y)) {
            case (let m?, let n?): return m < n
            case (.some, nil): return true
            case (nil, .some): return false
            default: return x < y
            }
        }
        return a.prerelease.count < b.prerelease.count
    }

    package static func == (a: SemanticVersion, b: SemanticVersion) -> Bool { a.core == b.core && a.prerelease == b.prerelease }
}
