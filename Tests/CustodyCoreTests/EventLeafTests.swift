import CustodyCore
import Foundation
import Testing

/// The log leaf's bytes are pinned: every signed checkpoint commits to them, so a refactor that changes one byte of
/// one leaf must fail here before it orphans a checkpoint in the field.
struct EventLeafTests {
    struct Vectors: Decodable {
        struct Vector: Decodable {
            var description: String
            var event: API.Event
            var leaf: String
            var leafHex: String
            var leafHash: String
        }
        var vectors: [Vector]
    }

    static let vectors: [Vectors.Vector] = {
        (try? JSONDecoder().decode(Vectors.self, from: Data(vector("event-leaf-v1.json"))).vectors) ?? []
    }()

    @Test func theVectorsAreThere() {
        #expect(Self.vectors.count == 8)
    }

    @Test(arguments: vectors.map(\.description))
    func eventToBytesToLeafHash(_ description: String) throws {
        let vector = try #require(Self.vectors.first { $0.description == description })
        let leaf = EventLeaf.V1(vector.event)
        #expect(leaf.bytes == Hex.decode(vector.leafHex), "\(String(decoding: leaf.bytes, as: UTF8.self))")
        #expect(leaf.bytes == Array(vector.leaf.utf8))
        #expect(Hex.encode(leaf.leafHash) == vector.leafHash)
        #expect(EventLeaf.canonicalJSON(vector.event) == leaf.bytes, "today's encoding is V1")
    }

    /// A newline is `\u000a` in a leaf, where Foundation's encoder (and JSONText) write `\n`: both valid JSON, and
    /// the difference is what keeps old leaves valid.
    @Test func theLeafEscaperIsNotTheGeneralOne() throws {
        let event = API.Event(id: 1, at: "t", type: "x", detail: "a\nb")
        #expect(String(decoding: EventLeaf.V1(event).bytes, as: UTF8.self) == #"{"id":1,"at":"t","detail":"a\u000ab","type":"x"}"#)
        #expect(String(decoding: try JSONEncoder().encode("a\nb"), as: UTF8.self) == #""a\nb""#)
    }
}
