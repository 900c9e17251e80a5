/// The log entry of an event. Every signed checkpoint commits to these bytes, so the encoding is versioned and frozen:
/// ``V1`` is the only encoding so far, pinned byte for byte by golden vectors (`Tests/CustodyCoreTests/Vectors/
/// event-leaf-v1.json`). A change of fields, order or escaping is a new version, never an edit of V1.
public enum EventLeaf {
    /// The leaf of `event` in today's encoding (``V1``).
    public static func canonicalJSON(_ event: API.Event) -> [UInt8] {
        V1(event).bytes
    }

    /// Version 1: canonical JSON of every column the events table holds — `id` first, then the other keys sorted, no
    /// whitespace, absent values left out and `count` only when it is not 1 (so a single event keeps the leaf it had
    /// before counts existed), so that anyone holding the rows can recompute the leaf and therefore the tree.
    ///
    /// Its string escaping is its own and must stay so: `"` and `\` escaped, bytes below 0x20 as `\u00xx` (lower-case
    /// hex, so a newline is `\u000a`, not `\n`), everything else — DEL and all non-ASCII — as raw UTF-8. It
    /// deliberately differs from ``JSONText``'s escaper; merging the two would change every leaf hash and orphan every
    /// checkpoint already signed. It is a value of its own, not the HTTP type, so that migrations and auditors
    /// computing leaves use exactly this.
    public struct V1: Hashable, Sendable {
        /// The event's id.
        public var id: Int64
        /// The token (or `registry`, `cli`) that caused it.
        public var actor: String?
        /// When, RFC 3339 UTC.
        public var at: String
        /// The client's address.
        public var client: String?
        /// How many repeats the event stands for (absent for one).
        public var count: Int64?
        /// The event's free-text detail.
        public var detail: String?
        /// The environment a decision was made for.
        public var environment: String?
        /// The model, `ns/name`.
        public var model: String?
        /// The event kind.
        public var type: String
        /// The version tag.
        public var version: String?

        /// The leaf fields of an event; absent fields are left out of the encoding, never written as null.
        public init(
            id: Int64, at: String, type: String, actor: String? = nil, model: String? = nil, version: String? = nil,
            detail: String? = nil, environment: String? = nil, client: String? = nil, count: Int64? = nil
        ) {
            self.id = id
            self.at = at
            self.type = type
            self.actor = actor
            self.model = model
            self.version = version
            self.detail = detail
            self.environment = environment
            self.client = client
            self.count = count
        }

        /// The leaf fields of an event; absent fields are left out of the encoding, never written as null.
        public init(_ event: API.Event) {
            self.init(
                id: event.id, at: event.at, type: event.type, actor: event.actor, model: event.model, version: event.version,
                detail: event.detail, environment: event.environment, client: event.client, count: event.count)
        }

        /// The leaf's bytes.
        public var bytes: [UInt8] {
            var out: [UInt8] = Array(#"{"id":"#.utf8) + Array(String(id).utf8)
            func field(_ key: String, _ value: String?) {
                guard let value else { return }
                out += Array(",\"\(key)\":".utf8)
                Self.appendString(value, to: &out)
            }
            field("actor", actor)
            field("at", at)
            field("client", client)
            if let count, count != 1 { out += Array(",\"count\":\(count)".utf8) }
            field("detail", detail)
            field("environment", environment)
            field("model", model)
            field("type", type)
            field("version", version)
            out.append(UInt8(ascii: "}"))
            return out
        }

        /// The leaf hash (RFC 6962 §2.1: SHA-256 of 0x00 and the bytes).
        public var leafHash: [UInt8] { Merkle.leafHash(bytes) }

        static let hex = Array("0123456789abcdef".utf8)

        static func appendString(_ text: String, to out: inout [UInt8]) {
            out.append(UInt8(ascii: "\""))
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
                case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
                case 0..<0x20: out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
    }
}
