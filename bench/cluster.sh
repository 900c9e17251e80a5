#!/usr/bin/env bash
# Scale-out throughput, both backends in one run: the same gate load (`wrk` on POST /v1/verify, MODELS models × 10
# versions, 50 advisories, the committed policies, 64 connections) against daemons on the embedded default (SQLite
# and files) and on PostgreSQL + S3 (SeaweedFS, started here by scripts/engines on loopback), RUNS alternating runs
# each, medians compared. Two daemons per backend: one as deployed (`audit.repeatWindow: 1s`, repeats counted into
# one event) for the verify comparison, and one with `repeatWindow: 0`, where every decision is its own log event
# appended by the event recorder in batches before its answer: its events appended per second are the append rate.
#
#   bench/cluster.sh              (MODELS=200 DURATION=15s CONNECTIONS=64 RUNS=3 by default)
#
# Goals (issue 16): /v1/verify on PostgreSQL >= 0.7x SQLite; >= 5,000 event appends/s on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/gate-setup.sh
scripts/bootstrap --interop >/dev/null
engines="$(mktemp -d /tmp/custody-bench-engines.XXXXXX)"
trap 'scripts/engines stop "$engines"' EXIT
scripts/engines start "$engines" >/dev/null
# shellcheck disable=SC1091
source "$engines/env"

exec python3 - "$custody" "${MODELS:-200}" "${DURATION:-15s}" "${CONNECTIONS:-64}" "${RUNS:-3}" <<'PY'
import json, os, re, shutil, statistics, subprocess, sys, tempfile, time, uuid
sys.path.insert(0, "bench")
from fixture import Registry

custody, models, duration, connections, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
postgres, endpoint = os.environ["CUSTODY_TEST_POSTGRES"], os.environ["CUSTODY_TEST_S3_ENDPOINT"]
host, port = postgres.split(":")
configs = {"deployed": "audit:\n  origin: bench.localhost/log\n  repeatWindow: 1s\n",
           "every": "audit:\n  origin: bench.localhost/log\n  repeatWindow: 0s\n"}

def on_engines():
    name = "bench_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", "-h", host, "-p", port, "-U", "custody", "-d", "custody", "-qc", f"CREATE DATABASE {name}"],
                   check=True, env={**os.environ, "PGPASSWORD": "custody"})
    return {"CUSTODY_METADATA": f"postgres://custody@{postgres}/{name}?sslmode=disable", "CUSTODY_POSTGRES_PASSWORD": "custody",
            "CUSTODY_BLOBS": f"s3://custody/{name}?endpoint={endpoint}&region=us-east-1",
            "CUSTODY_S3_ACCESS_KEY_ID": "custody", "CUSTODY_S3_SECRET_ACCESS_KEY": "custodysecret123"}

def start(backend, config):
    saved = dict(os.environ)
    os.environ.update(on_engines() if backend == "postgres" else {})
    work = tempfile.mkdtemp(prefix=f"custody-cluster-bench-{backend}-")
    registry = Registry(custody, work, config)
    t = time.perf_counter()
    names = registry.load(models=models, versions=10, advisories=50)
    print(f"{backend} ({'repeat window 1s' if config == configs['deployed'] else 'every decision an event'}): loaded {models} models x 10 versions and 50 advisories in {time.perf_counter() - t:.1f} s", flush=True)
    script = registry.verify_script(names, 10, registry.token_for("gate", "bench"))
    os.environ.clear(); os.environ.update(saved)
    return registry, work, script

def log_size(registry):
    note = registry.call("GET", "/v1/audit/checkpoint").decode()
    time.sleep(0.6)  # the signer's round: the checkpoint then covers every committed event
    note = registry.call("GET", "/v1/audit/checkpoint").decode()
    return int(note.split("\n")[1])

daemons = {(b, c): start(b, configs[c]) for b in ["sqlite", "postgres"] for c in ["deployed", "every"]}
results = {"sqlite": [], "postgres": []}
appends = {"sqlite": [], "postgres": []}
for run in range(runs):
    for name in ["sqlite", "postgres"]:
        registry, _, script = daemons[(name, "deployed")]
        rate = registry.wrk("/v1/verify", ["-s", script], connections, duration)
        results[name].append(rate)
        registry, _, script = daemons[(name, "every")]
        before, t = log_size(registry), time.perf_counter()
        every = registry.wrk("/v1/verify", ["-s", script], connections, duration)
        elapsed = time.perf_counter() - t
        appended = log_size(registry) - before
        appends[name].append(appended / elapsed)
        print(f"  run {run + 1} {name:8} verify {rate[0]:8.0f} req/s  p99 {rate[2]:6.2f} ms  non-2xx {rate[3]};"
              f"  every decision an event: {every[0]:8.0f} req/s, {appended / elapsed:8.0f} events/s", flush=True)
for registry, work, _ in daemons.values():
    registry.stop()
    shutil.rmtree(work)

def median(name, i):
    return statistics.median(r[i] for r in results[name])
print(f"\nwrk -t2 -c{connections} -d{duration}, {models} models x 10 versions, medians of {runs} alternating runs:")
for name in ["sqlite", "postgres"]:
    print(f"  {name:8} POST /v1/verify {median(name, 0):8.0f} req/s   p50 {median(name, 1):6.2f} ms   p99 {median(name, 2):6.2f} ms"
          f"   event appends {statistics.median(appends[name]):8.0f}/s")
ratio = median("postgres", 0) / median("sqlite", 0)
rate = statistics.median(appends["postgres"])
print("\ngoals:")
print(f"  [{'met' if ratio >= 0.7 else 'MISSED'}] /v1/verify on PostgreSQL at {ratio:.2f} x SQLite (>= 0.7)")
print(f"  [{'met' if rate >= 5000 else 'MISSED'}] {rate:.0f} event appends/s on PostgreSQL (>= 5,000)")
PY
