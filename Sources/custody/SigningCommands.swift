import ArgumentParser
import CustodyCore
import Foundation

enum MethodName: String, ExpressibleByArgument, CaseIterable {
    case files, shards
}

/// Options shared by every command that hashes a model.
struct SerializationOptions: ParsableArguments {
    @Option(help: "Serialization: files (one digest per file, model_signing's default) or shards (parallel within files).")
    var method: MethodName = .files

    @Option(help: "Shard size in bytes for --method shards.")
    var shardSize: UInt64 = SerializationMethod.defaultShardSize

    @Flag(help: "Hash the targets of symbolic links instead of refusing them.")
    var allowSymlinks = false

    func validate() throws {
        guard shardSize > 0 else { throw ValidationError("--shard-size must be positive") }
    }

    var serializationMethod: SerializationMethod {
        switch method {
        case .files: .files
        case .shards: .shards(size: shardSize)
        }
    }
}

/// Where the signature of a model lives when `--signature` is not given: `model.sig` inside a model directory,
/// `FILE.sig` beside a single-file model.
func defaultSignaturePath(for model: String) -> String {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory), isDirectory.boolValue {
        return (model as NSString).appendingPathComponent("model.sig")
    }
    return model + ".sig"
}

struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign a model directory or file (OpenSSF Model Signing bundle, verifiable by model_signing).")

    @Argument(help: "The model directory or single file.")
    var path: String

    @Option(help: "The private key (PKCS#8 or SEC1 PEM, ECDSA P-256/P-384/P-521).")
    var key: String

    @Option(help: "Where to write the signature (default: PATH/model.sig, or PATH.sig for a single file).")
    var signature: String?

    @OptionGroup var serialization: SerializationOptions

    func run() throws {
        let privateKey = try PrivateSigningKey(contentsOf: key)
        let output = signature ?? defaultSignaturePath(for: path)
        let signing = ModelSigning()
        let manifest = try signing.manifest(
            of: path, method: serialization.serializationMethod, allowSymlinks: serialization.allowSymlinks,
            signaturePath: output)
        let bundle = try signing.sign(manifest, with: privateKey)
        try PosixFile.writeAtomically(bundle.encoded(), to: output)
        print("signed \(path): \(manifest.resources.count) resources, \(manifest.rootDigest) -> \(output)")
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify a model against an OMS signature and a public key; lists every file that differs.")

    @Argument(help: "The model directory or single file.")
    var path: String

    @Option(help: "The signer's public key (SPKI PEM).")
    var key: String

    @Option(help: "The signature to check (default: PATH/model.sig, or PATH.sig for a single file).")
    var signature: String?

    @Flag(help: "Tolerate files that the signature does not list.")
    var ignoreUnsigned = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        let publicKey = try PublicVerifyingKey(contentsOf: key)
        let signaturePath = signature ?? defaultSignaturePath(for: path)
        let manifest = try ModelSigning().verify(
            model: path, signaturePath: signaturePath, key: publicKey, ignoreUnsigned: ignoreUnsigned)
        if json {
            let files = Set(manifest.resources.map(\.filePath)).count
            print(#"{"verified":true,"digest":"\#(manifest.rootDigest)","files":\#(files),"resources":\#(manifest.resources.count)}"#)
        } else {
            print("verified \(path): \(manifest.resources.count) resources, \(manifest.rootDigest)")
        }
    }
}

struct DigestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "digest",
        abstract: "Print a model's OMS root digest (its bundle digest), as sha256:<hex>.",
        discussion: "A model.sig at the top of a model directory is not part of the model and is left out.")

    @Argument(help: "The model directory or single file.")
    var path: String

    @OptionGroup var serialization: SerializationOptions

    func run() throws {
        let manifest = try ModelSigning().manifest(
            of: path, method: serialization.serializationMethod, allowSymlinks: serialization.allowSymlinks,
            signaturePath: defaultSignaturePath(for: path))
        print(manifest.rootDigest)
    }
}
