import CustodyTestSupport
import Foundation
import Testing

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
