import CustodyTestSupport
import Foundation
import Testing

/// The auditor's questions on one story: a base model and a fine-tune, decisions in two environments, pulls by two
/// consumers, an advisory on the base.
@Suite(.serialized) struct AuditScenarioTests {
    /// Validates a CycloneDX document against the official 1.6 JSON schema shipped by cyclonedx-python-lib.
    static func validateBOM(_ json: String, scratch: Scratch) throws -> String {
        let path = try scratch.write("bom.json", json)
        let script = """
            import json, pathlib, sys
            import cyclonedx.schema, jsonschema, referencing
            res = pathlib.Path(cyclonedx.schema.__file__).parent / "_res"
            resources = []
            for name in ["bom-1.6.SNAPSHOT.schema.json", "spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json"]:
                contents = json.loads((res / name).read_text())
                resources.append((contents["$id"], referencing.Resource.from_contents(contents)))
            registry = referencing.Registry().with_resources(resources)
            schema = json.loads((res / "bom-1.6.SNAPSHOT.schema.json").read_text())
            validator = jsonschema.Draft7Validator(schema, registry=registry)
            errors = sorted(validator.iter_errors(json.load(open(sys.argv[1]))), key=lambda e: list(e.path))
            for e in errors[:5]:
                print("/".join(map(str, e.path)), e.message[:200])
            sys.exit(1 if errors else 0)
            """
        let result = try Tools.python(script, path)
        return result.status == 0 ? "" : result.stdout + result.stderr
    }

    @Test func exposureLineageHistoryAndBOM() throws {
        let (registry, key) = try GateTests.registry()
        let source = ["--source", "https://huggingface.co/acme"]
        let base = try GateTests.model(registry, "base", salt: "b")
        #expect(
            try registry.custody(
                ["publish", base, "--name", "acme/base", "--version", "1", "--license", "apache-2.0", "--sign-key", key, "--quiet"] + source
            ).status == 0)
        let tune = try GateTests.model(registry, "tune", salt: "t")
        #expect(
            try registry.custody(
                [
                    "publish", tune, "--name", "acme/tune", "--version", "1", "--license", "apache-2.0", "--base-model", "acme/base@1",
                    "--dataset", "acme/chats", "--sign-key", key, "--quiet",
                ] + source
            ).status == 0)

        #expect(try registry.custody("check", "acme/base@1", "--env", "production").status == 0)
        #expect(try registry.custody("check", "acme/tune@1", "--env", "research").status == 0)
        let prod = try registry.token("--role", "consumer", "--env", "production", "--name", "prod-host")
        let lab = try registry.token("--role", "consumer", "--env", "research", "--name", "lab-host")
        var receipts: [String] = []
        for (token, reference) in [(prod, "acme/base@1"), (lab, "acme/base@1"), (lab, "acme/tune@1")] {
            let output = registry.scratch.path + "/pull-\(UUID().uuidString)"
            let pulled = try registry.custody(
                ["pull", reference, "--output", output, "--registry-key", registry.registryPublicKey, "--quiet"], token: token)
            #expect(pulled.status == 0, "\(pulled.stderr)")
            #expect(!FileManager.default.fileExists(atPath: output + "/model.receipt"), "nothing is added inside the signed directory")
            receipts.append(output + ".receipt")
        }

        let advisory = try registry.scratch.write(
            "advisory.json",
            """
            {"id": "x_CUSTODY-2026-0042", "modified": "2026-11-29T12:00:00Z", "summary": "base weights poisoned",
             "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
             "affected": [{"package": {"ecosystem": "Custody", "name": "acme/base"}, "versions": ["1"]}]}
            """)
        #expect(try registry.custody("advisory", "add", advisory).status == 0)

        // Exposure names exactly the pulls of the affected version: two consumers, two environments.
        let exposure = try GateTests.decision(try registry.custody("audit", "exposure", "x_CUSTODY-2026-0042", "--json"))
        let versions = try #require(exposure["versions"] as? [[String: Any]])
        #expect(versions.map { $0["version"] as? String } == ["1"])
        let pulls = ((versions.first?["uses"] as? [[String: Any]]) ?? []).filter { $0["type"] as? String == "pull" }
        #expect(pulls.count == 2)
        #expect(Set(pulls.compactMap { $0["environment"] as? String }) == ["production", "research"])
        #expect(
            Set(
                pulls.compactMap {
                    ($0["actor"] as? String)?.contains("prod-host") == true
                        ? "prod" : ($0["actor"] as? String)?.contains("lab-host") == true ? "lab" : nil
                }) == ["prod", "lab"])
        #expect(exposure["environments"] as? [String] == ["production", "research"])

        // The receipt beside a pulled directory proves the publish event is in the log, checked here independently
        // (Python, RFC 9162 §2.1.3.2, Ed25519) from the exported leaf, the receipt and Keys/log.pub alone.
        let export = try registry.custody("audit", "export", "--format", "jsonl")
        let exportPath = try registry.scratch.write("export.jsonl", export.stdout)
        let check = """
            import base64, hashlib, sys
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
            receipt, leaves, pub = open(sys.argv[1]).read(), open(sys.argv[2]).read().splitlines(), open(sys.argv[3]).read().strip()
            head, note = receipt.split("\\n\\n", 1)
            lines = head.split("\\n")
            assert lines[0] == "c2sp.org/tlog-proof@v1", lines[0]
            assert lines[1].startswith("extra "), lines[1]
            assert base64.b64decode(lines[1][6:]).decode() in leaves, "the receipt carries the logged event"
            index = int(lines[2].split()[1]); proof = [base64.b64decode(h) for h in lines[3:]]
            body, signatures = note.split("\\n\\n", 1)
            origin, size, root = body.split("\\n")[:3]; size = int(size); root = base64.b64decode(root)
            name, keyid, key = pub.split("+", 2); key = base64.b64decode(key)[1:]
            sig = base64.b64decode(signatures.strip().split(" ")[2])
            assert sig[:4].hex() == keyid
            Ed25519PublicKey.from_public_bytes(key).verify(sig[4:], (body + "\\n").encode())
            node = lambda l, r: hashlib.sha256(b"\\x01" + l + r).digest()
            r = hashlib.sha256(b"\\x00" + leaves[index].encode()).digest()
            fn, sn = index, size - 1
            for p in proof:
                if fn & 1 or fn == sn:
                    r = node(p, r)
                    while not fn & 1 and fn != 0: fn >>= 1; sn >>= 1
                else:
                    r = node(r, p)
                fn >>= 1; sn >>= 1
            assert sn == 0 and r == root, "inclusion proof does not lead to the signed root"
            assert '"type":"publish"' in leaves[index], leaves[index]
            print("ok", index, size)
            """
        for receipt in receipts {
            let verified = try Tools.python(check, receipt, exportPath, registry.keys + "/log.pub")
            #expect(verified.status == 0 && verified.stdout.hasPrefix("ok"), "\(verified.stdout) \(verified.stderr)")
            // And with the CLI, offline: the same receipt verifies; any changed byte of the event it carries does not.
            let ours = try run(try Tools.custody, ["audit", "verify-receipt", receipt, "--log-key", registry.keys + "/log.pub"])
            #expect(
                ours.status == 0 && ours.stdout.hasPrefix("receipt verified: event ") && ours.stdout.contains("(publish acme/"),
                "\(ours.stdout) \(ours.stderr)")
        }
        let text = try String(contentsOfFile: receipts[0], encoding: .utf8)
        var receiptLines = text.components(separatedBy: "\n")
        let leaf = try #require(Data(base64Encoded: String(receiptLines[1].dropFirst(6))))
        let forged = String(decoding: leaf, as: UTF8.self).replacingOccurrences(of: "\"type\":\"publish\"", with: "\"type\":\"yank\"   ")
        receiptLines[1] = "extra " + Data(forged.utf8).base64EncodedString()
        let tampered = try registry.scratch.write("tampered.receipt", receiptLines.joined(separator: "\n"))
        let refused = try run(try Tools.custody, ["audit", "verify-receipt", tampered, "--log-key", registry.keys + "/log.pub"])
        #expect(refused.status == 1 && refused.stderr.contains("does not lead to the signed root"), "\(refused.stdout) \(refused.stderr)")
        let cut = try registry.scratch.write("cut.receipt", String(text.prefix(40)))
        #expect(try run(try Tools.custody, ["audit", "verify-receipt", cut, "--log-key", registry.keys + "/log.pub"]).status == 2)

        // Lineage: the fine-tune downstream of the base, the base upstream of the fine-tune.
        let lineage = try registry.custody("audit", "lineage", "acme/base@1")
        #expect(lineage.status == 0, "\(lineage.stderr)")
        #expect(lineage.stdout.contains("↓ acme/tune@1 (apache-2.0)"), "\(lineage.stdout)")
        #expect(try registry.custody("audit", "lineage", "acme/tune@1").stdout.contains("↑ acme/base@1"))

        // History: every step of the base model, in order.
        let history = try registry.custody("audit", "history", "acme/base", "--json")
        let events = try #require((try GateTests.decision(history))["events"] as? [[String: Any]])
        let types = events.compactMap { $0["type"] as? String }
        #expect(types.first == "publish")
        let order = ["publish", "scan", "decision", "pull"]
        var position = 0
        for type in types where position < order.count && type == order[position] { position += 1 }
        #expect(position == order.count, "history in order: \(types)")
        let ids = events.compactMap { $0["id"] as? Int }
        #expect(ids == ids.sorted())

        // Filters and export.
        let denied = try registry.custody("audit", "log", "--type", "pull", "--env", "production", "--json")
        #expect(((try GateTests.decision(denied))["events"] as? [[String: Any]])?.count == 1)
        let jsonl = try registry.custody("audit", "export", "--format", "jsonl")
        #expect(jsonl.status == 0)
        let lines = jsonl.stdout.split(separator: "\n")
        #expect(lines.count > 10 && lines.allSatisfy { $0.hasPrefix("{\"id\":") })
        let csv = try registry.custody("audit", "export", "--format", "csv")
        #expect(csv.stdout.hasPrefix("index,id,at,type,actor,model,version,environment,client,detail,count\n"))

        // The AI-BOM validates against the CycloneDX 1.6 schema and carries pedigree and the advisory.
        let bom = try registry.custody("audit", "bom", "acme/tune@1")
        #expect(bom.status == 0, "\(bom.stderr)")
        #expect(try Self.validateBOM(bom.stdout, scratch: registry.scratch) == "")
        let document = try GateTests.decision(bom)
        let component = try #require((document["components"] as? [[String: Any]])?.first)
        #expect(component["type"] as? String == "machine-learning-model")
        #expect(((component["pedigree"] as? [String: Any])?["ancestors"] as? [[String: Any]])?.first?["name"] as? String == "acme/base@1")
        let baseBOM = try GateTests.decision(try registry.custody("audit", "bom", "acme/base@1"))
        #expect((baseBOM["vulnerabilities"] as? [[String: Any]])?.first?["id"] as? String == "x_CUSTODY-2026-0042")
        #expect(try Self.validateBOM(try registry.custody("audit", "bom", "acme/base@1").stdout, scratch: registry.scratch) == "")
    }
}
