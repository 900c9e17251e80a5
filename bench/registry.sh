#!/usr/bin/env bash
# Registry throughput over loopback, side by side in one run:
#   a) `custody publish` of an 8-shard 4 GiB model, end to end (hashing, upload, version), against pushing the same
#      files as blobs to the CNCF distribution registry (Debian `docker-registry`) with curl;
#   b) `custody pull` (verifies every byte and the registry signature) against curl downloading the same files from
#      nginx with sendfile, bare and followed by `openssl dgst -sha256` of each file;
#   c) the custody daemon's peak RSS during both.
#
#   bench/registry.sh                      (RUNS=3 by default; BENCH_DIR as in bench/sign.sh)
#   FILES=4 FILE_MIB=256 bench/registry.sh (the model's shape: 8 files of 512 MiB by default)
#
# Installs docker-registry, nginx-light and curl from Debian if they are missing. Every server listens on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-3}
data=${BENCH_DIR:-.build/bench-data}
custody=${CUSTODY_BIN:-"$(swift build -c release --product custody --show-bin-path)/custody"}
[ -x "$custody" ] || { echo "build first: make release" >&2; exit 2; }
missing=()
for tool in docker-registry:docker-registry nginx:nginx-light curl:curl openssl:openssl; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

exec python3 - "$custody" "$data" "$runs" <<'PY'
import json, os, shutil, signal, statistics, subprocess, sys, tempfile, time, urllib.request

custody, data, runs = sys.argv[1], os.path.abspath(sys.argv[2]), int(sys.argv[3])
MiB = 1 << 20
nfiles, file_mib = int(os.environ.get("FILES", "8")), int(os.environ.get("FILE_MIB", "512"))
model = f"{data}/registry-model" if (nfiles, file_mib) == (8, 512) else f"{data}/registry-model-{nfiles}x{file_mib}"
work = tempfile.mkdtemp(prefix="custody-bench-")

def make_model():
    os.makedirs(model, exist_ok=True)
    block = os.urandom(MiB)
    for i in range(nfiles):
        path = f"{model}/model-{i+1:05}-of-{nfiles:05}.safetensors"
        if os.path.exists(path) and os.path.getsize(path) == file_mib * MiB:
            continue
        with open(path + ".tmp", "wb") as f:
            f.write(i.to_bytes(8, "little"))
            for _ in range(file_mib):
                f.write(block)
            f.truncate(file_mib * MiB)
        os.replace(path + ".tmp", path)
    with open(f"{model}/config.json", "w") as f:
        f.write('{"architectures": ["LlamaForCausalLM"]}\n')

def files():
    return sorted(os.path.join(model, n) for n in os.listdir(model))

def size():
    return sum(os.path.getsize(p) for p in files())

def settle():
    # Flush earlier runs' writes before timing the next one, so that no run pays for another's writeback.
    subprocess.run(["sync"], check=True)

def timed(argv, **kw):
    settle()
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - start

def wait_port(url):
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.05)
    sys.exit(f"{url} did not come up")

def start_custody(home):
    os.makedirs(home, exist_ok=True)
    out = open(f"{home}.out", "w+")
    proc = subprocess.Popen([custody, "serve", "--home", f"{home}/Registry", "--keys", f"{home}/Keys", "--listen", "127.0.0.1:18480"],
                            stdout=out, stderr=subprocess.DEVNULL)
    for _ in range(400):
        out.seek(0)
        text = out.read()
        if "listening on" in text:
            token = text.split("hash is stored): ")[1].split()[0] if "hash is stored" in text else None
            return proc, token
        time.sleep(0.05)
    sys.exit("custody did not start")

def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

def drop(path):
    shutil.rmtree(path, ignore_errors=True)

make_model()
total = size()
for p in files():
    subprocess.run(["cat", p], stdout=subprocess.DEVNULL, check=True)
print(f"model: {len(files())} files, {total/1e9:.2f} GB, in the page cache; {runs} runs each, medians\n")

# --- a) publish -------------------------------------------------------------------------------------------------
registry_config = f"{work}/distribution.yml"
publish_custody, publish_distribution, upload_only = [], [], []
peaks = []
for run in range(runs):
    home = f"{work}/custody-{run}"
    proc, token = start_custody(home)
    env = dict(os.environ, CUSTODY_REGISTRY="http://127.0.0.1:18480", CUSTODY_TOKEN=token)
    publish_custody.append(timed([custody, "publish", model, "--name", "bench/llama", "--version", "1", "--quiet"], env=env))
    peaks.append(peak_rss_mib(proc.pid))
    proc.send_signal(signal.SIGTERM); proc.wait()
    drop(home)

    storage = f"{work}/distribution-{run}"
    with open(registry_config, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {storage}\nhttp:\n  addr: 127.0.0.1:18481\n")
    reg = subprocess.Popen(["docker-registry", "serve", registry_config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port("http://127.0.0.1:18481/v2/")
    # What a client must do to push blobs: hash each file (for the digest), then POST + PUT it; 4 files at a time.
    script = ('d=$(sha256sum "$1" | cut -d" " -f1); '
              'loc=$(curl -sf -X POST -D - -o /dev/null http://127.0.0.1:18481/v2/bench/llama/blobs/uploads/ | tr -d "\\r" | sed -n "s/^[Ll]ocation: //p"); '
              'case "$loc" in *\\?*) sep="&";; *) sep="?";; esac; '
              'curl -sf -T "$1" -H "Content-Type: application/octet-stream" "$loc${sep}digest=sha256:$d" -o /dev/null')
    settle()
    start = time.perf_counter()
    subprocess.run(["xargs", "-P", "4", "-n", "1", "sh", "-c", script, "push"], input="\n".join(files()).encode(), check=True)
    publish_distribution.append(time.perf_counter() - start)
    reg.send_signal(signal.SIGTERM); reg.wait()
    drop(storage)

# --- b) pull ----------------------------------------------------------------------------------------------------
home = f"{work}/custody-pull"
proc, token = start_custody(home)
env = dict(os.environ, CUSTODY_REGISTRY="http://127.0.0.1:18480", CUSTODY_TOKEN=token)
subprocess.run([custody, "publish", model, "--name", "bench/llama", "--version", "1", "--quiet"], env=env, check=True, stdout=subprocess.DEVNULL)
with open(f"{work}/nginx.conf", "w") as f:
    f.write(f"daemon off; worker_processes 2; pid {work}/nginx.pid; error_log {work}/nginx.err;\n"
            f"events {{}}\nhttp {{ sendfile on; tcp_nopush on; access_log off; server {{ listen 127.0.0.1:18482; root {model}; }} }}\n")
nginx = subprocess.Popen(["nginx", "-c", f"{work}/nginx.conf", "-p", work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_port("http://127.0.0.1:18482/config.json")
names = [os.path.basename(p) for p in files()]
pull_custody, pull_curl, pull_curl_dgst, pull_curl_sync = [], [], [], []
for run in range(runs):
    out = f"{work}/pulled-{run}"
    pull_custody.append(timed([custody, "pull", "bench/llama@1", "--output", out, "--registry-key", f"{home}/Keys/registry.pub", "--quiet"], env=env))
    drop(out)
    os.makedirs(out)
    urls = "\n".join(f"http://127.0.0.1:18482/{n}" for n in names).encode()
    settle()
    start = time.perf_counter()
    subprocess.run(["xargs", "-P", "4", "-n", "1", "curl", "-sfO"], input=urls, cwd=out, check=True)
    pull_curl.append(time.perf_counter() - start)
    subprocess.run(["openssl", "dgst", "-sha256"] + sorted(os.listdir(out)), cwd=out, check=True, stdout=subprocess.DEVNULL)
    pull_curl_dgst.append(time.perf_counter() - start)
    drop(out)
    # The same download made durable, as custody pull makes it (it syncs before the model appears).
    os.makedirs(out)
    settle()
    start = time.perf_counter()
    subprocess.run(["xargs", "-P", "4", "-n", "1", "curl", "-sfO"], input=urls, cwd=out, check=True)
    subprocess.run(["sync", "-f", out], check=True)
    pull_curl_sync.append(time.perf_counter() - start)
    drop(out)
peaks.append(peak_rss_mib(proc.pid))
proc.send_signal(signal.SIGTERM); proc.wait()
nginx.send_signal(signal.SIGQUIT); nginx.wait()
drop(work)

def row(name, samples):
    m = statistics.median(samples)
    print(f"  {name:44} {m:7.2f} s  {total/m/1e9:5.2f} GB/s   runs: {', '.join(f'{s:.2f}' for s in samples)}")
    return m

print("a) publish")
c = row("custody publish (hash + upload + version)", publish_custody)
d = row("distribution: sha256sum + curl push", publish_distribution)
print("b) pull")
p = row("custody pull (verifies every byte)", pull_custody)
b = row("nginx -> curl (verifies nothing)", pull_curl)
v = row("nginx -> curl, then openssl dgst -sha256", pull_curl_dgst)
durable = row("nginx -> curl, then sync -f (durable)", pull_curl_sync)
peak = max(peaks)
print("\ngoals:")
print(f"  [{'met' if d / c >= 3 else 'MISSED'}] a) custody publish {d / c:.2f} x faster than distribution + curl (>= 3)")
print(f"  [{'met' if p < v else 'MISSED'}] b) custody pull {v / p:.2f} x faster than curl + openssl dgst (> 1)")
print(f"  [{'met' if b / p >= 0.6 else 'MISSED'}] b) custody pull at {b / p:.2f} x the throughput of bare curl from nginx (>= 0.6)")
print(f"  [info] b) custody pull at {durable / p:.2f} x the throughput of curl from nginx made durable with sync -f")
print(f"  [{'met' if peak < 300 else 'MISSED'}] c) custody daemon peak RSS {peak:.0f} MiB (< 300)")
PY
