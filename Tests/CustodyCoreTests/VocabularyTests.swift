import CustodyCore
import Foundation
import Testing

/// The strings of the domain vocabulary are written into log leaves and onto the wire: none may change.
@Suite struct VocabularyTests {
    @Test func eventKindsKeepTheirStrings() {
        #expect(
            EventKind.allCases.map(\.rawValue) == [
                "publish", "scan", "pull", "pull.denied", "decision", "admission", "version.yanked", "version.quarantined",
                "version.restore", "advisory.add", "advisory.withdraw", "policy.load", "policy.reload.failed", "trust.add",
                "trust.remove", "trust.reload.failed", "token.create", "token.revoke", "token.use", "request.denied",
                "signature.attach", "blob.collect",
            ])
        #expect(EventKind.uses.map(\.rawValue) == ["pull", "pull.denied", "decision", "admission"])
        #expect(EventKind.allCases.filter(\.isRepeatable) == [.decision, .admission])
        #expect(EventKind(statusChangeTo: .active) == .versionRestored)
        #expect(EventKind(statusChangeTo: .yanked).rawValue == "version.yanked")
    }

    @Test func rolesAndStatesKeepTheirStrings() {
        #expect(Role.allCases.map(\.rawValue) == ["admin", "publisher", "consumer", "gate", "security", "auditor"])
        #expect([API.VersionStatus.State.active, .yanked, .quarantined].map(\.rawValue) == ["active", "yanked", "quarantined"])
        #expect(API.SignatureInfo.Kind.allCases.map(\.rawValue) == ["publisher", "registry"])
        #expect(API.SignatureInfo.Status.allCases.map(\.rawValue) == ["verified", "unsigned"])
    }

    @Test func signaturesKeepTheirWireShape() throws {
        let info = API.SignatureInfo(kind: .publisher, status: .unsigned)
        #expect(String(decoding: try API.encoder().encode(info), as: UTF8.self) == #"{"kind":"publisher","status":"unsigned"}"#)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(API.SignatureInfo.self, from: Data(#"{"kind":"notary","status":"verified"}"#.utf8))
        }
    }
}
