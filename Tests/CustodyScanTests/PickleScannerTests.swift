import CustodyCore
import CustodyTestSupport
import Testing

@testable import CustodyScan

@Suite("Pickle scanner")
struct PickleScannerTests {
    @Test("os.system through GLOBAL, protocols 0 and 2")
    func globalImport() {
        for proto: UInt8? in [nil, 2] {
            var p = PickleBytes(protocol: proto)
            p.global("os", "system")
            p.mark()
            p.string0("id")
            p.tuple()
            p.reduce()
            p.stop()
            let report = scan(p.bytes)
            #expect(report.format == .pickle)
            #expect(report.verdict == .dangerous)
            #expect(dangerousSubjects(report) == ["os.system"])
        }
    }

    /// `find_class` walks a dotted name through module attributes, and modules carry the modules they imported.
    @Test(
        "a dangerous callable reached through an innocent module's attributes is dangerous",
        arguments: [
            ("pathlib", "os.system"), ("shutil_like", "subprocess.Popen"), ("torch.serialization_helpers", "_os.popen"),
            ("collections", "abc.builtins.eval"), ("numpy", "lib.npyio.pickle.loads"), ("typing", "sys.modules.get"),
        ])
    func dottedNamesAreResolvedThroughAttributes(module: String, name: String) {
        #expect(ImportRules.verdict(module: module, name: name).0 == .dangerous, "\(module) \(name)")
        var p = PickleBytes(protocol: 4)
        p.unicode(module)
        p.unicode(name)
        p.stackGlobal()
        p.mark()
        p.unicode("id")
        p.tuple()
        p.reduce()
        p.stop()
        #expect(scan(p.bytes).verdict == .dangerous, "\(module) \(name)")
    }

    @Test(
        "dotted names that reach nothing dangerous stay as they were",
        arguments: [
            ("collections", "OrderedDict", Verdict.clean), ("torch._utils", "_rebuild_tensor_v2", .clean),
            ("mymodel.layers", "Block.Attention", .suspicious), ("numpy.core.multiarray", "_reconstruct", .clean),
            ("sklearn.pipeline", "Pipeline", .suspicious),
        ])
    func ordinaryDottedNames(module: String, name: String, expected: Verdict) {
        #expect(ImportRules.verdict(module: module, name: name).0 == expected, "\(module) \(name)")
    }

    /// A pickle framed as CPython frames it: every opcode inside the frame that holds it.
    static func framed(_ body: [UInt8], length: Int? = nil) -> [UInt8] {
        [0x80, 0x04, 0x95] + le(UInt64(length ?? body.count)) + body
    }

    @Test("frames as CPython writes them are clean and raise nothing")
    func wellFormedFrames() {
        var p = PickleBytes()
        p.unicode("collections")
        p.unicode("OrderedDict")
        p.stackGlobal()
        p.op(0x29)
        p.reduce()
        p.stop()
        let report = scan(Self.framed(p.bytes))
        #expect(report.verdict == .clean, "\(report.findings)")
        // Two frames back to back, each whole.
        var first = PickleBytes()
        first.unicode("collections")
        first.unicode("OrderedDict")
        var second = PickleBytes()
        second.stackGlobal()
        second.op(0x29)
        second.reduce()
        second.stop()
        let twoFrames = [0x80, 0x04, 0x95] + le(UInt64(first.bytes.count)) + first.bytes + [0x95] + le(UInt64(second.bytes.count)) + second.bytes
        #expect(scan(twoFrames).verdict == .clean)
    }

    @Test("frames and opcode lengths that disagree are read as the C unpickler reads them, and are at least suspicious")
    func framesThatDisagree() {
        // The frame ends inside a string operand: a Python-level reader stops (or resyncs) there, the C unpickler
        // reads on and imports os.system.
        let hostile = osSystemPickle().dropFirst(2)  // without its PROTO
        let cut = scan(Self.framed(Array(hostile), length: 3))
        #expect(cut.verdict == .dangerous)
        #expect(dangerousSubjects(cut) == ["os.system"])
        #expect(cut.findings.contains { $0.subject == "pickle frames" && $0.reason.contains("past the end of its frame") })
        // A frame declared longer than the data.
        var benign = PickleBytes()
        benign.none()
        benign.stop()
        let long = scan(Self.framed(benign.bytes, length: 4096))
        #expect(long.verdict >= .suspicious)
        #expect(long.findings.contains { $0.reason.contains("more than the") })
        // A frame begun inside another.
        let nested = [0x80, 0x04, 0x95] + le(UInt64(20)) + [0x95] + le(UInt64(2)) + [0x4E, 0x2E] + [UInt8](repeating: 0x4E, count: 9)
        let inner = scan(nested)
        #expect(inner.findings.contains { $0.reason.contains("a FRAME begins") }, "\(inner.findings)")
    }

    @Test("STACK_GLOBAL fed from the memo out of order is resolved like the unpickler does")
    func memoisedStackGlobal() {
        // Strings stored in slots 2, 3, 0, 1; a naive look-back would see torch.LongStorage.
        var p = PickleBytes(protocol: 4)
        p.unicode("os")
        p.binput(2)
        p.op(0x30)
        p.unicode("system")
        p.binput(3)
        p.op(0x30)
        p.unicode("torch")
        p.binput(0)
        p.op(0x30)
        p.unicode("LongStorage")
        p.binput(1)
        p.op(0x30)
        p.binget(2)
        p.binget(3)
        p.stackGlobal()
        p.unicode("id")
        p.tuple1()
        p.reduce()
        p.stop()
        let report = scan(p.bytes)
        #expect(dangerousSubjects(report) == ["os.system"])
        #expect(!report.findings.contains { $0.subject.contains("LongStorage") })
    }

    @Test("protocol-0 STRING operands, escapes included, feed STACK_GLOBAL")
    func protocolZeroStrings() {
        var p = PickleBytes()
        p.raw("S'o\\x73'\n")  // 'os' with an escape
        p.string0("system")
        p.stackGlobal()
        p.string0("id")
        p.tuple1()
        p.reduce()
        p.stop()
        #expect(dangerousSubjects(scan(p.bytes)) == ["os.system"])
    }

    @Test("builtins eval/exec/getattr chains, with Python 2 names")
    func builtinsChain() {
        var p = PickleBytes(protocol: 2)
        p.global("__builtin__", "getattr")
        p.global("builtins", "__import__")
        p.unicode("os")
        p.tuple1()
        p.reduce()
        p.unicode("system")
        p.op(0x86)
        p.reduce()
        p.op(0x30)
        p.global("builtins", "exec")
        p.op(0x30)
        p.global("builtins", "eval")
        p.unicode("1")
        p.tuple1()
        p.reduce()
        p.stop()
        let report = scan(p.bytes)
        #expect(dangerousSubjects(report) == ["__builtin__.getattr", "builtins.__import__", "builtins.exec", "builtins.eval"])
    }

    @Test("an import whose operands are computed is dangerous whatever its value")
    func nonLiteralImport() {
        var p = PickleBytes(protocol: 4)
        p.global("collections", "OrderedDict")
        p.unicode("x")
        p.stackGlobal()
        p.stop()
        let report = scan(p.bytes)
        #expect(report.verdict == .dangerous)
        #expect(report.findings.contains { $0.verdict == .dangerous && $0.reason.contains("not literal") })
        // A memo slot that was never stored must not crash the walk.
        var q = PickleBytes(protocol: 4)
        q.binget(9)
        q.unicode("system")
        q.stackGlobal()
        q.stop()
        #expect(scan(q.bytes).verdict == .dangerous)
    }

    @Test("several pickles in a row: the second one is scanned")
    func concatenated() {
        var first = PickleBytes(protocol: 2)
        first.op(0x5D)
        first.stop()
        let report = scan(first.bytes + osSystemPickle())
        #expect(dangerousSubjects(report) == ["os.system"])
    }

    @Test("a real-shaped state_dict pickle is clean")
    func stateDict() {
        let report = scan(stateDictPickle(), name: "model.pkl")
        #expect(report.format == .pickle)
        #expect(report.isValid)
        #expect(report.verdict == .clean)
        #expect(Set(report.findings.map(\.subject)) == ["collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage"])
    }

    @Test("unknown imports are suspicious, not clean")
    func suspicious() {
        var p = PickleBytes(protocol: 2)
        p.global("mypackage.layers", "Custom")
        p.op(0x29)
        p.reduce()
        p.stop()
        #expect(scan(p.bytes).verdict == .suspicious)
    }

    @Test("a truncated stream keeps what it imported and is invalid")
    func truncated() {
        var p = PickleBytes()
        p.global("builtins", "exec")
        p.mark()
        p.op(0x58, le(UInt32(1_000_000)))
        let report = scan(p.bytes, name: "broken.pkl")
        #expect(report.format == .pickle)
        #expect(!report.isValid)
        #expect(dangerousSubjects(report).contains("builtins.exec"))
    }

    @Test("hostile shapes stay bounded: DUP/GET expansion, deep MARK nesting, huge memo indices")
    func bounded() {
        // Billion laughs: a list duplicated and re-fetched millions of times is still one symbol each.
        var laughs = PickleBytes(protocol: 2)
        laughs.op(0x5D)
        laughs.binput(0)
        for _ in 0..<200_000 {
            laughs.binget(0)
            laughs.op(0x32)
            laughs.op(0x30)
            laughs.op(0x30)
        }
        laughs.stop()
        let laughReport = scan(laughs.bytes)
        #expect(laughReport.verdict == .clean)

        let deep = [0x80, 0x02] + [UInt8](repeating: 0x28, count: 2_000_000) + [0x2E]
        let deepReport = scan(deep)
        #expect(deepReport.verdict == .unscannable)
        #expect(deepReport.findings.contains { $0.reason.contains("nested deeper") })

        var memo = PickleBytes(protocol: 2)
        memo.op(0x5D)
        memo.op(0x72, le(UInt32.max))
        memo.op(0x6A, le(UInt32.max))
        memo.op(0x30)
        memo.stop()
        #expect(scan(memo.bytes).verdict == .clean)
    }

    @Test("EXT opcodes import through the copyreg registry and are dangerous")
    func extensionRegistry() {
        var p = PickleBytes(protocol: 2)
        p.op(0x82, [1])
        p.op(0x29)
        p.reduce()
        p.stop()
        #expect(scan(p.bytes).verdict == .dangerous)
    }
}
