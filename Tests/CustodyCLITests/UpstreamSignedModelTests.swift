import CustodyTestSupport
import Foundation
import Testing

/// Every model that model-transparency signed with a released model_signing, verified by `custody verify` with the
/// upstream test key exactly as shipped (text before its PEM block) and by the reference `model_signing` the way
/// upstream verifies each case: the verdicts must agree.
@Suite struct UpstreamSignedModelTests {
    static var corpus: String? { SharedCorpus.path("model-transparency") }

    /// The model a case signed: the single file its statement names, or the directory.
    static func model(of directory: String) throws -> String {
        let bundle = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/model.sig"))) as? [String: Any]
        let payload = ((bundle?["dsseEnvelope"] as? [String: Any])?["payload"] as? String).flatMap { Data(base64Encoded: $0) }
        let statement = try payload.flatMap { try JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        let subjects = (statement?["subject"] as? [[String: Any]]) ?? []
        var isDirectory: ObjCBool = false
        if subjects.count == 1, let name = subjects[0]["name"] as? String,
            FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory), !isDirectory.boolValue
        {
            return directory + "/" + name
        }
        return directory
    }

    @Test(.enabled(if: Self.corpus != nil))
    func verdictsMatchModelSigningOnEveryUpstreamCase() throws {
        let corpus = try #require(Self.corpus)
        let key = corpus + "/keys/certificate/signing-key-pub.pem"
        let cases = try FileManager.default.contentsOfDirectory(atPath: corpus).filter {
            FileManager.default.fileExists(atPath: corpus + "/" + $0 + "/model.sig")
        }.sorted()
        #expect(cases.count == 13)
        var verified: [String] = []
        for name in cases {
            let directory = corpus + "/" + name
            let model = try Self.model(of: directory)
            let signature = directory + "/model.sig"
            // 1.0.1 signatures list no ignore paths although the directory holds an unsigned file: both sides are told
            // to tolerate it, as upstream's own test does.
            let lenient = name.hasPrefix("v1.0.1-")
            let ours = try run(try Tools.custody, ["verify", model, "--key", key, "--signature", signature] + (lenient ? ["--ignore-unsigned"] : []))
            // The reference, as upstream verifies each case: the key, or the certificate chain (its bundles carry the
            // same key's certificate); keyless Sigstore bundles cannot verify offline and must not verify with a key.
            var reference = ["verify", name.contains("certificate") ? "certificate" : "key", model, "--signature", signature]
            reference += name.contains("certificate") ? ["--certificate_chain", corpus + "/keys/certificate/ca-cert.pem"] : ["--public_key", key]
            if lenient { reference += ["--ignore-paths", directory + "/ignore-me"] }
            let theirs = try run(try Tools.venv + "/bin/model_signing", reference)
            #expect(
                (ours.status == 0) == (theirs.status == 0),
                "\(name): custody \(ours.status) \(ours.stderr) / model_signing \(theirs.status) \(theirs.stderr.suffix(300))")
            if ours.status == 0 { verified.append(name) }
        }
        // A strict custody verify of 1.0.1 refuses the unsigned file, as model_signing does without --ignore-paths.
        let strict = try Tools.custody("verify", corpus + "/v1.0.1-elliptic-key", "--key", key)
        #expect(strict.status == 1 && strict.stderr.contains("unexpected: ignore-me"), "\(strict.stdout) \(strict.stderr)")
        #expect(verified.filter { $0.contains("sigstore") }.isEmpty, "keyless bundles never verify with a key: \(verified)")
        #expect(verified.filter { $0.contains("elliptic-key") }.count == 4, "\(verified)")
    }
}
