import CustodyCore
import Testing

@Suite struct ResourceOrderTests {
    /// Python's `sorted(PurePosixPath)` gives this order; plain string order would put `a-b` and `a.b` first.
    @Test func sortsByPathComponentsLikeModelSigning() {
        let names = ["a.b", "a/b/x.bin", "b", "a-b", ".hid/f", "a/c", "a", "A", "é", "z"]
        #expect(names.sorted(by: ResourceOrder.precedes) == [".hid/f", "A", "a", "a/b/x.bin", "a/c", "a-b", "a.b", "b", "z", "é"])
    }

    @Test func isAStrictOrder() {
        #expect(!ResourceOrder.precedes("a", "a"))
        #expect(ResourceOrder.precedes("a", "a/b"))
        #expect(!ResourceOrder.precedes("a/b", "a"))
    }
}
