"""A registry for benchmarks: a daemon on a free loopback port with the committed policies, a trusted publisher key,
and models, versions and advisories loaded through the HTTP API (the same path a pipeline takes)."""
import base64, hashlib, http.client, json, os, random, re, shutil, subprocess, sys, time


class Registry:
    def __init__(self, custody, work, config=None):
        """`config`: the text of the home's custody.yaml (the defaults when None)."""
        self.custody, self.work = custody, work
        self.home, self.keys = f"{work}/Registry", f"{work}/Keys"
        os.makedirs(self.keys + "/trusted")
        shutil.copytree("Registry/policies", self.home + "/policies")
        if config is not None:
            with open(self.home + "/custody.yaml", "w") as f:
                f.write(config)
        subprocess.run([custody, "keys", "generate", "--out", f"{work}/pipeline"], check=True, capture_output=True)
        shutil.copy(f"{work}/pipeline.pub", self.keys + "/trusted/pipeline.pub")
        self.log = open(f"{work}/serve.log", "w+")
        self.server = subprocess.Popen([custody, "serve", "--home", self.home, "--keys", self.keys, "--listen", "127.0.0.1:0"],
                                       stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, "CUSTODY_LOG_LEVEL": "warning"})
        self.port = self.token = None
        for _ in range(400):
            text = open(f"{work}/serve.log").read()
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
            t = re.search(r"admin token[^:]*: (cst_[A-Za-z0-9_-]+)", text)
            if m and t:
                self.port, self.token = int(m.group(1)), t.group(1)
                break
            time.sleep(0.05)
        if not self.port:
            sys.exit("the registry did not start:\n" + open(f"{work}/serve.log").read())
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def call(self, method, path, body=None, content="application/json", token=None):
        headers = {"Authorization": "Bearer " + (token or self.token)}
        if body is not None:
            headers["Content-Type"] = content
        try:
            self.conn.request(method, path, body=body, headers=headers)
            r = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # The daemon closes keep-alive connections left idle past its header timeout: open a new one.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.request(method, path, body=body, headers=headers)
            r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            sys.exit(f"{method} {path}: {r.status} {data[:300]!r}")
        return data

    def timed(self, method, path, runs=21):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.call(method, path)
            times.append((time.perf_counter() - start) * 1000)
        return sorted(times)[len(times) // 2]

    def token_for(self, role, name):
        return subprocess.run([self.custody, "token", "create", "--home", self.home, "--role", role, "--name", name],
                              capture_output=True, text=True, check=True).stdout.strip()

    def load(self, models, versions, advisories, seed=7):
        """`models` × `versions` signed, scanned versions of one small bundle; licences mixed; `advisories` over
        SEMVER ranges. Returns the model names."""
        bundle = f"{self.work}/bundle"
        os.makedirs(bundle)
        header = b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
        header += b" " * (-len(header) % 8)
        with open(f"{bundle}/model.safetensors", "wb") as f:
            f.write(len(header).to_bytes(8, "little") + header + bytes(16))
        with open(f"{bundle}/config.json", "w") as f:
            f.write('{"model_type": "llama"}\n')
        subprocess.run([self.custody, "sign", bundle, "--key", f"{self.work}/pipeline.key"], check=True, capture_output=True)
        signature = base64.b64encode(open(f"{bundle}/model.sig", "rb").read()).decode()
        files = []
        for name in ["config.json", "model.safetensors"]:
            data = open(f"{bundle}/{name}", "rb").read()
            files.append({"path": name, "size": len(data), "digest": "sha256:" + hashlib.sha256(data).hexdigest()})
            self.call("PUT", f"/v1/blobs/{files[-1]['digest']}", data, "application/octet-stream")
        random.seed(seed)
        licences = ["apache-2.0"] * 7 + ["llama3.1"] * 2 + ["cc-by-nc-4.0"]
        names = [f"bench{i // 100}/model-{i:04}" for i in range(models)]
        for model in names:
            licence = random.choice(licences)
            for v in range(versions):
                body = {"version": f"1.{v}.0", "files": files, "license": {"id": licence},
                        "provenance": {"source": {"uri": f"https://huggingface.co/{model}"}}, "signature": signature}
                self.call("POST", f"/v1/models/{model}/versions", json.dumps(body))
        for i in range(advisories):
            model = random.choice(names)
            first = random.randrange(versions)
            advisory = {"id": f"x_BENCH-{i:04}", "modified": "2026-11-01T00:00:00Z",
                        "database_specific": {"severity": random.choice(["low", "medium", "high", "critical"])},
                        "affected": [{"package": {"ecosystem": "Custody", "name": model},
                                      "ranges": [{"type": "SEMVER", "events": [{"introduced": f"1.{first}.0"}, {"fixed": f"1.{min(first + 3, versions - 1)}.0"}]}]}]}
            self.call("POST", "/v1/advisories", json.dumps(advisory))
        return names

    def verify_script(self, names, versions, token, count=2000, seed=11):
        """A wrk Lua script cycling through `count` verify requests."""
        random.seed(seed)
        environments = ["production", "staging", "research"]
        bodies = [json.dumps({"model": f"{random.choice(names)}@1.{random.randrange(versions)}.0", "environment": random.choice(environments)})
                  for _ in range(count)]
        script = f"{self.work}/verify.lua"
        with open(script, "w") as f:
            f.write("local bodies = {\n" + ",\n".join(json.dumps(b) for b in bodies) + "\n}\n")
            f.write('local i = 0\nwrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
            f.write(f'wrk.headers["Authorization"] = "Bearer {token}"\n')
            f.write("request = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, \"/v1/verify\", nil, bodies[i])\nend\n")
        return script

    def wrk(self, path, extra, connections=64, duration="20s"):
        r = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}", "--latency", *extra, f"http://127.0.0.1:{self.port}{path}"],
                           capture_output=True, text=True, check=True)
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", r.stdout).group(1))
        def latency(p):
            m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", r.stdout)
            return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
        return rate, latency(50), latency(99), int(errors.group(1)) if errors else 0

    def sql(self, query):
        return subprocess.run(["python3", "-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])",
                               f"{self.home}/data/custody.sqlite", query], capture_output=True, text=True).stdout.strip()

    def stop(self):
        self.conn.close()
        self.server.terminate()
        self.server.wait(timeout=60)
