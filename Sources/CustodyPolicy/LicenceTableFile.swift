package import CustodyCore
import Yams

/// `Registry/licenses.yaml`: additions to and overrides of the built-in licence table.
///
/// ```yaml
/// licenses:
///   acme-internal-1.0: {class: permissive}
///   some-model-license: {class: conditional, obligations: ["attribute Some Lab in the product"]}
/// prefixes:
///   acme-research-: {class: research}
/// ```
package enum LicenceTableFile {
    package static func parse(_ yaml: String, source: String) throws(Policy.Invalid) -> LicenceTable {
        struct Document: Decodable {
            var licenses: [String: LicenceRule]?
            var prefixes: [String: LicenceRule]?
        }
        do {
            let document = try YAMLDecoder().decode(Document.self, from: yaml)
            func lowered(_ rules: [String: LicenceRule]?) -> [String: LicenceRule] {
                Dictionary((rules ?? [:]).map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { _, new in new })
            }
            return LicenceTable(ids: lowered(document.licenses), prefixes: lowered(document.prefixes))
        } catch {
            throw Policy.Invalid(description: "\(source): \(error)")
        }
    }
}
