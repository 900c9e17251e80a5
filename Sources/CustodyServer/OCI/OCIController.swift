import CustodyCore
import CustodyRegistry
import CustodyStorage
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Prometheus

/// The OCI distribution API v1.1 front door (`/v2/`): every model version as a ModelPack artifact with its
/// signature, scan report and AI-BOM as referrers, pushes of model artifacts as new versions, and the same gate and
/// pull records as `/v1` in front of every manifest and blob. See docs/oci.md.
struct OCIController {
    let artifacts: OCIArtifacts
    let pulls: Pulls
    let owners: OCIUploadOwners
    let sender: BlobSender
    let access: Access
    let metrics: RegistryMetrics

    static let readers: Set<Role> = [.publisher, .consumer, .auditor, .security, .gate]

    var routes: RouteCollection<RegistryContext> {
        let routes = RouteCollection(context: RegistryContext.self)
        routes.get("/v2") { request, context in try await ping(request, context) }
        routes.get("/v2/token") { request, context in try await token(request, context) }
        for method in [HTTPRequest.Method.get, .head, .put, .post, .patch, .delete] {
            routes.on("/v2/**", method: method) { request, context in try await dispatch(request, context) }
        }
        return routes
    }

    // MARK: - Authentication

    /// `GET /v2/`: 200 for a valid token, 401 with the token challenge otherwise (skopeo sends credentials only
    /// after this ping is refused).
    func ping(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: Self.readers)
        return try .json([String: String]())
    }

    /// The token endpoint of the challenge (`GET /v2/token?service=…&scope=…`), with the Custody token as the
    /// Basic password (or as a Bearer token). It answers with that same token: a Custody token is already scoped by
    /// its role, namespaces and environments, and carries what it may do in every repository, so a client that keeps
    /// its first token (oras-py) may still push with it.
    func token(_ request: Request, _ context: RegistryContext) async throws -> Response {
        guard let token = context.token, let header = request.headers[.authorization],
            let secret = AuthenticationMiddleware.secret(header, path: request.uri.path)
        else {
            var error = OCIError(.unauthorized, .unauthorized, "the token endpoint needs a Custody token as the Basic password (user:cst_…)")
            error.headers[.wwwAuthenticate] = "Basic realm=\"custody\""
            throw error
        }
        let issued = RFC3339.string(.now)
        let body: [String: Any] = ["token": secret, "access_token": secret, "expires_in": 300, "issued_at": issued]
        _ = token
        let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    // MARK: - Dispatch

    func dispatch(_ request: Request, _ context: RegistryContext) async throws -> Response {
        guard let route = try? OCIRoute(path: request.uri.path) else {
            throw OCIError(.notFound, .unsupported, "\(request.method.rawValue) \(request.uri.path) is not a route of the distribution API")
        }
        // Authentication comes before anything names a repository, so that anonymous requests always get the challenge.
        try await access.authorize(request, context, roles: Self.readers.union([.publisher]))
        let model = try OCIArtifacts.repository(route.name)
        switch (request.method, route.endpoint) {
        case (.get, .manifest(let reference)), (.head, .manifest(let reference)):
            return try await manifest(model, reference, request, context)
        case (.put, .manifest(let reference)):
            return try await pushManifest(model, reference, request, context)
        case (.delete, .manifest(let reference)):
            return try await deleteManifest(model, reference, request, context)
        case (.get, .blob(let digest)), (.head, .blob(let digest)):
            return try await blob(model, digest, request, context)
        case (.delete, .blob):
            throw OCIError(
                .methodNotAllowed, .unsupported, "blobs are not deleted through the API: the registry collects those no manifest references")
        case (.post, .upload(nil)):
            return try await startUpload(model, request, context)
        case (.patch, .upload(let id?)):
            return try await patchUpload(model, id, request, context)
        case (.put, .upload(let id?)):
            return try await finishUpload(model, id, request, context)
        case (.get, .upload(let id?)):
            return try await uploadStatus(model, id, request, context)
        case (.delete, .upload(let id?)):
            return try await cancelUpload(model, id, request, context)
        case (.get, .tags):
            return try await tags(model, request, context)
        case (.get, .referrers(let digest)):
            return try await referrers(model, digest, request, context)
        default:
            throw OCIError(.methodNotAllowed, .unsupported, "\(request.method.rawValue) is not allowed on \(request.uri.path)")
        }
    }

    // MARK: - Manifests

    /// A manifest by tag or digest. The manifest of a model version (and its attachments) goes through the gate
    /// first: a consumer's environments must allow the version; a GET of a version's manifest is one pull event.
    func manifest(_ model: ModelName, _ reference: String, _ request: Request, _ context: RegistryContext) async throws -> Response {
        let resolved = try await artifacts.manifest(model, reference: reference)
        let record = resolved.record
        var headers: HTTPFields = [
            .contentType: record.mediaType, OCIHeaders.contentDigest: record.digest.description, .eTag: "\"\(record.digest)\"",
            .contentLength: String(record.bytes.count),
        ]
        if let version = resolved.version {
            let outcome = try await pulls.decide(model, version: version, token: context.token)
            let recorded = request.method == .get && record.kind == .model
            if recorded {
                try await pulls.record(
                    outcome, model, version: version, fetching: "OCI manifest \(record.digest)", actor: context.actor,
                    client: context.clientAddress, via: via(request))
            }
            switch outcome {
            case .denied(let denied):
                throw OCIError(.forbidden, .denied, denied.message, detail: try Self.decisions(denied.decisions))
            case .granted(.allowed(let decision)):
                let warnings = decision.checks.filter { $0.result == .warning }.map { "\($0.check): \($0.reason)" }
                if !warnings.isEmpty {
                    let text = HubHeaders.safe("custody: allowed in \(decision.environment) with warnings: " + warnings.joined(separator: "; "))
                    headers[OCIHeaders.warning] = "299 - \"\(text.replacingOccurrences(of: "\"", with: "'"))\""
                }
            case .granted(.ungated):
                break
            }
        }
        if request.method == .head { return Response(status: .ok, headers: headers) }
        metrics.bytesOut.increment(by: Int64(record.bytes.count))
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: record.bytes)))
    }

    func pushManifest(_ model: ModelName, _ reference: String, _ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.publisher], namespace: model.namespace)
        let limit = artifacts.maxManifestSize
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw OCIError(.contentTooLarge, .sizeInvalid, "the manifest is \(declared) bytes, over this registry's \(limit)-byte limit")
        }
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: limit) } catch is NIOTooManyBytesError {
            throw OCIError(.contentTooLarge, .sizeInvalid, "the manifest is over this registry's \(limit)-byte limit")
        }
        let pushed = try await artifacts.push(
            Array(body.readableBytesView), contentType: request.headers[.contentType], to: model, reference: reference, actor: context.actor)
        var headers: HTTPFields = [
            .location: "/v2/\(model)/manifests/\(pushed.digest)", OCIHeaders.contentDigest: pushed.digest.description, .contentLength: "0",
        ]
        if let subject = pushed.subject { headers[OCIHeaders.subject] = subject.description }
        if let warning = pushed.warning {
            headers[OCIHeaders.warning] = "299 - \"\(HubHeaders.safe(warning).replacingOccurrences(of: "\"", with: "'"))\""
        }
        return Response(status: .created, headers: headers)
    }

    func deleteManifest(_ model: ModelName, _ reference: String, _ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.publisher], namespace: model.namespace)
        let repository = model.description
        let versionTags = Set(try await artifacts.catalog.versionOrder(model)?.map(\.version) ?? [])
        if OCIArtifacts.isDigest(reference) {
            let digest = try OCIArtifacts.digest(reference)
            if try await artifacts.records.deleteOCIManifest(repository: repository, digest: digest) { return Response(status: .accepted) }
            if try await artifacts.records.ociManifest(repository: repository, digest: digest) != nil {
                throw Self.immutable(model)
            }
            throw OCIError(.notFound, .manifestUnknown, "\(repository) has no manifest \(digest)", detail: digest.description)
        }
        if versionTags.contains(reference) { throw Self.immutable(model) }
        if try await artifacts.records.deleteOCITag(repository: repository, tag: reference) { return Response(status: .accepted) }
        throw OCIError(.notFound, .manifestUnknown, "\(repository) has no tag '\(reference)'", detail: reference)
    }

    static func immutable(_ model: ModelName) -> OCIError {
        OCIError(
            .methodNotAllowed, .unsupported,
            "the manifests of \(model)'s versions are not deleted: versions are immutable; yank one with `custody status yank` instead")
    }

    // MARK: - Blobs

    /// A blob by digest. A consumer gets it only when one of its environments allows a version whose manifest holds it,
    /// so that a denied version's weights cannot be fetched by digest.
    func blob(_ model: ModelName, _ text: String, _ request: Request, _ context: RegistryContext) async throws -> Response {
        let digest = try OCIArtifacts.digest(text)
        guard let size = try await artifacts.uploads.storedSize(digest) else {
            throw OCIError(.notFound, .blobUnknown, "blob \(digest) is not in the registry", detail: digest.description)
        }
        if let token = context.token, try await !pulls.mayFetch(blob: digest, token: token) {
            throw await OCIError(
                .forbidden, .denied,
                access.deny(
                    .forbidden, "blob \(digest) is not part of any version allowed in \(token.environments.joined(separator: ", "))",
                    request: request, context: context
                ).detail)
        }
        let extra: HTTPFields = [OCIHeaders.contentDigest: digest.description]
        if request.method == .head {
            var headers = extra
            headers[.contentLength] = String(size)
            headers[.contentType] = "application/octet-stream"
            headers[.acceptRanges] = "bytes"
            headers[.eTag] = "\"\(digest)\""
            return Response(status: .ok, headers: headers)
        }
        return try await sender.serve(digest, request, context, extra: extra)
    }

    // MARK: - Uploads

    /// `POST …/blobs/uploads/`: a cross-repository mount (201 when the blob is in the repository named by `from`),
    /// a monolithic upload (`?digest=` with the body), or a new upload session (202 with its `Location`).
    func startUpload(_ model: ModelName, _ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.publisher], namespace: model.namespace)
        let query = request.uri.queryParameters
        if let mount = query["mount"].map(String.init), let from = query["from"].map(String.init) {
            let digest = try OCIArtifacts.digest(mount)
            if let source = try? OCIArtifacts.repository(from), try await artifacts.uploads.storedSize(digest) != nil,
                try await artifacts.records.ociRepository(source.description, references: digest)
            {
                return Response(status: .created, headers: blobCreated(model, digest))
            }
        } else if let text = query["digest"].map(String.init) {
            let digest = try OCIArtifacts.digest(text)
            let declared = request.headers[.contentLength].flatMap { UInt64($0) }
            do throws(CustodyError) {
                _ = try await artifacts.uploads.receive(digest, from: 0, declaredLength: declared, body: request.body.map { $0.readableBytesView })
            } catch {
                throw Self.uploadError(error)
            }
            metrics.blobUploads.increment()
            return Response(status: .created, headers: blobCreated(model, digest))
        }
        let id = try await artifacts.uploads.startSession()
        owners.start(id, .init(token: context.token?.id ?? "", repository: model.description))
        return Response(status: .accepted, headers: uploadHeaders(model, id, size: 0))
    }

    /// `PATCH <location>`: a chunk (`Content-Range: a-b`, which must start where the upload stands: 416 otherwise)
    /// or, without `Content-Range`, the rest of the blob streamed.
    func patchUpload(_ model: ModelName, _ text: String, _ request: Request, _ context: RegistryContext) async throws -> Response {
        let id = try session(model, text, context)
        var offset: UInt64?
        let declared = request.headers[.contentLength].flatMap { UInt64($0) }
        if let header = request.headers[.contentRange] {
            guard let range = Self.contentRange(header) else {
                throw OCIError(.badRequest, .blobUploadInvalid, "Content-Range '\(header)' is not <start>-<end>")
            }
            if let declared, declared != range.upperBound - range.lowerBound + 1 {
                throw OCIError(.badRequest, .blobUploadInvalid, "Content-Range '\(header)' does not match Content-Length \(declared)")
            }
            offset = range.lowerBound
        }
        let total: UInt64
        do throws(CustodyError) {
            total = try await artifacts.uploads.appendChunk(id, at: offset, declaredLength: declared, body: request.body.map { $0.readableBytesView })
        } catch {
            guard error.code == .outOfOrder else { throw Self.uploadError(error) }
            var refusal = OCIError(.rangeNotSatisfiable, .blobUploadInvalid, error.message)
            let staged = await artifacts.uploads.sessionSize(id) ?? 0
            refusal.headers = uploadHeaders(model, id, size: staged)
            throw refusal
        }
        return Response(status: .accepted, headers: uploadHeaders(model, id, size: total))
    }

    /// `PUT <location>?digest=…`, with an optional last chunk: the blob is placed under its digest if its bytes are
    /// that digest; otherwise nothing is kept.
    func finishUpload(_ model: ModelName, _ text: String, _ request: Request, _ context: RegistryContext) async throws -> Response {
        let id = try session(model, text, context)
        guard let named = request.uri.queryParameters["digest"].map(String.init) else {
            throw OCIError(.badRequest, .digestInvalid, "the upload's PUT needs ?digest=sha256:…")
        }
        let digest = try OCIArtifacts.digest(named)
        let declared = request.headers[.contentLength].flatMap { UInt64($0) }
        do throws(CustodyError) {
            _ = try await artifacts.uploads.finishSession(
                id, expecting: digest, declaredLength: declared, body: request.body.map { $0.readableBytesView })
        } catch {
            if error.code != .io { owners.end(id) }
            throw Self.uploadError(error)
        }
        owners.end(id)
        metrics.blobUploads.increment()
        return Response(status: .created, headers: blobCreated(model, digest))
    }

    func uploadStatus(_ model: ModelName, _ text: String, _ request: Request, _ context: RegistryContext) async throws -> Response {
        let id = try session(model, text, context)
        guard let size = await artifacts.uploads.sessionSize(id) else { throw Self.unknownUpload(text) }
        return Response(status: .noContent, headers: uploadHeaders(model, id, size: size))
    }

    func cancelUpload(_ model: ModelName, _ text: String, _ request: Request, _ context: RegistryContext) async throws -> Response {
        let id = try session(model, text, context)
        owners.end(id)
        guard try await artifacts.uploads.cancelSession(id) else { throw Self.unknownUpload(text) }
        return Response(status: .noContent)
    }

    /// The session `text` names, when the request's token started it in this repository (and may still push there).
    func session(_ model: ModelName, _ text: String, _ context: RegistryContext) throws -> UploadID {
        guard let id = try? UploadID(text), let owner = owners.owner(of: id.rawValue),
            owner == .init(token: context.token?.id ?? "", repository: model.description)
        else { throw Self.unknownUpload(text) }
        do throws(CustodyError) { try Authorizer.require(context.token, .publish(into: model.namespace)) } catch {
            throw OCIError(.forbidden, .denied, error.message)
        }
        return id
    }

    static func unknownUpload(_ id: String) -> OCIError {
        OCIError(.notFound, .blobUploadUnknown, "upload '\(id)' is not in progress for this token and repository", detail: id)
    }

    static func uploadError(_ error: CustodyError) -> any Error {
        switch error.code {
        case .invalidArgument where error.message.contains("hash to"): OCIError(.badRequest, .digestInvalid, error.message)
        case .invalidArgument: OCIError(.badRequest, .blobUploadInvalid, error.message)
        case .tooLarge: OCIError(.contentTooLarge, .sizeInvalid, error.message)
        case .notFound: OCIError(.notFound, .blobUploadUnknown, error.message)
        default: error
        }
    }

    func uploadHeaders(_ model: ModelName, _ id: UploadID, size: UInt64) -> HTTPFields {
        [
            .location: "/v2/\(model)/blobs/uploads/\(id)", OCIHeaders.range: "0-\(size == 0 ? 0 : size - 1)", OCIHeaders.uploadUUID: id.rawValue,
            .contentLength: "0",
        ]
    }

    func blobCreated(_ model: ModelName, _ digest: ContentDigest) -> HTTPFields {
        [.location: "/v2/\(model)/blobs/\(digest)", OCIHeaders.contentDigest: digest.description, .contentLength: "0"]
    }

    /// `Content-Range` as clients send it on a PATCH: `a-b` (inclusive; `bytes a-b` and `bytes=a-b` also read).
    static func contentRange(_ header: String) -> ClosedRange<UInt64>? {
        var text = Substring(header.trimmingCharacters(in: .whitespaces))
        for prefix in ["bytes=", "bytes "] where text.hasPrefix(prefix) { text = text.dropFirst(prefix.count) }
        if let slash = text.firstIndex(of: "/") { text = text[..<slash] }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = UInt64(parts[0]), let end = UInt64(parts[1]), start <= end else { return nil }
        return start...end
    }

    // MARK: - Tags and referrers

    /// `GET …/tags/list[?n=&last=]`: tags in lexical order, a page at a time with a `Link` to the next.
    func tags(_ model: ModelName, _ request: Request, _ context: RegistryContext) async throws -> Response {
        var tags = try await artifacts.tags(model)
        let query = request.uri.queryParameters
        if let last = query["last"].map(String.init) { tags = tags.filter { $0 > last } }
        var headers: HTTPFields = [:]
        if let text = query["n"].map(String.init) {
            guard let n = Int(text), n >= 0 else { throw OCIError(.badRequest, .unsupported, "n='\(text)' is not a count") }
            if tags.count > n {
                tags = Array(tags.prefix(n))
                if let last = tags.last { headers[OCIHeaders.link] = "</v2/\(model)/tags/list?n=\(n)&last=\(last)>; rel=\"next\"" }
            }
        }
        return try .json(TagList(name: model.description, tags: tags), headers: headers)
    }

    struct TagList: Encodable {
        let name: String
        let tags: [String]
    }

    /// `GET …/referrers/<digest>[?artifactType=]`: an image index of the manifests whose subject is the digest (empty,
    /// never 404, when there are none).
    func referrers(_ model: ModelName, _ text: String, _ request: Request, _ context: RegistryContext) async throws -> Response {
        let digest = try OCIArtifacts.digest(text)
        let artifactType = request.uri.queryParameters["artifactType"].map(String.init)
        let manifests = try await artifacts.referrers(model, subject: digest, artifactType: artifactType)
        let index = OCIManifestIndex(manifests: manifests)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var headers: HTTPFields = [.contentType: OCIMediaType.imageIndex]
        if artifactType != nil { headers[OCIHeaders.filtersApplied] = "artifactType" }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(index))))
    }

    struct OCIManifestIndex: Encodable {
        var schemaVersion = 2
        var mediaType = OCIMediaType.imageIndex
        let manifests: [OCIDescriptor]
    }

    // MARK: - Support

    func via(_ request: Request) -> String { request.via("the OCI API") }

    static func decisions(_ decisions: [API.Decision]) throws -> Any {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try JSONSerialization.jsonObject(with: try encoder.encode(decisions))
    }
}
