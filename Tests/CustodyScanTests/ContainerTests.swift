import CustodyCore
import CustodyTestSupport
import Testing

@testable import CustodyScan

@Suite("Containers and PyTorch formats")
struct ContainerTests {
    @Test("a malicious data.pkl renamed inside a zip is found by its content")
    func renamedMember() {
        var zip = ZipBuilder()
        zip.entries = [.init(name: "archive/version", data: Array("3\n".utf8)), .init(name: "archive/weights.txt", data: osSystemPickle())]
        let report = scan(zip.build(), name: "model.zip")
        #expect(dangerousSubjects(report) == ["os.system"])
        #expect(report.findings.first { $0.verdict == .dangerous }?.member == "archive/weights.txt")
    }

    @Test("zip tricks: flag bits, a wrong CRC, local/central name mismatch, deflate")
    func zipTricks() {
        let payload = osSystemPickle()
        let variants: [ZipBuilder.Entry] = [
            .init(name: "archive/data.pkl", data: payload, flags: 0x01),
            .init(name: "archive/data.pkl", data: payload, flags: 0x20),
            .init(name: "archive/data.pkl", data: payload, flags: 0x40),
            .init(name: "archive/data.pkl", data: payload, crc: 0xDEAD_BEEF),
            .init(name: "archive/data.pkl", data: payload, localName: "archive/datap.kl"),
            .init(name: "archive/data.pkl", data: payload, deflate: true),
        ]
        for entry in variants {
            let report = scan(ZipBuilder(entries: [entry]).build(), name: "model.pt")
            #expect(report.format == .pytorchZip)
            #expect(dangerousSubjects(report) == ["os.system"], "flags \(entry.flags) crc \(String(describing: entry.crc))")
        }
    }

    @Test("a pickle hidden among a PyTorch zip's tensor storages is scanned; storages that only start like one stay clean")
    func picklesAmongStorages() {
        let version = ZipBuilder.Entry(name: "archive/version", data: Array("3\n".utf8))
        let dataPkl = ZipBuilder.Entry(name: "archive/data.pkl", data: stateDictPickle())
        for name in ["archive/data/0", "archive/data/17", "archive/data/hidden"] {
            let report = scan(ZipBuilder(entries: [version, dataPkl, .init(name: name, data: osSystemPickle())]).build(), name: "model.pt")
            #expect(dangerousSubjects(report) == ["os.system"], "\(name)")
            #expect(report.findings.contains { $0.member == name && $0.verdict == .dangerous }, "\(name)")
        }
        // fp16 bytes that happen to begin 0x80 0x02 are a storage, not a malformed pickle.
        let storage: [UInt8] = [0x80, 0x02] + (0..<510).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let benign = scan(ZipBuilder(entries: [version, dataPkl, .init(name: "archive/data/0", data: storage)]).build(), name: "model.pt")
        #expect(benign.verdict == .clean, "\(benign.findings)")
    }

    @Test("every template a configuration carries is checked: lists, named objects, other *template* fields, .jinja files")
    func everyTemplate() {
        let hostile = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
        let ordinary = "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}{% endfor %}"
        let shapes = [
            #"{"chat_template": [{"name": "default", "template": "\#(ordinary)"}, {"name": "tool_use", "template": "\#(hostile)"}]}"#,
            #"{"chat_template": {"default": "\#(ordinary)", "rag": "\#(hostile)"}}"#,
            #"{"chat_template": "\#(ordinary)", "default_chat_template": "\#(hostile)"}"#,
            #"{"processor": {"tokenizer": {"tool_use_template": "\#(hostile)"}}}"#,
        ]
        for shape in shapes {
            #expect(scan(Array(shape.utf8), name: "tokenizer_config.json").verdict == .dangerous, "\(shape)")
        }
        #expect(
            scan(Array(#"{"chat_template": [{"name": "default", "template": "\#(ordinary)"}]}"#.utf8), name: "tokenizer_config.json").verdict
                == .clean)
        #expect(scan(Array(hostile.utf8), name: "chat_template.jinja").verdict == .dangerous)
        #expect(scan(Array(hostile.utf8), name: "additional_chat_templates/tools.jinja").verdict == .dangerous)
        #expect(scan(Array(ordinary.utf8), name: "chat_template.jinja").verdict == .clean)
    }

    @Test("a genuinely encrypted member is unscannable, never clean")
    func encrypted() {
        let noise = (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 97 &+ 13) }
        let report = scan(ZipBuilder(entries: [.init(name: "secret.bin", data: noise, flags: 0x01)]).build(), name: "x.zip")
        #expect(report.verdict == .unscannable)
    }

    @Test("zips nested past the depth limit are unscannable")
    func nesting() {
        var bytes = osSystemPickle()
        for level in 0..<5 { bytes = ZipBuilder(entries: [.init(name: "level\(level).zip", data: bytes)]).build() }
        #expect(scan(bytes, name: "deep.zip").verdict == .unscannable)
        var shallow = osSystemPickle()
        for level in 0..<2 { shallow = ZipBuilder(entries: [.init(name: "level\(level).pkl", data: shallow)]).build() }
        #expect(scan(shallow, name: "nested.zip").verdict == .dangerous)
    }

    @Test("a pickle in a .bin is scanned as a pickle")
    func pickleInBin() {
        let report = scan(osSystemPickle(), name: "pytorch_model.bin")
        #expect(report.format == .pickle)
        #expect(report.verdict == .dangerous)
    }

    @Test("legacy PyTorch: five pickles after the magic number; the raw data after them is not read as pickles")
    func legacyTorch() {
        func legacy(main: [UInt8]) -> [UInt8] {
            var magic = PickleBytes(protocol: 2)
            magic.op(0x8A, [0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19])
            magic.stop()
            var version = PickleBytes(protocol: 2)
            version.op(0x4D, [0xE9, 0x03])
            version.stop()
            var info = PickleBytes(protocol: 2)
            info.op(0x7D)
            info.stop()
            var keys = PickleBytes(protocol: 2)
            keys.op(0x5D)
            keys.binunicode("0")
            keys.op(0x61)
            keys.stop()
            // Raw storage bytes that happen to look like a GLOBAL of os.system: torch never unpickles them.
            return magic.bytes + version.bytes + info.bytes + main + keys.bytes + le(UInt64(16)) + Array("cos\nsystem\n".utf8)
        }
        let benign = scan(legacy(main: stateDictPickle()), name: "pytorch_model.bin")
        #expect(benign.format == .pytorchLegacy)
        #expect(benign.verdict == .clean)
        #expect(benign.isValid)
        let hostile = scan(legacy(main: osSystemPickle()), name: "pytorch_model.bin")
        #expect(dangerousSubjects(hostile) == ["os.system"])
    }

    @Test(".npy: an object array's pickle is scanned; a numeric array is clean")
    func numpy() {
        func npy(descr: String, body: [UInt8]) -> [UInt8] {
            var header = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': (2,), }".utf8)
            while (10 + header.count + 1) % 64 != 0 { header.append(0x20) }
            header.append(0x0A)
            return NumPy.magic + [1, 0] + le(UInt16(header.count)) + header + body
        }
        let numeric = scan(npy(descr: "<f4", body: [UInt8](repeating: 0, count: 8)), name: "a.npy")
        #expect(numeric.format == .numpy)
        #expect(numeric.verdict == .clean)
        let objects = scan(npy(descr: "|O", body: osSystemPickle()), name: "a.npy")
        #expect(dangerousSubjects(objects) == ["os.system"])
        // An .npz is a zip of .npy members.
        let npz = scan(ZipBuilder(entries: [.init(name: "x.npy", data: npy(descr: "|O", body: osSystemPickle()))]).build(), name: "a.npz")
        #expect(npz.format == .numpyZip)
        #expect(npz.verdict == .dangerous)
    }
}
