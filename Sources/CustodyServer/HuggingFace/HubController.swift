import CustodyCore
import CustodyRegistry
import CustodyStorage
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The Hugging Face Hub–compatible front door (`HF_ENDPOINT=<registry>`): model info, trees, refs, paths-info and
/// `resolve` downloads for huggingface_hub, transformers, vLLM and the `hf` CLI, over the same authorization, gate
/// and pull records as `/v1`. See docs/huggingface.md.
struct HubController {
    let hub: HubRepository
    let sessions: PullSessions
    let sender: BlobSender
    let access: Access
    let bodies: JSONBodies
    let scheme: String

    static let readers: Set<Role> = [.publisher, .consumer, .auditor, .security, .gate]
    static let pageSize = 1000

    var routes: RouteCollection<RegistryContext> {
        let routes = RouteCollection(context: RegistryContext.self)
        routes.get("/api/whoami-v2") { request, context in try await whoami(request, context) }
        routes.get("/api/models/:ns/:name") { request, context in try await info(request, context, revision: "main") }
        routes.get("/api/models/:ns/:name/revision/:rev") { request, context in try await info(request, context, revision: nil) }
        routes.get("/api/models/:ns/:name/tree/:rev") { request, context in try await tree(request, context) }
        routes.get("/api/models/:ns/:name/tree/:rev/**") { request, context in try await tree(request, context) }
        routes.post("/api/models/:ns/:name/paths-info/:rev") { request, context in try await pathsInfo(request, context) }
        routes.get("/api/models/:ns/:name/refs") { request, context in try await refs(request, context) }
        routes.get("/api/models/:ns/:name/xet-read-token/:rev") { _, _ -> Response in throw Self.noXet }
        routes.get("/api/models/:ns/:name/xet-write-token/:rev") { _, _ -> Response in throw Self.noXet }
        routes.head("/:ns/:name/resolve/:rev/**") { request, context in try await resolve(request, context) }
        routes.get("/:ns/:name/resolve/:rev/**") { request, context in try await resolve(request, context) }
        return routes
    }

    static let noXet = HubError(
        .notImplemented, code: nil, "this registry does not speak Xet: set HF_HUB_DISABLE_XET=1 so that huggingface_hub uses LFS")

    // MARK: - Handlers

    func whoami(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: Self.readers)
        guard let token = context.token else { throw HubError(.unauthorized, code: nil, "a token is required") }
        let name = token.name ?? token.id
        let role = token.role == .admin || token.role == .publisher ? "write" : "read"
        return try .json(
            HubDocuments.WhoAmI(
                id: token.id, name: name, fullname: name, auth: .init(accessToken: .init(displayName: name, role: role))))
    }

    func info(_ request: Request, _ context: RegistryContext, revision: String?) async throws -> Response {
        try await access.authorize(request, context, roles: Self.readers)
        let resolved = try await resolve(try repository(context), revision ?? (try self.revision(context)), request, context)
        let files = try await files(of: resolved)
        let blobs = ["true", "1", "True"].contains(request.uri.queryParameters["blobs"].map(String.init) ?? "")
        return try .json(HubDocuments.modelInfo(resolved, files: files, blobs: blobs), headers: warnings(resolved))
    }

    func tree(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: Self.readers)
        let resolved = try await resolve(try repository(context), try revision(context), request, context)
        let directory = try path(context, allowingRoot: true)
        let query = request.uri.queryParameters
        let recursive = ["true", "1", "True"].contains(query["recursive"].map(String.init) ?? "")
        guard let entries = HubDocuments.tree(try await files(of: resolved), under: directory, recursive: recursive) else {
            throw HubError(.entryNotFound("\(resolved.model) has no folder '\(directory)' at \(resolved.commit)"))
        }
        let start = query["cursor"].flatMap { Int($0) }.map { max(0, $0) } ?? 0
        let page = Array(entries.dropFirst(start).prefix(Self.pageSize))
        var headers = warnings(resolved)
        if start + page.count < entries.count {
            headers[HubHeaders.link] = "<\(nextPage(request, cursor: start + page.count))>; rel=\"next\""
        }
        return try .json(page, headers: headers)
    }

    func pathsInfo(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: Self.readers)
        let resolved = try await resolve(try repository(context), try revision(context), request, context)
        let form = HubForm(String(buffer: try await bodies.collect(request)))
        let paths = try form.values("paths").map { try Self.validPath($0) }
        return try .json(HubDocuments.pathsInfo(try await files(of: resolved), paths: paths))
    }

    func refs(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: Self.readers)
        let model = try repository(context)
        guard let versions = try await hub.catalog.versionOrder(model), !versions.isEmpty else {
            throw HubError(.repositoryNotFound("Repository \(model) is not in this registry"))
        }
        let main = try? await hub.resolve(model, revision: "main", token: context.token)
        let tags = versions.reversed().map {
            HubDocuments.Refs.Ref(name: $0.version, ref: "refs/tags/\($0.version)", targetCommit: HubRepository.commit(of: $0.digest))
        }
        let branches = main.map { [HubDocuments.Refs.Ref(name: "main", ref: "refs/heads/main", targetCommit: $0.commit)] } ?? []
        let prs = request.uri.queryParameters["include_prs"] != nil ? [HubDocuments.Refs.Ref]() : nil
        return try .json(HubDocuments.Refs(branches: branches, tags: tags, converts: [], pullRequests: prs))
    }

    /// `HEAD` or `GET /{ns}/{name}/resolve/{rev}/{path}`: the file's metadata (commit, sha256 ETag, size) and, for a
    /// GET, its bytes (ranges honoured). The first fetch of a version by a token from an address is recorded as a pull.
    func resolve(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: Self.readers)
        let resolved = try await resolve(try repository(context), try revision(context), request, context)
        let path = try path(context, allowingRoot: false)
        var headers = warnings(resolved)
        headers[HubHeaders.repoCommit] = resolved.commit
        guard let file = try await files(of: resolved).first(where: { $0.path == path }) else {
            var error = HubError(.entryNotFound("\(resolved.model) has no file '\(path)' at \(resolved.commit)"))
            error.headers = headers
            throw error
        }
        headers[.eTag] = "\"\(file.sha256)\""
        headers[HubHeaders.linkedETag] = "\"\(file.sha256)\""
        headers[HubHeaders.linkedSize] = String(file.size)
        try await recordPull(resolved, fetching: "file \(path)", request, context)
        if request.method == .head {
            headers[.contentLength] = String(file.size)
            headers[.acceptRanges] = "bytes"
            headers[.contentType] = "application/octet-stream"
            return Response(status: .ok, headers: headers)
        }
        guard let entry = resolved.version.files.first(where: { $0.path == path }) else {
            let signature = try await hub.catalog.registrySignature(resolved.model, version: resolved.version.version)
            return try sender.serve(bytes: signature, request, extra: headers)
        }
        return try await sender.serve(entry.digest, request, context, extra: headers)
    }
}

// MARK: - Parsing and resolution

extension HubController {
    /// The repository id from the path (`:ns/:name`, the name without `suffix`, as in `acme/up.git`), matched
    /// case-insensitively: Custody's model names are lowercase.
    static func repository(_ context: RegistryContext, suffix: String = "") throws -> ModelName {
        let namespace = decoded(try context.parameters.require("ns")).lowercased()
        var name = decoded(try context.parameters.require("name")).lowercased()
        if !suffix.isEmpty {
            guard name.hasSuffix(suffix) else { throw HubError(.notFound, code: nil, "no such route") }
            name.removeLast(suffix.count)
        }
        do throws(CustodyError) { return try ModelName(namespace: namespace, name: name) } catch {
            throw HubError(.repositoryNotFound("'\(namespace)/\(name)' is not a repository id of this registry: \(error.message)"))
        }
    }

    func repository(_ context: RegistryContext) throws -> ModelName { try Self.repository(context) }

    /// The registry's address as the client reached it, for the absolute URLs the Hub's clients follow.
    static func base(_ request: Request, scheme: String) -> String { "\(scheme)://\(request.head.authority ?? "127.0.0.1")" }

    func revision(_ context: RegistryContext) throws -> String {
        Self.decoded(try context.parameters.require("rev"))
    }

    /// The file or folder path after the revision, percent-decoded; a path that could not name a file of a bundle
    /// (`..`, empty components, NUL) is refused with 400.
    func path(_ context: RegistryContext, allowingRoot: Bool) throws -> String {
        let path = context.parameters.getCatchAll().map { Self.decoded(String($0)) }.joined(separator: "/")
        if path.isEmpty, allowingRoot { return "" }
        return try Self.validPath(path)
    }

    static func validPath(_ path: String) throws -> String {
        do throws(CustodyError) { try BundlePath.validate(path) } catch { throw HubError(.badRequest, code: nil, error.message) }
        return path
    }

    static func decoded(_ component: String) -> String { component.removingPercentEncoding ?? component }

    /// Resolves the revision for the request's token; a refusal by the gate is recorded (once per pull session) as
    /// `pull.denied` before it is answered.
    func resolve(_ model: ModelName, _ revision: String, _ request: Request, _ context: RegistryContext) async throws -> HubRepository.Resolved {
        do {
            return try await hub.resolve(model, revision: revision, token: context.token)
        } catch let refusal as HubRepository.Refusal {
            throw HubError(refusal)
        } catch let denial as HubRepository.Denial {
            let key = PullSessions.Key(
                actor: context.actor, client: context.clientAddress, model: model.description, version: denial.version, allowed: false)
            if sessions.starts(key) {
                try await hub.pulls.record(
                    .denied(denial.denied), model, version: denial.version, fetching: "revision \(revision)", actor: context.actor,
                    client: context.clientAddress, via: via(request))
            }
            throw HubError(denial.refusal)
        }
    }

    /// Records the pull a fetch starts (the first of a pull session).
    func recordPull(_ resolved: HubRepository.Resolved, fetching: String, _ request: Request, _ context: RegistryContext) async throws {
        let key = PullSessions.Key(
            actor: context.actor, client: context.clientAddress, model: resolved.model.description, version: resolved.version.version,
            allowed: true)
        guard sessions.starts(key) else { return }
        try await hub.pulls.record(
            resolved.outcome, resolved.model, version: resolved.version.version, fetching: fetching, actor: context.actor,
            client: context.clientAddress, via: via(request))
    }

    func via(_ request: Request) -> String { request.via("the Hugging Face API") }

    func files(of resolved: HubRepository.Resolved) async throws -> [HubDocuments.File] {
        let signature = try? await hub.catalog.registrySignature(resolved.model, version: resolved.version.version)
        return HubDocuments.files(of: resolved.version, signature: signature)
    }

    /// `X-HF-Warning` naming the newer versions `main` skipped, and why.
    func warnings(_ resolved: HubRepository.Resolved) -> HTTPFields {
        guard !resolved.skipped.isEmpty else { return [:] }
        let text = "custody; main is \(resolved.model)@\(resolved.version.version); skipped newer: " + resolved.skipped.joined(separator: " | ")
        return [HubHeaders.warning: HubHeaders.safe(text)]
    }

    func nextPage(_ request: Request, cursor: Int) -> String {
        var query = request.uri.queryParameters.filter { $0.key != "cursor" }.map { "\($0.key)=\($0.value)" }
        query.append("cursor=\(cursor)")
        return "\(Self.base(request, scheme: scheme))\(request.uri.path)?\(query.joined(separator: "&"))"
    }
}

/// An `application/x-www-form-urlencoded` body (`paths=a&paths=b&expand=false`), as huggingface_hub posts to
/// `paths-info`.
struct HubForm {
    let pairs: [(String, String)]

    init(_ text: String) {
        pairs = text.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            return (parts[0], parts.count > 1 ? parts[1] : "")
        }
    }

    func values(_ key: String) -> [String] { pairs.filter { $0.0 == key }.map(\.1) }
}
