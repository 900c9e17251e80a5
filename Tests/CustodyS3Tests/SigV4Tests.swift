import Crypto
import CustodyTestSupport
import Foundation
import Testing

@testable import CustodyS3

/// The signer against the AWS SigV4 test suite (shared/corpus/sigv4, read in place): for every case, the canonical
/// request, string to sign and signature of both the header and the presigned-URL form, byte for byte; and the S3
/// documentation's own example.
@Suite struct SigV4Tests {
    struct Case {
        let name: String
        let context: [String: Any]
        let request: SigV4.Request
    }

    static var root: String { get throws { try #require(SharedCorpus.path("sigv4/v4"), "no shared/corpus/sigv4 beside the repository") } }

    static func cases() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: try root).sorted()
    }

    /// `request.txt`: the request line, `Name:value` headers (indented lines continue the previous one), a blank line,
    /// the body.
    static func load(_ name: String) throws -> Case {
        let directory = try root + "/" + name
        let context = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/context.json"))) as? [String: Any])
        let text = try String(contentsOfFile: directory + "/request.txt", encoding: .utf8)
        let (head, body) = text.range(of: "\n\n").map { (String(text[..<$0.lowerBound]), String(text[$0.upperBound...])) } ?? (text, "")
        var lines = head.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst().split(separator: " ")
        let target = String(requestLine[1...].dropLast().joined(separator: " "))
        var headers: [(name: String, value: String)] = []
        for line in lines {
            if line.first == " " || line.first == "\t", !headers.isEmpty {
                headers[headers.count - 1].value += " " + line
            } else if let colon = line.firstIndex(of: ":") {
                headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
            }
        }
        let (path, queryText) = target.firstIndex(of: "?").map { (String(target[..<$0]), String(target[target.index(after: $0)...])) } ?? (target, "")
        let query = queryText.split(separator: "&").map { pair -> (name: String, value: String) in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                String($0).removingPercentEncoding ?? String($0)
            }
            return (parts[0], parts.count > 1 ? parts[1] : "")
        }
        let hash = SHA256Hex.of(Array(body.utf8))
        return Case(
            name: name, context: context,
            request: SigV4.Request(method: String(requestLine[0]), path: path, query: query, headers: headers, payloadHash: hash))
    }

    static func signer(_ context: [String: Any]) -> SigV4 {
        let credentials = context["credentials"] as? [String: String] ?? [:]
        let omit = context["omit_session_token"] as? Bool ?? false
        return SigV4(
            credentials: .init(
                accessKey: credentials["access_key_id"] ?? "", secretKey: credentials["secret_access_key"] ?? "",
                sessionToken: omit ? nil : credentials["token"]),
            region: context["region"] as? String ?? "", service: context["service"] as? String ?? "",
            normalizesPath: context["normalize"] as? Bool ?? false)
    }

    static func expected(_ name: String, _ file: String) throws -> String {
        try String(contentsOfFile: try root + "/\(name)/\(file)", encoding: .utf8)
    }

    static let timestamp = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z

    @Test(arguments: try cases())
    func headerSigningMatchesTheSuite(_ name: String) throws {
        let testCase = try Self.load(name)
        let signer = Self.signer(testCase.context)
        let signed = signer.sign(testCase.request, at: Self.timestamp, signsPayload: testCase.context["sign_body"] as? Bool ?? false)
        #expect(signed.canonicalRequest == (try Self.expected(name, "header-canonical-request.txt")))
        #expect(signed.stringToSign == (try Self.expected(name, "header-string-to-sign.txt")))
        #expect(signed.signature == (try Self.expected(name, "header-signature.txt")))
        let signedRequest = try Self.expected(name, "header-signed-request.txt")
        let authorization = try #require(signed.headers.first { $0.name == "Authorization" }?.value)
        #expect(signedRequest.contains("Authorization:" + authorization), "\(authorization)")
    }

    @Test(arguments: try cases())
    func presigningMatchesTheSuite(_ name: String) throws {
        let testCase = try Self.load(name)
        let signer = Self.signer(testCase.context)
        let (query, signed) = signer.presign(testCase.request, at: Self.timestamp, expires: testCase.context["expiration_in_seconds"] as? Int ?? 0)
        #expect(signed.canonicalRequest == (try Self.expected(name, "query-canonical-request.txt")))
        #expect(signed.stringToSign == (try Self.expected(name, "query-string-to-sign.txt")))
        #expect(signed.signature == (try Self.expected(name, "query-signature.txt")))
        #expect(query.last?.name == "X-Amz-Signature" && query.last?.value == signed.signature)
    }

    /// The S3 documentation's example: `GET /test.txt` with a range, signed with the payload hash.
    @Test func theS3DocumentationExample() {
        let signer = SigV4(
            credentials: .init(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), region: "us-east-1")
        let request = SigV4.Request(
            method: "GET", path: "/test.txt", headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9")])
        let signed = signer.sign(request, at: Date(timeIntervalSince1970: 1_369_353_600), signsPayload: true)
        #expect(signed.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(SigV4.encode("a b/ሴ~", keepingSlash: true) == "a%20b/%E1%88%B4~")
        #expect(SigV4.encode("a/b", keepingSlash: false) == "a%2Fb")
        #expect(SigV4.timestamp(Date(timeIntervalSince1970: 1_369_353_600)) == "20130524T000000Z")
    }
}

/// Hex SHA-256, for the tests' payload hashes.
enum SHA256Hex {
    static func of(_ bytes: [UInt8]) -> String {
        Crypto.SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
