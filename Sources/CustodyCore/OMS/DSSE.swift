/// Dead Simple Signing Envelope helpers.
public enum DSSE {
    /// The pre-authentication encoding that is actually signed:
    /// `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`, lengths in decimal ASCII.
    public static func pae(payloadType: String, payload: [UInt8]) -> [UInt8] {
        let type = Array(payloadType.utf8)
        var out = Array("DSSEv1 \(type.count) ".utf8)
        out.reserveCapacity(out.count + type.count + payload.count + 24)
        out += type
        out += Array(" \(payload.count) ".utf8)
        out += payload
        return out
    }

    /// The encoding model_signing 0.2 signed instead (its "PAE compat"): `"DSSEV1"`, and the payload as Python prints
    /// a `bytes` value (`b'…'` with escapes) because it was formatted into a string. Only its signatures of the v0.1
    /// predicate are checked against it; they were also always hashed with SHA-256, whatever the curve.
    public static func legacyPAE(payloadType: String, payload: [UInt8]) -> [UInt8] {
        Array("DSSEV1 \(payloadType.utf8.count) \(payloadType) \(payload.count) \(pythonBytesLiteral(payload))".utf8)
    }

    /// `repr(bytes)` in Python 3: single quotes unless the bytes hold a single quote and no double quote; `\\`, the
    /// quote, `\t`, `\n`, `\r` escaped; other bytes outside printable ASCII as `\xNN`.
    static func pythonBytesLiteral(_ bytes: [UInt8]) -> String {
        let quote: UInt8 = bytes.contains(0x27) && !bytes.contains(0x22) ? 0x22 : 0x27
        var out = "b" + String(UnicodeScalar(quote))
        for byte in bytes {
            switch byte {
            case quote, 0x5C: out += "\\" + String(UnicodeScalar(byte))
            case 0x09: out += "\\t"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x20..<0x7F: out.unicodeScalars.append(UnicodeScalar(byte))
            default: out += "\\x" + String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16)
            }
        }
        return out + String(UnicodeScalar(quote))
    }
}
