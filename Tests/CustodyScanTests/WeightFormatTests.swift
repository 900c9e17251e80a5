import CustodyCore
import CustodyTestSupport
import Foundation
import Testing

@testable import CustodyScan

@Suite("safetensors and GGUF validators")
struct WeightFormatTests {
    @Test("a valid safetensors file: counts, dtypes and __metadata__ come from the header")
    func validSafetensors() throws {
        let bytes = safetensors(
            [("a", "F32", [2, 3], 24), ("b", "BF16", [4], 8), ("c", "F4", [4], 2)],
            metadata: ["format": "pt", "license": "apache-2.0"])
        let report = scan(bytes, name: "model.safetensors")
        #expect(report.format == .safetensors)
        #expect(report.isValid, "\(report.invalid ?? "")")
        #expect(report.verdict == .clean)
        let metadata = try #require(report.metadata)
        #expect(metadata.tensorCount == 3)
        #expect(metadata.parameterCount == 14)
        #expect(metadata.dtypes == ["F32": 6, "BF16": 4, "F4": 4])
        #expect(metadata.license == "apache-2.0")
        #expect(metadata.attributes?["format"] == "pt")
    }

    @Test("polyglot safetensors: a hole between tensors or trailing bytes is refused")
    func polyglot() {
        let hole = scan(safetensors([("a", "F32", [2], 8), ("b", "F32", [2], 8)], gapAfterFirst: 64), name: "m.safetensors")
        #expect(hole.invalid?.contains("hole") == true)
        #expect(hole.verdict != .clean)
        let trailing = scan(safetensors([("a", "F32", [2], 8)], trailing: 100), name: "m.safetensors")
        #expect(trailing.invalid?.contains("trailing") == true)
    }

    @Test("safetensors headers that lie are refused before anything is allocated")
    func lyingHeaders() {
        let huge = le(UInt64(1) << 63) + Array("{}".utf8)
        let report = scan(huge, name: "m.safetensors")
        #expect(report.format == .safetensors)
        #expect(report.invalid?.contains("limit") == true)
        let short = le(UInt64(1000)) + Array("{\"a\":1}".utf8)
        #expect(scan(short).invalid?.contains("only") == true)
        let duplicate = le(UInt64(15)) + Array("{\"a\":{},\"a\":{}}".utf8)
        #expect(scan(duplicate).invalid?.contains("duplicate") == true)
        let wrongSize = safetensors([("a", "F32", [3], 8)])
        #expect(scan(wrongSize).invalid?.contains("needs 12") == true)
        let overflow =
            le(UInt64(104)) + Array("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}".utf8)
            + Array(repeating: 0x20, count: 104 - 88)
        #expect(scan(overflow).isValid == false)
    }

    @Test("a generated GGUF is valid; metadata and parameter count are extracted")
    func validGGUF() throws {
        let bytes = gguf(
            metadata: [
                ("general.architecture", "llama"), ("general.name", "tiny"), ("general.license", "mit"),
                ("general.base_model.0.name", "Base Model"),
            ],
            tensors: [("tok", [8, 4]), ("out", [4])])
        let report = scan(bytes, name: "m.gguf")
        #expect(report.format == .gguf)
        #expect(report.isValid, "\(report.invalid ?? "")")
        let metadata = try #require(report.metadata)
        #expect(metadata.architecture == "llama")
        #expect(metadata.license == "mit")
        #expect(metadata.parameterCount == 36)
        #expect(metadata.baseModels == ["Base Model"])
    }

    @Test("a truncated GGUF and one with a huge string length are refused")
    func hostileGGUF() {
        let bytes = gguf(metadata: [("general.name", "tiny")], tensors: [("t", [1024])])
        let truncated = scan(Array(bytes.prefix(bytes.count - 100)), name: "m.gguf")
        #expect(truncated.invalid?.contains("runs past the end") == true)
        var huge = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(0)) + le(UInt64(1))
        huge += le(UInt64.max - 3) + Array("general.name".utf8)
        let hugeReport = scan(huge, name: "m.gguf")
        #expect(hugeReport.invalid?.contains("bytes") == true)
        var array = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(0)) + le(UInt64(1))
        array += le(UInt64(3)) + Array("arr".utf8) + le(UInt32(9)) + le(UInt32(8)) + le(UInt64(1) << 60)
        #expect(scan(array, name: "m.gguf").invalid?.contains("cannot fit") == true)
        #expect(scan(Array("GGUF".utf8) + le(UInt32(3))).isValid == false)
    }

    @Test("chat templates: SSTI payloads are dangerous; an ordinary template is clean")
    func chatTemplates() {
        let hostile = "{% for m in messages %}{{ cycler.__init__.__globals__.os.popen('id').read() }}{% endfor %}"
        let bad = scan(gguf(metadata: [("tokenizer.chat_template", hostile)], tensors: []), name: "m.gguf")
        #expect(bad.verdict == .dangerous)
        let ordinary = """
            {% set ns = namespace(system='') %}{% for message in messages %}{% if message['role'] == 'system' %}\
            {% set ns.system = message['content'] %}{% else %}<|{{ message['role'] }}|>{{ message['content'] }}{% endif %}\
            {% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}
            """
        #expect(scan(gguf(metadata: [("tokenizer.chat_template", ordinary)], tensors: []), name: "m.gguf").verdict == .clean)
        let config = Array(#"{"chat_template": "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}", "eos_token": "</s>"}"#.utf8)
        let report = scan(config, name: "tokenizer_config.json")
        #expect(report.format == .json)
        #expect(report.verdict == .dangerous)
    }

    @Test("a sharded index must match its shards")
    func shardedIndex() throws {
        let root = NSTemporaryDirectory() + "custody-scan-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Data(safetensors([("a", "F32", [2], 8)])).write(to: URL(fileURLWithPath: root + "/m-1.safetensors"))
        try Data(safetensors([("b", "F32", [2], 8)])).write(to: URL(fileURLWithPath: root + "/m-2.safetensors"))
        let good = #"{"metadata": {"total_size": 16}, "weight_map": {"a": "m-1.safetensors", "b": "m-2.safetensors"}}"#
        try Data(good.utf8).write(to: URL(fileURLWithPath: root + "/model.safetensors.index.json"))
        let files = ["m-1.safetensors", "m-2.safetensors", "model.safetensors.index.json"]
        let report = try ModelScanner().scanBundle(root: root, files: files)
        #expect(report.allValid)
        #expect(report.files.last?.format == .safetensorsIndex)
        let bad = #"{"metadata": {}, "weight_map": {"a": "m-2.safetensors", "c": "m-3.safetensors"}}"#
        try Data(bad.utf8).write(to: URL(fileURLWithPath: root + "/model.safetensors.index.json"))
        let mismatch = try ModelScanner().scanBundle(root: root, files: files)
        let index = try #require(mismatch.files.last)
        #expect(!index.isValid)
        #expect(index.invalid?.contains("m-3.safetensors") == true)
    }

    @Test("text, JSON and empty files are recognised and clean; unknown bytes named like a checkpoint are not")
    func plainFiles() {
        #expect(scan(Array("# Model card\ncustody\nregistry\n".utf8), name: "README.md").format == .text)
        #expect(scan(Array(#"{"hidden_size": 4096}"#.utf8), name: "config.json").format == .json)
        #expect(scan([], name: "empty").format == .empty)
        let png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] as [UInt8]
        let report = scan(png, name: "model.pt")
        #expect(report.format == .unknown)
        #expect(report.verdict == .unscannable)
        #expect(scan(png, name: "logo.png").verdict == .clean)
    }
}
