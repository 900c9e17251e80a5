package import CustodyCore
package import CustodyStorage
import Foundation

/// The registry as an OCI distribution registry sees it, for the OCI front door: a model is a repository, each
/// version is a ModelPack artifact tagged with its version tag, and the registry's signature, scan report and AI-BOM
/// are its referrers. Pushed model artifacts (ModelPack, KitOps ModelKits, Docker model artifacts) become versions
/// through the same publish path as `custody publish`. No HTTP here: the adapter maps ``Refusal`` to the
/// distribution spec's error codes.
package struct OCIArtifacts: Sendable {
    package let records: any OCIRecords
    package let catalog: Catalog
    package let uploads: Uploads
    package let publishing: PublishService
    package let audit: Audit
    /// Namespaces that may also hold manifests that are not models (container images, other artifacts).
    package let plainNamespaces: Set<String>
    package let maxManifestSize: Int
    /// A directory on the registry's disk where archive layers are unpacked.
    package let spool: String

    package init(
        records: any OCIRecords, catalog: Catalog, uploads: Uploads, publishing: PublishService, audit: Audit, plainNamespaces: Set<String>,
        maxManifestSize: Int, spool: String
    ) {
        self.spool = spool
        self.records = records
        self.catalog = catalog
        self.uploads = uploads
        self.publishing = publishing
        self.audit = audit
        self.plainNamespaces = plainNamespaces
        self.maxManifestSize = maxManifestSize
    }

    /// Why a request is refused, in the distribution spec's terms (its error codes).
    package struct Refusal: Error, Sendable, Equatable {
        package enum Code: String, Sendable {
            case blobUnknown = "BLOB_UNKNOWN"
            case blobUploadInvalid = "BLOB_UPLOAD_INVALID"
            case blobUploadUnknown = "BLOB_UPLOAD_UNKNOWN"
            case digestInvalid = "DIGEST_INVALID"
            case manifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
            case manifestInvalid = "MANIFEST_INVALID"
            case manifestUnknown = "MANIFEST_UNKNOWN"
            case nameInvalid = "NAME_INVALID"
            case nameUnknown = "NAME_UNKNOWN"
            case sizeInvalid = "SIZE_INVALID"
            case unauthorized = "UNAUTHORIZED"
            case denied = "DENIED"
            case unsupported = "UNSUPPORTED"
            case tooManyRequests = "TOOMANYREQUESTS"
        }

        package let code: Code
        package let message: String
        /// The spec's `detail`: the digest, name or tag concerned.
        package let detail: String?

        package init(_ code: Code, _ message: String, detail: String? = nil) {
            self.code = code
            self.message = message
            self.detail = detail
        }
    }

    // MARK: Names

    /// A repository name: the spec's grammar, and for this registry `namespace/name` (a model's name).
    package static func repository(_ name: String) throws(Refusal) -> ModelName {
        do throws(CustodyError) {
            return try ModelName(parsing: name)
        } catch {
            throw Refusal(.nameInvalid, "'\(name)' is not a repository of this registry (namespace/name, lowercase): \(error.message)", detail: name)
        }
    }

    package static func isDigest(_ reference: String) -> Bool { reference.contains(":") }

    package static func digest(_ text: String, code: Refusal.Code = .digestInvalid) throws(Refusal) -> ContentDigest {
        do throws(CustodyError) { return try ContentDigest(parsing: text) } catch {
            throw Refusal(code, "'\(text)' is not a digest this registry supports (sha256:<64 hex>)", detail: text)
        }
    }

    // MARK: Reading

    /// A manifest as resolved for a request: its record and, for a model version's own manifests, the version the
    /// gate decides.
    package struct Resolved: Sendable {
        package let model: ModelName
        package let record: OCIManifestRecord
        package var version: String? { record.version }
    }

    /// The manifest a tag or digest names in `repository`. A version tag names the version's manifest (generated and
    /// recorded the first time it is asked for); other tags name plain artifacts.
    package func manifest(_ model: ModelName, reference: String) async throws -> Resolved {
        let repository = model.description
        if Self.isDigest(reference) {
            let digest = try Self.digest(reference, code: .manifestUnknown)
            if let record = try await records.ociManifest(repository: repository, digest: digest) { return Resolved(model: model, record: record) }
            // A version's manifest is recorded when first asked for by tag; asked by digest first, record them all.
            for version in try await catalog.versions(model) { _ = try await modelManifest(version) }
            if let record = try await records.ociManifest(repository: repository, digest: digest) { return Resolved(model: model, record: record) }
            throw Refusal(.manifestUnknown, "\(repository) has no manifest \(digest)", detail: digest.description)
        }
        do throws(CustodyError) { try VersionTag.validate(reference) } catch {
            throw Refusal(.manifestInvalid, "'\(reference)' is not a tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})", detail: reference)
        }
        let order = try await catalog.versionOrder(model)
        if order?.contains(where: { $0.version == reference }) == true {
            let version = try await catalog.version(model, .version(reference))
            return Resolved(model: model, record: try await modelManifest(version))
        }
        if let digest = try await records.ociTag(repository: repository, tag: reference),
            let record = try await records.ociManifest(repository: repository, digest: digest)
        {
            return Resolved(model: model, record: record)
        }
        if order == nil, try await records.ociTags(repository: repository).isEmpty {
            throw Refusal(.nameUnknown, "repository \(repository) is not in this registry", detail: repository)
        }
        throw Refusal(.manifestUnknown, "\(repository) has no tag '\(reference)'", detail: reference)
    }

    /// The version's recorded manifest; for a version that has none yet (published through `/v1` or the Hub API),
    /// its ModelPack manifest is generated, recorded with its attachments, and returned. Generation uses only what the
    /// version recorded at publish, so every daemon generates the same bytes.
    package func modelManifest(_ version: API.VersionDetail) async throws -> OCIManifestRecord {
        if let recorded = try await records.ociModelManifest(repository: version.model, version: version.version) { return recorded }
        // The generated blobs are stored first; one already stored and unused may be collected before the records
        // name it, and is stored again.
        var attempt = 0
        while true {
            attempt += 1
            let config = ModelPack.config(of: version)
            _ = try await uploads.store(config.bytes)
            let bytes = ModelPack.manifest(of: version, config: config).encoded()
            let record = try OCIArtifacts.record(
                bytes, repository: version.model, kind: .model, version: version.version, parsed: try Self.parse(bytes))
            let attached = try await attachments(of: version, subject: record)
            do throws(CustodyError) {
                try await records.saveOCIManifests([record] + attached, tag: nil)
                return record
            } catch {
                guard error.code == .notFound, attempt < 3 else { throw error }
            }
        }
    }

    /// The registry's documents about a version as referrers of its manifest: the registry's OMS signature
    /// (`model.sig`), the scan report, and the AI-BOM as published (status and advisories change; `/v1` has the
    /// current one).
    func attachments(of version: API.VersionDetail, subject: OCIManifestRecord) async throws -> [OCIManifestRecord] {
        let model = try ModelName(parsing: version.model)
        var documents: [(ModelPack.Blob, kind: String, title: String)] = []
        if let signature = try? await catalog.registrySignature(model, version: version.version) {
            documents.append((ModelPack.Blob(mediaType: OCIMediaType.sigstoreBundle, bytes: signature), "registry-signature", "model.sig"))
        }
        if let scan = version.scan {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
            documents.append((ModelPack.Blob(mediaType: OCIMediaType.scanReport, bytes: Array(try encoder.encode(scan))), "scan-report", "scan.json"))
        }
        let bom = try await audit.bom(model, version: version.version, asPublished: true)
        documents.append((ModelPack.Blob(mediaType: OCIMediaType.cycloneDX, bytes: bom), "aibom", "aibom.cdx.json"))

        _ = try await uploads.store(OCIMediaType.emptyBytes)
        let subjectDescriptor = OCIDescriptor(mediaType: subject.mediaType, digest: subject.digest, size: UInt64(subject.bytes.count))
        var attached: [OCIManifestRecord] = []
        for (document, kind, title) in documents {
            _ = try await uploads.store(document.bytes)
            let bytes = ModelPack.attachment(document, kind: kind, title: title, subject: subjectDescriptor, created: version.createdAt).encoded()
            attached.append(
                try Self.record(bytes, repository: version.model, kind: .attachment, version: version.version, parsed: try Self.parse(bytes)))
        }
        return attached
    }

    /// Every tag of a repository: its versions' tags and its plain artifacts' tags, in lexical order.
    package func tags(_ model: ModelName) async throws -> [String] {
        let versions = try await catalog.versionOrder(model)?.map(\.version) ?? []
        let plain = try await records.ociTags(repository: model.description)
        guard versions.count + plain.count > 0 else {
            throw Refusal(.nameUnknown, "repository \(model) is not in this registry", detail: model.description)
        }
        return Set(versions + plain).sorted()
    }

    /// The manifests whose subject is `subject`, as descriptors (the spec's referrers index), optionally only those of
    /// one artifact type.
    package func referrers(_ model: ModelName, subject: ContentDigest, artifactType: String?) async throws -> [OCIDescriptor] {
        // A version's attachments are recorded with its manifest: make sure it is, when the subject is one.
        if try await records.ociManifest(repository: model.description, digest: subject) == nil {
            _ = try? await manifest(model, reference: subject.description)
        }
        return try await records.ociReferrers(repository: model.description, subject: subject).compactMap { record in
            let type = record.artifactType ?? (try? Self.parse(record.bytes))?.config?.mediaType
            if let artifactType, type != artifactType { return nil }
            return OCIDescriptor(
                mediaType: record.mediaType, digest: record.digest, size: UInt64(record.bytes.count), artifactType: type,
                annotations: record.annotations.isEmpty ? nil : record.annotations)
        }
    }

    // MARK: Parsing

    /// Parses manifest bytes: JSON, schemaVersion 2, a media type this registry stores.
    package static func parse(_ bytes: [UInt8], contentType: String? = nil) throws(Refusal) -> OCIManifest {
        let manifest: OCIManifest
        do { manifest = try JSONDecoder().decode(OCIManifest.self, from: Data(bytes)) } catch {
            throw Refusal(.manifestInvalid, "the manifest is not a JSON image manifest or index: \(Self.describe(error))")
        }
        guard manifest.schemaVersion == 2 else {
            throw Refusal(.manifestInvalid, "the manifest's schemaVersion is \(manifest.schemaVersion), not 2")
        }
        let type = manifest.mediaType ?? contentType.map { String($0.split(separator: ";")[0]).trimmingCharacters(in: .whitespaces) }
        guard let type, OCIMediaType.manifestTypes.contains(type) else {
            throw Refusal(
                .manifestInvalid, "the manifest's media type \(type.map { "'\($0)'" } ?? "is missing and"), not an image manifest or index")
        }
        if let declared = manifest.mediaType, let contentType,
            declared != String(contentType.split(separator: ";")[0]).trimmingCharacters(in: .whitespaces)
        {
            throw Refusal(.manifestInvalid, "the manifest's mediaType '\(declared)' differs from its Content-Type '\(contentType)'")
        }
        let isIndex = type == OCIMediaType.imageIndex || type == OCIMediaType.dockerManifestList
        if isIndex ? manifest.manifests == nil : (manifest.config == nil || manifest.layers == nil) {
            throw Refusal(.manifestInvalid, isIndex ? "the index has no manifests" : "the manifest needs a config and layers")
        }
        return manifest
    }

    static func record(
        _ bytes: [UInt8], repository: String, kind: OCIManifestRecord.Kind, version: String?, parsed: OCIManifest
    ) throws -> OCIManifestRecord {
        return OCIManifestRecord(
            repository: repository, digest: ContentDigest.of(bytes), mediaType: parsed.mediaType ?? OCIMediaType.imageManifest,
            artifactType: parsed.artifactType, subject: try parsed.subject.map { try Self.digest($0.digest) }, kind: kind, version: version,
            references: try ([parsed.config].compactMap { $0 } + (parsed.layers ?? []) + (parsed.manifests ?? [])).map {
                try Self.digest($0.digest)
            },
            annotations: parsed.annotations ?? [:], bytes: bytes)
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "'\(key.stringValue)' is missing"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "'\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type"
        case DecodingError.dataCorrupted(let context): context.debugDescription
        default: "\(error)"
        }
    }
}
