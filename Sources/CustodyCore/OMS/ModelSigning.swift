import Foundation

/// Signing a model directory (or single file) into an OMS bundle, and checking one against the files on disk.
public struct ModelSigning: Sendable {
    /// The hasher that reads the files.
    public var hasher: FileHasher

    /// Signing and verification that read files with `hasher`.
    public init(hasher: FileHasher = FileHasher()) {
        self.hasher = hasher
    }

    /// Hashes the model at `path`. A signature file inside the model is left out and recorded in `ignore_paths`,
    /// so that the signature can live beside the weights as `model.sig` does.
    public func manifest(
        of path: String, method: SerializationMethod = .files, allowSymlinks: Bool = false, signaturePath: String? = nil
    ) throws(CustodyError) -> ModelManifest {
        var ignorePaths = ModelTree.defaultIgnorePaths
        if let signaturePath, let inside = Self.relativePath(of: signaturePath, inside: path) {
            ignorePaths.append(inside)
        }
        let serialization = SerializationParameters(
            method: method, allowSymlinks: allowSymlinks, ignorePaths: ignorePaths.sorted())
        let files = try ModelTree.files(at: path, allowSymlinks: allowSymlinks, ignorePaths: serialization.ignorePaths)
        return try ModelManifest.hashing(model: files, name: Self.modelName(of: path), serialization: serialization, hasher: hasher)
    }

    /// Signs `manifest` with `key`: DSSE over the in-toto statement, wrapped in a Sigstore bundle with the key hint.
    public func sign(_ manifest: ModelManifest, with key: PrivateSigningKey) throws(CustodyError) -> SigstoreBundle {
        let payload = OMSStatement.encode(manifest)
        let signature = try key.signature(for: DSSE.pae(payloadType: OMSStatement.payloadType, payload: payload))
        return SigstoreBundle(
            keyHint: key.publicKey.hint, payloadType: OMSStatement.payloadType, payload: payload, signature: signature)
    }

    /// Checks that `bundle` was signed by `key` and returns the manifest it vouches for.
    public func signedManifest(
        of bundle: SigstoreBundle, key: PublicVerifyingKey, source: String
    ) throws(CustodyError)
        -> ModelManifest
    {
        if let hint = bundle.keyHint, hint != key.hint {
            throw CustodyError(.verificationFailed, "\(source): signed by a different key (key hint \(hint) is not this key's \(key.hint))")
        }
        if bundle.keyHint == nil, let raw = bundle.rawPublicKey,
            let embedded = try? PublicVerifyingKey(pem: String(decoding: raw, as: UTF8.self), source: source), embedded != key
        {
            throw CustodyError(.verificationFailed, "\(source): signed by a different key (the bundle embeds another public key)")
        }
        guard bundle.payloadType == OMSStatement.payloadType else {
            throw OMSStatement.malformed(source, "payload type '\(bundle.payloadType)' is not '\(OMSStatement.payloadType)'")
        }
        let message = DSSE.pae(payloadType: bundle.payloadType, payload: bundle.payload)
        if key.isValidSignature(bundle.signature, for: message) {
            return try OMSStatement.decode(bundle.payload, source: source)
        }
        // model_signing 0.2 signed its v0.1 statements over another encoding, always with SHA-256.
        if OMSStatement.isLegacy(bundle.payload),
            key.isValidSignature(bundle.signature, sha256Of: DSSE.legacyPAE(payloadType: bundle.payloadType, payload: bundle.payload))
        {
            return try OMSStatement.decodeLegacy(bundle.payload, source: source)
        }
        throw CustodyError(.verificationFailed, "\(source): the signature does not verify with this public key")
    }

    /// Verifies the model at `path` against the signature file at `signaturePath`: the signature must be `key`'s,
    /// and the files on disk must hash to exactly the signed resources. With `ignoreUnsigned`, files that the
    /// signature does not list are tolerated. On a mismatch the error lists every changed, missing and unexpected file.
    public func verify(
        model path: String, signaturePath: String, key: PublicVerifyingKey, ignoreUnsigned: Bool = false
    ) throws(CustodyError) -> ModelManifest {
        let bundle = try SigstoreBundle(decoding: try PosixFile.contents(of: signaturePath, limit: 256 << 20), source: signaturePath)
        let expected = try signedManifest(of: bundle, key: key, source: signaturePath)
        var ignorePaths = expected.serialization.ignorePaths + ModelTree.defaultIgnorePaths
        if let inside = Self.relativePath(of: signaturePath, inside: path) { ignorePaths.append(inside) }
        var files = try ModelTree.files(at: path, allowSymlinks: expected.serialization.allowSymlinks, ignorePaths: ignorePaths)
        if ignoreUnsigned {
            let signed = Set(expected.resources.map(\.filePath))
            files.removeAll { !signed.contains($0.name) }
        }
        let actual = try ModelManifest.hashing(
            model: files, name: Self.modelName(of: path), serialization: expected.serialization, hasher: hasher)
        let diff = ManifestDiff(expected: expected, actual: actual)
        guard diff.isEmpty else {
            throw CustodyError(.verificationFailed, "\(path): does not match its signature (\(diff.summary))", details: diff.lines)
        }
        return expected
    }

    /// The subject name model-signing gives a model: the last path component, resolved for `.` and `..`.
    static func modelName(of path: String) -> String {
        let name = (path as NSString).lastPathComponent
        guard name.isEmpty || name == "." || name == ".." || name == "/" else { return name }
        return ((realPath(path) ?? path) as NSString).lastPathComponent
    }

    /// `file`'s path relative to `directory` when it lies inside it, both resolved through symlinks.
    static func relativePath(of file: String, inside directory: String) -> String? {
        let parent = (file as NSString).deletingLastPathComponent
        guard let root = realPath(directory), let resolvedParent = realPath(parent.isEmpty ? "." : parent) else { return nil }
        let resolved = resolvedParent + "/" + (file as NSString).lastPathComponent
        guard resolved.hasPrefix(root + "/") else { return nil }
        return String(resolved.dropFirst(root.count + 1))
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// Which files of a model differ from what a signature lists.
public struct ManifestDiff: Sendable, Equatable {
    /// Files whose content differs from the signed digests.
    public let changed: [String]
    /// Signed files that are not on disk.
    public let missing: [String]
    /// Files on disk that the signature does not list.
    public let unexpected: [String]

    /// The difference between what a signature covers and what is on disk.
    public init(expected: ModelManifest, actual: ModelManifest) {
        let want = Self.byFile(expected)
        let have = Self.byFile(actual)
        let sort = { (names: [String]) in names.sorted(by: ResourceOrder.precedes) }
        changed = sort(want.keys.filter { name in have[name].map { $0 != want[name] } ?? false })
        missing = sort(want.keys.filter { have[$0] == nil })
        unexpected = sort(have.keys.filter { want[$0] == nil })
    }

    /// Whether the two manifests agree.
    public var isEmpty: Bool { changed.isEmpty && missing.isEmpty && unexpected.isEmpty }

    /// One line per changed, missing and unexpected file, for an error message.
    public var summary: String {
        "\(changed.count) changed, \(missing.count) missing, \(unexpected.count) unexpected"
    }

    /// One line per differing file.
    public var lines: [String] {
        changed.map { "changed: \($0)" } + missing.map { "missing: \($0)" } + unexpected.map { "unexpected: \($0)" }
    }

    private static func byFile(_ manifest: ModelManifest) -> [String: [String: ContentDigest]] {
        var files: [String: [String: ContentDigest]] = [:]
        for resource in manifest.resources {
            files[resource.filePath, default: [:]][resource.name] = resource.digest
        }
        return files
    }
}
