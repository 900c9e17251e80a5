/// The log entry of an event: canonical JSON of every column the events table holds (`id` first, then the other keys
/// sorted, no whitespace, absent values and a count of 1 left out), so that anyone holding the rows can recompute the leaf and therefore the tree.
public enum EventLeaf {
    public static func canonicalJSON(_ event: API.Event) -> [UInt8] {
        var out: [UInt8] = Array(#"{"id":"#.utf8) + Array(String(event.id).utf8)
        func field(_ key: String, _ value: String?) {
            guard let value else { return }
            out += Array(",\"\(key)\":".utf8)
            appendString(value, to: &out)
        }
        // Keys after "id" in sorted order; `count` only for events that stand for several identical ones, so that
        // single events keep the leaf they always had.
        field("actor", event.actor)
        field("at", event.at)
        field("client", event.client)
        if let count = event.count, count != 1 { out += Array(",\"count\":\(count)".utf8) }
        field("detail", event.detail)
        field("environment", event.environment)
        field("model", event.model)
        field("type", event.type)
        field("version", event.version)
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
