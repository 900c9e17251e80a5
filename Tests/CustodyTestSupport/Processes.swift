package import Foundation
import Testing

/// The result of running a program to completion.
package struct ProcessResult {
    package let status: Int32
    package let stdout: String
    package let stderr: String
}

/// Runs `executable` with `arguments` and waits for it. Output goes through files, so a chatty program can never
/// block on a full pipe.
package func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
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
package enum Tools {
    package static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    package static var custody: String {
        get throws {
            let bundleDirectory = (try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") as NSString)
                .deletingLastPathComponent
            let candidates = [bundleDirectory + "/custody", packageRoot + "/.build/debug/custody"]
            return try #require(
                candidates.first { FileManager.default.isExecutableFile(atPath: $0) },
                "the custody binary was not built (run `swift build` or `make test`)")
        }
    }

    package static var venv: String {
        get throws {
            let venv = ProcessInfo.processInfo.environment["CUSTODY_INTEROP_VENV"] ?? packageRoot + "/.venv-interop"
            try #require(
                FileManager.default.isExecutableFile(atPath: venv + "/bin/model_signing"),
                "no model_signing in \(venv): run `scripts/bootstrap --interop` (make test does)")
            return venv
        }
    }

    /// A venv with Hugging Face clients (`.venv-hf`: huggingface_hub 2.4.0 and transformers 5.24.0; `.venv-hf036`:
    /// huggingface_hub 0.36.2), made by `scripts/bootstrap --interop`.
    package static func hubVenv(_ name: String) throws -> String {
        let venv = packageRoot + "/" + name
        try #require(
            FileManager.default.isExecutableFile(atPath: venv + "/bin/python"),
            "no \(venv): run `scripts/bootstrap --interop` (make test does)")
        return venv
    }

    package static func custody(_ arguments: String...) throws -> ProcessResult {
        try run(try custody, arguments)
    }

    package static func modelSigning(_ arguments: String...) throws -> ProcessResult {
        try run(try venv + "/bin/model_signing", arguments)
    }

    package static func python(_ script: String, _ arguments: String...) throws -> ProcessResult {
        try run(try venv + "/bin/python", ["-c", script] + arguments)
    }
}

/// The interop model: nested folders, names that sort differently by components than as strings, an empty file
/// and a hidden file.
package func makeInteropModel(in scratch: Scratch, named name: String = "model") throws -> String {
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
