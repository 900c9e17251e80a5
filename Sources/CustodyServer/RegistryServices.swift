public import CustodyCore
public import CustodyStore
import Foundation
public import Logging

/// Everything a running registry holds: configuration, stores, keys, metrics. Built once at start-up by
/// ``open(_:logger:)`` and shared by every request.
public final class RegistryServices: Sendable {
    public let configuration: RegistryConfiguration
    public let database: RegistryDatabase
    public let blobs: any BlobStore
    public let registryKey: PrivateSigningKey
    public let trustedKeys: [TrustedKey]
    let metrics = RegistryMetrics()
    let uploads = UploadSessions()
    let logger: Logger

    /// A publisher key the registry trusts: `Keys/trusted/NAME.pub`.
    public struct TrustedKey: Sendable {
        public let name: String
        public let key: PublicVerifyingKey
    }

    init(
        configuration: RegistryConfiguration, database: RegistryDatabase, blobs: any BlobStore, registryKey: PrivateSigningKey,
        trustedKeys: [TrustedKey], logger: Logger
    ) {
        self.configuration = configuration
        self.database = database
        self.blobs = blobs
        self.registryKey = registryKey
        self.trustedKeys = trustedKeys
        self.logger = logger
    }

    /// Opens the registry home, creating on first start the data directory, the database, the registry key pair
    /// (`Keys/registry.key`, mode 0600, and `Keys/registry.pub`) and an admin token. Returns the admin token's secret
    /// when one was created: it is shown once and stored only hashed.
    public static func open(_ configuration: RegistryConfiguration, logger: Logger) async throws(CustodyError)
        -> (RegistryServices, adminSecret: String?)
    {
        let data = configuration.dataDirectory
        do {
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try FileManager.default.createDirectory(atPath: configuration.keys + "/trusted", withIntermediateDirectories: true)
        } catch {
            throw CustodyError(.io, "cannot create \(data) or \(configuration.keys): \(error.localizedDescription)")
        }
        let database = try RegistryDatabase(path: configuration.databasePath)
        let blobs = try FileSystemBlobStore(root: data)
        let registryKey = try loadOrCreateRegistryKey(in: configuration.keys, logger: logger)
        let trusted = try loadTrustedKeys(from: configuration.keys + "/trusted")
        var adminSecret: String?
        if try await database.tokenCount() == 0 {
            let created = try await database.createToken(
                NewToken(role: .admin, name: "admin", namespaces: [], environments: [], expiresAt: nil))
            adminSecret = created.secret
        }
        let services = RegistryServices(
            configuration: configuration, database: database, blobs: blobs, registryKey: registryKey, trustedKeys: trusted, logger: logger)
        return (services, adminSecret)
    }

    static func loadOrCreateRegistryKey(in directory: String, logger: Logger) throws(CustodyError) -> PrivateSigningKey {
        let privatePath = directory + "/registry.key"
        let publicPath = directory + "/registry.pub"
        let key: PrivateSigningKey
        if FileManager.default.fileExists(atPath: privatePath) {
            key = try PrivateSigningKey(contentsOf: privatePath)
        } else {
            key = PrivateSigningKey(generating: .p256)
            try FileIO.writeAtomically(Array(key.pemRepresentation.utf8), to: privatePath, mode: 0o600, exclusive: true)
            logger.notice("generated the registry signing key", metadata: ["public": "\(publicPath)"])
        }
        let publicPEM = Array(key.publicKey.pemRepresentation.utf8)
        if (try? FileIO.contents(of: publicPath, limit: 64 << 10)) != publicPEM {
            try FileIO.writeAtomically(publicPEM, to: publicPath, mode: 0o644)
        }
        return key
    }

    static func loadTrustedKeys(from directory: String) throws(CustodyError) -> [TrustedKey] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".pub") }.sorted()
        var keys: [TrustedKey] = []
        for name in names {
            keys.append(TrustedKey(name: String(name.dropLast(4)), key: try PublicVerifyingKey(contentsOf: directory + "/" + name)))
        }
        return keys
    }
}
