import Foundation
import Testing

/// The result of running a program to completion.
struct ProcessResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs `executable` with `arguments` and waits for it. Output goes through files, so a chatty program can never
/// block on a full pipe.
func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
    let scratch = try Scratch()
    let outPath = scratch.path + "/stdout"
    let errPath = scratch.path + "/stderr"
    try Data().write(to: URL(fileURLWithPath: outPath))
    try Data().write(to: URL(fileURLWithPath: errPath))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    try process.run()
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus,
        stdout: try String(contentsOfFile: outPath, encoding: .utf8),
        stderr: try String(contentsOfFile: errPath, encoding: .utf8))
}

/// Paths of the programs under test: the `custody` binary built beside this test bundle, and the reference
/// implementation from the `.venv-interop` that `make test` creates.
enum Tools {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    static var custody: String {
        get throws {
            let bundleDirectory = (try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") as NSString)
                .deletingLastPathComponent
            let candidates = [bundleDirectory + "/custody", packageRoot + "/.build/debug/custody"]
            return try #require(
                candidates.first { FileManager.default.isExecutableFile(atPath: $0) },
                "the custody binary was not built (run `swift build` or `make test`)")
        }
    }

    static var venv: String {
        get throws {
            let venv = ProcessInfo.processInfo.environment["CUSTODY_INTEROP_VENV"] ?? packageRoot + "/.venv-interop"
            try #require(
                FileManager.default.isExecutableFile(atPath: venv + "/bin/model_signing"),
                "no model_signing in \(venv): run `scripts/bootstrap --interop` (make test does)")
            return venv
        }
    }

    static func custody(_ arguments: String...) throws -> ProcessResult {
        try run(try custody, arguments)
    }

    static func modelSigning(_ arguments: String...) throws -> ProcessResult {
        try run(try venv + "/bin/model_signing", arguments)
    }

    static func python(_ script: String, _ arguments: String...) throws -> ProcessResult {
        try run(try venv + "/bin/python", ["-c", script] + arguments)
    }
}

/// A temporary directory removed when released.
final class Scratch {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "custody-cli-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func write(_ relative: String, _ contents: String) throws -> String {
        let full = path + "/" + relative
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(contents.utf8).write(to: URL(fileURLWithPath: full))
        return full
    }

    func copy(_ source: String, to relative: String) throws -> String {
        let target = path + "/" + relative
        try FileManager.default.copyItem(atPath: source, toPath: target)
        return target
    }
}

/// The interop model: nested folders, names that sort differently by components than as strings, an empty file
/// and a hidden file.
func makeInteropModel(in scratch: Scratch, named name: String = "model") throws -> String {
    let files = [
        "config.json": #"{"architectures": ["LlamaForCausalLM"]}"#,
        "a/b": "under a",
        "a-b": "dash",
        "a.b": "dot",
        "a/b.c/d": "deeper",
        "nested/one/two/weights.bin": String(repeating: "weights ", count: 5000),
        ".hidden": "hidden file",
        "empty": "",
    ]
    for (path, contents) in files { try scratch.write(name + "/" + path, contents) }
    return scratch.path + "/" + name
}

/// Generates a private key with Python's `cryptography`, as a model_signing user would: P-256 in SEC1
/// ("EC PRIVATE KEY"), P-384 in PKCS#8, so that Custody reads both encodings. Returns (private, public) paths.
func makePythonKeyPair(curve: String, in scratch: Scratch) throws -> (String, String) {
    let script = """
        import sys
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        curve = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}[sys.argv[1]]
        key = ec.generate_private_key(curve)
        fmt = serialization.PrivateFormat.TraditionalOpenSSL if sys.argv[1] == "p256" else serialization.PrivateFormat.PKCS8
        open(sys.argv[2], "wb").write(key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()))
        open(sys.argv[3], "wb").write(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        """
    let privatePath = scratch.path + "/py-\(curve).key"
    let publicPath = scratch.path + "/py-\(curve).pub"
    let result = try Tools.python(script, curve, privatePath, publicPath)
    try #require(result.status == 0, "key generation failed: \(result.stderr)")
    return (privatePath, publicPath)
}

/// The root digest inside an OMS bundle's statement.
func subjectDigest(ofSignature path: String) throws -> String {
    let bundle = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
    let envelope = try #require(bundle?["dsseEnvelope"] as? [String: Any])
    let encoded = try #require(envelope["payload"] as? String)
    let payload = try #require(Data(base64Encoded: encoded))
    let statement = try JSONSerialization.jsonObject(with: payload) as? [String: Any]
    let subject = try #require((statement?["subject"] as? [[String: Any]])?.first)
    return try #require((subject["digest"] as? [String: String])?["sha256"])
}
