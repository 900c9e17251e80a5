import CustodyCore
import Testing

/// The one reference parser every route and the gate use.
@Suite struct ModelReferenceTests {
    static let digest = "sha256:" + String(repeating: "ab", count: 32)

    @Test(
        arguments: [
            ("acme/m@1.0", "acme/m", "1.0"), ("acme/m@\(digest)", "acme/m", digest), ("acme/m", "acme/m", nil),
        ] as [(String, String, String?)])
    func parses(text: String, model: String, selector: String?) throws {
        let (name, parsed) = try ModelReference.parse(allowingBareName: text)
        #expect(name.description == model)
        #expect(
            parsed.map { selector in
                switch selector {
                case .version(let tag): tag
                case .digest(let digest): digest.description
                }
            } == selector)
    }

    @Test(arguments: ["acme", "acme/m@", "acme/m@sha256:00", "acme/m@a b", "@1", "acme/m@1@2"])
    func refuses(text: String) {
        #expect(throws: CustodyError.self) { try ModelReference.parse(allowingBareName: text) }
    }

    @Test func aSelectorIsATagOrADigest() throws {
        #expect(try ModelReference.Selector(parsing: "2") == .version("2"))
        #expect(try ModelReference.Selector(parsing: Self.digest) == .digest(try ContentDigest(parsing: Self.digest)))
        #expect(throws: CustodyError.self) { try ModelReference.Selector(parsing: "sha256:xyz") }
    }
}
