#!/usr/bin/env bash
# The Hugging Face front door over loopback, side by side in one run:
#   a) huggingface_hub 2.4.0 `snapshot_download` of a 4-file 2 GiB model from Custody (empty cache each run), against
#      curl downloading the same files from nginx with sendfile (4 at a time, as registry.sh does);
#      and against huggingface_hub's own HTTP stack (httpx2, 10 MB chunks, 8 threads) reading the same files from nginx:
#      the client's ceiling, whatever the server;
#   b) `HfApi.upload_folder` of the same model into an empty registry against `custody publish` of it (each run on a
#      fresh registry home, so that no blob is already there);
#   c) warm metadata calls as from_pretrained makes them with the files cached (`hf_hub_download`: one HEAD per file),
#      per call: median and p99.
#
#   bench/huggingface.sh                       (RUNS=3 by default; BENCH_DIR as in bench/sign.sh)
#   FILES=4 FILE_MIB=512 bench/huggingface.sh  (the model's shape)
#
# Needs the release binary (make release) and .venv-hf (scripts/bootstrap --interop). Installs nginx-light and curl
# from Debian if they are missing. Every server listens on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-3}
data=${BENCH_DIR:-.build/bench-data}
custody=${CUSTODY_BIN:-"$(swift build -c release --product custody --show-bin-path)/custody"}
[ -x "$custody" ] || { echo "build first: make release" >&2; exit 2; }
[ -x .venv-hf/bin/python ] || { echo "no .venv-hf: run scripts/bootstrap --interop" >&2; exit 2; }
missing=()
for tool in nginx:nginx-light curl:curl; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

exec .venv-hf/bin/python - "$custody" "$data" "$runs" <<'PY'
import os, shutil, signal, statistics, subprocess, sys, tempfile, time, urllib.request

custody, data, runs = sys.argv[1], os.path.abspath(sys.argv[2]), int(sys.argv[3])
MiB = 1 << 20
nfiles, file_mib = int(os.environ.get("FILES", "4")), int(os.environ.get("FILE_MIB", "512"))
model = f"{data}/hub-model-{nfiles}x{file_mib}"
work = tempfile.mkdtemp(prefix="custody-bench-hub-")

os.makedirs(model, exist_ok=True)
block = os.urandom(MiB)
for i in range(nfiles):
    path = f"{model}/model-{i+1:05}-of-{nfiles:05}.safetensors"
    if not (os.path.exists(path) and os.path.getsize(path) == file_mib * MiB):
        with open(path + ".tmp", "wb") as f:
            f.write(i.to_bytes(8, "little"))
            for _ in range(file_mib):
                f.write(block)
            f.truncate(file_mib * MiB)
        os.replace(path + ".tmp", path)
with open(f"{model}/config.json", "w") as f:
    f.write('{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}\n')
names = sorted(os.listdir(model))
total = sum(os.path.getsize(f"{model}/{n}") for n in names)
for n in names:
    subprocess.run(["cat", f"{model}/{n}"], stdout=subprocess.DEVNULL, check=True)

def wait_port(url):
    for _ in range(400):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except Exception:
            time.sleep(0.05)
    sys.exit(f"{url} did not come up")

def start(home):
    out = open(f"{home}.out", "w+")
    proc = subprocess.Popen([custody, "serve", "--home", f"{home}/Registry", "--keys", f"{home}/Keys", "--listen", "127.0.0.1:18490"],
                            stdout=out, stderr=subprocess.DEVNULL)
    for _ in range(400):
        out.seek(0)
        text = out.read()
        if "listening on" in text:
            return proc, text.split("hash is stored): ")[1].split()[0]
        time.sleep(0.05)
    sys.exit("custody did not start")

uploader = ("import sys, time\n"
            "from huggingface_hub import HfApi\n"
            "api = HfApi(); api.create_repo('bench/up', exist_ok=True)\n"
            "start = time.perf_counter(); api.upload_folder(repo_id='bench/up', folder_path=sys.argv[1]); print(time.perf_counter() - start)\n")
publish_custody, upload_hub = [], []
for run in range(runs):
    for kind in ("publish", "upload"):
        home = f"{work}/fresh-{kind}-{run}"
        proc, token = start(home)
        subprocess.run(["sync"], check=True)
        if kind == "publish":
            env = dict(os.environ, CUSTODY_REGISTRY="http://127.0.0.1:18490", CUSTODY_TOKEN=token)
            begin = time.perf_counter()
            subprocess.run([custody, "publish", model, "--name", "bench/up", "--version", "1", "--license", "apache-2.0", "--quiet"],
                           env=env, check=True, stdout=subprocess.DEVNULL)
            publish_custody.append(time.perf_counter() - begin)
        else:
            hub = dict(os.environ, HF_ENDPOINT="http://127.0.0.1:18490", HF_TOKEN=token, HF_HOME=f"{home}/hf", HF_HUB_DISABLE_XET="1",
                       HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
            result = subprocess.run([sys.executable, "-c", uploader, model], env=hub, check=True, capture_output=True, text=True)
            upload_hub.append(float(result.stdout.split()[-1]))
        proc.send_signal(signal.SIGTERM); proc.wait()
        shutil.rmtree(home)

home = f"{work}/custody"
proc, token = start(home)
env = dict(os.environ, CUSTODY_REGISTRY="http://127.0.0.1:18490", CUSTODY_TOKEN=token)
subprocess.run([custody, "publish", model, "--name", "bench/llama", "--version", "1", "--license", "apache-2.0", "--quiet"],
               env=env, check=True, stdout=subprocess.DEVNULL)
with open(f"{work}/nginx.conf", "w") as f:
    f.write(f"daemon off; worker_processes 2; pid {work}/nginx.pid; error_log {work}/nginx.err;\n"
            f"events {{}}\nhttp {{ sendfile on; tcp_nopush on; access_log off; server {{ listen 127.0.0.1:18491; root {model}; }} }}\n")
nginx = subprocess.Popen(["nginx", "-c", f"{work}/nginx.conf", "-p", work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_port("http://127.0.0.1:18491/config.json")

client = ("import os, sys, time\n"
          "from huggingface_hub import snapshot_download\n"
          "start = time.perf_counter(); snapshot_download('bench/llama'); print(time.perf_counter() - start)\n")
warm = ("import os, sys, time, statistics\n"
        "from huggingface_hub import hf_hub_download, snapshot_download\n"
        "snapshot_download('bench/llama')\n"
        "names = sys.argv[1:]; samples = []\n"
        "for _ in range(40):\n"
        "    for name in names:\n"
        "        start = time.perf_counter(); hf_hub_download('bench/llama', name); samples.append(time.perf_counter() - start)\n"
        "samples.sort(); print(statistics.median(samples), samples[int(len(samples) * 0.99) - 1])\n")

raw = ("import os, sys, time, httpx2, concurrent.futures\n"
       "names, target = sys.argv[1:-1], sys.argv[-1]\n"
       "def get(name):\n"
       "    with httpx2.stream('GET', 'http://127.0.0.1:18491/' + name) as r, open(os.path.join(target, name), 'wb') as f:\n"
       "        for chunk in r.iter_bytes(chunk_size=10 * 1024 * 1024): f.write(chunk)\n"
       "start = time.perf_counter()\n"
       "with concurrent.futures.ThreadPoolExecutor(8) as pool: list(pool.map(get, names))\n"
       "print(time.perf_counter() - start)\n")

def hub_env(cache):
    return dict(os.environ, HF_ENDPOINT="http://127.0.0.1:18490", HF_TOKEN=token, HF_HOME=cache, HF_HUB_DISABLE_TELEMETRY="1",
                HF_HUB_DISABLE_UPDATE_CHECK="1", HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1")

snapshot, curl, client_ceiling = [], [], []
for run in range(runs):
    cache = f"{work}/hf-{run}"
    subprocess.run(["sync"], check=True)
    result = subprocess.run([sys.executable, "-c", client], env=hub_env(cache), check=True, capture_output=True, text=True)
    snapshot.append(float(result.stdout.split()[-1]))
    shutil.rmtree(cache)
    target = f"{work}/curl-{run}"
    os.makedirs(target)
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    urls = "\n".join(f"http://127.0.0.1:18491/{n}" for n in names).encode()
    subprocess.run(["xargs", "-P", "4", "-n", "1", "curl", "-sfO"], input=urls, cwd=target, check=True)
    curl.append(time.perf_counter() - start)
    shutil.rmtree(target)
    os.makedirs(target)
    subprocess.run(["sync"], check=True)
    result = subprocess.run([sys.executable, "-c", raw] + names + [target], check=True, capture_output=True, text=True)
    client_ceiling.append(float(result.stdout.split()[-1]))
    shutil.rmtree(target)

cache = f"{work}/hf-warm"
result = subprocess.run([sys.executable, "-c", warm] + names, env=hub_env(cache), check=True, capture_output=True, text=True)
median_call, p99_call = (float(x) for x in result.stdout.split()[-2:])
proc.send_signal(signal.SIGTERM); proc.wait()
nginx.send_signal(signal.SIGQUIT); nginx.wait()
shutil.rmtree(work)

def row(name, samples):
    m = statistics.median(samples)
    print(f"  {name:52} {m:7.2f} s  {total/m/1e9:5.2f} GB/s   runs: {', '.join(f'{s:.2f}' for s in samples)}")
    return m

print(f"model: {len(names)} files, {total/1e9:.2f} GB, in the page cache; {runs} runs each, medians\n")
print("a) download")
s = row("huggingface_hub snapshot_download from custody", snapshot)
c = row("nginx -> curl, 4 at a time (verifies nothing)", curl)
h = row("nginx -> httpx2 as huggingface_hub reads (its ceiling)", client_ceiling)
print("b) upload into an empty registry")
u = row("huggingface_hub upload_folder", upload_hub)
p = row("custody publish", publish_custody)
print("c) warm metadata (hf_hub_download with the file cached: one HEAD)")
print(f"  per call: median {median_call*1000:.1f} ms, p99 {p99_call*1000:.1f} ms over {40*len(names)} calls")
print("\ngoals:")
print(f"  [{'met' if c / s >= 0.8 else 'MISSED'}] a) snapshot_download at {c / s:.2f} x the throughput of curl from nginx (>= 0.8)")
print(f"  [info] a) snapshot_download at {h / s:.2f} x the throughput of the same HTTP client reading from nginx")
print(f"  [{'met' if u / p <= 1.5 else 'MISSED'}] b) upload_folder takes {u / p:.2f} x the time of custody publish (<= 1.5)")
print(f"  [{'met' if p99_call < 0.020 else 'MISSED'}] c) warm metadata call p99 {p99_call*1000:.1f} ms (< 20 ms)")
PY
