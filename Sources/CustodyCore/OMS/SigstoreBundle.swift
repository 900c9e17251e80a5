import Foundation

/// A Sigstore bundle (v0.3) holding a DSSE envelope, the file model-signing calls `model.sig`.
public struct SigstoreBundle: Sendable, Hashable {
    /// The bundle media type model_signing writes.
    public static let mediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

    /// Hex SHA-256 of the signer's public key PEM (model-signing ≥ 1.1).
    public var keyHint: String?
    /// The signer's public key PEM, as model-signing < 1.1 embedded it.
    public var rawPublicKey: [UInt8]?
    /// The DSSE payload type (in-toto).
    public var payloadType: String
    /// The exact signed payload bytes. Never re-serialise them: the signature covers these bytes.
    public var payload: [UInt8]
    /// DER-encoded ECDSA signature over the DSSE PAE of the payload.
    public var signature: [UInt8]

    /// A bundle from a DSSE envelope's parts and the key that signed it.
    public init(keyHint: String?, rawPublicKey: [UInt8]? = nil, payloadType: String, payload: [UInt8], signature: [UInt8]) {
        self.keyHint = keyHint
        self.rawPublicKey = rawPublicKey
        self.payloadType = payloadType
        self.payload = payload
        self.signature = signature
    }

    /// Compact JSON in model-signing's member order, without a trailing newline.
    public func encoded() -> [UInt8] {
        var publicKey: [(String, JSONText)] = []
        if let keyHint { publicKey.append(("hint", .string(keyHint))) }
        if let rawPublicKey { publicKey.append(("rawBytes", .string(Data(rawPublicKey).base64EncodedString()))) }
        let bundle = JSONText.object([
            ("mediaType", .string(Self.mediaType)),
            (
                "verificationMaterial",
                .object([
                    ("publicKey", .object(publicKey)),
                    ("tlogEntries", .array([])),
                ])
            ),
            (
                "dsseEnvelope",
                .object([
                    ("payload", .string(Data(payload).base64EncodedString())),
                    ("payloadType", .string(payloadType)),
                    (
                        "signatures",
                        .array([
                            .object([
                                ("sig", .string(Data(signature).base64EncodedString())),
                                ("keyid", .string("")),
                            ])
                        ])
                    ),
                ])
            ),
        ])
        return bundle.compact
    }

    /// Parses a bundle. `source` names it in error messages.
    public init(decoding bytes: [UInt8], source: String) throws(CustodyError) {
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: Data(bytes))
        } catch {
            throw OMSStatement.malformed(source, "not a Sigstore bundle: \(describe(error))")
        }
        guard document.mediaType == Self.mediaType else {
            throw OMSStatement.malformed(source, "media type '\(document.mediaType)' is not '\(Self.mediaType)'")
        }
        guard let envelope = document.dsseEnvelope else {
            throw OMSStatement.malformed(source, "the bundle has no DSSE envelope")
        }
        guard let first = envelope.signatures.first else {
            throw OMSStatement.malformed(source, "the DSSE envelope has no signature")
        }
        guard let payload = Data(base64Encoded: envelope.payload) else {
            throw OMSStatement.malformed(source, "the DSSE payload is not valid base64")
        }
        guard let signature = Data(base64Encoded: first.sig) else {
            throw OMSStatement.malformed(source, "the DSSE signature is not valid base64")
        }
        let publicKey = document.verificationMaterial.publicKey
        var rawPublicKey: [UInt8]?
        if let raw = publicKey?.rawBytes {
            guard let decoded = Data(base64Encoded: raw) else {
                throw OMSStatement.malformed(source, "publicKey.rawBytes is not valid base64")
            }
            rawPublicKey = Array(decoded)
        }
        self.init(
            keyHint: publicKey?.hint.flatMap { $0.isEmpty ? nil : $0 }, rawPublicKey: rawPublicKey,
            payloadType: envelope.payloadType, payload: Array(payload), signature: Array(signature))
    }

    private struct Document: Decodable {
        struct PublicKey: Decodable {
            let hint: String?
            let rawBytes: String?
        }
        struct VerificationMaterial: Decodable {
            let publicKey: PublicKey?
        }
        struct Signature: Decodable {
            let sig: String
            let keyid: String?
        }
        struct Envelope: Decodable {
            let payload: String
            let payloadType: String
            let signatures: [Signature]
        }
        let mediaType: String
        let verificationMaterial: VerificationMaterial
        let dsseEnvelope: Envelope?
    }
}
