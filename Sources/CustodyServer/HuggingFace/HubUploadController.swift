import CustodyCore
import CustodyRegistry
import CustodyStorage
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The Hub's upload API (huggingface_hub `create_repo`, `upload_folder`, `create_commit`, `hf upload`, with
/// `HF_HUB_DISABLE_XET=1`): repository creation, model card validation, preupload, the LFS batch API with capability
/// URLs, verify, and commits. A commit becomes a new immutable version through the same publish path as
/// `custody publish` (scan, model card, registry signature, one transaction, a publish event).
struct HubUploadController {
    let hub: HubRepository
    let publishing: PublishService
    let uploads: Uploads
    let capabilities: UploadCapability
    let policies: PolicySet
    let access: Access
    let bodies: JSONBodies
    let scheme: String
    let logger: Logger

    static let lfsJSON = "application/vnd.git-lfs+json"
    /// Objects larger than this go by the multipart transfer when the client offers it, in parts of this size.
    let partSize: UInt64

    var routes: RouteCollection<RegistryContext> {
        let routes = RouteCollection(context: RegistryContext.self)
        routes.post("/api/repos/create") { request, context in try await create(request, context) }
        routes.post("/api/validate-yaml") { request, context in try await validateYAML(request, context) }
        routes.post("/api/models/:ns/:name/preupload/:rev") { request, context in try await preupload(request, context) }
        routes.post("/:ns/:name/info/lfs/objects/batch") { request, context in try await batch(request, context) }
        routes.put("/api/custody/lfs/:capability") { request, context in try await receive(request, context) }
        routes.put("/api/custody/lfs/:capability/:part") { request, context in try await receivePart(request, context) }
        routes.post("/api/custody/lfs/:capability") { request, context in try await complete(request, context) }
        routes.post("/api/custody/lfs-verify") { request, context in try await verify(request, context) }
        routes.post("/api/models/:ns/:name/commit/:rev") { request, context in try await commit(request, context) }
        return routes
    }

    // MARK: - Repositories and model cards

    struct CreateRequest: Decodable {
        let name: String
        let organization: String?
    }

    /// A repository is a model name: it exists once its first version is committed. Creating one that has versions
    /// is a 409 that still carries the URL (`create_repo(exist_ok=True)` reads it).
    func create(_ request: Request, _ context: RegistryContext) async throws -> Response {
        let ask = try await bodies.decode(request, as: CreateRequest.self, what: "repository request ({\"name\", \"organization\"})")
        let id = ask.organization.map { "\($0)/\(ask.name)" } ?? ask.name
        let model: ModelName
        do throws(CustodyError) { model = try ModelName(parsing: id.lowercased()) } catch {
            throw HubError(.badRequest, code: nil, "'\(id)' is not a repository id this registry takes: \(error.message)")
        }
        try await access.authorize(request, context, roles: [.publisher], namespace: model.namespace)
        let url = "\(base(request))/\(model)"
        if try await !(hub.catalog.versionOrder(model) ?? []).isEmpty {
            return try .json(["url": url, "name": model.description, "error": "You already created this model repo"], status: .conflict)
        }
        return try .json(["url": url, "name": model.description])
    }

    struct YAMLRequest: Decodable {
        let content: String
    }

    /// The model card gate at ingest: a card whose licence this registry cannot classify is refused here, where the
    /// client shows the message (`ValueError: Invalid metadata in README.md`).
    func validateYAML(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.publisher])
        let ask = try await bodies.decode(request, as: YAMLRequest.self, what: "validate-yaml request")
        var errors: [[String: String]] = []
        if let front = ModelCard.frontMatter(of: ask.content) {
            do {
                let fields = try ModelCard.parse(front)
                let classified = policies.snapshot.licences.classify(id: fields.license, name: fields.licenseName)
                if fields.license != nil || fields.licenseName != nil, classified.licenceClass == .unknown {
                    errors.append([
                        "message":
                            "license '\(fields.license ?? fields.licenseName ?? "")' is not in this registry's licence table (\(classified.basis)); use an SPDX or Hugging Face licence id, or ask an admin to add it to licenses.yaml"
                    ])
                }
            } catch {
                errors.append(["message": "the YAML front matter is invalid: \(error)"])
            }
        }
        return try .json(["errors": errors, "warnings": []], status: errors.isEmpty ? .ok : .badRequest)
    }

    // MARK: - Preupload and LFS

    struct PreuploadRequest: Decodable {
        struct File: Decodable {
            let path: String
            let size: UInt64
        }
        let files: [File]
    }

    /// Every non-empty file goes by LFS (hashed by the client, uploaded as a blob); empty ones inline. Paths that
    /// model signatures leave out (`.git/`, `.gitattributes`, …) are ignored rather than refused at commit.
    func preupload(_ request: Request, _ context: RegistryContext) async throws -> Response {
        let model = try repository(context)
        try await access.authorize(request, context, roles: [.publisher], namespace: model.namespace)
        let ask = try await bodies.decode(request, as: PreuploadRequest.self, what: "preupload request")
        let files: [[String: Any]] = ask.files.map { file in
            let ignored = PublishService.ignoredPaths.contains { file.path == $0 || file.path.hasPrefix($0 + "/") }
            return ["path": file.path, "uploadMode": file.size == 0 ? "regular" : "lfs", "shouldIgnore": ignored, "oid": NSNull()]
        }
        let body = try JSONSerialization.data(withJSONObject: ["files": files], options: [.sortedKeys])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    struct BatchRequest: Decodable {
        struct Object: Decodable {
            let oid: String
            let size: UInt64
        }
        let operation: String
        let objects: [Object]
        let transfers: [String]?
    }

    /// `POST /{ns}/{name}.git/info/lfs/objects/batch`: for each object, nothing when the blob is stored, an upload
    /// URL carrying its own capability and a verify URL otherwise, or a per-object error the client prints.
    func batch(_ request: Request, _ context: RegistryContext) async throws -> Response {
        let model = try repository(context, suffix: ".git")
        try await access.authorize(request, context, roles: [.publisher])
        let ask = try await bodies.decode(request, as: BatchRequest.self, what: "LFS batch request")
        // A namespace the token may not write is refused per object, where the client prints it (and recorded).
        do throws(CustodyError) { try Authorizer.require(context.token, .publish(into: model.namespace)) } catch {
            let refusal = await access.deny(.forbidden, error.message, request: request, context: context)
            let objects = ask.objects.map { ["oid": $0.oid, "size": $0.size, "error": ["code": 403, "message": refusal.detail]] as [String: Any] }
            let body = try JSONSerialization.data(withJSONObject: ["transfer": "basic", "objects": objects], options: [.sortedKeys])
            return Response(status: .ok, headers: [.contentType: Self.lfsJSON], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        guard ask.operation == "upload" else { throw HubError(.badRequest, code: nil, "this registry takes LFS uploads only") }
        let multipart = ask.transfers?.contains("multipart") ?? false
        var objects: [[String: Any]] = []
        for object in ask.objects {
            objects.append(try await batchAnswer(object, multipart: multipart, actor: context.actor, request))
        }
        let parted = objects.contains { (($0["actions"] as? [String: Any])?["upload"] as? [String: Any])?["header"] != nil }
        let body = try JSONSerialization.data(
            withJSONObject: ["transfer": parted ? "multipart" : "basic", "objects": objects], options: [.sortedKeys])
        return Response(status: .ok, headers: [.contentType: Self.lfsJSON], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    private func batchAnswer(_ object: BatchRequest.Object, multipart: Bool, actor: String, _ request: Request) async throws -> [String: Any] {
        let answer: [String: Any] = ["oid": object.oid, "size": object.size]
        guard let digest = try? ContentDigest(parsing: "sha256:" + object.oid) else {
            return answer.merging(["error": ["code": 422, "message": "oid '\(object.oid)' is not a sha256 in hex"]]) { $1 }
        }
        guard object.size <= uploads.maxBlobSize else {
            let message = "\(object.size) bytes is over this registry's \(uploads.maxBlobSize)-byte limit for one file (limits.maxBlobSize)"
            return answer.merging(["error": ["code": 413, "message": message]]) { $1 }
        }
        if try await uploads.storedSize(digest) == object.size { return answer }
        let capability = capabilities.issue(digest, size: object.size, actor: actor)
        let href = "\(base(request))/api/custody/lfs/\(capability)"
        var upload: [String: Any] = ["href": href, "expires_in": Int(capabilities.lifetime)]
        if multipart, object.size > partSize {
            // Multipart: one URL per part, and the completion POSTed to `href`.
            var header: [String: String] = ["chunk_size": String(partSize)]
            for part in 1...Int((object.size + partSize - 1) / partSize) { header[String(part)] = "\(href)/\(part)" }
            upload["header"] = header
        }
        let actions: [String: Any] = ["upload": upload, "verify": ["href": "\(base(request))/api/custody/lfs-verify"]]
        return answer.merging(["actions": actions]) { $1 }
    }

    /// `PUT` of a blob to its capability URL (no `Authorization`: the URL is the permission): hashed while written,
    /// kept only when its bytes are the digest the capability names.
    func receive(_ request: Request, _ context: RegistryContext) async throws -> Response {
        let grant: UploadCapability.Grant
        let capability = try context.parameters.require("capability")
        do throws(CustodyError) { grant = try capabilities.check(capability) } catch {
            throw HubError(.forbidden, code: nil, error.message)
        }
        let declared = request.headers[.contentLength].flatMap { UInt64($0) }
        if let declared, declared != grant.size {
            throw HubError(.badRequest, code: nil, "this upload URL is for \(grant.size) bytes, not \(declared)")
        }
        _ = try await uploads.receive(grant.digest, from: 0, declaredLength: declared ?? grant.size, body: request.body.map { $0.readableBytesView })
        guard try await uploads.storedSize(grant.digest) == grant.size else {
            throw HubError(.badRequest, code: nil, "the uploaded bytes are not the \(grant.size) bytes of \(grant.digest)")
        }
        return Response(status: .ok)
    }

    /// `PUT` of part N of a multipart upload to its URL: the parts arrive in order, each at its offset; the last one
    /// stores the blob, digest checked. Each answer carries the `ETag` the client sends back at completion.
    func receivePart(_ request: Request, _ context: RegistryContext) async throws -> Response {
        let grant = try grant(context)
        guard let part = Int(try context.parameters.require("part")), part >= 1,
            UInt64(part - 1) * partSize < max(grant.size, 1)
        else { throw HubError(.badRequest, code: nil, "no such part of this upload") }
        let offset = UInt64(part - 1) * partSize
        let expected = min(partSize, grant.size - offset)
        let declared = request.headers[.contentLength].flatMap { UInt64($0) }
        if let declared, declared != expected {
            throw HubError(.badRequest, code: nil, "part \(part) is \(expected) bytes, not \(declared)")
        }
        let staged = try await uploads.receivePart(
            grant.digest, size: grant.size, from: offset, declaredLength: declared ?? expected, body: request.body.map { $0.readableBytesView })
        guard staged == offset + expected else {
            throw HubError(.badRequest, code: nil, "part \(part) ended after \(staged - offset) of its \(expected) bytes")
        }
        return Response(status: .ok, headers: [.eTag: "\"\(grant.digest.hex.prefix(16))-\(part)\""])
    }

    struct Completion: Decodable {
        struct Part: Decodable {
            let partNumber: Int
            let etag: String
        }
        let oid: String
        let parts: [Part]
    }

    /// The completion of a multipart upload: every part must have arrived, and the blob must be stored.
    func complete(_ request: Request, _ context: RegistryContext) async throws -> Response {
        let grant = try grant(context)
        let ask = try await bodies.decode(request, as: Completion.self, what: "multipart completion")
        let count = Int((grant.size + partSize - 1) / partSize)
        guard ask.oid == grant.digest.hex, ask.parts.map(\.partNumber) == Array(1...max(count, 1)) else {
            throw HubError(.badRequest, code: nil, "the completion must list parts 1 to \(count) of \(grant.digest.hex), in order")
        }
        guard try await uploads.storedSize(grant.digest) == grant.size else {
            throw HubError(.badRequest, code: nil, "not every part of \(grant.digest.hex) has arrived; nothing was stored")
        }
        return try .json(["oid": ask.oid])
    }

    private func grant(_ context: RegistryContext) throws -> UploadCapability.Grant {
        let capability = try context.parameters.require("capability")
        do throws(CustodyError) { return try capabilities.check(capability) } catch {
            throw HubError(.forbidden, code: nil, error.message)
        }
    }

    struct VerifyRequest: Decodable {
        let oid: String
        let size: UInt64
    }

    func verify(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.publisher])
        let ask = try await bodies.decode(request, as: VerifyRequest.self, what: "LFS verify request")
        guard let digest = try? ContentDigest(parsing: "sha256:" + ask.oid), try await uploads.storedSize(digest) == ask.size else {
            throw HubError(.notFound, code: nil, "object \(ask.oid) of \(ask.size) bytes is not stored")
        }
        return try .json(["oid": ask.oid, "size": String(ask.size)])
    }

    // MARK: - Commits

    /// `POST /api/models/{ns}/{name}/commit/{rev}` (NDJSON): the parent version's files (the newest active version,
    /// or `parentCommit`), with the commit's additions and deletions, become a new version. Its tag is the revision
    /// when that is not `main`, else `hf-` and the first 12 hex digits of its bundle digest.
    func commit(_ request: Request, _ context: RegistryContext) async throws -> Response {
        let model = try repository(context)
        try await access.authorize(request, context, roles: [.publisher], namespace: model.namespace)
        let revision = HubController.decoded(try context.parameters.require("rev"))
        if request.uri.queryParameters["create_pr"] != nil {
            throw HubError(.badRequest, code: nil, "pull requests are not served: commit to main or to a version tag")
        }
        let lines = try HubCommit.parse(String(buffer: try await bodies.collect(request)))
        var files = try await parentFiles(model, lines.parentCommit, context)
        try await lines.apply(to: &files, uploads: uploads)
        let entries = files.values.sorted { $0.path < $1.path }
        guard !entries.isEmpty else { throw HubError(.badRequest, code: nil, "the commit leaves the repository without files") }
        let digest = PublishService.manifest(of: entries, model: model).rootDigest
        let tag = ["main", "refs/heads/main"].contains(revision) ? "hf-" + String(digest.hex.prefix(12)) : HubRepository.normalize(revision)
        let ask = API.PublishRequest(version: tag, files: entries, license: nil, provenance: nil, signature: nil)
        let outcome = try await publish(ask, model, actor: context.actor)
        if case .created = outcome { logger.info("published", metadata: ["model": "\(model)", "version": "\(tag)", "via": "hub"]) }
        let oid = HubRepository.commit(of: digest)
        return try .json(["commitOid": oid, "commitUrl": "\(base(request))/\(model)/commit/\(oid)", "success": "true"])
    }

    /// Publishes, answering a refusal in the Hub's format (the client prints its message).
    private func publish(_ ask: API.PublishRequest, _ model: ModelName, actor: String) async throws -> PublishOutcome {
        do throws(CustodyError) {
            return try await publishing.publish(ask, model: model, publishedBy: actor)
        } catch {
            throw HubError(error.code == .conflict ? .conflict : .badRequest, code: nil, "the commit was not published: \(error.message)")
        }
    }

    private func parentFiles(_ model: ModelName, _ parent: String?, _ context: RegistryContext) async throws -> [String: API.FileEntry] {
        guard try await !(hub.catalog.versionOrder(model) ?? []).isEmpty else {
            if let parent { throw HubError(.revisionNotFound("parent commit \(parent) is not in \(model)")) }
            return [:]
        }
        let resolved: HubRepository.Resolved
        do { resolved = try await hub.resolve(model, revision: parent ?? "main", token: context.token) } catch let refusal as HubRepository.Refusal {
            if parent == nil, case .revisionNotFound = refusal { return [:] }
            throw HubError(refusal)
        }
        return Dictionary(uniqueKeysWithValues: resolved.version.files.map { ($0.path, $0) })
    }

    // MARK: - Helpers

    func repository(_ context: RegistryContext, suffix: String = "") throws -> ModelName {
        try HubController.repository(context, suffix: suffix)
    }

    func base(_ request: Request) -> String { HubController.base(request, scheme: scheme) }
}

/// A commit's NDJSON body: a header, then files inline (base64), LFS files by sha256, and deletions.
struct HubCommit {
    enum Operation {
        case add(path: String, bytes: [UInt8])
        case lfs(path: String, digest: ContentDigest, size: UInt64)
        case deleteFile(String)
        case deleteFolder(String)
    }

    var parentCommit: String?
    var operations: [Operation] = []

    static func parse(_ body: String) throws -> HubCommit {
        var commit = HubCommit()
        for (number, line) in body.split(whereSeparator: \.isNewline).enumerated() {
            func bad(_ why: String) -> HubError { HubError(.badRequest, code: nil, "commit line \(number + 1): \(why)") }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let key = object["key"] as? String, let value = object["value"] as? [String: Any]
            else { throw bad("not a {\"key\", \"value\"} JSON object") }
            let path = value["path"] as? String
            switch key {
            case "header":
                commit.parentCommit = value["parentCommit"] as? String
            case "file":
                guard let path, let content = value["content"] as? String, let bytes = Data(base64Encoded: content) else {
                    throw bad("a file needs a path and base64 content")
                }
                commit.operations.append(.add(path: path, bytes: Array(bytes)))
            case "lfsFile":
                guard let path, let oid = value["oid"] as? String, let size = (value["size"] as? NSNumber)?.uint64Value,
                    let digest = try? ContentDigest(parsing: "sha256:" + oid)
                else { throw bad("an LFS file needs a path, a sha256 oid and a size") }
                commit.operations.append(.lfs(path: path, digest: digest, size: size))
            case "deletedFile":
                guard let path else { throw bad("a deletion needs a path") }
                commit.operations.append(.deleteFile(path))
            case "deletedFolder":
                guard let path else { throw bad("a deletion needs a path") }
                commit.operations.append(.deleteFolder(path.hasSuffix("/") ? String(path.dropLast()) : path))
            default:
                throw bad("unknown key '\(key)'")
            }
        }
        return commit
    }

    /// Applies the operations to a version's files; inline files are stored as blobs first, LFS files must be.
    func apply(to files: inout [String: API.FileEntry], uploads: Uploads) async throws {
        for operation in operations {
            switch operation {
            case .add(let path, let bytes):
                let digest = ContentDigest.of(bytes)
                let body = AsyncStream<[UInt8]> { continuation in
                    continuation.yield(bytes)
                    continuation.finish()
                }
                _ = try await uploads.receive(digest, from: 0, declaredLength: UInt64(bytes.count), body: body)
                files[path] = API.FileEntry(path: path, size: UInt64(bytes.count), digest: digest)
            case .lfs(let path, let digest, let size):
                guard try await uploads.storedSize(digest) == size else {
                    throw HubError(.badRequest, code: nil, "'\(path)': LFS object \(digest.hex) of \(size) bytes was not uploaded")
                }
                files[path] = API.FileEntry(path: path, size: size, digest: digest)
            case .deleteFile(let path):
                files[path] = nil
            case .deleteFolder(let folder):
                files = files.filter { !$0.key.hasPrefix(folder + "/") }
            }
        }
    }
}
