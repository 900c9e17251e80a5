import CustodyCore
import Testing

@Suite struct DSSETests {
    /// The example from the DSSE protocol specification.
    @Test func preAuthenticationEncodingMatchesTheSpecification() {
        let pae = DSSE.pae(payloadType: "http://example.com/HelloWorld", payload: Array("hello world".utf8))
        #expect(String(decoding: pae, as: UTF8.self) == "DSSEv1 29 http://example.com/HelloWorld 11 hello world")
    }

    @Test func lengthsCountBytesNotCharacters() {
        let pae = DSSE.pae(payloadType: "t", payload: Array("é".utf8))
        #expect(String(decoding: pae, as: UTF8.self) == "DSSEv1 1 t 2 é")
    }
}
