import CustodyArchive
package import CustodyCore
package import CustodyStorage
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension OCIArtifacts {
    /// What a manifest push did.
    package struct Pushed: Sendable {
        package let digest: ContentDigest
        package let subject: ContentDigest?
        /// The version it created or matched, for a model.
        package let version: String?
        /// Something the client should hear about although the push succeeded (a `Warning` header).
        package var warning: String?
    }

    /// Stores a pushed manifest under `reference` (a tag or its digest). A model artifact (ModelPack, KitOps, Docker
    /// model) becomes a version through the publish path; a manifest with a `subject` is stored as a referrer; any
    /// other manifest only in a namespace configured for plain artifacts.
    package func push(
        _ bytes: [UInt8], contentType: String?, to model: ModelName, reference: String, actor: String
    ) async throws -> Pushed {
        guard bytes.count <= maxManifestSize else {
            throw Refusal(.sizeInvalid, "the manifest is \(bytes.count) bytes, over this registry's \(maxManifestSize)-byte limit")
        }
        let manifest = try Self.parse(bytes, contentType: contentType)
        let digest = ContentDigest.of(bytes)
        var tag: String?
        if Self.isDigest(reference) {
            let named = try Self.digest(reference)
            guard named == digest else {
                throw Refusal(.digestInvalid, "the manifest's bytes hash to \(digest), not \(named)", detail: reference)
            }
        } else {
            do throws(CustodyError) { try VersionTag.validate(reference) } catch {
                throw Refusal(.manifestInvalid, "'\(reference)' is not a tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})", detail: reference)
            }
            tag = reference
        }
        try await checkReferences(manifest, in: model)
        let repository = model.description

        if let subject = manifest.subject {
            let subjectDigest = try Self.digest(subject.digest, code: .manifestInvalid)
            try await refuseVersionTag(tag, model)
            let subjectRecord = try await records.ociManifest(repository: repository, digest: subjectDigest)
            let version = subjectRecord?.version
            let record = try Self.record(bytes, repository: repository, kind: .referrer, version: version, parsed: manifest)
            var warning: String?
            if subjectRecord?.kind == .model, let version, Self.isSignature(manifest) {
                warning = try await attachSignature(manifest, to: model, version: version, actor: actor)
            }
            try await save([record], tag: tag)
            return Pushed(digest: digest, subject: subjectDigest, version: version, warning: warning)
        }
        if let kind = ModelArtifactKind(manifest) {
            return try await publish(bytes, manifest, kind: kind, to: model, tag: tag, actor: actor)
        }
        guard plainNamespaces.contains(model.namespace) else {
            throw Refusal(
                .unsupported,
                "\(repository): this registry stores models (ModelPack, KitOps ModelKit or Docker model artifacts); a manifest with config type '\(manifest.config?.mediaType ?? "none")' is stored only in namespaces configured for plain artifacts (oci.plainNamespaces)"
            )
        }
        try await refuseVersionTag(tag, model)
        let record = try Self.record(bytes, repository: repository, kind: .artifact, version: nil, parsed: manifest)
        try await save([record], tag: tag)
        return Pushed(digest: digest, subject: nil, version: nil)
    }

    /// Records pushed manifests. A blob one names that the collector took since ``checkReferences(_:in:)`` saw it
    /// (it was unused and past the grace period) is unknown, as it would have been a moment earlier: the client
    /// pushes it again.
    private func save(_ manifests: [OCIManifestRecord], tag: String?) async throws {
        do throws(CustodyError) { try await records.saveOCIManifests(manifests, tag: tag) } catch {
            guard error.code == .notFound else { throw error }
            throw Refusal(.manifestBlobUnknown, error.message)
        }
    }

    /// A referrer that carries an OMS signature (a Sigstore bundle), as model_signing writes it.
    static func isSignature(_ manifest: OCIManifest) -> Bool {
        manifest.artifactType == OCIMediaType.sigstoreBundle
            || (manifest.layers?.count == 1 && manifest.layers?.first?.mediaType == OCIMediaType.sigstoreBundle)
    }

    /// A publisher's OMS signature pushed as a referrer of a version's manifest counts as the version's publisher
    /// signature when a trusted key made it over exactly the version's files; otherwise it is kept as a referrer only,
    /// and the answer says why it did not count.
    private func attachSignature(_ manifest: OCIManifest, to model: ModelName, version: String, actor: String) async throws -> String? {
        guard let layer = manifest.layers?.first, layer.size <= 1 << 20 else { return "the signature referrer has no layer of at most 1 MiB" }
        let digest = try Self.digest(layer.digest, code: .manifestInvalid)
        let detail = try await catalog.version(model, .version(version))
        do throws(CustodyError) {
            let bundle = try await uploads.blobs.withLocalFiles([digest]) { paths throws(CustodyError) in
                try PosixFile.contents(of: paths[0], limit: 1 << 20)
            }
            let attached = try await publishing.attachPublisherSignature(bundle, to: detail, actor: actor)
            return attached ? nil : "\(model)@\(version) has a publisher signature already; this one is kept as a referrer only"
        } catch {
            return "the signature does not count as \(model)@\(version)'s publisher signature: \(error.message)"
        }
    }

    /// Every blob a manifest names must be stored with the size it declares; an index's manifests must be in the
    /// repository.
    private func checkReferences(_ manifest: OCIManifest, in model: ModelName) async throws {
        for descriptor in [manifest.config].compactMap({ $0 }) + (manifest.layers ?? []) {
            let digest = try Self.digest(descriptor.digest, code: .manifestInvalid)
            guard let size = try await uploads.storedSize(digest) else {
                throw Refusal(.manifestBlobUnknown, "blob \(digest) that the manifest names is not in the registry", detail: digest.description)
            }
            guard size == descriptor.size else {
                throw Refusal(
                    .manifestInvalid, "blob \(digest) is \(size) bytes, not the \(descriptor.size) the manifest declares", detail: digest.description)
            }
        }
        for descriptor in manifest.manifests ?? [] {
            let digest = try Self.digest(descriptor.digest, code: .manifestInvalid)
            guard try await records.ociManifest(repository: model.description, digest: digest) != nil else {
                throw Refusal(.manifestBlobUnknown, "manifest \(digest) that the index names is not in \(model)", detail: digest.description)
            }
        }
    }

    /// A version's tag names its model manifest only: a plain artifact or referrer cannot take it.
    private func refuseVersionTag(_ tag: String?, _ model: ModelName) async throws {
        guard let tag, try await catalog.versionOrder(model)?.contains(where: { $0.version == tag }) == true else { return }
        throw Refusal(.manifestInvalid, "\(model):\(tag) is a version of the model; versions are immutable, push under another tag", detail: tag)
    }

    // MARK: Models

    /// The model artifact formats a push may be.
    enum ModelArtifactKind {
        case modelPack, kitOps, docker

        init?(_ manifest: OCIManifest) {
            let config = manifest.config?.mediaType ?? ""
            switch (config, manifest.artifactType) {
            case (OCIMediaType.modelPackConfig, _), (OCIMediaType.legacyModelPackConfig, _), (_, OCIMediaType.modelPackManifest?),
                (_, OCIMediaType.legacyModelPackManifest?):
                self = .modelPack
            case (OCIMediaType.kitConfig, _), (_, OCIMediaType.kitManifest?): self = .kitOps
            case _ where config.hasPrefix(OCIMediaType.dockerModelConfigPrefix): self = .docker
            default: return nil
            }
        }
    }

    private func publish(
        _ bytes: [UInt8], _ manifest: OCIManifest, kind: ModelArtifactKind, to model: ModelName, tag: String?, actor: String
    ) async throws -> Pushed {
        let digest = ContentDigest.of(bytes)
        let facts = try await configFacts(manifest, kind: kind)
        var files: [API.FileEntry] = []
        for (position, layer) in (manifest.layers ?? []).enumerated() {
            files += try await self.files(of: layer, position: position, taken: Set(files.map(\.path)))
        }
        let version = tag ?? facts.version.flatMap { (try? VersionTag.validate($0)) == nil ? nil : $0 } ?? "oci-\(digest.hex.prefix(12))"
        let request = API.PublishRequest(version: version, files: files, license: facts.license, provenance: facts.provenance, signature: nil)
        let detail: API.VersionDetail
        do throws(CustodyError) {
            switch try await publishing.publish(request, model: model, publishedBy: actor) {
            case .created(let created): detail = created
            case .unchanged(let existing): detail = existing
            }
        } catch {
            switch error.code {
            // Not DENIED: clients read a 403 as a request for other credentials and drop the message.
            case .conflict: throw Refusal(.manifestInvalid, error.message, detail: version)
            case .invalidArgument, .invalidModel, .verificationFailed, .malformedSignature:
                throw Refusal(.manifestInvalid, ([error.message] + error.details).joined(separator: "; "))
            default: throw error
            }
        }
        let record = try Self.record(bytes, repository: model.description, kind: .model, version: detail.version, parsed: manifest)
        let canonical = try await records.ociModelManifest(repository: model.description, version: detail.version)
        let attachments = canonical == nil ? try await attachments(of: detail, subject: record) : []
        try await save([record] + attachments, tag: nil)
        return Pushed(digest: digest, subject: nil, version: detail.version)
    }

    /// Licence, provenance and version from the artifact's config (ModelPack `descriptor`, the Kitfile's `package`
    /// and `model`).
    private func configFacts(
        _ manifest: OCIManifest, kind: ModelArtifactKind
    ) async throws -> (
        license: API.License?, provenance: API.Provenance?, version: String?
    ) {
        guard let config = manifest.config else { return (nil, nil, nil) }
        let digest = try Self.digest(config.digest, code: .manifestInvalid)
        guard config.size <= 1 << 20 else { throw Refusal(.manifestInvalid, "the model config \(digest) is over 1 MiB") }
        let bytes = try await uploads.blobs.withLocalFiles([digest]) { paths throws(CustodyError) in
            try PosixFile.contents(of: paths[0], limit: 1 << 20)
        }
        switch kind {
        case .modelPack:
            let parsed: ModelPackConfig
            do { parsed = try JSONDecoder().decode(ModelPackConfig.self, from: Data(bytes)) } catch {
                throw Refusal(.manifestInvalid, "the ModelPack config \(digest) is not valid: \(Self.describe(error))")
            }
            let descriptor = parsed.descriptor
            let licences = descriptor?.licenses ?? []
            let license = licences.isEmpty ? nil : API.License(id: licences.count == 1 ? licences[0] : licences.joined(separator: " AND "))
            var provenance = API.Provenance()
            if descriptor?.sourceURL != nil || descriptor?.revision != nil {
                provenance.source = API.Source(uri: descriptor?.sourceURL, revision: descriptor?.revision)
            }
            provenance.datasets = descriptor?.datasetsURL ?? []
            return (license, provenance, descriptor?.version)
        case .kitOps:
            let kitfile: Kitfile
            do { kitfile = try JSONDecoder().decode(Kitfile.self, from: Data(bytes)) } catch {
                throw Refusal(.manifestInvalid, "the ModelKit config (Kitfile) \(digest) is not valid: \(Self.describe(error))")
            }
            let licence = kitfile.package?.license ?? kitfile.model?.license
            return (licence.map { API.License(id: $0) }, nil, kitfile.package?.version ?? kitfile.model?.version)
        case .docker:
            return (nil, nil, nil)
        }
    }

    /// The Kitfile fields a ModelKit's config carries that Custody reads.
    struct Kitfile: Decodable {
        struct Package: Decodable {
            var name: String?
            var version: String?
            var license: String?
        }
        struct Model: Decodable {
            var name: String?
            var version: String?
            var license: String?
        }
        var package: Package?
        var model: Model?
    }

    /// The files a layer holds: a raw layer is one file (its path in `org.cncf.model.filepath` or the title); an
    /// archive layer (`…tar`, `…tar+gzip`, `…tar+zstd`) is unpacked under the archive rules, each file stored as a blob.
    private func files(of layer: OCIDescriptor, position: Int, taken: Set<String>) async throws -> [API.FileEntry] {
        let digest = try Self.digest(layer.digest, code: .manifestInvalid)
        if Self.isArchive(layer.mediaType) { return try await unpack(digest) }
        let named = layer.annotations?[OCIMediaType.filePath] ?? layer.annotations?[OCIMediaType.title]
        guard let path = named ?? Self.dockerFileName(layer.mediaType, taken: taken) else {
            throw Refusal(
                .manifestInvalid,
                "layer \(position) (\(digest)) names no file path: annotate it with org.cncf.model.filepath or org.opencontainers.image.title",
                detail: digest.description)
        }
        do throws(CustodyError) { try BundlePath.validate(path) } catch {
            throw Refusal(.manifestInvalid, "layer \(position): \(error.message)", detail: path)
        }
        return [API.FileEntry(path: path, size: layer.size, digest: digest)]
    }

    /// Docker Model Runner's v0.1 layers carry no path: they are named by what they are (`model.gguf`, `LICENSE`, …);
    /// a second layer of a kind gets a number.
    static func dockerFileName(_ mediaType: String, taken: Set<String>) -> String? {
        let names = [
            "gguf.v3": "model.gguf", "safetensors": "model.safetensors", "license": "LICENSE", "mmproj": "model.mmproj",
            "chat.template.jinja": "template.jinja", "dduf": "model.dduf",
        ]
        let prefix = "application/vnd.docker.ai."
        guard mediaType.hasPrefix(prefix), let name = names[String(mediaType.dropFirst(prefix.count))] else { return nil }
        guard taken.contains(name) else { return name }
        let (stem, dot) = name.firstIndex(of: ".").map { (String(name[..<$0]), String(name[$0...])) } ?? (name, "")
        return (2...).lazy.map { "\(stem)-\($0)\(dot)" }.first { !taken.contains($0) }
    }

    static func isArchive(_ mediaType: String) -> Bool {
        let suffixes = [".tar", ".tar+gzip", ".tar+zstd", ".tar.gzip", ".tar.zstd"]
        return suffixes.contains(where: mediaType.hasSuffix) || mediaType.hasSuffix("dir.tar") || mediaType.hasSuffix("config.tar")
    }

    /// Unpacks an archive layer into the spool directory (refusing what ``BundleArchive`` refuses), stores each
    /// regular file as a blob, and removes the unpacked copy.
    private func unpack(_ digest: ContentDigest) async throws -> [API.FileEntry] {
        let target = spool + "/oci-layer-" + UUID().uuidString.lowercased()
        defer { try? FileManager.default.removeItem(atPath: target) }
        let extracted: [(path: String, file: String)]
        do throws(CustodyError) {
            extracted = try await uploads.blobs.withLocalFiles([digest]) { paths throws(CustodyError) in
                try BundleArchive().extract(paths[0], into: target)
                return try Self.regularFiles(under: target)
            }
        } catch {
            throw Refusal(.manifestInvalid, "layer \(digest): \(error.message)", detail: digest.description)
        }
        var files: [API.FileEntry] = []
        for (path, file) in extracted {
            let stream = FileChunks(path: file)
            let fileDigest = try stream.digest()
            let size = try stream.size()
            _ = try await uploads.receive(fileDigest, from: 0, declaredLength: size, body: stream)
            files.append(API.FileEntry(path: path, size: size, digest: fileDigest))
        }
        return files
    }

    static func regularFiles(under root: String) throws(CustodyError) -> [(path: String, file: String)] {
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        var files: [(String, String)] = []
        while let relative = walker.nextObject() as? String {
            var info = stat()
            let full = root + "/" + relative
            guard lstat(full, &info) == 0 else { throw .io(full, "stat", errno: errno) }
            if (info.st_mode & S_IFMT) == S_IFREG { files.append((relative, full)) }
        }
        return files.sorted { $0.0 < $1.0 }
    }
}

/// A local file read as a body of 1 MiB chunks.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = [UInt8]
    let path: String

    func size() throws(CustodyError) -> UInt64 {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .io(path, "stat", errno: errno) }
        return UInt64(info.st_size)
    }

    func digest() throws(CustodyError) -> ContentDigest {
        try FileHasher().digests(of: [HashJob(path: path, range: 0..<(try size()))])[0]
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let fd: Int32
        let path: String
        var offset: UInt64 = 0

        mutating func next() async throws -> [UInt8]? {
            guard fd >= 0 else { throw CustodyError(.io, "\(path): cannot open") }
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            guard count >= 0 else { throw CustodyError.io(path, "read", errno: errno) }
            guard count > 0 else {
                close(fd)
                return nil
            }
            offset += UInt64(count)
            return Array(buffer.prefix(count))
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(fd: open(path, O_RDONLY | O_CLOEXEC), path: path) }
}
