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

    /// A class a publisher may declare: the four classes, or the words licences are usually sorted by —
    /// "commercial" (permissive or conditional), "restricted" (conditional: commercial use under use restrictions
    /// and obligations), "non-commercial" and "research-only" (research; the rule's obligation says which).
    public static func declared(_ text: String) -> Set<LicenceClass>? {
        switch text.lowercased() {
        case "commercial": [.permissive, .conditional]
        case "restricted": [.conditional]
        case "non-commercial", "noncommercial", "research-only": [.research]
        default: LicenceClass(rawValue: text.lowercased()).map { [$0] }
        }
    }
}

/// One row of the licence table: a class and, for `conditional` licences, the obligations a deployment takes on.
public struct LicenceRule: Codable, Sendable, Hashable {
    /// The class.
    public var licenceClass: LicenceClass
    /// What a deployment takes on (attribution, use restrictions, user thresholds).
    public var obligations: [String]
    /// A note worth surfacing (copyleft, share-alike), not an obligation.
    public var note: String?

    /// A rule classifying a licence as `licenceClass`.
    public init(_ licenceClass: LicenceClass, obligations: [String] = [], note: String? = nil) {
        self.licenceClass = licenceClass
        self.obligations = obligations
        self.note = note
    }

    enum CodingKeys: String, CodingKey {
        case licenceClass = "class"
        case obligations, note
    }

    /// Decodes a rule from the licence table: a bare class, or a class with obligations and a note.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        licenceClass = try container.decode(LicenceClass.self, forKey: .licenceClass)
        obligations = try container.decodeIfPresent([String].self, forKey: .obligations) ?? []
        note = try container.decodeIfPresent(String.self, forKey: .note)
    }
}

/// The classification of a licence as recorded with a version.
public struct LicenceClassification: Codable, Sendable, Hashable {
    /// The class.
    public var licenceClass: LicenceClass
    /// What the class was decided from (`apache-2.0`, `license_name: …`, or why it is unknown).
    public var basis: String
    /// What a deployment takes on.
    public var obligations: [String]
    /// Anything else the table says about the licence.
    public var note: String?

    /// A classification from its parts.
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

    /// A table of exact licence ids and of id prefixes (`llama3` for `llama3.1`, `llama3.2`).
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
                return LicenceClassification(
                    licenceClass: rule.licenceClass, basis: "license_name \(name)", obligations: rule.obligations, note: rule.note)
            }
            let why =
                key.isEmpty
                ? (name.map { "licence name \($0) is not in the licence table" } ?? "no licence declared")
                : "licence 'other' without a recognised license_name"
            return LicenceClassification(licenceClass: .unknown, basis: why)
        }
        if let rule = lookup(key) {
            return LicenceClassification(licenceClass: rule.licenceClass, basis: key, obligations: rule.obligations, note: rule.note)
        }
        return LicenceClassification(licenceClass: .unknown, basis: "licence \(key) is not in the licence table")
    }

    /// Exact first; then the same name with `-` and `_` read as spaces and the other way round (`deepseek-license`
    /// is `deepseek license`); then the longest prefix.
    private func lookup(_ key: String) -> LicenceRule? {
        let trimmed = key.trimmingCharacters(in: .whitespaces)
        let spaced = trimmed.replacingOccurrences(of: "_", with: " ").replacingOccurrences(of: "-", with: " ")
        for candidate in [trimmed, spaced, spaced.replacingOccurrences(of: " ", with: "-")] {
            if let rule = ids[candidate] { return rule }
        }
        return prefixes.filter { trimmed.hasPrefix($0.key) }.max { $0.key.count < $1.key.count }?.value
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
        // Two kinds of `research` licence, told apart by their obligation: non-commercial use (any purpose that is
        // not commercial) and research-only use (no production use at all, commercial or not).
        let nonCommercial = LicenceRule(.research, obligations: ["non-commercial use only"])
        let researchOnly = LicenceRule(.research, obligations: ["research and evaluation only: no production use"])
        let nonProduction = LicenceRule(.research, obligations: ["non-production use only (research, testing, evaluation)"])
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
            "llama3.2": LicenceRule(
                .conditional, obligations: llama + ["the multimodal models' licence excludes individuals and companies in the EU"]),
            "llama3.3": LicenceRule(.conditional, obligations: llama),
            "llama4": LicenceRule(.conditional, obligations: llama + ["the multimodal models' licence excludes individuals and companies in the EU"]),
            "gemma": LicenceRule(
                .conditional,
                obligations: [
                    "the Gemma Prohibited Use Policy flows down to every user and derivative", "pass the Gemma Terms of Use on with redistributions",
                ]),
            "openrail": LicenceRule(.conditional, obligations: openRail),
            "openrail++": LicenceRule(.conditional, obligations: openRail),
            "bigscience-openrail-m": LicenceRule(.conditional, obligations: openRail),
            "creativeml-openrail-m": LicenceRule(.conditional, obligations: openRail),
            "bigcode-openrail-m": LicenceRule(.conditional, obligations: openRail),
            "bigscience-bloom-rail-1.0": LicenceRule(.conditional, obligations: openRail),
            "cc-by-nd-4.0": LicenceRule(.conditional, obligations: ["no derivatives: fine-tunes, merges and quantisations may not be distributed"]),
            "qwen": LicenceRule(
                .conditional, obligations: ["licensees with more than 100 million monthly active users need a separate licence from Alibaba Cloud"]),
            "tongyi-qianwen": LicenceRule(
                .conditional, obligations: ["licensees with more than 100 million monthly active users need a separate licence from Alibaba Cloud"]),
            "deepseek": LicenceRule(
                .conditional,
                obligations: ["the use restrictions of the DeepSeek Model License (Attachment A) flow down to every user and derivative"]),
            "fair-noncommercial-research-license": researchOnly, "deepfloyd-if-license": researchOnly, "apple-amlr": researchOnly,
            "intel-research": researchOnly, "h-research": researchOnly, "mrl": researchOnly, "mnpl": nonProduction,
            "qwen-research": researchOnly, "tongyi-qianwen-research": researchOnly,
            "unknown": LicenceRule(.unknown),
            // The rest of the Hub's model-card licence list.
            "afl-3.0": permissive, "artistic-2.0": permissive, "bsd": permissive, "cc-by-2.0": permissive, "cc-by-2.5": permissive,
            "cdla-permissive-1.0": permissive, "cdla-permissive-2.0": permissive, "ecl-2.0": permissive, "etalab-2.0": permissive,
            "lppl-1.3c": permissive, "ms-pl": permissive, "postgresql": permissive, "ofl-1.1": permissive, "ncsa": permissive,
            "pddl": permissive, "odc-by": permissive, "openmdw-1.0": permissive, "apple-ascl": permissive,
            "cdla-sharing-1.0": shareAlike, "odbl": shareAlike,
            "epl-1.0": copyleft, "epl-2.0": copyleft, "eupl-1.1": copyleft, "eupl-1.2": copyleft, "gfdl": copyleft,
            "mpl-2.0": copyleft, "osl-3.0": copyleft,
            "c-uda": LicenceRule(
                .research, obligations: ["computational analysis only"],
                note: "the Computational Use of Data Agreement allows computational analysis, not redistribution of the data"),
            "cc": LicenceRule(.unknown),
            // license_name families of open-weight models, as their cards write them for `license: other`.
            "falcon-llm-license": LicenceRule(
                .conditional,
                obligations: [
                    "the Falcon acceptable use policy flows down to every user and derivative", "attribute the Technology Innovation Institute",
                ]),
            "tii-falcon-llm-license": LicenceRule(
                .conditional,
                obligations: [
                    "the Falcon acceptable use policy flows down to every user and derivative", "attribute the Technology Innovation Institute",
                ]),
            "nvidia-open-model-license": LicenceRule(
                .conditional,
                obligations: [
                    "keep NVIDIA's attribution notice and pass the licence on with redistributions",
                    "the licence ends if guardrails are bypassed without a substitute",
                ]),
            "nvidia-oneway-noncommercial-license": nonCommercial, "nsclv1": nonCommercial, "nvidia-license": nonCommercial,
            "stabilityai-community": LicenceRule(
                .conditional, obligations: ["organisations with more than USD 1 million annual revenue need an enterprise licence from Stability AI"]),
            "stabilityai-non-commercial-research-community-license": nonCommercial, "sai-nc-community": nonCommercial,
            "cohere-non-commercial": nonCommercial, "cc-by-nc-4.0-with-addendum": nonCommercial, "mistral-research-license": researchOnly,
            "gemma-terms-of-use": LicenceRule(
                .conditional,
                obligations: [
                    "the Gemma Prohibited Use Policy flows down to every user and derivative", "pass the Gemma Terms of Use on with redistributions",
                ]),
            "deepseek-license": LicenceRule(
                .conditional,
                obligations: ["the use restrictions of the DeepSeek Model License (Attachment A) flow down to every user and derivative"]),
            "yi-license": LicenceRule(.conditional, obligations: ["attribute 01.AI and keep the Yi licence with redistributions"]),
            "microsoft-research-license": researchOnly, "phi": permissive,
        ]
        // Common `license_name` spellings for `license: other`.
        for (name, id) in [
            ("llama 2 community license", "llama2"), ("llama 3 community license", "llama3"),
            ("llama 3.1 community license", "llama3.1"), ("llama 3.2 community license", "llama3.2"),
            ("llama 3.3 community license", "llama3.3"), ("llama 4 community license", "llama4"),
            ("gemma terms of use", "gemma"), ("qwen license", "qwen"), ("qwen research license", "qwen-research"),
            ("deepseek license", "deepseek"), ("mistral research license", "mrl"), ("mistral ai non-production license", "mnpl"),
            ("llama2 community license", "llama2"), ("llama3 community license", "llama3"), ("llama3.1 community license", "llama3.1"),
            ("llama3.2 community license", "llama3.2"), ("llama3.3 community license", "llama3.3"), ("llama4 community license", "llama4"),
            ("llama-2-community-license", "llama2"), ("llama 3.1", "llama3.1"), ("llama 3.2", "llama3.2"), ("llama 3.3", "llama3.3"),
            ("deepseek model license", "deepseek"), ("qwen license agreement", "qwen"), ("tongyi qianwen license agreement", "qwen"),
            ("tongyi qianwen research license agreement", "qwen-research"), ("qwen research license agreement", "qwen-research"),
            ("mistral ai research license", "mrl"), ("mnpl-0.1", "mnpl"), ("falcon llm license", "falcon-llm-license"),
            ("tii falcon license 2.0", "falcon-llm-license"), ("falcon-mamba-7b-tii-license", "falcon-llm-license"),
            ("nvidia open model license agreement", "nvidia-open-model-license"), ("nvidia open model license", "nvidia-open-model-license"),
            ("apple sample code license", "apple-ascl"), ("apple-sample-code-license", "apple-ascl"),
            ("bigscience rail license v1.0", "bigscience-bloom-rail-1.0"), ("bigscience openrail-m", "bigscience-openrail-m"),
            ("creativeml openrail-m", "creativeml-openrail-m"), ("bigcode openrail-m", "bigcode-openrail-m"),
            ("stability ai community license", "stabilityai-community"), ("gemma license", "gemma"),
        ] {
            ids[name] = ids[id]
        }
        let prefixes: [String: LicenceRule] = [
            "bsd-": permissive, "cc-by-nc-": nonCommercial, "cc-by-nc-sa-": nonCommercial,
            "cc-by-nc-nd-": LicenceRule(
                .research, obligations: ["non-commercial use only", "no derivatives: fine-tunes, merges and quantisations may not be distributed"]),
            "gpl-": copyleft, "lgpl-": copyleft, "agpl-": copyleft,
        ]
        return LicenceTable(ids: ids, prefixes: prefixes)
    }()
}
