import CustodyCore

/// Validates a safetensors file by the rules of the reference reader (formats.md §2), reading only the header.
enum Safetensors {
    static let maxHeader: UInt64 = 100_000_000

    /// Bits per element of every dtype the reference reader accepts.
    static let dtypeBits: [String: UInt64] = [
        "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
        "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64,
        "I64": 64, "U64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
    ]

    struct Tensor {
        var name: String
        var dtype: String
        var elements: UInt64
        var begin: UInt64
        var end: UInt64
    }

    struct Header {
        var tensors: [Tensor]
        var metadata: [String: String]
    }

    struct Invalid: Error {
        let reason: String
    }

    /// True when the bytes start the way a safetensors file does (a u64 length, then `{`).
    static func looksLike(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 9 && bytes[8] == UInt8(ascii: "{")
    }

    static func validate(_ bytes: UnsafeRawBufferPointer) -> Result<Header, Invalid> {
        Result { () throws(Invalid) in try parse(bytes) }
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer) throws(Invalid) -> Header {
        let fileSize = UInt64(bytes.count)
        guard fileSize >= 8 else { throw Invalid(reason: "\(fileSize) bytes is shorter than the 8-byte header length") }
        var length: UInt64 = 0
        for index in (0..<8).reversed() { length = length << 8 | UInt64(bytes[index]) }
        guard length <= maxHeader else {
            throw Invalid(reason: "the header claims \(length) bytes, over the reference reader's \(maxHeader)-byte limit")
        }
        guard length <= fileSize - 8 else {
            throw Invalid(reason: "the header claims \(length) bytes but the file has only \(fileSize - 8) after the length")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<8 + Int(length)])
        guard headerBytes.first == UInt8(ascii: "{") else { throw Invalid(reason: "the header does not start with '{'") }
        let json: JSONValue
        do { json = try StrictJSONParser.parse(headerBytes) } catch {
            throw Invalid(reason: "the header is not valid JSON: \(error)")
        }
        guard case .object(let entries) = json else { throw Invalid(reason: "the header is not a JSON object") }

        var tensors: [Tensor] = []
        var metadata: [String: String] = [:]
        for (name, value) in entries {
            if name == "__metadata__" {
                guard case .object(let pairs) = value else { throw Invalid(reason: "__metadata__ is not an object") }
                for (key, item) in pairs {
                    guard let text = item.string else { throw Invalid(reason: "__metadata__ value of \"\(key)\" is not a string") }
                    metadata[key] = text
                }
                continue
            }
            guard case .object = value else { throw Invalid(reason: "tensor \"\(name)\" is not an object") }
            guard let dtype = value["dtype"]?.string, let bits = dtypeBits[dtype] else {
                throw Invalid(reason: "tensor \"\(name)\" has an unknown or missing dtype")
            }
            guard case .array(let dims)? = value["shape"] else { throw Invalid(reason: "tensor \"\(name)\" has no shape") }
            var elements: UInt64 = 1
            for dim in dims {
                guard let size = dim.unsigned else {
                    throw Invalid(reason: "tensor \"\(name)\" has a shape entry that is not a non-negative integer")
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: size)
                guard !overflow else { throw Invalid(reason: "tensor \"\(name)\": element count overflows") }
                elements = product
            }
            guard case .array(let offsets)? = value["data_offsets"], offsets.count == 2,
                let begin = offsets[0].unsigned, let end = offsets[1].unsigned, begin <= end
            else { throw Invalid(reason: "tensor \"\(name)\" has malformed data_offsets") }
            let (totalBits, overflow) = elements.multipliedReportingOverflow(by: bits)
            guard !overflow else { throw Invalid(reason: "tensor \"\(name)\": byte size overflows") }
            guard totalBits % 8 == 0 else {
                throw Invalid(reason: "tensor \"\(name)\": \(elements) × \(bits)-bit elements do not fill whole bytes")
            }
            guard end - begin == totalBits / 8 else {
                throw Invalid(
                    reason: "tensor \"\(name)\": data_offsets span \(end - begin) bytes but \(dtype)\(Self.shape(dims)) needs \(totalBits / 8)")
            }
            tensors.append(Tensor(name: name, dtype: dtype, elements: elements, begin: begin, end: end))
        }

        // Sorted by offset, tensors must tile the data buffer from 0 with no hole and no overlap: a hole is where a
        // polyglot file hides a second payload.
        var expected: UInt64 = 0
        for tensor in tensors.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            guard tensor.begin == expected else {
                throw Invalid(
                    reason: tensor.begin > expected
                        ? "\(tensor.begin - expected) unaccounted bytes before tensor \"\(tensor.name)\" (a hole in the data buffer)"
                        : "tensor \"\(tensor.name)\" overlaps the previous tensor")
            }
            expected = tensor.end
        }
        let dataSize = fileSize - 8 - length
        guard expected == dataSize else {
            throw Invalid(
                reason: expected < dataSize
                    ? "\(dataSize - expected) trailing bytes after the last tensor"
                    : "the tensors need \(expected) bytes of data but the file holds \(dataSize)")
        }
        return Header(tensors: tensors, metadata: metadata)
    }

    private static func shape(_ dims: [JSONValue]) -> String {
        "[" + dims.map { $0.unsigned.map(String.init) ?? "?" }.joined(separator: ", ") + "]"
    }

    static func metadata(of header: Header) -> ExtractedMetadata {
        var extracted = ExtractedMetadata()
        extracted.tensorCount = header.tensors.count
        var parameters: UInt64 = 0
        var histogram: [String: UInt64] = [:]
        for tensor in header.tensors {
            parameters &+= tensor.elements
            histogram[tensor.dtype, default: 0] &+= tensor.elements
        }
        extracted.parameterCount = parameters
        extracted.dtypes = histogram
        if !header.metadata.isEmpty { extracted.attributes = header.metadata }
        let lowered = Dictionary(header.metadata.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        extracted.license = lowered["license"]
        extracted.name = lowered["name"] ?? lowered["general.name"]
        extracted.architecture = lowered["architecture"]
        if let base = lowered["base_model"] ?? lowered["base_models"] {
            extracted.baseModels = base.split(separator: ",").map { String($0).trimmingASCIISpaces }.map(String.init).filter { !$0.isEmpty }
        }
        return extracted
    }
}
