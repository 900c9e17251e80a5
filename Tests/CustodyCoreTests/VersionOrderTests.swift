import CustodyCore
import Testing

@Suite struct VersionOrderTests {
    static let a = ContentDigest.of([1]), b = ContentDigest.of([2])
    static let order: [(version: String, digest: ContentDigest)] = [("1", a), ("2", b), ("3", a)]

    @Test(
        arguments: [
            (ModelReference.Selector.version("2"), "2"), (.version("1"), "1"), (.version("9"), nil),
            (.digest(a), "3"), (.digest(b), "2"), (.digest(ContentDigest.of([3])), nil),
        ] as [(ModelReference.Selector, String?)])
    func resolves(selector: ModelReference.Selector, expected: String?) {
        #expect(VersionOrder.resolve(selector, in: Self.order)?.version == expected)
    }

    @Test func noSelectorIsTheNewestAndAnEmptyModelHasNone() {
        #expect(VersionOrder.resolve(nil, in: Self.order)?.version == "3")
        #expect(VersionOrder.resolve(nil, in: []) == nil)
    }
}
