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
}
