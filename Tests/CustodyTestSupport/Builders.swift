/// Writes pickle opcodes byte by byte, so hostile streams need no Python.
package struct PickleBytes {
    package var bytes: [UInt8] = []

    package init(protocol version: UInt8? = nil) {
        if let version { bytes += [0x80, version] }
    }

    package mutating func op(_ code: UInt8, _ operand: [UInt8] = []) { bytes += [code] + operand }
    package mutating func raw(_ text: String) { bytes += Array(text.utf8) }

    package mutating func global(_ module: String, _ name: String) { raw("c\(module)\n\(name)\n") }
    package mutating func unicode(_ text: String) {
        let utf8 = Array(text.utf8)
        op(0x8C, [UInt8(utf8.count)] + utf8)
    }
    package mutating func binunicode(_ text: String) {
        let utf8 = Array(text.utf8)
        op(0x58, le(UInt32(utf8.count)) + utf8)
    }
    package mutating func string0(_ text: String) { raw("S'\(text)'\n") }
    package mutating func stackGlobal() { op(0x93) }
    package mutating func memoize() { op(0x94) }
    package mutating func binput(_ index: UInt8) { op(0x71, [index]) }
    package mutating func binget(_ index: UInt8) { op(0x68, [index]) }
    package mutating func mark() { op(0x28) }
    package mutating func tuple() { op(0x74) }
    package mutating func tuple1() { op(0x85) }
    package mutating func reduce() { op(0x52) }
    package mutating func stop() { op(0x2E) }
    package mutating func none() { op(0x4E) }
    package mutating func int1(_ value: UInt8) { op(0x4B, [value]) }
}

package func le(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
package func le(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
package func le(_ value: UInt16) -> [UInt8] { (0..<2).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

/// `os.system('id')` through STACK_GLOBAL, protocol 4.
package func osSystemPickle() -> [UInt8] {
    var p = PickleBytes(protocol: 4)
    p.unicode("os")
    p.memoize()
    p.unicode("system")
    p.memoize()
    p.stackGlobal()
    p.memoize()
    p.unicode("id")
    p.memoize()
    p.tuple1()
    p.memoize()
    p.reduce()
    p.memoize()
    p.stop()
    return p.bytes
}

/// A PyTorch-shaped state_dict pickle: OrderedDict of one tensor rebuilt from a persistent storage.
package func stateDictPickle() -> [UInt8] {
    var p = PickleBytes(protocol: 2)
    p.global("collections", "OrderedDict")
    p.op(0x29)
    p.reduce()
    p.binput(0)
    p.binunicode("weight")
    p.global("torch._utils", "_rebuild_tensor_v2")
    p.mark()
    p.mark()
    p.binunicode("storage")
    p.global("torch", "FloatStorage")
    p.binunicode("0")
    p.binunicode("cpu")
    p.int1(4)
    p.tuple()
    p.op(0x51)  // BINPERSID
    p.int1(0)
    p.int1(2)
    p.int1(2)
    p.op(0x86)
    p.int1(2)
    p.int1(1)
    p.op(0x86)
    p.op(0x89)
    p.global("collections", "OrderedDict")
    p.op(0x29)
    p.reduce()
    p.tuple()
    p.reduce()
    p.op(0x73)  // SETITEM
    p.stop()
    return p.bytes
}

/// A stored (uncompressed) zip written by hand, with knobs for the tricks scanners fell for.
package struct ZipBuilder {
    package struct Entry {
        package var name: String
        package var data: [UInt8]
        package var flags: UInt16 = 0
        package var localName: String? = nil
        package var crc: UInt32? = nil
        package var deflate = false

        package init(
            name: String, data: [UInt8], flags: UInt16 = 0, localName: String? = nil, crc: UInt32? = nil, deflate: Bool = false
        ) {
            self.name = name
            self.data = data
            self.flags = flags
            self.localName = localName
            self.crc = crc
            self.deflate = deflate
        }
    }

    package var entries: [Entry] = []

    package init(entries: [Entry] = []) { self.entries = entries }

    package func build() -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        for entry in entries {
            let offset = UInt32(out.count)
            let stored = entry.deflate ? deflateRaw(entry.data) : entry.data
            let crc = entry.crc ?? crc32(entry.data)
            let local = Array((entry.localName ?? entry.name).utf8)
            let name = Array(entry.name.utf8)
            let method: UInt16 = entry.deflate ? 8 : 0
            out += le(UInt32(0x0403_4B50)) + le(UInt16(20)) + le(entry.flags) + le(method) + le(UInt16(0)) + le(UInt16(0))
            out += le(crc) + le(UInt32(stored.count)) + le(UInt32(entry.data.count)) + le(UInt16(local.count)) + le(UInt16(0))
            out += local + stored
            central += le(UInt32(0x0201_4B50)) + le(UInt16(20)) + le(UInt16(20)) + le(entry.flags) + le(method)
            central += le(UInt16(0)) + le(UInt16(0)) + le(crc) + le(UInt32(stored.count)) + le(UInt32(entry.data.count))
            central += le(UInt16(name.count)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0))
            central += le(offset) + name
        }
        let centralOffset = UInt32(out.count)
        out += central
        out += le(UInt32(0x0605_4B50)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(entries.count)) + le(UInt16(entries.count))
        out += le(UInt32(central.count)) + le(centralOffset) + le(UInt16(0))
        return out
    }
}

package func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

/// Raw deflate with stored blocks only: valid input for any inflater, no zlib needed in the tests.
package func deflateRaw(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var index = 0
    repeat {
        let count = min(65535, bytes.count - index)
        let final: UInt8 = index + count >= bytes.count ? 1 : 0
        out += [final] + le(UInt16(count)) + le(UInt16(~UInt16(count))) + bytes[index..<index + count]
        index += count
    } while index < bytes.count
    return out
}

/// A safetensors file from (name, dtype, shape, bytes) entries laid out in order, with optional tampering.
package func safetensors(
    _ tensors: [(String, String, [Int], Int)], metadata: [String: String]? = nil, gapAfterFirst: Int = 0, trailing: Int = 0
) -> [UInt8] {
    var offset = 0
    var parts: [String] = []
    if let metadata {
        let body = metadata.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",")
        parts.append("\"__metadata__\":{\(body)}")
    }
    var total = 0
    for (index, (name, dtype, shape, size)) in tensors.enumerated() {
        parts.append(
            "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + size)]}"
        )
        offset += size + (index == 0 ? gapAfterFirst : 0)
        total = offset
    }
    var header = Array("{\(parts.joined(separator: ","))}".utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    return le(UInt64(header.count)) + header + [UInt8](repeating: 0x3F, count: total + trailing)
}

/// A GGUF v3 file with string metadata and F32 tensors.
package func gguf(metadata: [(String, String)], tensors: [(String, [UInt64])], alignment: UInt64 = 32) -> [UInt8] {
    func string(_ text: String) -> [UInt8] {
        let utf8 = Array(text.utf8)
        return le(UInt64(utf8.count)) + utf8
    }
    var out = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(tensors.count)) + le(UInt64(metadata.count))
    for (key, value) in metadata { out += string(key) + le(UInt32(8)) + string(value) }
    var offset: UInt64 = 0
    var sizes: [UInt64] = []
    for (name, dims) in tensors {
        out += string(name) + le(UInt32(dims.count))
        for dim in dims { out += le(dim) }
        out += le(UInt32(0)) + le(offset)
        let size = dims.reduce(1, *) * 4
        sizes.append(size)
        offset += (size + alignment - 1) / alignment * alignment
    }
    while UInt64(out.count) % alignment != 0 { out.append(0) }
    for size in sizes {
        out += [UInt8](repeating: 0, count: Int(size))
        while UInt64(out.count) % alignment != 0 { out.append(0) }
    }
    return out
}

/// A request body in chunks that fails after `failAfter` chunks, as a dropped connection does.
package struct ChunkedBody: AsyncSequence, Sendable {
    package let chunks: [[UInt8]]
    package var failAfter: Int?
    package struct Dropped: Error {}

    package init(chunks: [[UInt8]], failAfter: Int? = nil) {
        self.chunks = chunks
        self.failAfter = failAfter
    }

    package struct AsyncIterator: AsyncIteratorProtocol {
        var chunks: [[UInt8]]
        var failAfter: Int?
        package mutating func next() async throws -> [UInt8]? {
            if failAfter == 0 { throw Dropped() }
            failAfter = failAfter.map { $0 - 1 }
            return chunks.isEmpty ? nil : chunks.removeFirst()
        }
    }

    package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(chunks: chunks, failAfter: failAfter) }
}
