import CustodyCore
@testable import CustodyStore
import Foundation
import GRDB
import Testing

@Suite struct RegistryDatabaseTests {
    let database: RegistryDatabase

    init() throws {
        database = try RegistryDatabase(writer: try DatabaseQueue())
    }

    func newVersion(_ version: String, content: String, license: String = "apache-2.0") async throws -> NewVersion {
        let digest = Digest.of(Array(content.utf8))
        try await database.recordBlob(digest, size: UInt64(content.utf8.count))
        let file = API.FileEntry(path: "weights.bin", size: UInt64(content.utf8.count), digest: digest)
        return NewVersion(
            model: try ModelName(parsing: "acme/llama"), version: version, bundleDigest: Digest.of(digest.bytes), files: [file],
            license: API.License(id: license), provenance: API.Provenance(source: API.Source(uri: "https://example.com/llama")),
            publisherSignature: nil, registrySignature: SignatureRecord(status: "verified", keyName: "registry", keyHint: "h", bundle: [1, 2, 3]),
            publishedBy: "token:test")
    }

    @Test func publishingIsIdempotentAndVersionsAreImmutable() async throws {
        guard case .created(let created) = try await database.publishVersion(try await newVersion("1", content: "a")) else {
            Issue.record("expected a new version")
            return
        }
        #expect(created.files.map(\.path) == ["weights.bin"])
        #expect(created.signatures.map(\.kind) == ["publisher", "registry"])
        #expect(created.signatures.first?.status == "unsigned")
        guard case .unchanged = try await database.publishVersion(try await newVersion("1", content: "a")) else {
            Issue.record("the same content again must be a no-op")
            return
        }
        await #expect(throws: CustodyError.self) { try await database.publishVersion(try await newVersion("1", content: "b")) }
        await #expect(throws: CustodyError.self) {
            try await database.publishVersion(try await newVersion("1", content: "a", license: "mit"))
        }
        let model = try #require(try await database.model(try ModelName(parsing: "acme/llama")))
        #expect(model.versions.map(\.version) == ["1"])
        #expect(try await database.registrySignature(try ModelName(parsing: "acme/llama"), version: "1") == [1, 2, 3])
    }

    @Test func versionsResolveByBundleDigest() async throws {
        let new = try await newVersion("2", content: "c")
        _ = try await database.publishVersion(new)
        let found = try await database.version(new.model, .digest(new.bundleDigest), includeEvents: true)
        #expect(found?.version == "2")
        #expect(found?.events?.map(\.type) == ["publish"])
    }

    @Test func aVersionNeedsItsBlobs() async throws {
        var new = try await newVersion("3", content: "d")
        new.files[0].digest = Digest.of([9])
        await #expect(throws: CustodyError.self) { try await database.publishVersion(new) }
        #expect(try await database.model(new.model) == nil, "nothing half-written")
    }

    @Test func eventsAreAppendOnly() async throws {
        try await database.recordEvent(NewEvent(type: "test", actor: "me"))
        await #expect(throws: DatabaseError.self) {
            try await database.writer.write { db in try db.execute(sql: "UPDATE events SET actor = 'someone else'") }
        }
        await #expect(throws: DatabaseError.self) {
            try await database.writer.write { db in try db.execute(sql: "DELETE FROM events") }
        }
        #expect(try await database.integrityProblems().isEmpty)
    }

    @Test func tokensAreStoredHashedAndRevocable() async throws {
        let created = try await database.createToken(NewToken(role: .publisher, name: "ci", namespaces: ["acme"], environments: [], expiresAt: nil))
        #expect(created.secret.hasPrefix("cst_"))
        let found = try #require(try await database.token(secret: created.secret))
        #expect(found.role == .publisher && found.namespaces == ["acme"])
        #expect(try await database.token(secret: created.secret + "x") == nil)
        #expect(try await database.revokeToken(id: found.id))
        #expect(try await database.revokeToken(id: found.id) == false)
        #expect(try await database.token(secret: created.secret)?.revokedAt != nil)
        #expect(try await database.tokens().count == 1)
    }
}
