package import CustodyCore
package import CustodyPolicy
package import CustodyStorage
package import Foundation

/// A version as a CycloneDX 1.6 AI-BOM: the model as a `machine-learning-model` component with its bundle hash,
/// licence, pedigree (base models), provenance as external references and properties, its files as `file`
/// components, signatures and scan results as properties, and advisories and dangerous scan findings as
/// vulnerabilities.
package enum AIBOM {
    package static func document(
        detail: API.VersionDetail, licence: LicenceClassification, bases: [(reference: String, inRegistry: Bool, digest: ContentDigest?)],
        advisories: [Advisory]
    ) -> [String: Any] {
        let modelRef = "model:\(detail.model)@\(detail.version)"
        let (namespace, name) = detail.model.split(separator: "/").map(String.init).splitPair
        var licences: [[String: Any]] = []
        if let id = detail.license.id ?? detail.license.name {
            var entry: [String: Any] = ["name": id]
            if let link = detail.license.link { entry["url"] = link }
            licences.append(["license": entry])
        }
        var properties: [[String: String]] = [
            ["name": "custody:licence.class", "value": licence.licenceClass.rawValue],
            ["name": "custody:licence.basis", "value": licence.basis],
            ["name": "custody:published.at", "value": detail.createdAt],
            ["name": "custody:status", "value": detail.status?.state.rawValue ?? "active"],
        ]
        if let by = detail.publishedBy { properties.append(["name": "custody:published.by", "value": by]) }
        for obligation in licence.obligations { properties.append(["name": "custody:licence.obligation", "value": obligation]) }
        for signature in detail.signatures {
            properties.append([
                "name": "custody:signature.\(signature.kind.rawValue)",
                "value": signature.status.rawValue + (signature.keyName.map { " by \($0)" } ?? "")
                    + (signature.keyHint.map { " (key hint \($0))" } ?? ""),
            ])
        }
        if let scan = detail.scan { properties.append(["name": "custody:scan.verdict", "value": scan.verdict.rawValue]) }
        let provenance = detail.provenance
        if let revision = provenance.source?.revision { properties.append(["name": "custody:source.revision", "value": revision]) }
        if let run = provenance.pipelineRun { properties.append(["name": "custody:pipeline.run", "value": run]) }
        for dataset in provenance.datasets { properties.append(["name": "custody:dataset", "value": dataset]) }
        for (key, value) in provenance.annotations.sorted(by: { $0.key < $1.key }) {
            properties.append(["name": "custody:annotation.\(key)", "value": value])
        }

        var model: [String: Any] = [
            "type": "machine-learning-model", "bom-ref": modelRef, "group": namespace, "name": name, "version": detail.version,
            "hashes": [["alg": "SHA-256", "content": detail.bundleDigest.hex]],
            "properties": properties,
        ]
        if !licences.isEmpty { model["licenses"] = licences }
        if let uri = provenance.source?.uri, URL(string: uri)?.scheme != nil {
            model["externalReferences"] = [["type": "distribution", "url": uri, "comment": "source of the weights"]]
        }
        if !bases.isEmpty {
            model["pedigree"] = [
                "ancestors": bases.map { base -> [String: Any] in
                    var ancestor: [String: Any] = ["type": "machine-learning-model", "name": base.reference]
                    if let digest = base.digest { ancestor["hashes"] = [["alg": "SHA-256", "content": digest.hex]] }
                    if !base.inRegistry { ancestor["description"] = "not held by this registry" }
                    return ancestor
                }
            ]
        }
        if !provenance.datasets.isEmpty {
            model["modelCard"] = [
                "modelParameters": ["datasets": provenance.datasets.map { ["type": "dataset", "name": $0] }]
            ]
        }

        let reports = Dictionary((detail.scan?.files ?? []).map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        var files: [[String: Any]] = []
        for (index, file) in detail.files.enumerated() {
            var component: [String: Any] = [
                "type": "file", "bom-ref": "file:\(index):\(file.path)", "name": file.path,
                "hashes": [["alg": "SHA-256", "content": file.digest.hex]],
            ]
            if let report = reports[file.path] {
                component["properties"] =
                    [
                        ["name": "custody:format", "value": report.format.rawValue],
                        ["name": "custody:scan.verdict", "value": report.verdict.rawValue],
                    ] + (report.invalid.map { [["name": "custody:invalid", "value": $0]] } ?? [])
            }
            files.append(component)
        }

        var vulnerabilities: [[String: Any]] = []
        for advisory in advisories {
            var rating: [String: Any] = ["severity": advisory.severity.rawValue]
            if let score = advisory.score {
                rating["score"] = score
                rating["method"] = advisory.severityBasis.hasPrefix("CVSS:3.0") ? "CVSSv3" : "CVSSv31"
                rating["vector"] = String(advisory.severityBasis.prefix { $0 != " " })
            }
            var vulnerability: [String: Any] = [
                "bom-ref": "advisory:\(advisory.id)", "id": advisory.id, "source": ["name": "custody advisories"],
                "ratings": [rating], "affects": [["ref": modelRef]], "updated": advisory.modified,
            ]
            if let summary = advisory.summary { vulnerability["description"] = summary }
            if let published = advisory.published { vulnerability["published"] = published }
            if !advisory.aliases.isEmpty { vulnerability["references"] = advisory.aliases.map { ["id": $0, "source": ["name": "alias"]] } }
            vulnerabilities.append(vulnerability)
        }
        for (index, file) in detail.files.enumerated() {
            guard let report = reports[file.path] else { continue }
            for (number, finding) in report.findings.enumerated() where finding.verdict == .dangerous {
                vulnerabilities.append([
                    "bom-ref": "scan:\(index):\(number)", "id": "CUSTODY-SCAN-\(finding.kind.rawValue)",
                    "source": ["name": "custody scanner"], "ratings": [["severity": "critical"]],
                    "description": "\(finding.subject): \(finding.reason)" + (finding.member.map { " (in \($0))" } ?? ""),
                    "affects": [["ref": "file:\(index):\(file.path)"]],
                ])
            }
        }

        var document: [String: Any] = [
            "bomFormat": "CycloneDX", "specVersion": "1.6", "serialNumber": "urn:uuid:\(UUID().uuidString.lowercased())", "version": 1,
            "metadata": [
                "timestamp": Date.now.formatted(.iso8601),
                "tools": ["components": [["type": "application", "name": "custody"]]],
                "component": ["type": "machine-learning-model", "bom-ref": "metadata:\(modelRef)", "name": detail.model, "version": detail.version],
            ],
            "components": [model] + files,
            "dependencies": [["ref": modelRef, "dependsOn": files.compactMap { $0["bom-ref"] as? String }]],
        ]
        if !vulnerabilities.isEmpty { document["vulnerabilities"] = vulnerabilities }
        return document
    }
}

extension Array where Element == String {
    /// `["ns", "name"]` as a pair.
    package var splitPair: (String, String) { (first ?? "", count > 1 ? self[1] : "") }
}
