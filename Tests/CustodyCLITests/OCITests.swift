import CustodyCore
import CustodyTestSupport
import Foundation
import Testing

/// The OCI front door end to end: a real daemon driven by the real clients (Debian's skopeo 1.9.3, oras-py 0.2.43
/// in `.venv-oras`), beside CNCF distribution 2.8.2 (Debian's docker-registry) for a differential run.
@Suite(.serialized) struct OCITests {
    static var oras: String { get throws { try Tools.hubVenv(".venv-oras") + "/bin/python" } }

    /// Runs scripts/oci-flows.py against `address`; its output is one JSON document.
    static func flows(_ address: String, work: String, credentials: [String] = []) throws -> [String: Any] {
        let result = try run(try oras, [Tools.packageRoot + "/scripts/oci-flows.py", address, work] + credentials)
        try #require(result.status == 0, "the flows failed against \(address): \(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    static func address(_ registry: RegistryProcess) -> String { String(registry.url.dropFirst("http://".count)) }

    /// A JSON value as canonical text (sorted keys), for comparing answers.
    static func canonical(_ value: Any?) -> String {
        guard let value, let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) else {
            return "missing"
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// The same skopeo and oras-py flows against Custody and against distribution 2.8.2: the same answers where the
    /// spec requires them (statuses, digests, headers, error codes), and the differences docs/oci.md lists.
    @Test func theSameFlowsAnswerAsDistributionDoes() throws {
        let registry = try RegistryProcess()
        let distribution = try DistributionProcess(scratch: registry.scratch)
        let custody = try Self.flows(
            Self.address(registry), work: registry.scratch.path + "/flows-custody", credentials: ["ci", registry.adminToken])
        let reference = try Self.flows(distribution.address, work: registry.scratch.path + "/flows-distribution")

        let same = [
            "push_monolithic", "push_chunked", "tags", "pulled", "pull_identical", "inspect_raw", "list_tags", "copy_to_layout",
            "copy_from_layout", "copy_digest", "head_manifest", "head_blob", "range",
        ]
        for key in same {
            #expect(
                Self.canonical(custody[key]) == Self.canonical(reference[key]),
                "\(key): custody \(Self.canonical(custody[key])), distribution \(Self.canonical(reference[key]))")
        }
        #expect(custody["pull_identical"] as? Bool == true)
        let pushed = try #require((custody["push_monolithic"] as? [String: Any])?["digest"] as? String)
        #expect(custody["copy_digest"] as? String == pushed, "a copy through an oci: layout keeps the manifest's bytes")
        let errors = try #require(custody["errors"] as? [String: [Any]])
        let expected = try #require(reference["errors"] as? [String: [Any]])
        for key in ["manifest_unknown", "blob_unknown", "manifest_blob_unknown", "manifest_invalid", "digest_invalid"] {
            #expect(Self.canonical(errors[key]) == Self.canonical(expected[key]), "\(key)")
        }
        // Where distribution 2.8.2 departs from the spec and Custody does not (docs/oci.md).
        let referrers = try #require(custody["referrers"] as? [String: Any])
        #expect(referrers["status"] as? Int == 200 && referrers["type"] as? String == "application/vnd.oci.image.index.v1+json")
        #expect(
            referrers["artifactTypes"] as? [String]
                == ["application/vnd.custody.scan.report.v1+json", "application/vnd.cyclonedx+json", "application/vnd.dev.sigstore.bundle.v0.3+json"])
        #expect((reference["referrers"] as? [String: Any])?["status"] as? Int == 404, "distribution has no referrers API")
        #expect(errors["chunk_repeated"]?.first as? Int == 416)
        #expect(expected["chunk_repeated"]?.first as? Int != 416)
        #expect(Self.canonical(errors["name_invalid"]) == #"[400,"NAME_INVALID"]"#)
        #expect((custody["tags_n0"] as? [Any])?.last as? [String] == [], "n=0 is an empty page")

        // What the pushes made here: versions, scanned and registry-signed, that `custody pull` verifies.
        let shown = try registry.custody("show", "acme/tiny@v1", "--json")
        let detail = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any], "\(shown.stderr)")
        #expect((detail["license"] as? [String: Any])?["id"] as? String == "Apache-2.0")
        #expect(((detail["provenance"] as? [String: Any])?["source"] as? [String: Any])?["revision"] as? String == "4f2c1e0")
        #expect(
            ((detail["signatures"] as? [[String: Any]]) ?? []).contains {
                $0["kind"] as? String == "registry" && $0["status"] as? String == "verified"
            })
        #expect(detail["scan"] != nil)
        for reference in ["acme/tiny@v1", "acme/chunked@v1", "acme/copy@v1"] {
            let output = registry.scratch.path + "/pulled-" + reference.replacingOccurrences(of: "/", with: "-")
            let pulled = try registry.custody(["pull", reference, "--output", output, "--registry-key", registry.registryPublicKey, "--quiet"])
            #expect(pulled.status == 0, "\(reference): \(pulled.stderr)")
            let files = try tree(output).keys.sorted()
            #expect(files == ["config.json", "model.safetensors", "model.sig"], "\(reference): \(files)")
            let signed = try Tools.modelSigning(
                "verify", "key", output, "--signature", output + "/model.sig", "--public_key", registry.registryPublicKey)
            #expect(signed.status == 0, "model_signing verifies \(reference): \(signed.stderr)")
        }
    }
}

extension OCITests {
    /// The gate decides OCI pulls as it decides `custody pull`: a production consumer's skopeo and oras-py pulls of a
    /// version production denies fail with the policy's reasons, its blobs are refused by digest, an allowed version
    /// pulls byte-identical, and both are in the exposure reports with the token and environment.
    @Test func theGateDecidesOCIPulls() throws {
        let (registry, key) = try GateTests.registry()
        let allowed = try GateTests.model(registry, "ok", salt: "ok")
        let denied = try GateTests.model(registry, "nc", salt: "nc")
        for (model, name, license) in [(allowed, "acme/ok", "apache-2.0"), (denied, "acme/nc", "cc-by-nc-4.0")] {
            let published = try registry.custody(
                ["publish", model, "--name", name, "--version", "1", "--sign-key", key, "--source", "https://x/\(name)", "--license", license])
            try #require(published.status == 0, "\(published.stderr)")
        }
        let consumer = try registry.token("--role", "consumer", "--env", "production", "--name", "kserve")
        let host = Self.address(registry)
        let layout = registry.scratch.path + "/layout"
        func skopeo(_ arguments: [String]) throws -> ProcessResult {
            try run("/usr/bin/skopeo", arguments, environment: ProcessInfo.processInfo.environment)
        }
        let refused = try skopeo([
            "copy", "--src-tls-verify=false", "--src-creds", "ci:\(consumer)", "docker://\(host)/acme/nc:1", "oci:\(layout):nc",
        ])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("denied: acme/nc@1 may not be pulled"), "\(refused.stderr)")
        #expect(refused.stderr.contains("licence class research (cc-by-nc-4.0) is not allowed in production"), "\(refused.stderr)")
        let copied = try skopeo(["copy", "--src-tls-verify=false", "--src-creds", "ci:\(consumer)", "docker://\(host)/acme/ok:1", "oci:\(layout):ok"])
        #expect(copied.status == 0, "\(copied.stderr)")
        // The layout holds every file of the version as a blob under its digest, byte for byte.
        for (_, bytes) in try tree(allowed) {
            let blob = layout + "/blobs/sha256/" + ContentDigest.of(Array(bytes)).hex
            #expect(FileManager.default.contents(atPath: blob) == bytes, "\(blob)")
        }

        // oras-py: the allowed version byte for byte; the denied one refused with the reasons, and its weights by digest.
        let script = """
            import hashlib, json, os, sys, requests, oras.client
            host, token = sys.argv[1], sys.argv[2]
            os.environ["DOCKER_CONFIG"] = sys.argv[3]
            c = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic")
            c.auth.set_basic_auth("kserve", token)
            out = {"files": sorted(os.path.basename(p) for p in c.pull(target=f"{host}/acme/ok:1", outdir=sys.argv[3] + "/ok"))}
            admin = (sys.argv[4], sys.argv[5])
            manifest = requests.get(f"http://{host}/v2/acme/nc/manifests/1", auth=admin,
                                    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).json()
            weights = [l["digest"] for l in manifest["layers"] if l["annotations"]["org.cncf.model.filepath"] == "model.safetensors"][0]
            blob = requests.get(f"http://{host}/v2/acme/nc/blobs/{weights}", auth=("kserve", token))
            out["blob"] = [blob.status_code, blob.json()["errors"][0]["code"]]
            pulled = requests.get(f"http://{host}/v2/acme/nc/manifests/1", auth=("kserve", token))
            out["manifest"] = [pulled.status_code, pulled.json()["errors"][0]["code"], pulled.json()["errors"][0]["message"]]
            print(json.dumps(out))
            """
        let result = try run(try Self.oras, ["-c", script, host, consumer, registry.scratch.path + "/oras", "admin", registry.adminToken])
        try #require(result.status == 0, "\(result.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(out["files"] as? [String] == ["config.json", "model.safetensors"])
        #expect(try tree(registry.scratch.path + "/oras/ok") == (try tree(allowed)), "the allowed version, byte-identical")
        #expect(Self.canonical(out["blob"]) == #"[403,"DENIED"]"#, "no fetching denied weights by digest")
        let manifest = try #require(out["manifest"] as? [Any])
        #expect(manifest.first as? Int == 403 && manifest[1] as? String == "DENIED")
        #expect((manifest.last as? String)?.contains("licence class research") == true)

        // Every OCI pull is a pull event: in the exposure report with its token and environment.
        for (reference, type) in [("acme/ok@1", "pull"), ("acme/nc@1", "pull.denied")] {
            let exposure = try registry.custody("audit", "exposure", reference)
            #expect(exposure.status == 0, "\(exposure.stderr)")
            let line = exposure.stdout.split(separator: "\n").first { $0.contains(type + " ") && $0.contains("(kserve)") }
            #expect(line?.contains("production") == true, "\(reference): \(exposure.stdout)")
        }
        let events = try GateTests.decision(try registry.custody("audit", "log", "--model", "acme/ok", "--type", "pull", "--json"))
        let details = ((events["events"] as? [[String: Any]]) ?? []).compactMap { $0["detail"] as? String }
        #expect(details.contains { $0.contains("via the OCI API, user agent 'skopeo/") }, "\(details)")
        #expect(details.contains { $0.contains("via the OCI API, user agent 'python-requests/") }, "\(details)")
    }
}

extension OCITests {
    /// A KitOps ModelKit (Kitfile config, tar layers, one gzipped) pushed with oras-py becomes a version of the files
    /// its layers hold, with the Kitfile's licence; its referrers hold the registry's signature (the same bytes as
    /// the `model.sig` that `custody pull` writes, which model_signing accepts), scan report and AI-BOM. A layer that
    /// escapes its folder is refused and leaves no version.
    @Test func aModelKitBecomesAVersionWithItsReferrers() throws {
        let registry = try RegistryProcess()
        let model = try GateTests.model(registry, "kit", salt: "kit")
        let script = """
            import gzip, hashlib, io, json, os, sys, tarfile, requests, oras.client
            host, token, model, work = sys.argv[1:5]
            os.environ["DOCKER_CONFIG"] = work
            os.makedirs(work, exist_ok=True)
            os.chdir(work)
            c = oras.client.OrasClient(hostname=host, insecure=True)
            c.auth.set_basic_auth("ci", token)
            def tar(name, entries, compress=False):
                buffer = io.BytesIO()
                with tarfile.open(fileobj=buffer, mode="w") as archive:
                    for path, data in entries:
                        info = tarfile.TarInfo(path); info.size = len(data); info.mtime = 0
                        archive.addfile(info, io.BytesIO(data))
                data = gzip.compress(buffer.getvalue(), mtime=0) if compress else buffer.getvalue()
                open(name, "wb").write(data)
                return name
            def desc(path, media_type):
                data = open(path, "rb").read()
                return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}
            def push(repository, layers):
                ref = c.get_container(f"{host}/{repository}")
                kitfile = {"manifestVersion": "1.0.0", "package": {"name": "kit", "version": "1.0.0", "license": "Apache-2.0"},
                           "model": {"name": "kit", "path": "model", "format": "safetensors"}, "docs": [{"path": "README.md"}]}
                json.dump(kitfile, open("kitfile.json", "w"))
                config = desc("kitfile.json", "application/vnd.kitops.modelkit.config.v1+json")
                for path, layer in layers + [("kitfile.json", config)]:
                    assert c.upload_blob(path, ref, layer).status_code in (200, 201)
                manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config,
                            "layers": [layer for _, layer in layers]}
                response = requests.put(f"http://{host}/v2/{repository.replace(':', '/manifests/')}", data=json.dumps(manifest),
                                        auth=("ci", token), headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
                return response
            files = [(f"model/{name}", open(os.path.join(model, name), "rb").read()) for name in sorted(os.listdir(model))]
            layers = [("model.tar", desc(tar("model.tar", files), "application/vnd.kitops.modelkit.model.v1.tar")),
                      ("docs.tar.gz", desc(tar("docs.tar.gz", [("README.md", b"# kit\\n")], compress=True),
                                           "application/vnd.kitops.modelkit.docs.v1.tar+gzip"))]
            out = {}
            pushed = push("acme/kit:1.0.0", layers)
            out["push"] = [pushed.status_code, pushed.headers.get("Docker-Content-Digest")]
            digest = pushed.headers.get("Docker-Content-Digest")
            referrers = requests.get(f"http://{host}/v2/acme/kit/referrers/{digest}", auth=("ci", token)).json()["manifests"]
            out["referrers"] = sorted(r["artifactType"] for r in referrers)
            filtered = requests.get(f"http://{host}/v2/acme/kit/referrers/{digest}?artifactType=application/vnd.dev.sigstore.bundle.v0.3%2Bjson",
                                    auth=("ci", token))
            out["filtered"] = [filtered.headers.get("OCI-Filters-Applied"), len(filtered.json()["manifests"])]
            signature = [r for r in referrers if r["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"][0]
            attached = requests.get(f"http://{host}/v2/acme/kit/manifests/{signature['digest']}", auth=("ci", token)).json()
            out["subject"] = attached["subject"]["digest"]
            layer = attached["layers"][0]
            open("model.sig", "wb").write(requests.get(f"http://{host}/v2/acme/kit/blobs/{layer['digest']}", auth=("ci", token)).content)
            evil = [("evil.tar", desc(tar("evil.tar", [("../escape.bin", b"x")]), "application/vnd.kitops.modelkit.model.v1.tar"))]
            refused = push("acme/evil:1", evil)
            out["evil"] = [refused.status_code, refused.json()["errors"][0]["code"], refused.json()["errors"][0]["message"]]
            print(json.dumps(out))
            """
        let work = registry.scratch.path + "/kit"
        let result = try run(try Self.oras, ["-c", script, Self.address(registry), registry.adminToken, model, work])
        try #require(result.status == 0, "\(result.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let push = try #require(out["push"] as? [Any])
        #expect(push.first as? Int == 201, "\(out)")
        #expect(out["subject"] as? String == push.last as? String)
        #expect(
            out["referrers"] as? [String]
                == ["application/vnd.custody.scan.report.v1+json", "application/vnd.cyclonedx+json", "application/vnd.dev.sigstore.bundle.v0.3+json"])
        #expect(Self.canonical(out["filtered"]) == #"["artifactType",1]"#)
        let evil = try #require(out["evil"] as? [Any])
        #expect(evil.first as? Int == 400 && evil[1] as? String == "MANIFEST_INVALID", "\(evil)")
        #expect((evil.last as? String)?.contains("escape.bin") == true, "the refusal names the entry: \(evil)")
        #expect(try registry.custody("show", "acme/evil@1").status != 0, "a refused push leaves no version")

        let shown = try registry.custody("show", "acme/kit@1.0.0", "--json")
        let detail = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any], "\(shown.stderr)")
        #expect((detail["license"] as? [String: Any])?["id"] as? String == "Apache-2.0", "the Kitfile's licence")
        let output = registry.scratch.path + "/kit-pulled"
        let pulled = try registry.custody(["pull", "acme/kit@1.0.0", "--output", output, "--registry-key", registry.registryPublicKey, "--quiet"])
        #expect(pulled.status == 0, "\(pulled.stderr)")
        var files = try tree(output)
        #expect(files["model.sig"] == (try Data(contentsOf: URL(fileURLWithPath: work + "/model.sig"))), "the referrer is the registry's model.sig")
        files.removeValue(forKey: "model.sig")
        let expected = try tree(model).reduce(into: ["README.md": Data("# kit\n".utf8)]) { $0["model/" + $1.key] = $1.value }
        #expect(files == expected, "the files the layers held, byte-identical")
        let signed = try Tools.modelSigning("verify", "key", output, "--signature", output + "/model.sig", "--public_key", registry.registryPublicKey)
        #expect(signed.status == 0, "model_signing verifies the ModelKit's version: \(signed.stderr)")
    }
}

extension OCITests {
    /// A publisher's OMS signature pushed as a referrer of a version's manifest counts as its publisher signature
    /// when a trusted key made it: production, which denied the unsigned version, then allows it. A signature by an
    /// untrusted key is kept as a referrer only, and the push's `Warning` says why.
    @Test func aSignaturePushedAsAReferrerCountsWhenItsKeyIsTrusted() throws {
        let (registry, key) = try GateTests.registry()
        let model = try GateTests.model(registry, "late", salt: "late")
        let published = try registry.custody(
            ["publish", model, "--name", "acme/late", "--version", "1", "--source", "https://x/late", "--license", "apache-2.0"])
        try #require(published.status == 0, "\(published.stderr)")
        let stranger = registry.scratch.path + "/stranger"
        try #require(try Tools.custody("keys", "generate", "--out", stranger).status == 0)
        for (name, signer) in [("trusted", key), ("untrusted", stranger + ".key")] {
            let signed = try Tools.custody("sign", model, "--key", signer, "--signature", registry.scratch.path + "/\(name).sig")
            try #require(signed.status == 0, "\(signed.stderr)")
        }
        let consumer = try registry.token("--role", "consumer", "--env", "production", "--name", "host")
        let script = """
            import hashlib, json, os, sys, requests
            host, admin, consumer, work = sys.argv[1:5]
            auth = ("ci", admin)
            subject = requests.head(f"http://{host}/v2/acme/late/manifests/1", auth=auth)
            out = {"before": requests.get(f"http://{host}/v2/acme/late/manifests/1", auth=("h", consumer)).status_code}
            def push(name):
                data = open(f"{work}/{name}.sig", "rb").read()
                digest = "sha256:" + hashlib.sha256(data).hexdigest()
                requests.post(f"http://{host}/v2/acme/late/blobs/uploads/?digest={digest}", data=data, auth=auth).raise_for_status()
                requests.post(f"http://{host}/v2/acme/late/blobs/uploads/?digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                              data=b"{}", auth=auth).raise_for_status()
                manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                                       "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
                            "layers": [{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "digest": digest, "size": len(data)}],
                            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                        "digest": subject.headers["Docker-Content-Digest"], "size": int(subject.headers["Content-Length"])}}
                body = json.dumps(manifest).encode()
                r = requests.put(f"http://{host}/v2/acme/late/manifests/sha256:{hashlib.sha256(body).hexdigest()}", data=body, auth=auth,
                                 headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
                return [r.status_code, r.headers.get("OCI-Subject") == subject.headers["Docker-Content-Digest"], r.headers.get("Warning")]
            out["untrusted"] = push("untrusted")
            out["between"] = requests.get(f"http://{host}/v2/acme/late/manifests/1", auth=("h", consumer)).status_code
            out["trusted"] = push("trusted")
            out["after"] = requests.get(f"http://{host}/v2/acme/late/manifests/1", auth=("h", consumer)).status_code
            out["referrers"] = len(requests.get(f"http://{host}/v2/acme/late/referrers/{subject.headers['Docker-Content-Digest']}", auth=auth)
                                   .json()["manifests"])
            print(json.dumps(out))
            """
        let result = try run(try Self.oras, ["-c", script, Self.address(registry), registry.adminToken, consumer, registry.scratch.path])
        try #require(result.status == 0, "\(result.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(out["before"] as? Int == 403, "production needs a trusted publisher signature")
        let untrusted = try #require(out["untrusted"] as? [Any])
        #expect(untrusted.first as? Int == 201 && untrusted[1] as? Bool == true)
        #expect((untrusted.last as? String)?.contains("does not count as acme/late@1's publisher signature") == true, "\(untrusted)")
        #expect(out["between"] as? Int == 403)
        let trusted = try #require(out["trusted"] as? [Any])
        #expect(trusted.first as? Int == 201 && trusted.last is NSNull, "\(trusted)")
        #expect(out["after"] as? Int == 200, "the attached signature counts")
        #expect(out["referrers"] as? Int == 5, "three of the registry's and the two pushed")
        let shown = try registry.custody("show", "acme/late@1")
        #expect(shown.stdout.contains("publisher: verified (pipeline)"), "\(shown.stdout)")
        let log = try registry.custody("audit", "log", "--model", "acme/late", "--type", "signature.attach")
        #expect(log.stdout.contains("attached as an OCI referrer"), "\(log.stdout)")
    }
}

extension OCITests {
    /// Admission and Gatekeeper decide image references of this registry (`oci.hosts`) as they decide model
    /// references: a pod that mounts a model car (a container or an image volume) is admitted or denied by the same
    /// decision, by tag or by manifest digest; a reference to another registry is refused, never guessed.
    @Test func admissionDecidesModelCarImages() throws {
        let scratch = try Scratch()
        let home = scratch.path + "/Registry"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Tools.packageRoot + "/Registry/policies", toPath: home + "/policies")
        try Data("admission:\n  namespaces:\n    inference-prod: production\noci:\n  hosts: [\"custody.internal:5000\"]\n".utf8)
            .write(to: URL(fileURLWithPath: home + "/custody.yaml"))
        let key = scratch.path + "/pipeline"
        try #require(try Tools.custody("keys", "generate", "--out", key).status == 0)
        try FileManager.default.createDirectory(atPath: scratch.path + "/Keys/trusted", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: key + ".pub", toPath: scratch.path + "/Keys/trusted/pipeline.pub")
        let registry = try RegistryProcess(scratch: scratch)
        let model = try GateTests.model(registry, "car", salt: "car")
        for (name, license) in [("acme/ok", "apache-2.0"), ("acme/nc", "cc-by-nc-4.0")] {
            let published = try registry.custody(
                ["publish", model, "--name", name, "--version", "1", "--sign-key", key + ".key", "--source", "https://x", "--license", license])
            try #require(published.status == 0, "\(published.stderr)")
        }
        let manifest = try registry.http("HEAD", "/v2/acme/nc/manifests/1", token: registry.adminToken)
        let digest = try #require(manifest.headers["Docker-Content-Digest"])
        let gate = try registry.token("--role", "gate", "--name", "apiserver")

        func review(_ spec: [String: Any]) throws -> [String: Any] {
            let object: [String: Any] = [
                "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": [
                    "uid": "u", "namespace": "inference-prod", "operation": "CREATE",
                    "object": ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "llm-0"], "spec": spec],
                ],
            ]
            let response = try registry.http(
                "POST", "/v1/admission", token: gate, headers: ["Content-Type": "application/json"],
                body: try JSONSerialization.data(withJSONObject: object))
            let answer = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
            return try #require(answer["response"] as? [String: Any])
        }
        let server = ["name": "server", "image": "vllm/vllm-openai:v0.6.0"]
        let allowed = try review(["containers": [server, ["name": "model", "image": "custody.internal:5000/acme/ok:1"]]])
        #expect(allowed["allowed"] as? Bool == true, "\(allowed)")
        let denied = try review([
            "containers": [server], "volumes": [["name": "weights", "image": ["reference": "custody.internal:5000/acme/nc@\(digest)"]]],
        ])
        #expect(denied["allowed"] as? Bool == false)
        let message = try #require((denied["status"] as? [String: Any])?["message"] as? String)
        #expect(message.contains("acme/nc@\(digest) is denied in production: licence: licence class research"), "\(message)")
        let unrelated = try review(["containers": [server, ["name": "sidecar", "image": "other.io/acme/nc:1"]]])
        #expect(unrelated["allowed"] as? Bool == true, "images of other registries are not models of this one: \(unrelated)")

        let body = Data(
            #"{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["custody.internal:5000/acme/ok:1","other.io/acme/ok:1","custody.internal:5000/acme/nc:2@\#(digest)"]}}"#
                .utf8)
        let response = try registry.http("POST", "/v1/gatekeeper?environment=production", token: gate, body: body)
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
        let items = try #require((answer["response"] as? [String: Any])?["items"] as? [[String: Any]])
        #expect((items[0]["value"] as? [String: Any])?["allowed"] as? Bool == true, "\(items)")
        #expect((items[1]["error"] as? String)?.contains("names the registry other.io, not this one") == true, "\(items)")
        #expect((items[2]["error"] as? String)?.contains("not of the tag 2") == true, "\(items)")
    }
}
