package import Crypto
package import Foundation

/// AWS Signature Version 4, pure: the canonical request, the string to sign and the signature of a request, in the
/// header form (`Authorization`) and the presigned-URL form (`X-Amz-*` query parameters). Pinned by the AWS SigV4
/// test suite (shared/corpus/sigv4). S3 signs with service `s3` and never normalises paths.
package struct SigV4: Sendable {
    package struct Credentials: Sendable {
        package var accessKey: String
        package var secretKey: String
        package var sessionToken: String?

        package init(accessKey: String, secretKey: String, sessionToken: String? = nil) {
            self.accessKey = accessKey
            self.secretKey = secretKey
            self.sessionToken = sessionToken
        }
    }

    /// A request as it is signed: the path as sent (percent-encoding is applied here), the query decoded, headers in
    /// request order (repeats allowed), and the hex SHA-256 of the body (or `UNSIGNED-PAYLOAD`).
    package struct Request: Sendable {
        package var method: String
        package var path: String
        package var query: [(name: String, value: String)]
        package var headers: [(name: String, value: String)]
        package var payloadHash: String

        package init(
            method: String, path: String, query: [(name: String, value: String)] = [], headers: [(name: String, value: String)],
            payloadHash: String = SigV4.emptyPayloadHash
        ) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    package static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    package static let unsignedPayload = "UNSIGNED-PAYLOAD"
    static let algorithm = "AWS4-HMAC-SHA256"

    package let credentials: Credentials
    package let region: String
    package let service: String
    /// Remove `.`, `..` and empty path segments before encoding (the generic rule; S3 never does).
    package let normalizesPath: Bool

    package init(credentials: Credentials, region: String, service: String = "s3", normalizesPath: Bool = false) {
        self.credentials = credentials
        self.region = region
        self.service = service
        self.normalizesPath = normalizesPath
    }

    // MARK: Header signing

    /// What header signing adds to a request: `X-Amz-Date`, `X-Amz-Content-Sha256` (when `signsPayload`),
    /// `X-Amz-Security-Token` (with a session token) and `Authorization`, with the intermediate texts for checks.
    package struct Signed: Sendable {
        package var headers: [(name: String, value: String)]
        package var canonicalRequest: String
        package var stringToSign: String
        package var signature: String
    }

    package func sign(_ request: Request, at date: Date, signsPayload: Bool = true) -> Signed {
        let stamp = Self.timestamp(date)
        var added: [(name: String, value: String)] = [("X-Amz-Date", stamp)]
        if signsPayload { added.append(("X-Amz-Content-Sha256", request.payloadHash)) }
        if let token = credentials.sessionToken { added.append(("X-Amz-Security-Token", token)) }
        var signing = request
        signing.headers += added
        let (canonical, signedHeaders) = canonicalRequest(signing)
        let toSign = stringToSign(canonical, stamp: stamp)
        let signature = signature(of: toSign, day: String(stamp.prefix(8)))
        let authorization =
            "\(Self.algorithm) Credential=\(credentials.accessKey)/\(scope(day: String(stamp.prefix(8)))), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return Signed(headers: added + [("Authorization", authorization)], canonicalRequest: canonical, stringToSign: toSign, signature: signature)
    }

    // MARK: Presigning

    /// The query parameters of a presigned URL valid for `expires` seconds (at most 604,800), signature last. The
    /// request's headers are signed (for S3 only `Host`, so that a client may add `Range`), and so is the session
    /// token.
    package func presign(_ request: Request, at date: Date, expires: Int) -> (query: [(name: String, value: String)], signed: Signed) {
        let stamp = Self.timestamp(date)
        let day = String(stamp.prefix(8))
        let signedHeaders = Set(request.headers.map { $0.name.lowercased() }).sorted().joined(separator: ";")
        var parameters: [(name: String, value: String)] = [
            ("X-Amz-Algorithm", Self.algorithm), ("X-Amz-Credential", "\(credentials.accessKey)/\(scope(day: day))"), ("X-Amz-Date", stamp),
            ("X-Amz-Expires", String(min(expires, 604_800))),
        ]
        if let token = credentials.sessionToken { parameters.append(("X-Amz-Security-Token", token)) }
        parameters.append(("X-Amz-SignedHeaders", signedHeaders))
        var signing = request
        signing.query = request.query + parameters
        let (canonical, _) = canonicalRequest(signing)
        let toSign = stringToSign(canonical, stamp: stamp)
        let signature = signature(of: toSign, day: day)
        return (
            signing.query + [("X-Amz-Signature", signature)],
            Signed(headers: [], canonicalRequest: canonical, stringToSign: toSign, signature: signature)
        )
    }

    // MARK: The parts

    /// The canonical request and the signed header names (`host;x-amz-date`).
    package func canonicalRequest(_ request: Request) -> (text: String, signedHeaders: String) {
        var merged: [String: [String]] = [:]
        for (name, value) in request.headers { merged[name.lowercased(), default: []].append(Self.trimmed(value)) }
        let names = merged.keys.sorted()
        let headers = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        let encoded: [(name: String, value: String)] = request.query.map {
            (Self.encode($0.name, keepingSlash: false), Self.encode($0.value, keepingSlash: false))
        }
        let sorted = encoded.sorted { (a: (name: String, value: String), b: (name: String, value: String)) -> Bool in
            a.name == b.name ? a.value < b.value : a.name < b.name
        }
        let query = sorted.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
        let signedHeaders = names.joined(separator: ";")
        let path = Self.encode(normalizesPath ? Self.normalized(request.path) : request.path, keepingSlash: true)
        return ([request.method, path, query, headers, signedHeaders, request.payloadHash].joined(separator: "\n"), signedHeaders)
    }

    package func stringToSign(_ canonicalRequest: String, stamp: String) -> String {
        let hash = SHA256.hash(data: Data(canonicalRequest.utf8)).map { String(format: "%02x", $0) }.joined()
        return [Self.algorithm, stamp, scope(day: String(stamp.prefix(8))), hash].joined(separator: "\n")
    }

    package func signature(of stringToSign: String, day: String) -> String {
        var key = SymmetricKey(data: Data(("AWS4" + credentials.secretKey).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key).map { String(format: "%02x", $0) }.joined()
    }

    func scope(day: String) -> String { "\(day)/\(region)/\(service)/aws4_request" }

    /// `yyyyMMddTHHmmssZ` in UTC.
    package static func timestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    /// Percent-encodes once: unreserved characters (and `/` in paths) stay, everything else is `%XX` of its UTF-8.
    package static func encode(_ text: String, keepingSlash: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            case UInt8(ascii: "/") where keepingSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// A header value as signed: trimmed, inner runs of whitespace (folded lines included) as one space.
    static func trimmed(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
    }

    /// The path without `.`, `..` and empty segments (a trailing `/` kept), for services other than S3.
    static func normalized(_ path: String) -> String {
        var segments: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            if segment == "." { continue }
            if segment == ".." {
                _ = segments.popLast()
                continue
            }
            segments.append(segment)
        }
        let joined = "/" + segments.joined(separator: "/")
        return path.hasSuffix("/") && joined != "/" ? joined + "/" : joined
    }
}
