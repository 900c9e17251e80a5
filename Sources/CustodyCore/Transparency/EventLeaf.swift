/// The log entry of an event: canonical JSON of every column the events table holds (keys sorted, no whitespace,
/// absent values left out), so that anyone holding the rows can recompute the leaf and therefore the tree.
public enum EventLeaf {
    public static func canonicalJSON(
        id: Int64, at: String, type: String, actor: String?, model: String?, version: String?, detail: String?,
        environment: String?, client: String?
    ) -> [UInt8] {
        var fields: [(String, String?)] = [
            ("actor", actor), ("at", at), ("client", client), ("detail", detail), ("environment", environment),
            ("model", model), ("type", type), ("version", version),
        ]
        fields.sort { $0.0 < $1.0 }
        var out: [UInt8] = Array(#"{"id":"#.utf8) + Array(String(id).utf8)
        for (key, value) in fields {
            guard let value else { continue }
            out += Array(",\"\(key)\":".utf8)
            appendString(value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// A JSON string: `"` and `\` escaped, control characters as `\u00XX`, everything else as UTF-8.
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
