package import Foundation
package import GRDB
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real `custody serve` on a free loopback port, with its own registry home and keys in a scratch directory.
package final class RegistryProcess: @unchecked Sendable {
    package let scratch: Scratch
    package let home: String
    package let keys: String
    package private(set) var process: Process?
    package private(set) var url = ""
    /// The admin token printed on the first start.
    package private(set) var adminToken = ""
    private var startCount = 0

    /// Added to the daemon's environment (credentials of a backend, say), and to the CLI's that works on its home.
    package let environment: [String: String]
    /// The backend the daemon stores in.
    package let backend: TestBackend

    /// A daemon on `backend` (the test run's by default); `environment` is added to what the backend needs.
    package init(
        scratch: Scratch? = nil, extraArguments: [String] = [], environment: [String: String] = [:], backend: TestBackend = .current
    ) throws {
        self.backend = backend
        self.environment = try backend.registryEnvironment().merging(environment) { $1 }
        self.scratch = try scratch ?? Scratch()
        home = self.scratch.path + "/Registry"
        keys = self.scratch.path + "/Keys"
        try FileManager.default.createDirectory(atPath: keys + "/trusted", withIntermediateDirectories: true)
        try start(extraArguments: extraArguments)
    }

    /// Another daemon of `other`'s registry (on a shared backend): the same home, keys, database and bucket, a data
    /// directory (caches, spools) of its own; its admin token is `other`'s.
    /// With `environment`, the daemon runs with that instead of `other`'s (the same home on other engines).
    package init(sharing other: RegistryProcess, environment: [String: String]? = nil) throws {
        backend = other.backend
        scratch = try Scratch()
        home = other.home
        keys = other.keys
        self.environment = (environment ?? other.environment).merging(["CUSTODY_DATA": scratch.path + "/data"]) { $1 }
        try start()
        adminToken = other.adminToken
    }

    deinit { stop(signal: SIGKILL) }

    package var registryPublicKey: String { keys + "/registry.pub" }
    package var databasePath: String { home + "/data/custody.sqlite" }

    /// Starts the daemon and waits until it listens.
    package func start(extraArguments: [String] = []) throws {
        startCount += 1
        let out = scratch.path + "/serve-\(startCount).out"
        let err = scratch.path + "/serve-\(startCount).err"
        try Data().write(to: URL(fileURLWithPath: out))
        try Data().write(to: URL(fileURLWithPath: err))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Tools.custody)
        process.arguments = ["serve", "--home", home, "--keys", keys, "--listen", "127.0.0.1:0"] + extraArguments
        process.standardInput = FileHandle.nullDevice
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try process.run()
        self.process = process
        // No deadline: a loaded machine may take long to start a daemon, and one that fails exits and says why.
        while true {
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            if let token = text.firstMatch(of: /admin token[^:]*: (cst_[A-Za-z0-9_-]+)/) { adminToken = String(token.1) }
            if let listening = text.firstMatch(of: /listening on (https?:\/\/[0-9.]+:[0-9]+)/) {
                url = String(listening.1)
                return
            }
            guard process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let errors = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
        Issue.record("the registry did not start: \(errors)")
        throw CancellationError()
    }

    /// Stops the daemon: SIGTERM for a graceful stop, SIGKILL for a crash.
    package func stop(signal: Int32 = SIGTERM) {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
    }

    /// Runs the CLI against this registry with `token` (the admin token by default).
    package func custody(_ arguments: [String], token: String? = nil, configHome: String? = nil) throws -> ProcessResult {
        var environment = ProcessInfo.processInfo.environment.merging(self.environment) { $1 }
        environment["CUSTODY_REGISTRY"] = url
        environment["CUSTODY_TOKEN"] = token ?? adminToken
        environment["XDG_CONFIG_HOME"] = configHome ?? scratch.path + "/config"
        return try run(try Tools.custody, arguments, environment: environment)
    }

    package func custody(_ arguments: String..., token: String? = nil) throws -> ProcessResult {
        try custody(arguments, token: token)
    }

    /// Creates a token directly on the home (`custody token create --home`), returning its secret.
    package func token(_ arguments: String...) throws -> String {
        let result = try local(["token", "create", "--home", home] + arguments)
        try #require(result.status == 0, "token create failed: \(result.stderr)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs the CLI on this registry's home directly (`--home` commands), with the backend's environment.
    package func local(_ arguments: [String]) throws -> ProcessResult {
        try run(try Tools.custody, arguments, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
    }

    /// The daemon's loopback port.
    package func port() throws -> Int {
        guard let port = url.split(separator: ":").last.flatMap({ Int($0) }) else { throw RawHTTP.Failure(description: "no port in \(url)") }
        return port
    }

    /// A raw HTTP request, for protocol-level checks the CLI never makes.
    package func http(
        _ method: String, _ path: String, token: String? = nil, headers: [String: String] = [:], body: Data? = nil
    ) throws
        -> (status: Int, headers: [String: String], body: String)
    {
        let port = try port()
        var fields = headers.map { ($0.key, $0.value) }
        if let token { fields.append(("Authorization", "Bearer " + token)) }
        let response = try RawHTTP.exchange(port: port, method: method, path: path, headers: fields, body: body.map { Array($0) })
        return (response.status, response.headers, String(decoding: response.body, as: UTF8.self))
    }

    /// What the blob store holds staged now (uploads in progress): the file store's `data/uploads`, or the S3 store's
    /// local spool.
    package func stagedUploads() -> [String] {
        let directory = home + (backend.isEmbedded ? "/data/uploads" : "/data/s3-cache/uploads")
        return (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    }

    /// `PRAGMA integrity_check` on the database file, read-only beside the running daemon.
    package func integrityCheck() throws -> String {
        try readDatabase { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "" }
    }

    /// Reads the registry's database directly, read-only (the daemon may be running).
    package func readDatabase<T>(_ read: (Database) throws -> T) throws -> T {
        var configuration = Configuration()
        configuration.readonly = true
        return try DatabaseQueue(path: databasePath, configuration: configuration).read(read)
    }
}

/// A model with awkward but valid content: empty files, spaces and unicode in names, deep nesting.
package func makeAwkwardModel(in scratch: Scratch, named name: String = "model") throws -> String {
    let files: [String: String] = [
        "config.json": #"{"architectures": ["MistralForCausalLM"]}"#,
        "model-00001-of-00002.safetensors": String(repeating: "tensor bytes ", count: 20_000),
        "model-00002-of-00002.safetensors": String(repeating: "more tensor ", count: 15_000),
        "empty.bin": "",
        "names with spaces/tokenizer config.json": "{}",
        "ünïcödé/模型/权重.bin": "unicode",
        "a/b/c/d/e/f/g/h/i/j/deep.txt": "deep",
        "README.md": "---\nlicense: apache-2.0\nbase_model: mistralai/Mistral-7B-v0.3\ndatasets:\n  - acme/instructions\n---\n# Demo\n",
    ]
    for (path, contents) in files { try scratch.write(name + "/" + path, contents) }
    return scratch.path + "/" + name
}
