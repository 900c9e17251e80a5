import CustodyCore

/// Validates a GGUF file (formats.md §3): every count and length is bounded by the bytes that remain before
/// anything is allocated, tensor data must be aligned, in bounds and non-overlapping.
enum GGUF {
    struct Invalid: Error {
        let reason: String
    }

    struct Parsed {
        var metadata = ExtractedMetadata()
        var chatTemplate: String?
    }

    /// (elements per block, bytes per block) for every ggml type this version knows.
    static let ggmlTypes: [UInt32: (name: String, block: UInt64, bytes: UInt64)] = [
        0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
        7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
        12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
        16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50),
        20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136),
        24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
        29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
        39: ("MXFP4", 32, 17),
    ]

    static let maxDimensions: UInt32 = 4
    static let maxArrayNesting = 8

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var position = 4

        var remaining: UInt64 { UInt64(bytes.count - position) }

        mutating func need(_ count: UInt64, _ what: @autoclosure () -> String) throws(Invalid) {
            guard count <= remaining else {
                throw Invalid(reason: "\(what()) needs \(count) bytes at offset \(position) but only \(remaining) remain")
            }
        }

        mutating func unsigned(_ width: Int, _ what: @autoclosure () -> String) throws(Invalid) -> UInt64 {
            try need(UInt64(width), what())
            var value: UInt64 = 0
            for index in (0..<width).reversed() { value = value << 8 | UInt64(bytes[position + index]) }
            position += width
            return value
        }

        mutating func string(_ what: @autoclosure () -> String, keep: Bool = true) throws(Invalid) -> String? {
            let length = try unsigned(8, "the length of \(what())")
            try need(length, "\(what()) (\(length) bytes)")
            let raw = UnsafeRawBufferPointer(rebasing: bytes[position..<position + Int(length)])
            position += Int(length)
            guard keep else { return nil }
            guard let text = String(validating: raw, as: UTF8.self) else { throw Invalid(reason: "\(what()) is not valid UTF-8") }
            return text
        }
    }

    private enum Value {
        case string(String)
        case integer(UInt64)
        case strings([String])
        case other
    }

    /// Fixed sizes of the scalar value types (0…12); 8 (string) and 9 (array) are variable.
    private static func scalarSize(_ type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: 1
        case 2, 3: 2
        case 4, 5, 6: 4
        case 10, 11, 12: 8
        default: nil
        }
    }

    private static func value(_ reader: inout Reader, type: UInt32, key: String, nesting: Int) throws(Invalid) -> Value {
        if let size = scalarSize(type) {
            let raw = try reader.unsigned(size, "the value of \(key)")
            return [4, 10].contains(type) || type == 0 || type == 2 ? .integer(raw) : .other
        }
        switch type {
        case 8:
            // Long strings (a chat template, a tokenizer) are kept only where we read them.
            return .string(try reader.string("the value of \(key)")!)
        case 9:
            guard nesting < maxArrayNesting else { throw Invalid(reason: "\(key): arrays nested deeper than \(maxArrayNesting)") }
            let itemType = UInt32(try reader.unsigned(4, "the item type of \(key)"))
            let count = try reader.unsigned(8, "the item count of \(key)")
            // Every item takes at least one byte (strings and arrays at least eight): bound before looping.
            let minimum: UInt64 = scalarSize(itemType).map(UInt64.init) ?? 8
            guard scalarSize(itemType) != nil || itemType == 8 || itemType == 9 else {
                throw Invalid(reason: "\(key): unknown array item type \(itemType)")
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: minimum)
            guard !overflow, bytes <= reader.remaining else {
                throw Invalid(reason: "\(key): an array of \(count) items cannot fit in the \(reader.remaining) bytes that remain")
            }
            if let size = scalarSize(itemType) {
                reader.position += Int(count) * size
                return .other
            }
            var strings: [String] = []
            let keep = itemType == 8 && count <= 4096
            for _ in 0..<count {
                if itemType == 8 {
                    let item = try reader.string("an item of \(key)", keep: keep)
                    if let item { strings.append(item) }
                } else {
                    _ = try value(&reader, type: 9, key: key, nesting: nesting + 1)
                }
            }
            return keep ? .strings(strings) : .other
        default:
            throw Invalid(reason: "\(key): unknown value type \(type)")
        }
    }

    /// A base model as a Hugging Face repository id when the file says which (`repo_url`, or organization and
    /// name), otherwise its display name.
    static func reference(to fields: [String: String]) -> String? {
        if let url = fields["repo_url"] { return HubID.removingPrefix(url) ?? url }
        if let organization = fields["organization"], let name = fields["name"] { return "\(organization)/\(name)" }
        return fields["name"]
    }

    static func validate(_ bytes: UnsafeRawBufferPointer) -> Result<Parsed, Invalid> {
        Result { () throws(Invalid) in try parse(bytes) }
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer) throws(Invalid) -> Parsed {
        var reader = Reader(bytes: bytes)
        let version = UInt32(try reader.unsigned(4, "the version"))
        guard version == 2 || version == 3 else { throw Invalid(reason: "GGUF version \(version) is not supported (2 and 3 are)") }
        var parsed = Parsed()
        let tensorCount = try reader.unsigned(8, "the tensor count")
        let kvCount = try reader.unsigned(8, "the metadata count")
        // A key-value pair takes at least 8 + 4 + 1 bytes, a tensor info at least 8 + 4 + 8 + 4 + 8.
        guard kvCount <= reader.remaining / 13 else { throw Invalid(reason: "\(kvCount) metadata entries cannot fit in the file") }
        guard tensorCount <= reader.remaining / 32 else { throw Invalid(reason: "\(tensorCount) tensors cannot fit in the file") }

        var alignment: UInt64 = 32
        var baseModels: [Int: [String: String]] = [:]
        var seen = Set<String>()
        for _ in 0..<kvCount {
            guard let key = try reader.string("a metadata key") else { continue }
            guard seen.insert(key).inserted else { throw Invalid(reason: "duplicate metadata key \(key)") }
            let type = UInt32(try reader.unsigned(4, "the type of \(key)"))
            let value = try value(&reader, type: type, key: key, nesting: 0)
            switch (key, value) {
            case ("general.alignment", .integer(let value)):
                guard value > 0, value & (value - 1) == 0 else { throw Invalid(reason: "general.alignment \(value) is not a power of two") }
                alignment = value
            case ("general.alignment", _): throw Invalid(reason: "general.alignment is not a u32")
            case ("general.architecture", .string(let text)): parsed.metadata.architecture = text
            case ("general.name", .string(let text)): parsed.metadata.name = text
            case ("general.license", .string(let text)): parsed.metadata.license = text
            case ("general.datasets", .strings(let items)): parsed.metadata.datasets = items
            case ("tokenizer.chat_template", .string(let text)): parsed.chatTemplate = text
            default:
                let prefix = "general.base_model."
                if key.hasPrefix(prefix), case .string(let text) = value,
                    let index = Int(key.dropFirst(prefix.count).prefix { $0.isNumber }), index < 1024
                {
                    let field = String(key.dropFirst(prefix.count).drop { $0.isNumber }.dropFirst())
                    baseModels[index, default: [:]][field] = text
                }
            }
        }
        if !baseModels.isEmpty {
            parsed.metadata.baseModels = baseModels.sorted { $0.key < $1.key }.compactMap { Self.reference(to: $0.value) }
        }

        struct Span {
            var name: String
            var offset: UInt64
            var size: UInt64
        }
        var spans: [Span] = []
        var parameters: UInt64 = 0
        var histogram: [String: UInt64] = [:]
        for index in 0..<tensorCount {
            let name = try reader.string("the name of tensor \(index)") ?? ""
            let dimensions = UInt32(try reader.unsigned(4, "the dimension count of \(name)"))
            guard dimensions <= maxDimensions else { throw Invalid(reason: "tensor \(name) has \(dimensions) dimensions (at most \(maxDimensions))") }
            var elements: UInt64 = 1
            for _ in 0..<dimensions {
                let size = try reader.unsigned(8, "a dimension of \(name)")
                let (product, overflow) = elements.multipliedReportingOverflow(by: size)
                guard !overflow, size <= Int64.max else { throw Invalid(reason: "tensor \(name): element count overflows") }
                elements = product
            }
            let type = UInt32(try reader.unsigned(4, "the type of \(name)"))
            let offset = try reader.unsigned(8, "the offset of \(name)")
            guard offset % alignment == 0 else { throw Invalid(reason: "tensor \(name) at offset \(offset) is not aligned to \(alignment)") }
            guard let info = ggmlTypes[type] else { throw Invalid(reason: "tensor \(name) has unknown ggml type \(type)") }
            guard elements % info.block == 0 else {
                throw Invalid(reason: "tensor \(name): \(elements) elements are not a whole number of \(info.name) blocks")
            }
            let (size, overflow) = (elements / info.block).multipliedReportingOverflow(by: info.bytes)
            guard !overflow else { throw Invalid(reason: "tensor \(name): byte size overflows") }
            spans.append(Span(name: name, offset: offset, size: size))
            parameters &+= elements
            histogram[info.name, default: 0] &+= elements
        }
        let dataStart = (UInt64(reader.position) + alignment - 1) / alignment * alignment
        let dataSize = UInt64(bytes.count) > dataStart ? UInt64(bytes.count) - dataStart : 0
        var end: UInt64 = 0
        for span in spans.sorted(by: { $0.offset < $1.offset }) {
            guard span.offset >= end else { throw Invalid(reason: "tensor \(span.name) overlaps the previous tensor") }
            let (last, overflow) = span.offset.addingReportingOverflow(span.size)
            guard !overflow, last <= dataSize else {
                throw Invalid(reason: "tensor \(span.name) (\(span.size) bytes at \(span.offset)) runs past the end of the file")
            }
            end = last
        }
        parsed.metadata.tensorCount = Int(tensorCount)
        parsed.metadata.parameterCount = parameters
        parsed.metadata.dtypes = histogram
        return parsed
    }
}
