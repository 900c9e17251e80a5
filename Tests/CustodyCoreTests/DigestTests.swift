import CustodyCore
import Testing

@Suite struct DigestTests {
    @Test func parsesAndPrintsTheCanonicalForm() throws {
        let text = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        let digest = try ContentDigest(parsing: text)
        #expect(digest.description == text)
        #expect(digest == ContentDigest.of([]))
    }

    @Test(arguments: [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
        "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
        "",
    ])
    func refusesEveryOtherSpelling(_ text: String) {
        #expect(throws: CustodyError.self) { try ContentDigest(parsing: text) }
    }

    @Test func errorNamesTheBadValue() {
        #expect {
            try ContentDigest(parsing: "sha256:abc")
        } throws: { error in
            (error as? CustodyError)?.message.contains("sha256:abc") == true
        }
    }
}
