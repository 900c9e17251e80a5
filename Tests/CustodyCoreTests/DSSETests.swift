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

    /// model_signing 0.2's encoding, byte for byte what Python's f"… {payload}" gives for a bytes payload
    /// (values from `python3 -c 'print(repr(b"…"))'`).
    @Test(
        arguments: [
            (Array("{\"a\": 1}\n".utf8), #"b'{"a": 1}\n'"#),
            (Array("it's".utf8), #"b"it's""#),
            (Array("it's \"q\"".utf8), #"b'it\'s "q"'"#),
            ([0x5C, 0x09, 0x0D, 0x00, 0x7F, 0xC3, 0xA9], #"b'\\\t\r\x00\x7f\xc3\xa9'"#),
        ] as [([UInt8], String)])
    func legacyEncodingQuotesThePayloadAsPythonDoes(payload: [UInt8], literal: String) {
        let pae = DSSE.legacyPAE(payloadType: "application/vnd.in-toto+json", payload: payload)
        #expect(String(decoding: pae, as: UTF8.self) == "DSSEV1 28 application/vnd.in-toto+json \(payload.count) " + literal)
    }
}
