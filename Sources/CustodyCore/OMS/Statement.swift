import Foundation

/// The in-toto Statement v1 that an OMS signature carries as its DSSE payload.
public enum OMSStatement {
    /// The in-toto statement type.
    public static let statementType = "https://in-toto.io/Statement/v1"
    /// The model_signing predicate type.
    public static let predicateType = "https://model_signing/signature/v1.0"
    /// The DSSE payload type of an in-toto statement.
    public static let payloadType = "application/vnd.in-toto+json"

    /// The statement for `manifest`, as indented JSON in the layout model-signing writes.
    public static func encode(_ manifest: ModelManifest) -> [UInt8] {
        let serialization = manifest.serialization
        var parameters: [(String, JSONText)] = [
            ("method", .string(serialization.method == .files ? "files" : "shards")),
            ("hash_type", .string("sha256")),
            ("allow_symlinks", .bool(serialization.allowSymlinks)),
        ]
        if !serialization.ignorePaths.isEmpty {
            parameters.append(("ignore_paths", .array(serialization.ignorePaths.map(JSONText.string))))
        }
        if case .shards(let size) = serialization.method {
            parameters.append(("shard_size", .integer(Int64(size))))
        }
        let resources = manifest.resources.map { resource in
            JSONText.object([
                ("name", .string(resource.name)),
                ("algorithm", .string(resource.algorithm)),
                ("digest", .string(resource.digest.hex)),
            ])
        }
        let statement = JSONText.object([
            ("_type", .string(statementType)),
            (
                "subject",
                .array([
                    .object([
                        ("name", .string(manifest.modelName)),
                        ("digest", .object([("sha256", .string(manifest.rootDigest.hex))])),
                    ])
                ])
            ),
            ("predicateType", .string(predicateType)),
            (
                "predicate",
                .object([
                    ("serialization", .object(parameters)),
                    ("resources", .array(resources)),
                ])
            ),
        ])
        return statement.pretty
    }

    /// Parses a statement's exact payload bytes back into a manifest, checking that the subject's root digest is
    /// the one its resources hash to. `source` names the signature in error messages.
    public static func decode(_ payload: [UInt8], source: String) throws(CustodyError) -> ModelManifest {
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: Data(payload))
        } catch {
            throw malformed(source, "the signed statement is not valid: \(describe(error))")
        }
        guard document.type == statementType else {
            throw malformed(source, "statement type is '\(document.type)', expected '\(statementType)'")
        }
        guard document.predicateType == predicateType else {
            throw malformed(source, "predicate type is '\(document.predicateType)', expected '\(predicateType)'")
        }
        guard document.subject.count == 1, let subject = document.subject.first else {
            throw malformed(source, "the statement must have exactly one subject, not \(document.subject.count)")
        }
        guard let rootHex = subject.digest["sha256"] else {
            throw malformed(source, "the statement's subject has no sha256 digest")
        }
        let serialization = try parameters(document.predicate.serialization, source: source)
        var resources: [Resource] = []
        resources.reserveCapacity(document.predicate.resources.count)
        for item in document.predicate.resources {
            guard item.algorithm == serialization.resourceAlgorithm else {
                throw malformed(source, "resource '\(item.name)' uses algorithm '\(item.algorithm)', expected '\(serialization.resourceAlgorithm)'")
            }
            if case .shards = serialization.method, ShardName(item.name) == nil {
                throw malformed(source, "resource '\(item.name)' is not a 'path:start:end' shard name")
            }
            let digest: ContentDigest
            do { digest = try ContentDigest(hex: item.digest) } catch { throw malformed(source, "resource '\(item.name)': \(error)") }
            resources.append(Resource(name: item.name, algorithm: item.algorithm, digest: digest))
        }
        guard Set(resources.map(\.name)).count == resources.count else {
            throw malformed(source, "the statement lists a resource twice")
        }
        let manifest = ModelManifest(modelName: subject.name, serialization: serialization, resources: resources)
        guard manifest.rootDigest.hex == rootHex else {
            throw malformed(source, "the subject digest \(rootHex) is not the digest of the listed resources (\(manifest.rootDigest.hex))")
        }
        return manifest
    }

    /// model_signing 0.2's predicate: one subject per file, nothing else.
    public static let legacyPredicateType = "https://model_signing/Digests/v0.1"

    /// Whether a payload is a statement of the v0.1 predicate.
    static func isLegacy(_ payload: [UInt8]) -> Bool {
        struct Probe: Decodable { let predicateType: String }
        return (try? JSONDecoder().decode(Probe.self, from: Data(payload)))?.predicateType == legacyPredicateType
    }

    /// A v0.1 statement as model_signing reads it: every subject a file with its SHA-256, serialized by files
    /// without symlinks or ignore paths, under a placeholder model name.
    static func decodeLegacy(_ payload: [UInt8], source: String) throws(CustodyError) -> ModelManifest {
        struct Legacy: Decodable {
            struct Subject: Decodable {
                let name: String
                let digest: [String: String]
            }
            let _type: String
            let subject: [Subject]
            let predicateType: String
        }
        let document: Legacy
        do {
            document = try JSONDecoder().decode(Legacy.self, from: Data(payload))
        } catch {
            throw malformed(source, "the signed statement is not valid: \(describe(error))")
        }
        guard document._type == statementType else {
            throw malformed(source, "statement type is '\(document._type)', expected '\(statementType)'")
        }
        guard !document.subject.isEmpty else { throw malformed(source, "the statement names no files") }
        var resources: [Resource] = []
        for subject in document.subject {
            guard let hex = subject.digest["sha256"] else { throw malformed(source, "file '\(subject.name)' has no sha256 digest") }
            let digest: ContentDigest
            do { digest = try ContentDigest(hex: hex) } catch { throw malformed(source, "file '\(subject.name)': \(error)") }
            resources.append(Resource(name: subject.name, algorithm: "sha256", digest: digest))
        }
        guard Set(resources.map(\.name)).count == resources.count else {
            throw malformed(source, "the statement lists a file twice")
        }
        return ModelManifest(
            modelName: "compat-undefined-not-present",
            serialization: SerializationParameters(method: .files, allowSymlinks: false, ignorePaths: []), resources: resources)
    }

    private static func parameters(_ doc: Document.Serialization, source: String) throws(CustodyError) -> SerializationParameters {
        guard doc.hashType == "sha256" else {
            throw malformed(source, "hash type '\(doc.hashType)' is not supported (only sha256)")
        }
        let method: SerializationMethod
        switch doc.method {
        case "files":
            method = .files
        case "shards":
            // model-signing writes the shard size as a float (1000000000.0); accept any positive integral value.
            guard let size = doc.shardSize, size >= 1, size <= Double(1 << 53), size.rounded() == size else {
                throw malformed(source, "the shards method needs a positive whole shard_size")
            }
            method = .shards(size: UInt64(size))
        default:
            throw malformed(source, "serialization method '\(doc.method)' is not supported (files or shards)")
        }
        return SerializationParameters(
            method: method, allowSymlinks: doc.allowSymlinks ?? false, ignorePaths: doc.ignorePaths ?? [])
    }

    static func malformed(_ source: String, _ message: String) -> CustodyError {
        CustodyError(.malformedSignature, "\(source): \(message)")
    }

    private struct Document: Decodable {
        struct Subject: Decodable {
            let name: String
            let digest: [String: String]
        }
        struct Serialization: Decodable {
            let method: String
            let hashType: String
            let allowSymlinks: Bool?
            let ignorePaths: [String]?
            let shardSize: Double?
            enum CodingKeys: String, CodingKey {
                case method, hashType = "hash_type", allowSymlinks = "allow_symlinks", ignorePaths = "ignore_paths"
                case shardSize = "shard_size"
            }
        }
        struct ResourceItem: Decodable {
            let name: String
            let algorithm: String
            let digest: String
        }
        struct Predicate: Decodable {
            let serialization: Serialization
            let resources: [ResourceItem]
        }
        let type: String
        let subject: [Subject]
        let predicateType: String
        let predicate: Predicate
        enum CodingKeys: String, CodingKey {
            case type = "_type", subject, predicateType, predicate
        }
    }
}

/// A one-line account of a decoding error: which field, and what was wrong with it.
func describe(_ error: any Error) -> String {
    guard let error = error as? DecodingError else { return "\(error)" }
    func path(_ context: DecodingError.Context) -> String {
        let names = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
        return names.isEmpty ? "the document" : "'\(names.joined(separator: "."))'"
    }
    switch error {
    case .keyNotFound(let key, let context):
        let parent = context.codingPath.isEmpty ? "" : " in \(path(context))"
        return "field '\(key.stringValue)' is missing\(parent)"
    case .typeMismatch(_, let context), .valueNotFound(_, let context):
        return "\(path(context)) has the wrong type"
    case .dataCorrupted(let context):
        return context.codingPath.isEmpty ? "not valid JSON" : "\(path(context)) is invalid"
    @unknown default:
        return "\(error)"
    }
}
