import CustodyTestSupport
import Foundation
import Testing

/// The deployment gate end to end: a real daemon with the committed default policies, driven by the real CLI.
@Suite(.serialized) struct GateTests {
    /// A registry home with the committed policies and an admission mapping, and a trusted publisher key.
    static func registry() throws -> (RegistryProcess, publisherKey: String) {
        let scratch = try Scratch()
        let home = scratch.path + "/Registry"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Tools.packageRoot + "/Registry/policies", toPath: home + "/policies")
        try Data("admission:\n  namespaces:\n    inference-prod: production\n".utf8).write(to: URL(fileURLWithPath: home + "/custody.yaml"))
        let key = scratch.path + "/pipeline"
        try #require(try Tools.custody("keys", "generate", "--out", key).status == 0)
        try FileManager.default.createDirectory(atPath: scratch.path + "/Keys/trusted", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: key + ".pub", toPath: scratch.path + "/Keys/trusted/pipeline.pub")
        return (try RegistryProcess(scratch: scratch), key + ".key")
    }

    /// A small safetensors model; `salt` makes versions differ.
    static func model(_ registry: RegistryProcess, _ name: String, salt: String) throws -> String {
        let directory = registry.scratch.path + "/models/" + name + "-" + salt
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var header = Array(#"{"w":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        let length = UInt64(header.count)
        let bytes =
            (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) } + header + Array(salt.utf8.prefix(8))
            + [UInt8](repeating: 0, count: max(0, 8 - salt.utf8.count))
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/model.safetensors"))
        try Data(#"{"model_type": "llama"}"#.utf8).write(to: URL(fileURLWithPath: directory + "/config.json"))
        return directory
    }

    static func decision(_ result: ProcessResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout) \(result.stderr)")
    }

    static func failed(_ decision: [String: Any]) -> [String] {
        ((decision["checks"] as? [[String: Any]]) ?? []).filter { $0["result"] as? String == "failed" }.compactMap { $0["reason"] as? String }
    }

    @Test func licencesSignaturesAdvisoriesRollbackAndGatedPulls() throws {
        let (registry, key) = try Self.registry()
        let source = ["--source", "https://huggingface.co/acme/base"]

        // A research-licensed model: fine in research, denied in production for its licence.
        let research = try Self.model(registry, "research", salt: "r1")
        #expect(
            try registry.custody(
                ["publish", research, "--name", "acme/nc", "--version", "1", "--license", "cc-by-nc-4.0", "--sign-key", key, "--quiet"] + source
            ).status == 0)
        let inResearch = try registry.custody("check", "acme/nc@1", "--env", "research")
        #expect(inResearch.status == 0, "\(inResearch.stdout) \(inResearch.stderr)")
        let inProduction = try registry.custody("check", "acme/nc@1", "--env", "production", "--json")
        #expect(inProduction.status == 1)
        let productionDecision = try Self.decision(inProduction)
        #expect(
            Self.failed(productionDecision) == [
                "licence class research (cc-by-nc-4.0) is not allowed in production (allowed: permissive, conditional)"
            ])

        // A claimed class the licence contradicts is refused at publish.
        let claimed = try registry.custody(
            ["publish", research, "--name", "acme/nc", "--version", "2", "--license", "cc-by-nc-4.0", "--license-class", "commercial", "--quiet"]
                + source)
        #expect(claimed.status == 2)
        #expect(claimed.stderr.contains("contradicts the licence"), "\(claimed.stderr)")

        // A llama3.1 model passes production with its obligations; an unsigned version does not.
        for (version, salt) in [("1.0", "a"), ("1.1", "b")] {
            let path = try Self.model(registry, "llama", salt: salt)
            #expect(
                try registry.custody(
                    ["publish", path, "--name", "acme/llama-ft", "--version", version, "--license", "llama3.1", "--sign-key", key, "--quiet"] + source
                ).status == 0)
        }
        let llama = try registry.custody("check", "acme/llama-ft@1.1", "--env", "production")
        #expect(llama.status == 0, "\(llama.stdout)")
        #expect(llama.stdout.contains("obligation  licensees with more than 700 million monthly active users"), "\(llama.stdout)")
        let unsignedPath = try Self.model(registry, "llama", salt: "c")
        #expect(
            try registry.custody(
                ["publish", unsignedPath, "--name", "acme/llama-ft", "--version", "1.2", "--license", "llama3.1", "--quiet"] + source
            ).status == 0)
        let unsigned = try Self.decision(try registry.custody("check", "acme/llama-ft@1.2", "--env", "production", "--json"))
        #expect(Self.failed(unsigned) == ["the version is not signed by a trusted publisher key"])
        let staging = try Self.decision(try registry.custody("check", "acme/llama-ft@1.2", "--env", "staging", "--json"))
        #expect(staging["allowed"] as? Bool == true, "staging lets unsigned versions through with a warning")
        #expect(((staging["checks"] as? [[String: Any]]) ?? []).contains { $0["result"] as? String == "warning" })

        // A production consumer pulls 1.1; the pull is recorded with its environment and address.
        let consumer = try registry.token("--role", "consumer", "--env", "production", "--name", "inference-host")
        let output = registry.scratch.path + "/pulled"
        let pulled = try registry.custody(
            ["pull", "acme/llama-ft@1.1", "--output", output, "--registry-key", registry.registryPublicKey, "--quiet"], token: consumer)
        #expect(pulled.status == 0, "\(pulled.stderr)")

        // A high-severity advisory flips 1.1 to denied, names 1.0 as the rollback target and reports the exposure.
        let advisory = registry.scratch.path + "/advisory.json"
        try Data(
            """
            {"id": "x_CUSTODY-2026-0001", "modified": "2026-11-29T10:00:00Z", "summary": "poisoned fine-tune",
             "aliases": ["AML.T0010.003"],
             "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}],
             "affected": [{"package": {"ecosystem": "Custody", "name": "acme/llama-ft"},
                           "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.1"}, {"fixed": "1.2"}]}]},
                          {"package": {"ecosystem": "Custody", "name": "acme/not-here"}, "versions": ["1"]}]}
            """.utf8
        ).write(to: URL(fileURLWithPath: advisory))
        let added = try registry.custody("advisory", "add", advisory, "--json")
        #expect(added.status == 0, "\(added.stderr)")
        let exposure = try #require((try Self.decision(added))["exposure"] as? [String: Any])
        let versions = try #require(exposure["versions"] as? [[String: Any]])
        #expect(versions.map { $0["version"] as? String } == ["1.1"])
        #expect(exposure["environments"] as? [String] == ["production"])
        #expect((exposure["tokens"] as? [String])?.contains { $0.contains("inference-host") } == true, "\(exposure)")
        #expect(exposure["unknownModels"] as? [String] == ["acme/not-here"])
        #expect(((versions.first?["uses"] as? [[String: Any]]) ?? []).contains { $0["client"] as? String == "127.0.0.1" })

        let flipped = try Self.decision(try registry.custody("check", "acme/llama-ft@1.1", "--env", "production", "--json"))
        #expect(flipped["allowed"] as? Bool == false)
        #expect(Self.failed(flipped).first?.contains("x_CUSTODY-2026-0001 (high 8.8)") == true, "\(Self.failed(flipped))")
        #expect((flipped["rollback"] as? [String: Any])?["version"] as? String == "1.0")

        // An accepted exception applies until its date, and not after.
        func draft(until: String) throws -> String {
            let yaml = try String(contentsOfFile: Tools.packageRoot + "/Registry/policies/production.yaml", encoding: .utf8)
                .replacingOccurrences(of: "accepted: []", with: "accepted: [{id: x_CUSTODY-2026-0001, until: \"\(until)\", reason: sandboxed}]")
            let path = registry.scratch.path + "/draft-\(until).yaml"
            try Data(yaml.utf8).write(to: URL(fileURLWithPath: path))
            return path
        }
        #expect(try registry.custody("policy", "test", "production", "acme/llama-ft@1.1", "--policy", try draft(until: "2099-12-31")).status == 0)
        let expired = try registry.custody("policy", "test", "production", "acme/llama-ft@1.1", "--policy", try draft(until: "2020-01-01"))
        #expect(expired.status == 1)
        #expect(expired.stdout.contains("whose acceptance expired on 2020-01-01"), "\(expired.stdout)")

        // The production consumer's pull of 1.1 is now refused, with the same reasons as verify.
        let refused = try registry.custody(
            ["pull", "acme/llama-ft@1.1", "--output", output + "-2", "--registry-key", registry.registryPublicKey, "--quiet"], token: consumer)
        #expect(refused.status != 0)
        for reason in Self.failed(flipped) { #expect(refused.stderr.contains(reason), "\(refused.stderr)") }
        #expect(refused.stderr.contains("rollback target acme/llama-ft@1.0"))
        #expect(!FileManager.default.fileExists(atPath: output + "-2"))
        let researchPull = try registry.custody(
            ["pull", "acme/nc@1", "--output", output + "-3", "--registry-key", registry.registryPublicKey, "--quiet"], token: consumer)
        #expect(researchPull.stderr.contains(Self.failed(productionDecision)[0]), "\(researchPull.stderr)")

        // Withdrawing the advisory restores 1.1.
        #expect(try registry.custody("advisory", "withdraw", "x_CUSTODY-2026-0001").status == 0)
        #expect(try registry.custody("check", "acme/llama-ft@1.1", "--env", "production").status == 0)

        // Yanking fails every policy.
        #expect(try registry.custody("status", "yank", "acme/llama-ft@1.0", "--reason", "superseded").status == 0)
        let yanked = try Self.decision(try registry.custody("check", "acme/llama-ft@1.0", "--env", "research", "--json"))
        #expect(Self.failed(yanked).first?.contains("yanked") == true)

        // Every decision is an event with the policy digest.
        let shown = try registry.custody("show", "acme/llama-ft@1.1", "--json")
        let events = try #require((try Self.decision(shown))["events"] as? [[String: Any]])
        #expect(events.contains { $0["type"] as? String == "decision" && ($0["detail"] as? String)?.contains("sha256:") == true })
        #expect(events.contains { $0["type"] as? String == "pull.denied" && $0["environment"] as? String == "production" })
    }

    /// formats.md §8, as the API server sends it.
    static func review(uid: String, namespace: String, annotations: [String: String]) -> Data {
        let object: [String: Any] = [
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": [
                "uid": uid, "kind": ["group": "", "version": "v1", "kind": "Pod"],
                "resource": ["group": "", "version": "v1", "resource": "pods"], "namespace": namespace, "operation": "CREATE",
                "userInfo": ["username": "system:serviceaccount:kube-system:replicaset-controller", "groups": ["system:serviceaccounts"]],
                "object": [
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": ["name": "llm-0", "namespace": namespace, "annotations": annotations],
                    "spec": ["containers": [["name": "server", "image": "vllm/vllm-openai:v0.6.0"]]],
                ],
                "dryRun": false,
            ],
        ]
        return try! JSONSerialization.data(withJSONObject: object)
    }

    @Test func admissionReviewsAndBadInput() throws {
        let (registry, key) = try Self.registry()
        let signed = try Self.model(registry, "m", salt: "s")
        #expect(
            try registry.custody([
                "publish", signed, "--name", "acme/ok", "--version", "1", "--license", "apache-2.0", "--sign-key", key, "--source", "https://x",
                "--quiet",
            ]).status == 0)
        #expect(
            try registry.custody([
                "publish", signed, "--name", "acme/nc", "--version", "1", "--license", "cc-by-nc-4.0", "--sign-key", key, "--source", "https://x",
                "--quiet",
            ]).status == 0)
        let gate = try registry.token("--role", "gate", "--name", "apiserver")

        func answer(_ body: Data) throws -> [String: Any] {
            let response = try registry.http("POST", "/v1/admission", token: gate, headers: ["Content-Type": "application/json"], body: body)
            #expect(response.status == 200)
            let review = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
            #expect(review["apiVersion"] as? String == "admission.k8s.io/v1")
            #expect(review["kind"] as? String == "AdmissionReview")
            return try #require(review["response"] as? [String: Any])
        }
        let allowed = try answer(Self.review(uid: "a1", namespace: "inference-prod", annotations: ["custody.dev/model": "acme/ok@1"]))
        #expect(allowed["uid"] as? String == "a1")
        #expect(allowed["allowed"] as? Bool == true)
        let denied = try answer(Self.review(uid: "d1", namespace: "inference-prod", annotations: ["custody.dev/model": "acme/ok@1, acme/nc@1"]))
        #expect(denied["uid"] as? String == "d1")
        #expect(denied["allowed"] as? Bool == false)
        let status = try #require(denied["status"] as? [String: Any])
        #expect(status["code"] as? Int == 403)
        #expect((status["message"] as? String)?.contains("acme/nc@1 is denied in production: licence: licence class research") == true, "\(status)")
        let none = try answer(Self.review(uid: "n1", namespace: "inference-prod", annotations: ["team": "search"]))
        #expect(none["uid"] as? String == "n1")
        #expect(none["allowed"] as? Bool == true)
        let unmapped = try answer(Self.review(uid: "u1", namespace: "default", annotations: ["custody.dev/model": "acme/ok@1"]))
        #expect(unmapped["allowed"] as? Bool == false)
        #expect(try registry.http("POST", "/v1/admission", token: gate, body: Data("{}".utf8)).status == 400)

        // Unknown model, version or environment: 404 naming what was unknown.
        for (body, missing) in [
            (#"{"model": "acme/none@1", "environment": "production"}"#, "model acme/none is not in this registry"),
            (#"{"model": "acme/ok@9", "environment": "production"}"#, "acme/ok has no version 9"),
            (#"{"model": "acme/ok@1", "environment": "mars"}"#, "environment mars has no policy"),
        ] {
            let response = try registry.http("POST", "/v1/verify", token: gate, headers: ["Content-Type": "application/json"], body: Data(body.utf8))
            #expect(response.status == 404)
            #expect(response.body.contains(missing), "\(response.body)")
            #expect(response.headers["Content-Type"] == "application/problem+json")
        }

        // Malformed OSV is refused and names the field; an advisory for an unknown model is accepted and matches nothing.
        let malformed = registry.scratch.path + "/bad.json"
        try Data(#"{"id": "x_BAD", "affected": [{"package": {"ecosystem": "Custody", "name": "acme/ok"}, "versions": ["1"]}]}"#.utf8)
            .write(to: URL(fileURLWithPath: malformed))
        let refused = try registry.custody("advisory", "add", malformed)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("modified"), "\(refused.stderr)")

        // A policy that breaks on reload keeps the loaded one, and the error names file, line and field.
        let production = registry.home + "/policies/production.yaml"
        let original = try String(contentsOfFile: production, encoding: .utf8)
        try Data(original.replacingOccurrences(of: "max_severity: medium", with: "max_severity: severe").utf8).write(
            to: URL(fileURLWithPath: production))
        let reload = try registry.custody("policy", "reload")
        #expect(reload.status == 2)
        #expect(reload.stderr.contains("production.yaml:9: checks.advisories.max_severity: 'severe'"), "\(reload.stderr)")
        #expect(try registry.custody("check", "acme/ok@1", "--env", "production").status == 0, "the old policy is still in force")
        try Data(original.replacingOccurrences(of: "signature: {}", with: "signatures: {}").utf8).write(to: URL(fileURLWithPath: production))
        registry.stop()
        let start = try registry.local(["serve", "--home", registry.home, "--keys", registry.keys, "--listen", "127.0.0.1:0"])
        #expect(start.status == 2, "the daemon refuses to start with an invalid policy")
        #expect(start.stderr.contains("production.yaml:5: checks.signatures: unknown check"), "\(start.stderr)")
    }
}
