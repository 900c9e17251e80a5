import Crypto
import CustodyCore
import CustodyRegistry
import Foundation

/// The JSON documents of the Hugging Face Hub API as huggingface_hub and transformers read them
/// (`../shared/protocols.md` §1.2): model info, tree entries, refs, whoami. Every file is declared an LFS file with
/// its sha256, so that `hf cache verify` checks sha256 and the blob name in a client's cache is the file's sha256.
enum HubDocuments {
    /// A file of a revision as the Hub lists it: a version's file, or the registry's `model.sig`.
    struct File: Sendable {
        let path: String
        let size: UInt64
        /// Lowercase hex sha256 of the file's bytes.
        let sha256: String
    }

    /// The size of the git-lfs pointer a Hub stores for an LFS file (the clients read it, never use it).
    static let pointerSize = 134

    /// Every file of a resolved revision, in path order: the version's files and the registry's OMS signature as
    /// `model.sig` (so that a snapshot can be checked with `model_signing verify`).
    static func files(of version: API.VersionDetail, signature: [UInt8]?) -> [File] {
        var files = version.files.map { File(path: $0.path, size: $0.size, sha256: $0.digest.hex) }
        if let signature, !files.contains(where: { $0.path == "model.sig" }) {
            files.append(File(path: "model.sig", size: UInt64(signature.count), sha256: ContentDigest.of(signature).hex))
        }
        return files.sorted { $0.path < $1.path }
    }

    struct LFS: Encodable {
        let oid: String
        let size: UInt64
        let pointerSize: Int
    }

    struct Sibling: Encodable {
        let rfilename: String
        var size: UInt64?
        var blobId: String?
        var lfs: SiblingLFS?
    }

    struct SiblingLFS: Encodable {
        let sha256: String
        let size: UInt64
        let pointerSize: Int
    }

    /// `GET /api/models/{ns}/{name}[/revision/{rev}]`.
    struct ModelInfo: Encodable {
        let _id: String
        let id: String
        let modelId: String
        let author: String
        let sha: String
        let lastModified: String
        let createdAt: String
        let `private` = false
        let gated = false
        let disabled = false
        let downloads = 0
        let likes = 0
        let tags: [String]
        let cardData: [String: CardValue]
        let siblings: [Sibling]
        let usedStorage: UInt64
    }

    /// A model card value: a string or a list of strings.
    enum CardValue: Encodable {
        case text(String)
        case list([String])

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .text(let text): try container.encode(text)
            case .list(let list): try container.encode(list)
            }
        }
    }

    static func modelInfo(_ resolved: HubRepository.Resolved, files: [File], blobs: Bool) -> ModelInfo {
        let version = resolved.version
        var card: [String: CardValue] = [:]
        var tags = ["custody", "custody-version:\(version.version)"]
        if let id = version.license.id {
            card["license"] = .text(id)
            tags.append("license:\(id)")
        }
        if let name = version.license.name { card["license_name"] = .text(name) }
        if let link = version.license.link { card["license_link"] = .text(link) }
        if !version.provenance.baseModels.isEmpty {
            card["base_model"] = .list(version.provenance.baseModels)
            tags += version.provenance.baseModels.map { "base_model:\($0)" }
        }
        if !version.provenance.datasets.isEmpty {
            card["datasets"] = .list(version.provenance.datasets)
            tags += version.provenance.datasets.map { "dataset:\($0)" }
        }
        let siblings = files.map { file in
            blobs
                ? Sibling(
                    rfilename: file.path, size: file.size, blobId: String(file.sha256.prefix(40)),
                    lfs: SiblingLFS(sha256: file.sha256, size: file.size, pointerSize: pointerSize))
                : Sibling(rfilename: file.path)
        }
        let model = resolved.model.description
        return ModelInfo(
            _id: resolved.commit, id: model, modelId: model, author: resolved.model.namespace, sha: resolved.commit,
            lastModified: hubDate(version.createdAt), createdAt: hubDate(version.createdAt), tags: tags, cardData: card,
            siblings: siblings, usedStorage: files.reduce(0) { $0 + $1.size })
    }

    /// A tree entry (`…/tree/{rev}`, `…/paths-info/{rev}`).
    struct TreeEntry: Encodable {
        let type: String
        let oid: String
        let size: UInt64
        let path: String
        var lfs: LFS?
    }

    /// The entries under `directory` ("" for the root): all of them when `recursive`, else its immediate children;
    /// nil when `directory` is neither the root nor a directory of the revision.
    static func tree(_ files: [File], under directory: String, recursive: Bool) -> [TreeEntry]? {
        let prefix = directory.isEmpty ? "" : directory + "/"
        var entries: [String: TreeEntry] = [:]
        for file in files where file.path.hasPrefix(prefix) {
            let rest = file.path.dropFirst(prefix.count).split(separator: "/").map(String.init)
            let depth = recursive ? rest.count : 1
            for level in 1...depth {
                let path = prefix + rest.prefix(level).joined(separator: "/")
                if level == rest.count {
                    entries[path] = fileEntry(file)
                } else if entries[path] == nil {
                    entries[path] = TreeEntry(type: "directory", oid: directoryID(path), size: 0, path: path)
                }
            }
        }
        if entries.isEmpty && !directory.isEmpty { return nil }
        return entries.values.sorted { $0.path < $1.path }
    }

    /// The entries for `paths` that exist in the revision, files or directories (`paths-info`).
    static func pathsInfo(_ files: [File], paths: [String]) -> [TreeEntry] {
        paths.compactMap { path in
            if let file = files.first(where: { $0.path == path }) { return fileEntry(file) }
            guard files.contains(where: { $0.path.hasPrefix(path + "/") }) else { return nil }
            return TreeEntry(type: "directory", oid: directoryID(path), size: 0, path: path)
        }
    }

    static func fileEntry(_ file: File) -> TreeEntry {
        TreeEntry(
            type: "file", oid: String(file.sha256.prefix(40)), size: file.size, path: file.path,
            lfs: LFS(oid: file.sha256, size: file.size, pointerSize: pointerSize))
    }

    static func directoryID(_ path: String) -> String { String(ContentDigest.of(Array(("tree " + path).utf8)).hex.prefix(40)) }

    /// `GET /api/models/{repo}/refs`.
    struct Refs: Encodable {
        struct Ref: Encodable {
            let name: String
            let ref: String
            let targetCommit: String
        }
        let branches: [Ref]
        let tags: [Ref]
        let converts: [Ref]
        var pullRequests: [Ref]?
    }

    /// `GET /api/whoami-v2`.
    struct WhoAmI: Encodable {
        struct Auth: Encodable {
            struct AccessToken: Encodable {
                let displayName: String
                let role: String
            }
            let accessToken: AccessToken
            let type = "access_token"
        }
        let type = "user"
        let id: String
        let name: String
        let fullname: String
        let orgs: [String] = []
        let auth: Auth
    }

    /// RFC 3339 with milliseconds, the one date format huggingface_hub parses (`2026-12-03T18:21:43.000Z`).
    static func hubDate(_ rfc3339: String) -> String {
        guard rfc3339.hasSuffix("Z"), !rfc3339.contains(".") else { return rfc3339 }
        return rfc3339.dropLast() + ".000Z"
    }
}
