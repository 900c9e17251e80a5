import CustodyCore
import CustodyTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Crashes and corruption: what survives a kill -9, and what is never served as good.
@Suite(.serialized) struct FaultTests {
    /// Writes `size` bytes of a repeating pseudo-random pattern.
    static func bigFile(_ path: String, size: Int) throws {
        var block = [UInt8](repeating: 0, count: 1 << 20)
        var state: UInt32 = 2_463_534_242
        for index in block.indices {
            state ^= state << 13
            state ^= state >> 17
            state ^= state << 5
            block[index] = UInt8(truncatingIfNeeded: state)
        }
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var written = 0
        while written < size {
            block[0] = UInt8(truncatingIfNeeded: written >> 20)
            let count = min(block.count, size - written)
            try handle.write(contentsOf: block[0..<count])
            written += count
        }
    }

    /// Waits until `condition` holds or `alive` says the process that would make it hold has gone: never on a
    /// wall-clock deadline, which a loaded machine can miss.
    static func waitFor(while alive: () -> Bool, _ condition: () -> Bool) -> Bool {
        while !condition() {
            guard alive() else { return condition() }
            usleep(2000)
        }
        return true
    }

    /// The file store keeps what it received for a resume after a crash; the S3 store restarts the upload instead
    /// (S3BackendTests.aDaemonKilledMidUploadLeavesNoBlob).
    @Test(.enabled(if: TestBackend.current.isEmbedded)) func aDaemonKilledMidUploadLeavesNoBlobAndTheUploadResumes() throws {
        let registry = try RegistryProcess()
        let blob = registry.scratch.path + "/blob.bin"
        try Self.bigFile(blob, size: 8 << 20)
        let digest = ContentDigest.of(Array(try Data(contentsOf: URL(fileURLWithPath: blob)))).description

        // A client that sends half of the body and then stalls (its connection held open), so the daemon dies
        // mid-upload for certain.
        let port = try #require(registry.url.split(separator: ":").last.flatMap { Int($0) })
        let data = Array(try Data(contentsOf: URL(fileURLWithPath: blob)))
        let client = try RawHTTP.connect(port: port)
        defer { close(client) }
        try RawHTTP.send(
            client,
            Array(
                "PUT /v1/blobs/\(digest) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(registry.adminToken)\r\nContent-Length: \(data.count)\r\n\r\n"
                    .utf8)
                + data[..<(data.count / 2)])
        // The resumable upload of a digest is staged under its upload id, `sha256-<hex>`.
        let staged = registry.home + "/data/uploads/sha256-" + digest.dropFirst(7) + ".partial"
        let half = UInt64(4 << 20)
        #expect(
            Self.waitFor(while: { registry.process?.isRunning == true }) {
                ((try? FileManager.default.attributesOfItem(atPath: staged)[.size] as? UInt64) ?? 0) >= half
            })
        registry.stop(signal: SIGKILL)

        try registry.start()
        #expect(try registry.http("HEAD", "/v1/blobs/\(digest)", token: registry.adminToken).status == 404, "no partial blob is visible")
        let status = try registry.http("HEAD", "/v1/uploads/\(digest)", token: registry.adminToken)
        let offset = try #require(status.headers["Upload-Offset"].flatMap { Int($0) })
        #expect(offset == 4 << 20, "the received half is kept for a resume")
        let rest = try Data(contentsOf: URL(fileURLWithPath: blob)).dropFirst(offset)
        let resumed = try registry.http(
            "PUT", "/v1/blobs/\(digest)", token: registry.adminToken, headers: ["Upload-Offset": String(offset)], body: Data(rest))
        #expect(resumed.status == 201, "\(resumed.body)")
        #expect(try registry.http("HEAD", "/v1/blobs/\(digest)", token: registry.adminToken).status == 200)
        if registry.backend.isEmbedded { #expect(try registry.integrityCheck() == "ok") }

        // The CLI resumes on its own too: publish a model holding the blob, after another staged half.
        try FileManager.default.createDirectory(atPath: registry.scratch.path + "/model", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: blob, toPath: registry.scratch.path + "/model/weights.bin")
        #expect(try registry.custody("publish", registry.scratch.path + "/model", "--name", "acme/resumed", "--version", "1", "--quiet").status == 0)
    }

    @Test func aClientKilledMidPullLeavesNoOutputAndThePullResumes() throws {
        let registry = try RegistryProcess()
        let model = registry.scratch.path + "/model"
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        for shard in 0..<4 { try Self.bigFile(model + "/shard-\(shard).bin", size: 96 << 20) }
        let published = try registry.custody("publish", model, "--name", "acme/big", "--version", "1", "--quiet")
        #expect(published.status == 0, "\(published.stderr)")

        let output = registry.scratch.path + "/pulled"
        var environment = ProcessInfo.processInfo.environment
        environment["CUSTODY_REGISTRY"] = registry.url
        environment["CUSTODY_TOKEN"] = registry.adminToken
        let pull = Process()
        pull.executableURL = URL(fileURLWithPath: try Tools.custody)
        pull.arguments = ["pull", "acme/big@1", "--output", output, "--registry-key", registry.registryPublicKey, "--quiet"]
        pull.environment = environment
        try pull.run()
        let started = Self.waitFor(while: { pull.isRunning }) {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: registry.scratch.path)) ?? []
            guard let staging = names.first(where: { $0.hasPrefix(".pulled.custody-partial") }) else { return false }
            let size = (try? FileManager.default.attributesOfItem(atPath: registry.scratch.path + "/" + staging + "/shard-0.bin")[.size] as? Int) ?? 0
            return size > 0
        }
        kill(pull.processIdentifier, SIGKILL)
        pull.waitUntilExit()
        #expect(started, "the pull had begun writing before it was killed")
        #expect(!FileManager.default.fileExists(atPath: output), "no partially written output directory")

        let again = try registry.custody("pull", "acme/big@1", "--output", output, "--registry-key", registry.registryPublicKey, "--quiet")
        #expect(again.status == 0, "\(again.stderr)")
        var files = try tree(output)
        files.removeValue(forKey: "model.sig")
        #expect(files == (try tree(model)))
    }

    /// Two publishers pushing the same large blob at the same time both succeed, and the blob is stored once.
    @Test func concurrentUploadsOfTheSameBlobAreSafe() throws {
        let registry = try RegistryProcess()
        let model = registry.scratch.path + "/same"
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        try Self.bigFile(model + "/weights.bin", size: 128 << 20)
        var environment = ProcessInfo.processInfo.environment
        environment["CUSTODY_REGISTRY"] = registry.url
        environment["CUSTODY_TOKEN"] = registry.adminToken
        let publishers = try (1...2).map { version in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try Tools.custody)
            process.arguments = ["publish", model, "--name", "acme/same", "--version", String(version), "--quiet"]
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            let errors = registry.scratch.path + "/publish-\(version).err"
            FileManager.default.createFile(atPath: errors, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
            try process.run()
            return (process, errors)
        }
        for (publisher, errors) in publishers {
            publisher.waitUntilExit()
            #expect(publisher.terminationStatus == 0, "\((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")")
        }
        if registry.backend.isEmbedded {
            let blobs = FileManager.default.enumerator(atPath: registry.home + "/data/blobs")?.allObjects.compactMap { $0 as? String } ?? []
            #expect(blobs.filter { $0.count > 70 }.count == 1, "one stored blob: \(blobs)")
        }
        #expect(registry.stagedUploads().isEmpty)
        let output = registry.scratch.path + "/same-pulled"
        #expect(try registry.custody("pull", "acme/same@2", "--output", output, "--registry-key", registry.registryPublicKey, "--quiet").status == 0)
    }

    /// The file store's blob files (S3 objects are checked by the store's own tests).
    @Test(.enabled(if: TestBackend.current.isEmbedded)) func aBlobCorruptedOnTheRegistryDiskIsNeverAcceptedAsGood() throws {
        let registry = try RegistryProcess()
        let model = try makeAwkwardModel(in: registry.scratch)
        #expect(try registry.custody("publish", model, "--name", "acme/rot", "--version", "1", "--quiet").status == 0)
        let digest = ContentDigest.of(Array(try Data(contentsOf: URL(fileURLWithPath: model + "/config.json")))).hex
        let stored = registry.home + "/data/blobs/sha256/\(digest.prefix(2))/\(digest)"
        chmod(stored, 0o644)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: stored))
        bytes[3] ^= 0x20
        try bytes.write(to: URL(fileURLWithPath: stored))

        let output = registry.scratch.path + "/rotten"
        let pulled = try registry.custody("pull", "acme/rot@1", "--output", output, "--registry-key", registry.registryPublicKey, "--quiet")
        #expect(pulled.status == 1, "\(pulled.stderr)")
        #expect(pulled.stderr.contains("is corrupted"), "\(pulled.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output))
    }
}
