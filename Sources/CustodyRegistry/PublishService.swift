package import CustodyCore
import CustodyScan
package import CustodyStorage
package import Foundation
import Prometheus
import Yams

/// Turns a publish request into a signed, recorded version: validates names and paths, checks every blob, reads
/// licence and provenance from the bundle's model card, verifies the publisher's signature against the trusted
/// keys, signs the manifest with the registry key, and commits it all in one transaction.
package struct PublishService: Sendable {
    package let blobs: any BlobStore
    package let catalog: any ModelCatalog
    package let gate: GateService
    package let policies: PolicySet
    package let trust: TrustStore
    package let registryKey: PrivateSigningKey
    package let metrics: RegistryMetrics
    package let changes: any ChangeFeed
    /// A scan verdict at or above which a publish is refused outright (`scan.refuse`); nil stores every verdict and
    /// leaves the decision to the policies.
    package let refusing: Verdict?

    package init(
        blobs: any BlobStore, catalog: any ModelCatalog, gate: GateService, policies: PolicySet, trust: TrustStore,
        registryKey: PrivateSigningKey, metrics: RegistryMetrics, changes: any ChangeFeed, refusing: Verdict? = nil
    ) {
        self.refusing = refusing
        self.blobs = blobs
        self.catalog = catalog
        self.gate = gate
        self.policies = policies
        self.trust = trust
        self.registryKey = registryKey
        self.metrics = metrics
        self.changes = changes
    }

    /// Paths that OMS verifiers skip, so they cannot be part of a version: a verifier would report them missing.
    package static let ignoredPaths = ModelTree.bundleIgnorePaths

    package func publish(_ request: API.PublishRequest, model: ModelName, publishedBy: String) async throws(CustodyError) -> PublishOutcome {
        try VersionTag.validate(request.version)
        guard !request.files.isEmpty else { throw CustodyError(.invalidArgument, "a version needs at least one file") }
        var seen = Set<String>()
        for file in request.files {
            try BundlePath.validate(file.path)
            guard seen.insert(file.path).inserted else { throw CustodyError(.invalidArgument, "file '\(file.path)' is listed twice") }
            if let ignored = Self.ignoredPaths.first(where: { file.path == $0 || file.path.hasPrefix($0 + "/") }) {
                throw CustodyError(.invalidArgument, "file '\(file.path)' is under '\(ignored)', which model signatures leave out")
            }
            guard try await blobs.size(of: file.digest) == file.size else {
                throw CustodyError(.invalidArgument, "file '\(file.path)': blob \(file.digest) of \(file.size) bytes has not been uploaded")
            }
        }
        let files = request.files.sorted { ResourceOrder.precedes($0.path, $1.path) }
        let manifest = Self.manifest(of: files, model: model)

        var license = request.license ?? API.License()
        var provenance = request.provenance ?? API.Provenance()
        if let card = files.first(where: { $0.path == "README.md" }) {
            try await applyModelCard(card, license: &license, provenance: &provenance)
        }
        let scan = try await scan(files)
        try refuseIfConfigured(scan)
        try applyExtractedMetadata(scan, license: &license, provenance: &provenance)
        for base in provenance.baseModels {
            guard !base.isEmpty else { throw CustodyError(.invalidArgument, "a base model reference is empty") }
            // A Hugging Face id that matches several registry models is refused rather than guessed between.
            if case .ambiguous(let candidates) = try await gate.resolveBase(base) {
                throw CustodyError(
                    .invalidArgument,
                    "base model '\(base)' matches several registry models (\(candidates.joined(separator: ", "))); name one as ns/name@version")
            }
        }

        if let declared = request.licenseClass {
            guard let claimed = LicenceClass.declared(declared) else {
                throw CustodyError(
                    .invalidArgument,
                    "licence class '\(declared)' is not one of permissive, conditional, research, unknown, commercial, non-commercial")
            }
            let classified = policies.snapshot.licences.classify(id: license.id, name: license.name)
            guard claimed.contains(classified.licenceClass) else {
                throw CustodyError(
                    .invalidArgument,
                    "the declared licence class '\(declared)' contradicts the licence: \(classified.basis) is \(classified.licenceClass.rawValue)")
            }
        }
        var publisher: SignatureRecord?
        if let encoded = request.signature {
            guard let bytes = Data(base64Encoded: encoded) else {
                throw CustodyError(.invalidArgument, "the publisher signature is not base64")
            }
            publisher = try await verifyPublisherSignature(Array(bytes), files: files, trusted: try await trust.keys())
        }
        let registryBundle = try ModelSigning().sign(manifest, with: registryKey)
        let registry = SignatureRecord(
            status: .verified, keyName: "registry", keyHint: registryKey.publicKey.hint, bundle: registryBundle.encoded())
        let outcome = try await catalog.publishVersion(
            NewVersion(
                model: model, version: request.version, bundleDigest: manifest.rootDigest, files: files, license: license,
                provenance: provenance, publisherSignature: publisher, registrySignature: registry, publishedBy: publishedBy,
                scan: scan))
        if case .created = outcome {
            metrics.publishes.increment()
            try await changes.announce(.published(model))
        }
        return outcome
    }

    /// The OMS manifest of a version's files (in model_signing's order); its root digest is the bundle digest.
    package static func manifest(of files: [API.FileEntry], model: ModelName) -> ModelManifest {
        let sorted = files.sorted { ResourceOrder.precedes($0.path, $1.path) }
        return ModelManifest(
            modelName: model.name,
            serialization: SerializationParameters(method: .files, allowSymlinks: false, ignorePaths: ignoredPaths),
            resources: sorted.map { Resource(name: $0.path, algorithm: "sha256", digest: $0.digest) })
    }

    /// Attaches a publisher's OMS bundle to a version published unsigned (pushed as an OCI referrer): it counts
    /// only when a trusted key signed it over exactly the version's files. Returns false when the version has a
    /// publisher signature already; the gate's kept decisions about the version are dropped.
    package func attachPublisherSignature(
        _ bundle: [UInt8], to version: API.VersionDetail, actor: String
    ) async throws(CustodyError) -> Bool {
        let model = try ModelName(parsing: version.model)
        let signature = try await verifyPublisherSignature(bundle, files: version.files, trusted: try await trust.keys())
        guard try await catalog.attachPublisherSignature(model, version: version.version, signature, actor: actor) else { return false }
        try await changes.announce(.status(model, version: version.version))
        return true
    }

    /// The publisher's bundle must be signed by a trusted key and cover exactly these files.
    private func verifyPublisherSignature(
        _ bytes: [UInt8], files: [API.FileEntry], trusted: [TrustStore.TrustedKey]
    ) async throws(CustodyError) -> SignatureRecord {
        let bundle = try SigstoreBundle(decoding: bytes, source: "publisher signature")
        let candidates = trusted.filter { bundle.keyHint == nil || $0.key.hint == bundle.keyHint }
        guard !candidates.isEmpty else {
            throw CustodyError(
                .verificationFailed, "the publisher signature is by a key that is not trusted here (key hint \(bundle.keyHint ?? "none"))")
        }
        var signed: (ModelManifest, TrustStore.TrustedKey)?
        for trusted in candidates {
            if let manifest = try? ModelSigning().signedManifest(of: bundle, key: trusted.key, source: "publisher signature") {
                signed = (manifest, trusted)
                break
            }
        }
        guard let (expected, trusted) = signed else {
            throw CustodyError(.verificationFailed, "the publisher signature does not verify with any trusted key")
        }
        let actual: ModelManifest
        switch expected.serialization.method {
        case .files:
            let resources = files.map { Resource(name: $0.path, algorithm: "sha256", digest: $0.digest) }
            actual = ModelManifest(modelName: expected.modelName, serialization: expected.serialization, resources: resources)
        case .shards:
            // Shard digests cannot be derived from file digests: hash the stored blobs the way the publisher did.
            let (name, serialization) = (expected.modelName, expected.serialization)
            actual = try await blobs.withLocalFiles(files.map(\.digest)) { paths throws(CustodyError) in
                let modelFiles = zip(files, paths).map { file, path in ModelFile(name: file.path, path: path, size: file.size) }
                return try ModelManifest.hashing(model: modelFiles, name: name, serialization: serialization)
            }
        }
        let diff = ManifestDiff(expected: expected, actual: actual)
        guard diff.isEmpty else {
            throw CustodyError(
                .verificationFailed, "the publisher signature does not cover these files (\(diff.summary))", details: diff.lines)
        }
        return SignatureRecord(status: .verified, keyName: trusted.name, keyHint: trusted.key.hint, bundle: bytes)
    }

    /// Scans every file from the blob store: formats, validity, code that loading would run. A dangerous file does
    /// not stop the publish — policies decide what may ship — but the verdict is stored and recorded.
    private func scan(_ files: [API.FileEntry]) async throws(CustodyError) -> BundleReport {
        let report = try await blobs.withLocalFiles(files.map(\.digest)) { paths throws(CustodyError) in
            try ModelScanner().scanBundle(zip(files, paths).map { file, path in (name: file.path, path: path) })
        }
        metrics.scans(report.verdict).increment()
        return report
    }

    /// With `scan.refuse` set, a bundle whose verdict reaches it is refused before anything is recorded, naming the
    /// files and what was found in them.
    private func refuseIfConfigured(_ scan: BundleReport) throws(CustodyError) {
        guard let refusing, scan.verdict >= refusing else { return }
        let named = scan.files.filter { $0.verdict >= refusing }.prefix(5).map { file in
            let subjects = Set(file.findings.filter { $0.verdict >= refusing }.map(\.subject)).sorted().prefix(3)
            return "\(file.path) (\(subjects.joined(separator: ", ")))"
        }
        throw CustodyError(
            .invalidModel,
            "the scan found the bundle \(scan.verdict.rawValue): \(named.joined(separator: "; ")); this registry refuses \(refusing.rawValue) bundles at publish (scan.refuse)"
        )
    }

    /// Fills the licence and base models left empty from what weight files declare about themselves (GGUF
    /// `general.license` / `general.base_model.*`, safetensors `__metadata__`); a declaration that contradicts the
    /// request or the model card is an error naming both.
    private func applyExtractedMetadata(
        _ scan: BundleReport, license: inout API.License, provenance: inout API.Provenance
    ) throws(CustodyError) {
        var licences: [String: (value: String, files: [String])] = [:]
        var bases: [Set<String>: (value: [String], files: [String])] = [:]
        for file in scan.files {
            if let declared = file.metadata?.license?.trimmingCharacters(in: .whitespaces), !declared.isEmpty {
                licences[declared.lowercased(), default: (declared, [])].files.append(file.path)
            }
            if let declared = file.metadata?.baseModels, !declared.isEmpty {
                bases[Set(declared.map(Self.normalizedModel)), default: (declared, [])].files.append(file.path)
            }
        }
        func describe(_ files: [String]) -> String { files.prefix(3).joined(separator: ", ") + (files.count > 3 ? ", …" : "") }
        if licences.count > 1 {
            let listed = licences.values.map { "'\($0.value)' in \(describe($0.files))" }.sorted().joined(separator: "; ")
            throw CustodyError(.invalidArgument, "the weight files declare different licences: \(listed)")
        }
        if let (key, declared) = licences.first {
            if let given = license.id, given.lowercased() != key {
                throw CustodyError(
                    .invalidArgument,
                    "the licence is '\(given)' in the request or model card but '\(declared.value)' in \(describe(declared.files)); make them agree")
            }
            if license.id == nil { license.id = declared.value }
        }
        if bases.count > 1 {
            let listed = bases.values.map { "\($0.value) in \(describe($0.files))" }.sorted().joined(separator: "; ")
            throw CustodyError(.invalidArgument, "the weight files declare different base models: \(listed)")
        }
        if let (key, declared) = bases.first {
            if !provenance.baseModels.isEmpty, Set(provenance.baseModels.map(Self.normalizedModel)) != key {
                throw CustodyError(
                    .invalidArgument,
                    "the base models are \(provenance.baseModels) in the request or model card but \(declared.value) in \(describe(declared.files)); make them agree"
                )
            }
            if provenance.baseModels.isEmpty { provenance.baseModels = declared.value }
        }
    }

    /// Base model names compared without case or a Hugging Face URL prefix.
    package static func normalizedModel(_ name: String) -> String {
        let text = name.lowercased()
        return HubID.removingPrefix(text) ?? text
    }

    /// Fills licence and provenance fields the request left empty from the Hugging Face model card's YAML front
    /// matter; a field given both ways with different values is an error.
    private func applyModelCard(
        _ card: API.FileEntry, license: inout API.License, provenance: inout API.Provenance
    ) async throws(CustodyError) {
        guard card.size <= 1 << 20 else { return }
        let bytes = try await blobs.withLocalFiles([card.digest]) { paths throws(CustodyError) in
            try PosixFile.contents(of: paths[0], limit: 1 << 20)
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let front = ModelCard.frontMatter(of: text) else { return }
        let fields: ModelCard.Fields
        do { fields = try ModelCard.parse(front) } catch {
            throw CustodyError(.invalidArgument, "README.md: the model card's YAML front matter is invalid: \(error)")
        }
        func merge(_ given: inout String?, _ card: String?, _ name: String) throws(CustodyError) {
            guard let card else { return }
            if let given, given != card {
                throw CustodyError(.invalidArgument, "\(name) is '\(given)' in the request but '\(card)' in README.md")
            }
            given = card
        }
        func merge(_ given: inout [String], _ card: [String], _ name: String) throws(CustodyError) {
            guard !card.isEmpty else { return }
            if !given.isEmpty, Set(given) != Set(card) {
                throw CustodyError(.invalidArgument, "\(name) differ: \(given) in the request, \(card) in README.md")
            }
            given = card
        }
        try merge(&license.id, fields.license, "the licence")
        try merge(&license.name, fields.licenseName, "the licence name")
        try merge(&license.link, fields.licenseLink, "the licence link")
        try merge(&provenance.baseModels, fields.baseModels, "base models")
        try merge(&provenance.datasets, fields.datasets, "datasets")
    }
}

/// The metadata Custody reads from a Hugging Face model card (`README.md` with YAML front matter).
package enum ModelCard {
    package struct Fields: Equatable {
        package var license: String?
        package var licenseName: String?
        package var licenseLink: String?
        package var baseModels: [String] = []
        package var datasets: [String] = []
    }

    /// The YAML between a leading `---` line and the next `---` line.
    package static func frontMatter(of text: String) -> String? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        guard lines.first == "---", let end = lines.dropFirst().firstIndex(of: "---") else { return nil }
        return lines[1..<end].joined(separator: "\n")
    }

    package static func parse(_ yaml: String) throws -> Fields {
        guard let node = try Yams.compose(yaml: yaml), let mapping = node.mapping else { return Fields() }
        func string(_ key: String) -> String? { mapping[key]?.string }
        func list(_ key: String) -> [String] {
            guard let value = mapping[key] else { return [] }
            if let text = value.string { return [text] }
            return value.sequence?.compactMap(\.string) ?? []
        }
        return Fields(
            license: string("license"), licenseName: string("license_name"), licenseLink: string("license_link"),
            baseModels: list("base_model"), datasets: list("datasets"))
    }
}
