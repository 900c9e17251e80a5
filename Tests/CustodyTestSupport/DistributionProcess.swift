package import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// CNCF distribution 2.8.2 (Debian's `docker-registry`) on a free loopback port with storage in a scratch
/// directory: the reference registry of the OCI differential tests and benchmarks. Stopped when released.
package final class DistributionProcess: @unchecked Sendable {
    package let directory: String
    package private(set) var address = ""
    private let process: Process

    package init(scratch: Scratch) throws {
        let executable = "/usr/bin/docker-registry"
        try #require(
            FileManager.default.isExecutableFile(atPath: executable), "no docker-registry: run `scripts/bootstrap --interop` (make test does)")
        directory = scratch.path + "/distribution"
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        let configuration = """
            version: 0.1
            log: {level: info}
            storage: {filesystem: {rootdirectory: \(directory)/data}, delete: {enabled: true}}
            http: {addr: 127.0.0.1:0, secret: differential-test}
            """
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: directory + "/config.yml"))
        let log = directory + "/serve.log"
        try Data().write(to: URL(fileURLWithPath: log))
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["serve", directory + "/config.yml"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
        // No deadline: it says where it listens once it does, or exits and says why.
        while true {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let listening = text.firstMatch(of: /listening on (127\.0\.0\.1:[0-9]+)/) {
                address = String(listening.1)
                return
            }
            guard process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        Issue.record("docker-registry did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        throw CancellationError()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
    }
}
