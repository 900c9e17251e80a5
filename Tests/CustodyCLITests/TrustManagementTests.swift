import CustodyTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Trusted publisher keys managed while the daemon runs: added, used, removed, each change in the log.
@Suite(.serialized) struct TrustManagementTests {
    @Test func keysAreAddedAndRemovedWithoutARestartAndEveryChangeIsLogged() throws {
        let scratch = try Scratch()
        let home = scratch.path + "/Registry"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Tools.packageRoot + "/Registry/policies", toPath: home + "/policies")
        let key = scratch.path + "/pipeline"
        try #require(try Tools.custody("keys", "generate", "--out", key).status == 0)
        let registry = try RegistryProcess(scratch: scratch)
        let model = try GateTests.model(registry, "m", salt: "1")
        let card = ["--license", "apache-2.0", "--source", "https://huggingface.co/acme/m", "--quiet"]

        let untrusted = try registry.custody(["publish", model, "--name", "acme/m", "--version", "1", "--sign-key", key + ".key"] + card)
        #expect(untrusted.status == 1 && untrusted.stderr.contains("not trusted"), "\(untrusted.stderr)")

        // Added through the admin API: the very next publish verifies, no restart.
        let added = try registry.custody("trust", "add", key + ".pub", "--name", "pipeline")
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stdout.hasPrefix("trusted pipeline (key hint "))
        #expect(try registry.custody("trust", "list").stdout.hasPrefix("pipeline  "))
        let again = try registry.custody("trust", "add", key + ".pub", "--name", "other")
        #expect(again.status == 2 && again.stderr.contains("already trusted as 'pipeline'"), "\(again.stderr)")
        let signed = try registry.custody(["publish", model, "--name", "acme/m", "--version", "1", "--sign-key", key + ".key"] + card)
        #expect(signed.status == 0, "\(signed.stderr)")
        let check = try GateTests.decision(try registry.custody("check", "acme/m@1", "--env", "production", "--json"))
        let signature = try #require((check["checks"] as? [[String: Any]])?.first { $0["check"] as? String == "signature" })
        #expect(signature["result"] as? String == "passed")
        #expect((signature["reason"] as? String)?.contains("pipeline, still trusted") == true, "\(signature)")

        // Removed: a new publish signed by it is refused at once; the published version keeps its verdict and the
        // check says its signer is no longer trusted.
        #expect(try registry.custody("trust", "remove", "pipeline").status == 0)
        let model2 = try GateTests.model(registry, "m", salt: "2")
        let refused = try registry.custody(["publish", model2, "--name", "acme/m", "--version", "2", "--sign-key", key + ".key"] + card)
        #expect(refused.status == 1 && refused.stderr.contains("not trusted"), "\(refused.stderr)")
        let after = try GateTests.decision(try registry.custody("check", "acme/m@1", "--env", "production", "--json"))
        let reason = ((after["checks"] as? [[String: Any]])?.first { $0["check"] as? String == "signature" })?["reason"] as? String
        #expect(reason?.contains("no longer trusted") == true, "\(reason ?? "")")

        // A policy that wants signers trusted now denies it, after a reload.
        let production = home + "/policies/production.yaml"
        let text = try String(contentsOfFile: production, encoding: .utf8)
        try Data(text.replacingOccurrences(of: "signature: {}", with: "signature: {require_currently_trusted: true}").utf8)
            .write(to: URL(fileURLWithPath: production))
        #expect(try registry.custody("policy", "reload").status == 0)
        let denied = try registry.custody("check", "acme/m@1", "--env", "production", "--json")
        #expect(denied.status == 1)
        #expect(GateTests.failed(try GateTests.decision(denied)).contains { $0.contains("which is no longer trusted") })

        // A key file put in by hand is picked up by the reload (SIGHUP does the same) and recorded as the registry's.
        try FileManager.default.copyItem(atPath: key + ".pub", toPath: registry.keys + "/trusted/by-hand.pub")
        #expect(try registry.custody("policy", "reload").status == 0)
        #expect(try registry.custody("check", "acme/m@1", "--env", "production").status == 0, "trusted again, under its new name")
        // On the home directly, as a script would.
        let local = try registry.local(["trust", "remove", "by-hand", "--home", registry.home, "--keys", registry.keys])
        #expect(local.status == 0, "\(local.stderr)")
        #expect(try registry.custody("check", "acme/m@1", "--env", "production").status == 1, "noticed on the next use")

        let log = try registry.custody("audit", "log", "--type", "trust.add,trust.remove", "--json")
        #expect(log.status == 0, "\(log.stderr)")
        let answer = try JSONSerialization.jsonObject(with: Data(log.stdout.utf8)) as? [String: Any]
        let events = try #require(answer?["events"] as? [[String: Any]], "\(log.stdout)")
        let changes = events.map {
            "\($0["type"] as? String ?? "") \(($0["detail"] as? String ?? "").prefix { $0 != " " }) \($0["actor"] as? String ?? "")"
        }
        #expect(changes.count == 4, "\(changes)")
        #expect(changes.first?.hasPrefix("trust.add pipeline token:") == true, "\(changes)")
        #expect(changes.dropFirst().first?.hasPrefix("trust.remove pipeline token:") == true, "\(changes)")
        #expect(changes.dropFirst(2).first?.hasPrefix("trust.add by-hand ") == true, "\(changes)")
        #expect(changes.last?.hasPrefix("trust.remove by-hand local:") == true, "\(changes)")
        let verified = try registry.custody("audit", "verify", "--log-key", registry.keys + "/log.pub")
        #expect(verified.status == 0, "\(verified.stderr)")
    }
}
