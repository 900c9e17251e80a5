/// A JSON value with ordered object members, for writing documents whose bytes matter (signed payloads, bundles).
///
/// Foundation's encoders reorder keys and escape `/`; the statements Custody signs must come out the same on every
/// platform and run, so they are written by this small, explicit serializer, straight into UTF-8 bytes.
enum JSONText {
    case string(String)
    case integer(Int64)
    case bool(Bool)
    case null
    case array([JSONText])
    case object([(String, JSONText)])

    /// Compact form: no whitespace at all.
    var compact: [UInt8] {
        var out: [UInt8] = []
        write(to: &out, indent: false, depth: 0)
        return out
    }

    /// Indented with two spaces per level, `": "` after keys, as Python's `json.dumps(indent=2)` writes it.
    var pretty: [UInt8] {
        var out: [UInt8] = []
        write(to: &out, indent: true, depth: 0)
        return out
    }

    private func write(to out: inout [UInt8], indent: Bool, depth: Int) {
        switch self {
        case .string(let value): Self.writeString(value, to: &out)
        case .integer(let value): out += String(value).utf8
        case .bool(let value): out += (value ? "true" : "false").utf8
        case .null: out += "null".utf8
        case .array(let items):
            guard !items.isEmpty else {
                out += "[]".utf8
                return
            }
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.newline(&out, indent, depth + 1)
                item.write(to: &out, indent: indent, depth: depth + 1)
            }
            Self.newline(&out, indent, depth)
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            guard !members.isEmpty else {
                out += "{}".utf8
                return
            }
            out.append(UInt8(ascii: "{"))
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.newline(&out, indent, depth + 1)
                Self.writeString(key, to: &out)
                out += (indent ? ": " : ":").utf8
                value.write(to: &out, indent: indent, depth: depth + 1)
            }
            Self.newline(&out, indent, depth)
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func newline(_ out: inout [UInt8], _ indent: Bool, _ depth: Int) {
        guard indent else { return }
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * depth))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Escapes `"`, `\` and control characters; everything else, non-ASCII included, is written as UTF-8.
    private static func writeString(_ value: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += #"\""#.utf8
            case UInt8(ascii: "\\"): out += #"\\"#.utf8
            case UInt8(ascii: "\n"): out += #"\n"#.utf8
            case UInt8(ascii: "\r"): out += #"\r"#.utf8
            case UInt8(ascii: "\t"): out += #"\t"#.utf8
            case 0..<0x20: out += #"\u00"#.utf8 + [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xf)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
