#!/usr/bin/env bash
# Signing throughput: custody sign vs. the reference `model_signing sign key` (PyPI model-signing 1.1.1), side by
# side in one run, against the machine's SHA-256 limit measured by `openssl speed` in the same run.
#
#   bench/sign.sh                  (or: make bench)
#   RUNS=7 BENCH_DIR=/tmp/b bench/sign.sh
#
# Models are generated once under $BENCH_DIR (default .build/bench-data, about 8.6 GB) and read from the page cache:
#   a) 8 files of 512 MiB        b) 10,000 files of 4 KiB in 100 folders        c) one 4 GiB file, --method shards
# Prints the median wall time and peak RSS of each tool per scenario, the ratios, and whether each goal is met.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-5}
data=${BENCH_DIR:-.build/bench-data}
custody=${CUSTODY_BIN:-"$(swift build -c release --product custody --show-bin-path)/custody"}
venv=${CUSTODY_INTEROP_VENV:-.venv-interop}
[ -x "$custody" ] || { echo "build first: make release" >&2; exit 2; }
[ -x "$venv/bin/model_signing" ] || { echo "no model_signing in $venv: scripts/bootstrap --interop" >&2; exit 2; }
command -v openssl >/dev/null || { echo "openssl is needed for the SHA-256 reference figure" >&2; exit 2; }

exec "$venv/bin/python" - "$custody" "$venv/bin/model_signing" "$data" "$runs" <<'PY'
import os, statistics, subprocess, sys, time

custody, model_signing, data, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
MiB = 1 << 20
os.makedirs(data, exist_ok=True)
cores = os.cpu_count()

def generate():
    block = os.urandom(MiB)
    def fill(path, size, tag):
        if os.path.exists(path) and os.path.getsize(path) == size:
            return
        with open(path + ".tmp", "wb") as f:
            f.write(tag.to_bytes(8, "little"))
            written = 8
            while written < size:
                n = min(MiB, size - written)
                f.write(block[:n]); written += n
        os.replace(path + ".tmp", path)
    os.makedirs(f"{data}/a", exist_ok=True)
    for i in range(8):
        fill(f"{data}/a/shard-{i:02}.safetensors", 512 * MiB, i)
    if not os.path.exists(f"{data}/b/d099/f099.bin"):
        for d in range(100):
            os.makedirs(f"{data}/b/d{d:03}", exist_ok=True)
            for f in range(100):
                with open(f"{data}/b/d{d:03}/f{f:03}.bin", "wb") as fh:
                    fh.write(os.urandom(4096))
    os.makedirs(f"{data}/c", exist_ok=True)
    fill(f"{data}/c/model.bin", 4096 * MiB, 99)

def keys():
    key = f"{data}/bench"
    if not os.path.exists(key + ".key"):
        subprocess.run([custody, "keys", "generate", "--out", key], check=True, stdout=subprocess.DEVNULL)
    return key + ".key"

def warm(path):
    for root, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                while f.read(16 * MiB):
                    pass

def measure(argv):
    """Wall seconds and peak RSS (MiB) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"failed: {' '.join(argv)}: {proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024

def openssl_single_core():
    out = subprocess.run(["openssl", "speed", "-evp", "sha256", "-bytes", str(MiB), "-seconds", "3"],
                         capture_output=True, text=True, check=True).stdout
    line = [l for l in out.splitlines() if l.startswith("sha256")][-1]
    return float(line.split()[-1].rstrip("k")) * 1000  # bytes/s

def size_of(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)

print(f"generating models under {data} (once) ...", flush=True)
generate()
key = keys()
sig = f"{data}/out.sig"
single = statistics.median(openssl_single_core() for _ in range(3))
limit = single * cores
print(f"openssl speed -evp sha256 (1 MiB blocks): {single/1e9:.2f} GB/s per core; limit on {cores} cores: {limit/1e9:.2f} GB/s\n")

scenarios = [
    ("a) 8 x 512 MiB", f"{data}/a", [], True),
    ("b) 10,000 x 4 KiB", f"{data}/b", [], True),
    ("c) 1 x 4 GiB, shards", f"{data}/c/model.bin", ["--method", "shards"], False),
]
results = {}
print(f"{'scenario':24} {'tool':14} {'median s':>9} {'GB/s':>7} {'peak MiB':>9}   (median of {runs})")
for title, path, extra, compare in scenarios:
    warm(path)
    size = size_of(path)
    tools = {"custody": [custody, "sign", path, "--key", key, "--signature", sig] + extra}
    if compare:
        tools["model_signing"] = [model_signing, "sign", "key", path, "--private_key", key, "--signature", sig]
    samples = {name: [] for name in tools}
    for _ in range(runs):  # interleaved, so that machine noise hits both tools alike
        for name, argv in tools.items():
            samples[name].append(measure(argv))
    for name in tools:
        wall = statistics.median(s[0] for s in samples[name])
        rss = max(s[1] for s in samples[name])
        results[(title, name)] = (wall, rss, size / wall)
        print(f"{title:24} {name:14} {wall:9.3f} {size/wall/1e9:7.2f} {rss:9.1f}")

def goal(text, ok):
    print(f"  [{'met' if ok else 'MISSED'}] {text}")

a_c, a_m = results[("a) 8 x 512 MiB", "custody")], results[("a) 8 x 512 MiB", "model_signing")]
b_c, b_m = results[("b) 10,000 x 4 KiB", "custody")], results[("b) 10,000 x 4 KiB", "model_signing")]
c_c = results[("c) 1 x 4 GiB, shards", "custody")]
print("\ngoals:")
goal(f"a) throughput {a_c[2]/limit:.1%} of the SHA-256 limit (>= 90%)", a_c[2] >= 0.9 * limit)
goal(f"a) wall {a_c[0]/a_m[0]:.2f} x model_signing (<= 0.80)", a_c[0] <= 0.8 * a_m[0])
goal(f"b) wall {b_c[0]/b_m[0]:.2f} x model_signing (<= 0.25)", b_c[0] <= 0.25 * b_m[0])
goal(f"c) throughput {c_c[2]/single:.2f} x the single-core limit (>= 1.6)", c_c[2] >= 1.6 * single)
peak = max(r[1] for (t, n), r in results.items() if n == "custody")
goal(f"d) custody peak RSS {peak:.0f} MiB (< 200)", peak < 200)
PY
