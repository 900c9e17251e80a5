import CZlib
import CustodyCore

/// Reads zip archives the way PyTorch's loader does rather than the way Python's `zipfile` does: the central
/// directory decides what the members are; general-purpose flag bits, CRC-32 values and the name repeated in each
/// local header are ignored. Every one of those differences was a scanner bypass (CVE-2025-1889, -1944, -1945,
/// -10155/6/7), so a scanner must not be stricter than the loader.
struct LenientZip {
    struct Member {
        /// The name in the central directory (what PyTorch looks up).
        var name: String
        /// The name in the local header, when it differs.
        var localName: String?
        var method: UInt16
        var flags: UInt16
        var compressedSize: UInt64
        /// Offset of the member's data (after its local header).
        var dataOffset: Int

        var isEncrypted: Bool { flags & 0x41 != 0 }
    }

    enum ReadError: Error, CustomStringConvertible {
        case malformed(String)
        case unsupported(String)
        case tooLarge(UInt64)

        var description: String {
            switch self {
            case .malformed(let reason): reason
            case .unsupported(let reason): reason
            case .tooLarge(let size): "expands beyond \(size) bytes"
            }
        }
    }

    let bytes: UnsafeRawBufferPointer
    let members: [Member]
    /// True when the member list came from walking local headers because no central directory was found.
    let withoutCentralDirectory: Bool

    static let maxMembers = 1_000_000

    init(_ bytes: UnsafeRawBufferPointer) throws(ReadError) {
        self.bytes = bytes
        if let members = try Self.centralDirectory(bytes) {
            self.members = members
            self.withoutCentralDirectory = false
        } else {
            self.members = Self.localHeaders(bytes)
            self.withoutCentralDirectory = true
        }
    }

    private static func u16(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
    }

    private static func u32(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(u16(bytes, at)) | UInt32(u16(bytes, at + 2)) << 16
    }

    private static func u64(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        UInt64(u32(bytes, at)) | UInt64(u32(bytes, at + 4)) << 32
    }

    private static func name(_ bytes: UnsafeRawBufferPointer, _ at: Int, _ count: Int) -> String {
        let raw = UnsafeRawBufferPointer(rebasing: bytes[at..<at + count])
        return String(validating: raw, as: UTF8.self) ?? String(raw.lazy.map { Character(Unicode.Scalar($0)) })
    }

    /// Members listed by the end-of-central-directory record, or nil when there is none.
    private static func centralDirectory(_ bytes: UnsafeRawBufferPointer) throws(ReadError) -> [Member]? {
        guard bytes.count >= 22 else { return nil }
        let lowest = max(0, bytes.count - 22 - 0xFFFF)
        var eocd = -1
        var at = bytes.count - 22
        while at >= lowest {
            if bytes[at] == 0x50, bytes[at + 1] == 0x4B, bytes[at + 2] == 0x05, bytes[at + 3] == 0x06 {
                eocd = at
                break
            }
            at -= 1
        }
        guard eocd >= 0 else { return nil }
        var count = UInt64(u16(bytes, eocd + 10))
        var size = UInt64(u32(bytes, eocd + 12))
        var offset = UInt64(u32(bytes, eocd + 16))
        // Zip64: the locator sits just before the classic record.
        if eocd >= 20, u32(bytes, eocd - 20) == 0x0706_4B50 {
            let record = u64(bytes, eocd - 20 + 8)
            if record <= UInt64(bytes.count - 56), u32(bytes, Int(record)) == 0x0606_4B50 {
                count = u64(bytes, Int(record) + 32)
                size = u64(bytes, Int(record) + 40)
                offset = u64(bytes, Int(record) + 48)
            }
        }
        guard offset <= UInt64(bytes.count), size <= UInt64(bytes.count) - offset else {
            throw .malformed("the central directory lies outside the file")
        }
        guard count <= UInt64(maxMembers), count <= size / 46 + 1 else {
            throw .malformed("the central directory claims \(count) members")
        }
        var members: [Member] = []
        var cursor = Int(offset)
        let end = Int(offset + size)
        while cursor + 46 <= end, u32(bytes, cursor) == 0x0201_4B50 {
            let flags = u16(bytes, cursor + 8)
            let method = u16(bytes, cursor + 10)
            var compressed = UInt64(u32(bytes, cursor + 20))
            var uncompressed = UInt64(u32(bytes, cursor + 24))
            let nameLength = Int(u16(bytes, cursor + 28))
            let extraLength = Int(u16(bytes, cursor + 30))
            let commentLength = Int(u16(bytes, cursor + 32))
            var local = UInt64(u32(bytes, cursor + 42))
            guard cursor + 46 + nameLength + extraLength + commentLength <= end else {
                throw .malformed("a central directory entry runs past the directory")
            }
            let name = name(bytes, cursor + 46, nameLength)
            // Zip64 extended information replaces the fields that hold 0xFFFFFFFF, in this order.
            var extra = cursor + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = u16(bytes, extra)
                let length = Int(u16(bytes, extra + 2))
                guard extra + 4 + length <= extraEnd else { break }
                if id == 0x0001 {
                    var field = extra + 4
                    if uncompressed == 0xFFFF_FFFF, field + 8 <= extra + 4 + length {
                        uncompressed = u64(bytes, field)
                        field += 8
                    }
                    if compressed == 0xFFFF_FFFF, field + 8 <= extra + 4 + length {
                        compressed = u64(bytes, field)
                        field += 8
                    }
                    if local == 0xFFFF_FFFF, field + 8 <= extra + 4 + length { local = u64(bytes, field) }
                }
                extra += 4 + length
            }
            cursor += 46 + nameLength + extraLength + commentLength
            guard local <= UInt64(bytes.count - 30), u32(bytes, Int(local)) == 0x0403_4B50 else {
                throw .malformed("member \(name) has no local header at offset \(local)")
            }
            let localNameLength = Int(u16(bytes, Int(local) + 26))
            let localExtraLength = Int(u16(bytes, Int(local) + 28))
            let dataOffset = Int(local) + 30 + localNameLength + localExtraLength
            guard dataOffset <= bytes.count, compressed <= UInt64(bytes.count - dataOffset) else {
                throw .malformed("member \(name) runs past the end of the file")
            }
            let localName = self.name(bytes, Int(local) + 30, localNameLength)
            members.append(
                Member(
                    name: name, localName: localName == name ? nil : localName, method: method, flags: flags,
                    compressedSize: compressed, dataOffset: dataOffset))
            guard members.count <= maxMembers else { throw .malformed("more than \(maxMembers) members") }
        }
        return members
    }

    /// Members found by walking local headers from the start (sizes from the headers; data descriptors end the walk).
    private static func localHeaders(_ bytes: UnsafeRawBufferPointer) -> [Member] {
        var members: [Member] = []
        var cursor = 0
        while cursor + 30 <= bytes.count, u32(bytes, cursor) == 0x0403_4B50, members.count < maxMembers {
            let flags = u16(bytes, cursor + 6)
            let method = u16(bytes, cursor + 8)
            let compressed = UInt64(u32(bytes, cursor + 18))
            let nameLength = Int(u16(bytes, cursor + 26))
            let extraLength = Int(u16(bytes, cursor + 28))
            let dataOffset = cursor + 30 + nameLength + extraLength
            guard dataOffset <= bytes.count, compressed <= UInt64(bytes.count - dataOffset) else { break }
            members.append(
                Member(
                    name: name(bytes, cursor + 30, nameLength), localName: nil, method: method, flags: flags,
                    compressedSize: compressed, dataOffset: dataOffset))
            if flags & 0x08 != 0, compressed == 0 { break }  // size only in a trailing descriptor
            cursor = dataOffset + Int(compressed)
        }
        return members
    }

    /// The member's stored bytes (compressed or not), straight from the archive.
    func raw(_ member: Member) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[member.dataOffset..<member.dataOffset + Int(member.compressedSize)])
    }

    /// The member's content, at most `limit` bytes of it (`prefixOnly` stops quietly at the limit instead of failing).
    func contents(_ member: Member, limit: Int, prefixOnly: Bool = false) throws(ReadError) -> [UInt8] {
        let data = raw(member)
        switch member.method {
        case 0:
            guard data.count <= limit || prefixOnly else { throw .tooLarge(UInt64(limit)) }
            return Array(data.prefix(limit))
        case 8:
            return try Self.inflate(data, limit: limit, prefixOnly: prefixOnly)
        default:
            throw .unsupported("compression method \(member.method) is not supported")
        }
    }

    /// Raw deflate (no zlib or gzip wrapper), bounded by `limit` output bytes.
    static func inflate(_ input: UnsafeRawBufferPointer, limit: Int, prefixOnly: Bool) throws(ReadError) -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .malformed("cannot start inflating")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var consumed = 0
        while true {
            let remainingInput = input.count - consumed
            let inputChunk = min(remainingInput, Int(UInt32.max >> 1))
            var produced = 0
            let status: Int32 = chunk.withUnsafeMutableBytes { out in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) + consumed })
                stream.avail_in = UInt32(inputChunk)
                stream.next_out = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
                stream.avail_out = UInt32(out.count)
                let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                produced = out.count - Int(stream.avail_out)
                consumed += inputChunk - Int(stream.avail_in)
                return status
            }
            output.append(contentsOf: chunk[0..<produced])
            if output.count >= limit {
                if prefixOnly { return Array(output.prefix(limit)) }
                throw .tooLarge(UInt64(limit))
            }
            switch status {
            case Z_STREAM_END: return output
            case Z_OK: if produced == 0, consumed >= input.count { throw .malformed("deflate data ends early") }
            case Z_BUF_ERROR: if consumed >= input.count { throw .malformed("deflate data ends early") }
            default: throw .malformed("deflate data is corrupt")
            }
        }
    }
}
