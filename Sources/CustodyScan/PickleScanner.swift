package import CustodyCore

/// Walks pickle opcode streams without unpickling anything, collecting every import with the symbolic stack and
/// memo the unpickler itself would have (formats.md §4). Handles protocols 0–5 and several pickles in a row.
///
/// Time is linear in the input and memory is bounded: values are symbols, not objects, so DUP/GET chains cannot
/// expand, and the stack, nesting and memo are capped; a stream that hits a cap is reported unscannable.
package struct PickleScanner {
    /// One import the stream performs.
    package struct Import: Sendable, Hashable {
        package var module: String
        package var name: String
        /// Offset of the opcode that imports.
        package var offset: Int
        /// Both operands are literal strings (anything else is dangerous by itself).
        package var literal: Bool
        package var opcode: String

        package var qualifiedName: String { "\(module).\(name)" }
    }

    package struct Result: Sendable {
        package var imports: [Import] = []
        /// Complete pickles (ending in STOP) read.
        package var pickles = 0
        /// Why the stream could not be read to its end, with the offset of the failing opcode.
        package var error: (offset: Int, message: String)?
        /// The walk stopped at a resource cap rather than at malformed input.
        package var hitLimit = false
        /// Opcodes successfully read.
        package var opcodes = 0
        /// Where the stream's FRAMEs and its opcodes disagree (an opcode running past the end of its frame, a frame
        /// begun inside another, a frame longer than the data): the C unpickler reads straight through them, a
        /// Python-level reader sees other opcodes or stops. The walk follows the C unpickler; these are reported.
        package var frameDisagreements: [(offset: Int, message: String)] = []
    }

    package struct Limits: Sendable {
        package var maxStack = 1 << 20
        package var maxNesting = 1 << 16
        package var maxMemo = 1 << 20
        package var maxStringSymbol = 4096
        package static let standard = Limits()
    }

    private enum Value {
        case string(String)
        case global(String)
        case integer
        case other
        case unknown
    }

    private let bytes: UnsafeRawBufferPointer
    private let limits: Limits
    private var position: Int
    private var stack: [Value] = []
    private var metastack: [[Value]] = []
    private var memo: [Int: Value] = [:]
    /// Where the current FRAME ends, while inside one.
    private var frameEnd: Int?
    private var result = Result()
    private var depth = 0

    /// Scans pickles starting at `start`, at most `maxPickles` of them; stops quietly at the end of the input.
    package static func scan(
        _ bytes: UnsafeRawBufferPointer, from start: Int = 0, maxPickles: Int = .max, limits: Limits = .standard
    ) -> Result {
        var scanner = PickleScanner(bytes: bytes, limits: limits, position: start)
        while scanner.result.pickles < maxPickles, scanner.position < bytes.count {
            do {
                try scanner.walkOne()
                scanner.result.pickles += 1
            } catch {
                scanner.result.error = (error.offset, error.message)
                scanner.result.hitLimit = error.limit
                break
            }
        }
        return scanner.result
    }

    private init(bytes: UnsafeRawBufferPointer, limits: Limits, position: Int) {
        self.bytes = bytes
        self.limits = limits
        self.position = position
    }

    private mutating func noteFrame(at offset: Int, _ message: String) {
        if result.frameDisagreements.count < 16 { result.frameDisagreements.append((offset, message)) }
    }

    struct Failure: Error {
        let offset: Int
        let message: String
        var limit = false
    }

    // MARK: reading operands

    private mutating func take(_ count: Int, at opcode: Int) throws(Failure) -> UnsafeRawBufferPointer {
        guard count >= 0, count <= bytes.count - position else {
            throw Failure(offset: opcode, message: "operand of \(count) bytes runs past the end of the data")
        }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<position + count])
    }

    private mutating func unsigned(_ width: Int, at opcode: Int) throws(Failure) -> UInt64 {
        let raw = try take(width, at: opcode)
        var value: UInt64 = 0
        for index in (0..<width).reversed() { value = value << 8 | UInt64(raw[index]) }
        return value
    }

    private mutating func length(_ width: Int, at opcode: Int) throws(Failure) -> Int {
        let value = try unsigned(width, at: opcode)
        guard value <= UInt64(bytes.count - position) else {
            throw Failure(offset: opcode, message: "length \(value) runs past the end of the data")
        }
        return Int(value)
    }

    /// A newline-terminated operand, without the newline.
    private mutating func line(at opcode: Int) throws(Failure) -> UnsafeRawBufferPointer {
        guard let newline = bytes[position...].firstIndex(of: 0x0A) else {
            throw Failure(offset: opcode, message: "operand has no terminating newline")
        }
        defer { position = newline + 1 }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<newline])
    }

    private func utf8(_ raw: UnsafeRawBufferPointer, at opcode: Int) throws(Failure) -> String {
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw Failure(offset: opcode, message: "operand is not valid UTF-8")
        }
        return text
    }

    private func symbol(_ raw: UnsafeRawBufferPointer, latin1: Bool = false) -> Value {
        guard raw.count <= limits.maxStringSymbol else { return .other }
        if latin1 { return .string(String(raw.lazy.map { Character(Unicode.Scalar($0)) })) }
        if let text = String(validating: raw, as: UTF8.self) { return .string(text) }
        return .other
    }

    // MARK: the stack

    private mutating func push(_ value: Value, at opcode: Int) throws(Failure) {
        guard stack.count < limits.maxStack else {
            throw Failure(offset: opcode, message: "stack deeper than \(limits.maxStack) values", limit: true)
        }
        stack.append(value)
    }

    private mutating func pop(at opcode: Int) throws(Failure) -> Value {
        guard let value = stack.popLast() else { throw Failure(offset: opcode, message: "stack underflow") }
        return value
    }

    private mutating func top(at opcode: Int) throws(Failure) -> Value {
        guard let value = stack.last else { throw Failure(offset: opcode, message: "stack underflow") }
        return value
    }

    private mutating func popMark(at opcode: Int) throws(Failure) -> [Value] {
        guard let previous = metastack.popLast() else { throw Failure(offset: opcode, message: "no MARK to pop to") }
        let items = stack
        stack = previous
        return items
    }

    private mutating func store(_ index: Int, at opcode: Int) throws(Failure) {
        guard index >= 0 else { throw Failure(offset: opcode, message: "negative memo index") }
        let value = try top(at: opcode)
        guard memo.count < limits.maxMemo || memo[index] != nil else {
            throw Failure(offset: opcode, message: "memo larger than \(limits.maxMemo) entries", limit: true)
        }
        memo[index] = value
    }

    private mutating func recordImport(module: Value, name: Value, at opcode: Int, opcodeName: String) -> Value {
        switch (module, name) {
        case (.string(let module), .string(let name)):
            result.imports.append(Import(module: module, name: name, offset: opcode, literal: true, opcode: opcodeName))
            return .global("\(module).\(name)")
        default:
            result.imports.append(
                Import(module: Self.describe(module), name: Self.describe(name), offset: opcode, literal: false, opcode: opcodeName))
            return .unknown
        }
    }

    private static func describe(_ value: Value) -> String {
        switch value {
        case .string(let text): text
        case .global(let name): "<result of \(name)>"
        case .integer: "<integer>"
        case .other: "<object>"
        case .unknown: "<unknown>"
        }
    }

    // MARK: the walk

    private mutating func walkOne() throws(Failure) {
        stack.removeAll(keepingCapacity: true)
        metastack.removeAll(keepingCapacity: true)
        memo.removeAll(keepingCapacity: true)
        while true {
            let opcode = position
            guard position < bytes.count else { throw Failure(offset: opcode, message: "pickle ends without STOP") }
            let code = bytes[position]
            position += 1
            if let end = frameEnd, opcode >= end { frameEnd = nil }
            defer {
                // An opcode that starts inside a frame must end inside it.
                if let end = frameEnd, position > end, code != 0x95 {
                    noteFrame(at: opcode, "the opcode at \(opcode) runs \(position - end) bytes past the end of its frame")
                    frameEnd = nil
                }
            }
            switch code {
            case 0x80:  // PROTO
                let version = try unsigned(1, at: opcode)
                guard version <= 5 else { throw Failure(offset: opcode, message: "unsupported pickle protocol \(version)") }
            case 0x95:  // FRAME
                if let end = frameEnd, opcode < end {
                    noteFrame(at: opcode, "a FRAME begins \(end - opcode) bytes before the end of the frame it is in")
                }
                let length = try unsigned(8, at: opcode)
                if length > UInt64(bytes.count - position) {
                    noteFrame(at: opcode, "the FRAME declares \(length) bytes, more than the \(bytes.count - position) that follow")
                    frameEnd = nil
                } else {
                    frameEnd = position + Int(length)
                }
            case 0x2E:  // STOP
                _ = try pop(at: opcode)
                result.opcodes += 1
                return
            case 0x28:  // MARK
                guard metastack.count < limits.maxNesting else {
                    throw Failure(offset: opcode, message: "MARKs nested deeper than \(limits.maxNesting)", limit: true)
                }
                metastack.append(stack)
                stack = []
            case 0x30:  // POP
                if stack.isEmpty { _ = try popMark(at: opcode) } else { stack.removeLast() }
            case 0x31:  // POP_MARK
                _ = try popMark(at: opcode)
            case 0x32:  // DUP
                try push(try top(at: opcode), at: opcode)

            // Numbers and constants.
            case 0x46, 0x49, 0x4C:  // FLOAT, INT, LONG
                let raw = try line(at: opcode)
                guard Self.isNumber(raw, float: code == 0x46) else { throw Failure(offset: opcode, message: "numeric operand is not a number") }
                try push(code == 0x46 ? .other : .integer, at: opcode)
            case 0x4A:
                _ = try take(4, at: opcode)
                try push(.integer, at: opcode)  // BININT
            case 0x4B:
                _ = try take(1, at: opcode)
                try push(.integer, at: opcode)  // BININT1
            case 0x4D:
                _ = try take(2, at: opcode)
                try push(.integer, at: opcode)  // BININT2
            case 0x8A:
                _ = try take(try length(1, at: opcode), at: opcode)
                try push(.integer, at: opcode)  // LONG1
            case 0x8B:
                _ = try take(try length(4, at: opcode), at: opcode)
                try push(.integer, at: opcode)  // LONG4
            case 0x47:
                _ = try take(8, at: opcode)
                try push(.other, at: opcode)  // BINFLOAT
            case 0x4E, 0x88, 0x89: try push(.other, at: opcode)  // NONE, NEWTRUE, NEWFALSE

            // Strings: every one may feed STACK_GLOBAL.
            case 0x53:  // STRING: a quoted Python literal
                try push(
                    Self.quoted(try line(at: opcode)).map { decoded in decoded.withUnsafeBytes { symbol($0, latin1: true) } } ?? .other, at: opcode)
            case 0x54: try push(symbol(try take(try length(4, at: opcode), at: opcode), latin1: true), at: opcode)  // BINSTRING
            case 0x55: try push(symbol(try take(try length(1, at: opcode), at: opcode), latin1: true), at: opcode)  // SHORT_BINSTRING
            case 0x56:  // UNICODE: raw-unicode-escape
                let raw = try line(at: opcode)
                try push(raw.count <= limits.maxStringSymbol ? Self.rawUnicodeEscape(raw).map(Value.string) ?? .other : .other, at: opcode)
            case 0x58: try push(symbol(try take(try length(4, at: opcode), at: opcode)), at: opcode)  // BINUNICODE
            case 0x8C: try push(symbol(try take(try length(1, at: opcode), at: opcode)), at: opcode)  // SHORT_BINUNICODE
            case 0x8D: try push(symbol(try take(try length(8, at: opcode), at: opcode)), at: opcode)  // BINUNICODE8
            case 0x42: try push(symbol(try take(try length(4, at: opcode), at: opcode), latin1: true), at: opcode)  // BINBYTES
            case 0x43: try push(symbol(try take(try length(1, at: opcode), at: opcode), latin1: true), at: opcode)  // SHORT_BINBYTES
            case 0x8E: try push(symbol(try take(try length(8, at: opcode), at: opcode), latin1: true), at: opcode)  // BINBYTES8
            case 0x96:
                _ = try take(try length(8, at: opcode), at: opcode)
                try push(.other, at: opcode)  // BYTEARRAY8
            case 0x97: try push(.other, at: opcode)  // NEXT_BUFFER
            case 0x98: _ = try top(at: opcode)  // READONLY_BUFFER

            // Containers.
            case 0x5D, 0x7D, 0x29, 0x8F: try push(.other, at: opcode)  // EMPTY_LIST, EMPTY_DICT, EMPTY_TUPLE, EMPTY_SET
            case 0x61:
                _ = try pop(at: opcode)
                _ = try top(at: opcode)  // APPEND
            case 0x65, 0x75, 0x90:
                _ = try popMark(at: opcode)
                _ = try top(at: opcode)  // APPENDS, SETITEMS, ADDITEMS
            case 0x73:
                _ = try pop(at: opcode)
                _ = try pop(at: opcode)
                _ = try top(at: opcode)  // SETITEM
            case 0x6C, 0x74, 0x64, 0x91:
                _ = try popMark(at: opcode)
                try push(.other, at: opcode)  // LIST, TUPLE, DICT, FROZENSET
            case 0x85:
                _ = try pop(at: opcode)
                try push(.other, at: opcode)  // TUPLE1
            case 0x86:
                for _ in 0..<2 { _ = try pop(at: opcode) }
                try push(.other, at: opcode)  // TUPLE2
            case 0x87:
                for _ in 0..<3 { _ = try pop(at: opcode) }
                try push(.other, at: opcode)  // TUPLE3

            // Memo.
            case 0x70: try store(try Self.decimal(try line(at: opcode), at: opcode), at: opcode)  // PUT
            case 0x71: try store(Int(try unsigned(1, at: opcode)), at: opcode)  // BINPUT
            case 0x72: try store(Int(try unsigned(4, at: opcode)), at: opcode)  // LONG_BINPUT
            case 0x94: try store(memo.count, at: opcode)  // MEMOIZE
            case 0x67: try push(memo[try Self.decimal(try line(at: opcode), at: opcode)] ?? .unknown, at: opcode)  // GET
            case 0x68: try push(memo[Int(try unsigned(1, at: opcode))] ?? .unknown, at: opcode)  // BINGET
            case 0x6A: try push(memo[Int(try unsigned(4, at: opcode))] ?? .unknown, at: opcode)  // LONG_BINGET

            // Imports.
            case 0x63, 0x69:  // GLOBAL, INST: "module\nname\n"
                let module = try utf8(try line(at: opcode), at: opcode)
                let name = try utf8(try line(at: opcode), at: opcode)
                let imported = recordImport(module: .string(module), name: .string(name), at: opcode, opcodeName: code == 0x63 ? "GLOBAL" : "INST")
                if code == 0x69 {
                    _ = try popMark(at: opcode)
                    try push(.other, at: opcode)
                } else {
                    try push(imported, at: opcode)
                }
            case 0x93:  // STACK_GLOBAL
                let name = try pop(at: opcode)
                let module = try pop(at: opcode)
                try push(recordImport(module: module, name: name, at: opcode, opcodeName: "STACK_GLOBAL"), at: opcode)
            case 0x82, 0x83, 0x84:  // EXT1, EXT2, EXT4: an import through the copyreg extension registry
                let code = try unsigned(code == 0x82 ? 1 : code == 0x83 ? 2 : 4, at: opcode)
                result.imports.append(Import(module: "<copyreg extension>", name: String(code), offset: opcode, literal: false, opcode: "EXT"))
                try push(.unknown, at: opcode)

            // Calls and object building.
            case 0x52:  // REDUCE
                _ = try pop(at: opcode)
                _ = try pop(at: opcode)
                try push(.other, at: opcode)
            case 0x62:  // BUILD
                _ = try pop(at: opcode)
                _ = try top(at: opcode)
            case 0x6F:  // OBJ
                let items = try popMark(at: opcode)
                guard !items.isEmpty else { throw Failure(offset: opcode, message: "OBJ without a class") }
                try push(.other, at: opcode)
            case 0x81:  // NEWOBJ
                _ = try pop(at: opcode)
                _ = try pop(at: opcode)
                try push(.other, at: opcode)
            case 0x92:  // NEWOBJ_EX
                for _ in 0..<3 { _ = try pop(at: opcode) }
                try push(.other, at: opcode)
            case 0x50:  // PERSID
                _ = try line(at: opcode)
                try push(.other, at: opcode)
            case 0x51:  // BINPERSID
                _ = try pop(at: opcode)
                try push(.other, at: opcode)

            default:
                throw Failure(offset: opcode, message: "unknown opcode 0x\(String(code, radix: 16))")
            }
            result.opcodes += 1
        }
    }

    /// Python's int()/float() of a protocol-0 operand would succeed (INT also takes "00"/"01", LONG a trailing L).
    static func isNumber(_ raw: UnsafeRawBufferPointer, float: Bool) -> Bool {
        guard var text = String(validating: raw, as: UTF8.self).map({ String($0.trimmingASCIISpaces) }), !text.isEmpty else { return false }
        if float { return Double(text) != nil || ["nan", "inf", "-inf"].contains(text.lowercased()) }
        if text.hasSuffix("L") { text.removeLast() }
        if text.hasPrefix("-") || text.hasPrefix("+") { text.removeFirst() }
        return !text.isEmpty && text.allSatisfy(\.isASCII) && text.allSatisfy(\.isNumber)
    }

    private static func decimal(_ raw: UnsafeRawBufferPointer, at opcode: Int) throws(Failure) -> Int {
        guard let text = String(validating: raw, as: UTF8.self), let value = Int(text.trimmingASCIISpaces), value >= 0 else {
            throw Failure(offset: opcode, message: "memo index is not a number")
        }
        return value
    }

    /// The bytes inside a protocol-0 STRING operand ('…' or "…"), with Python escapes decoded.
    static func quoted(_ raw: UnsafeRawBufferPointer) -> [UInt8]? {
        guard raw.count >= 2, let quote = raw.first, quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\""),
            raw.last == quote
        else { return nil }
        var out: [UInt8] = []
        var index = 1
        let end = raw.count - 1
        while index < end {
            let byte = raw[index]
            index += 1
            guard byte == UInt8(ascii: "\\"), index < end else {
                out.append(byte)
                continue
            }
            let escape = raw[index]
            index += 1
            switch escape {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "x"):
                guard index + 2 <= end,
                    let value = UInt8(String(decoding: UnsafeRawBufferPointer(rebasing: raw[index..<index + 2]), as: UTF8.self), radix: 16)
                else { return nil }
                out.append(value)
                index += 2
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = Int(escape - 0x30)
                var digits = 1
                while digits < 3, index < end, (0x30...0x37).contains(raw[index]) {
                    value = value * 8 + Int(raw[index] - 0x30)
                    index += 1
                    digits += 1
                }
                out.append(UInt8(truncatingIfNeeded: value))
            case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): out.append(escape)
            default:
                out.append(UInt8(ascii: "\\"))
                out.append(escape)
            }
        }
        return out
    }

    /// Python's raw-unicode-escape: `\uXXXX` and `\UXXXXXXXX` escapes, every other byte is Latin-1.
    static func rawUnicodeEscape(_ raw: UnsafeRawBufferPointer) -> String? {
        var scalars = String.UnicodeScalarView()
        var index = 0
        while index < raw.count {
            let byte = raw[index]
            if byte == UInt8(ascii: "\\"), index + 1 < raw.count, raw[index + 1] == UInt8(ascii: "u") || raw[index + 1] == UInt8(ascii: "U") {
                let width = raw[index + 1] == UInt8(ascii: "u") ? 4 : 8
                guard index + 2 + width <= raw.count,
                    let code = UInt32(
                        String(decoding: UnsafeRawBufferPointer(rebasing: raw[index + 2..<index + 2 + width]), as: UTF8.self), radix: 16),
                    let scalar = Unicode.Scalar(code)
                else { return nil }
                scalars.append(scalar)
                index += 2 + width
            } else {
                scalars.append(Unicode.Scalar(byte))
                index += 1
            }
        }
        return String(scalars)
    }
}

extension String {
    var trimmingASCIISpaces: Substring {
        var text = Substring(self)
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return text
    }
}
