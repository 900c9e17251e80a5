import Foundation

/// How freely a licence lets weights be used (formats.md §7), from most to least permissive.
public enum LicenceClass: String, Codable, Sendable, DeclarationOrdered {
    /// Commercial use allowed.
    case permissive
    /// Commercial use with obligations that must be recorded and honoured.
    case conditional
    /// Non-commercial or research use only.
    case research
    /// Not recognised: blocks until reviewed.
    case unknown

    /// "More restrictive" is greater: a derivative's class is the maximum of its own and its bases'.

    /// A class a publisher may declare: the four classes, or "commercial" (permissive or conditional) and
    /// "non-commercial" (research).
    public static func declared(_ text: String) -> Set<LicenceClass>? {
        switch text.lowercased() {
        case "commercial": [.permissive, .conditional]
        case "non-commercial", "noncommercial": [.research]
        default: LicenceClass(rawValue: text.lowercased()).map { [$0] }
        }
    }
}

/// One row of the licence table: a class and, for `conditional` licences, the obligations a deployment takes on.
public struct LicenceRule: Codable, Sendable, Hashable {
    public var licenceClass: LicenceClass
    public var obligations: [String]
    /// A note worth surfacing (copyleft, share-alike), not an obligation.
    public var note: String?

    public init(_ licenceClass: LicenceClass, obligations: [String] = [], note: String? = nil) {
        self.licenceClass = licenceClass
        self.obligations = obligations
        self.note = note
    }

    enum CodingKeys: String, CodingKey {
        case licenceClass = "class"
        case obligations, note
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        licenceClass = try container.decode(LicenceClass.self, forKey: .licenceClass)
        obligations = try container.decodeIfPresent([String].self, forKey: .obligations) ?? []
        note = try container.decodeIfPresent(String.self, forKey: .note)
    }
}

/// The classification of a licence as recorded with a version.
public struct LicenceClassification: Codable, Sendable, Hashable {
    public var licenceClass: LicenceClass
    /// What the class was decided from (`apache-2.0`, `license_name: …`, or why it is unknown).
    public var basis: String
    public var obligations: [String]
    public var note: String?

    public init(licenceClass: LicenceClass, basis: String, obligations: [String] = [], note: String? = nil) {
        self.licenceClass = licenceClass
        self.basis = basis
        self.obligations = obligations
        self.note = note
    }

    enum CodingKeys: String, CodingKey {
        case licenceClass = "class"
        case basis, obligations, note
    }
}

/// The licence table: Hugging Face licence ids, SPDX ids and `license_name` values to classes. It is data — the
/// defaults below can be extended or overridden by `Registry/licenses.yaml` — so that legal review changes a file,
/// not code.
public struct LicenceTable: Sendable {
    /// Exact ids (lowercased) and `license_name` values.
    public var ids: [String: LicenceRule]
    /// Prefixes (`cc-by-nc-`, `bsd-`) for families of ids.
    public var prefixes: [String: LicenceRule]

    public init(ids: [String: LicenceRule], prefixes: [String: LicenceRule]) {
        self.ids = ids
        self.prefixes = prefixes
    }

    /// This table with `other`'s entries added or replacing these.
    public func merging(_ other: LicenceTable) -> LicenceTable {
        LicenceTable(
            ids: ids.merging(other.ids) { _, new in new }, prefixes: prefixes.merging(other.prefixes) { _, new in new })
    }

    /// Classifies a licence from its id and, for `other`, its `license_name`.
    public func classify(id: String?, name: String?) -> LicenceClassification {
        let key = id?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        if key.isEmpty || key == "other" {
            if let name, let rule = lookup(name.lowercased()) {
                return LicenceClassification(licenceClass: rule.licenceClass, basis: "license_name \(name)", obligations: rule.obligations, note: rule.note)
            }
            let why = key.isEmpty ? (name.map { "licence name \($0) is not in the licence table" } ?? "no licence declared")
                : "licence 'other' without a recognised license_name"
            return LicenceClassification(licenceClass: .unknown, basis: why)
        }
        if let rule = lookup(key) {
            return LicenceClassification(licenceClass: rule.licenceClass, basis: key, obligations: rule.obligations, note: rule.note)
        }
        return LicenceClassification(licenceClass: .unknown, basis: "licence \(key) is not in the licence table")
    }

    private func lookup(_ key: String) -> LicenceRule? {
        if let rule = ids[key] { return rule }
        return prefixes.filter { key.hasPrefix($0.key) }.max { $0.key.count < $1.key.count }?.value
    }
}

extension LicenceTable {
    /// formats.md §7.
    public static let defaults: LicenceTable = {
        let permissive = LicenceRule(.permissive)
        let copyleft = LicenceRule(.permissive, note: "copyleft: derivatives and distributed modifications must use the same licence")
        let shareAlike = LicenceRule(.permissive, note: "share-alike: adaptations must be shared under the same licence")
        let llama = [
            "licensees with more than 700 million monthly active users need a separate licence from Meta",
            "follow the Acceptable Use Policy",
            "display \"Built with Llama\" and keep \"Llama\" at the start of derivative model names",
        ]
        let openRail = ["the use restrictions of the licence (Attachment A) flow down to every user and derivative"]
        let research = LicenceRule(.research)
        var ids: [String: LicenceRule] = [
            "apache-2.0": permissive, "mit": permissive, "isc": permissive, "cc0-1.0": permissive, "cc-by-4.0": permissive,
            "cc-by-3.0": permissive, "unlicense": permissive, "zlib": permissive, "bsl-1.0": permissive, "wtfpl": permissive,
            "openrail-s": LicenceRule(.conditional, obligations: openRail),
            "cc-by-sa-4.0": shareAlike, "cc-by-sa-3.0": shareAlike,
            "gpl": copyleft, "gpl-2.0": copyleft, "gpl-3.0": copyleft, "lgpl": copyleft, "lgpl-2.1": copyleft,
            "lgpl-3.0": copyleft, "lgpl-lr": copyleft, "agpl-3.0": copyleft,
            "llama2": LicenceRule(.conditional, obligations: llama),
            "llama3": LicenceRule(.conditional, obligations: llama),
            "llama3.1": LicenceRule(.conditional, obligations: llama),
            "llama3.2": LicenceRule(.conditional, obligations: llama + ["the multimodal models' licence excludes individuals and companies in the EU"]),
            "llama3.3": LicenceRule(.conditional, obligations: llama),
            "llama4": LicenceRule(.conditional, obligations: llama + ["the multimodal models' licence excludes individuals and companies in the EU"]),
            "gemma": LicenceRule(.conditional, obligations: ["the Gemma Prohibited Use Policy flows down to every user and derivative", "pass the Gemma Terms of Use on with redistributions"]),
            "openrail": LicenceRule(.conditional, obligations: openRail),
            "openrail++": LicenceRule(.conditional, obligations: openRail),
            "bigscience-openrail-m": LicenceRule(.conditional, obligations: openRail),
            "creativeml-openrail-m": LicenceRule(.conditional, obligations: openRail),
            "bigcode-openrail-m": LicenceRule(.conditional, obligations: openRail),
            "bigscience-bloom-rail-1.0": LicenceRule(.conditional, obligations: openRail),
            "cc-by-nd-4.0": LicenceRule(.conditional, obligations: ["no derivatives: fine-tunes, merges and quantisations may not be distributed"]),
            "qwen": LicenceRule(.conditional, obligations: ["licensees with more than 100 million monthly active users need a separate licence from Alibaba Cloud"]),
            "tongyi-qianwen": LicenceRule(.conditional, obligations: ["licensees with more than 100 million monthly active users need a separate licence from Alibaba Cloud"]),
            "deepseek": LicenceRule(.conditional, obligations: ["the use restrictions of the DeepSeek Model License (Attachment A) flow down to every user and derivative"]),
            "fair-noncommercial-research-license": research, "deepfloyd-if-license": research, "apple-amlr": research,
            "intel-research": research, "h-research": research, "mrl": research, "mnpl": research,
            "qwen-research": research, "tongyi-qianwen-research": research,
            "unknown": LicenceRule(.unknown),
        ]
        // Common `license_name` spellings for `license: other`.
        for (name, id) in [
            ("llama 2 community license", "llama2"), ("llama 3 community license", "llama3"),
            ("llama 3.1 community license", "llama3.1"), ("llama 3.2 community license", "llama3.2"),
            ("llama 3.3 community license", "llama3.3"), ("llama 4 community license", "llama4"),
            ("gemma terms of use", "gemma"), ("qwen license", "qwen"), ("qwen research license", "qwen-research"),
            ("deepseek license", "deepseek"), ("mistral research license", "mrl"), ("mistral ai non-production license", "mnpl"),
        ] {
            ids[name] = ids[id]
        }
        let prefixes: [String: LicenceRule] = [
            "bsd-": permissive, "cc-by-nc-": research, "cc-by-nc-sa-": research, "cc-by-nc-nd-": research,
            "gpl-": copyleft, "lgpl-": copyleft, "agpl-": copyleft,
        ]
        return LicenceTable(ids: ids, prefixes: prefixes)
    }()
}
