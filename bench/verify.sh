#!/usr/bin/env bash
# Gate throughput: `wrk` against POST /v1/verify and GET /healthz of the same daemon, in one run, with 1,000 models
# × 10 versions and 100 advisories loaded (the committed default policies; a signed, scanned bundle per version;
# licences mixed permissive / conditional / research; advisories over ranges of versions), 64 connections, 20 s each.
#
#   bench/verify.sh               (DURATION=20s CONNECTIONS=64 by default)
#
# Goal: verify at >= 0.5x the /healthz request rate, p99 < 10 ms. Installs wrk from Debian if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

custody=${CUSTODY_BIN:-"$(swift build -c release --product custody --show-bin-path)/custody"}
[ -x "$custody" ] || { echo "build first: make release" >&2; exit 2; }
if ! command -v wrk >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi

exec python3 - "$custody" "${DURATION:-20s}" "${CONNECTIONS:-64}" <<'PY'
import base64, hashlib, http.client, json, os, random, re, shutil, signal, subprocess, sys, tempfile, time

custody, duration, connections = sys.argv[1], sys.argv[2], sys.argv[3]
work = tempfile.mkdtemp(prefix="custody-verify-bench-")
home, keys = f"{work}/Registry", f"{work}/Keys"
os.makedirs(keys + "/trusted")
shutil.copytree("Registry/policies", home + "/policies")
subprocess.run([custody, "keys", "generate", "--out", f"{work}/pipeline"], check=True, capture_output=True)
shutil.copy(f"{work}/pipeline.pub", keys + "/trusted/pipeline.pub")

# One small bundle (a valid safetensors file and a config), signed once by the trusted key; every version lists it.
bundle = f"{work}/bundle"
os.makedirs(bundle)
header = b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
header += b" " * (-len(header) % 8)
with open(f"{bundle}/model.safetensors", "wb") as f:
    f.write(len(header).to_bytes(8, "little") + header + bytes(16))
with open(f"{bundle}/config.json", "w") as f:
    f.write('{"model_type": "llama"}\n')
subprocess.run([custody, "sign", bundle, "--key", f"{work}/pipeline.key"], check=True, capture_output=True)
signature = base64.b64encode(open(f"{bundle}/model.sig", "rb").read()).decode()
files = []
for name in ["config.json", "model.safetensors"]:
    data = open(f"{bundle}/{name}", "rb").read()
    files.append({"path": name, "size": len(data), "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "data": data})

log = open(f"{work}/serve.log", "w+")
server = subprocess.Popen([custody, "serve", "--home", home, "--keys", keys, "--listen", "127.0.0.1:0"],
                          stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "CUSTODY_LOG_LEVEL": "warning"})
port = token = None
for _ in range(400):
    text = open(f"{work}/serve.log").read()
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
    t = re.search(r"admin token[^:]*: (cst_[A-Za-z0-9_-]+)", text)
    if m and t:
        port, token = int(m.group(1)), t.group(1)
        break
    time.sleep(0.05)
if not port:
    sys.exit("the registry did not start:\n" + open(f"{work}/serve.log").read())

conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
def call(method, path, body=None, content="application/json"):
    headers = {"Authorization": "Bearer " + token}
    if body is not None:
        headers["Content-Type"] = content
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {data[:300]!r}")
    return data

for f in files:
    call("PUT", f"/v1/blobs/{f['digest']}", f["data"], "application/octet-stream")

random.seed(7)
licences = ["apache-2.0"] * 7 + ["llama3.1"] * 2 + ["cc-by-nc-4.0"]
models = [f"bench{i // 100}/model-{i:04}" for i in range(1000)]
start = time.perf_counter()
for model in models:
    licence = random.choice(licences)
    for v in range(10):
        body = {"version": f"1.{v}.0", "files": [{k: f[k] for k in ("path", "size", "digest")} for f in files],
                "license": {"id": licence}, "provenance": {"source": {"uri": f"https://huggingface.co/{model}"}},
                "signature": signature}
        call("POST", f"/v1/models/{model}/versions", json.dumps(body))
print(f"loaded 1,000 models x 10 versions in {time.perf_counter() - start:.1f} s")
for i in range(100):
    model = random.choice(models)
    first = random.randrange(10)
    advisory = {"id": f"x_BENCH-{i:04}", "modified": "2026-11-01T00:00:00Z",
                "database_specific": {"severity": random.choice(["low", "medium", "high", "critical"])},
                "affected": [{"package": {"ecosystem": "Custody", "name": model},
                              "ranges": [{"type": "SEMVER", "events": [{"introduced": f"1.{first}.0"}, {"fixed": f"1.{min(first + 3, 9)}.0"}]}]}]}
    call("POST", "/v1/advisories", json.dumps(advisory))
print("loaded 100 advisories")
conn.close()

gate = subprocess.run([custody, "token", "create", "--home", home, "--role", "gate", "--name", "bench"], capture_output=True, text=True, check=True).stdout.strip()
environments = ["production", "staging", "research"]
bodies = [json.dumps({"model": f"{random.choice(models)}@1.{random.randrange(10)}.0", "environment": random.choice(environments)}) for _ in range(2000)]
script = f"{work}/verify.lua"
with open(script, "w") as f:
    f.write("local bodies = {\n" + ",\n".join(json.dumps(b) for b in bodies) + "\n}\n")
    f.write('local i = 0\nwrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
    f.write(f'wrk.headers["Authorization"] = "Bearer {gate}"\n')
    f.write("request = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, \"/v1/verify\", nil, bodies[i])\nend\n")
    f.write('response = function(status, headers, body)\n  if status ~= 200 then io.stderr:write("status " .. status .. "\\n") end\nend\n')

def wrk(path, extra):
    r = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}", "--latency", *extra, f"http://127.0.0.1:{port}{path}"],
                       capture_output=True, text=True, check=True)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", r.stdout).group(1))
    def latency(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", r.stdout)
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    return rate, latency(50), latency(99), int(errors.group(1)) if errors else 0, r.stderr.count("status ")

health = wrk("/healthz", [])
verify = wrk("/v1/verify", ["-s", script])
server.send_signal(signal.SIGTERM)
server.wait(timeout=30)
events = subprocess.run(["python3", "-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from events where type='decision'\").fetchone()[0])",
                         f"{home}/data/custody.sqlite"], capture_output=True, text=True).stdout.strip()
shutil.rmtree(work)

print(f"\nwrk -t2 -c{connections} -d{duration}, same daemon, one after the other:")
print(f"  GET  /healthz     {health[0]:10.0f} req/s   p50 {health[1]:6.2f} ms   p99 {health[2]:6.2f} ms")
print(f"  POST /v1/verify   {verify[0]:10.0f} req/s   p50 {verify[1]:6.2f} ms   p99 {verify[2]:6.2f} ms   non-200: {verify[3]}")
print(f"  decisions recorded as events: {events}")
ratio = verify[0] / health[0]
print("\ngoals:")
print(f"  [{'met' if ratio >= 0.5 else 'MISSED'}] verify at {ratio:.2f} x the /healthz rate (>= 0.5)")
print(f"  [{'met' if verify[2] < 10 else 'MISSED'}] verify p99 {verify[2]:.2f} ms (< 10 ms)")
PY
