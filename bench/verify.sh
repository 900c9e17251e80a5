#!/usr/bin/env bash
# Gate throughput: `wrk` against POST /v1/verify and GET /healthz of the same daemon, in one run, with 1,000 models
# × 10 versions and 100 advisories loaded (the committed default policies; a signed, scanned bundle per version;
# licences mixed permissive / conditional / research; advisories over ranges of versions), 64 connections, 20 s each,
# 2,000 distinct verify requests (model, version, environment) cycled by one gate token. The first verify run starts
# cold (nothing decided since the load); then /healthz and /v1/verify alternate RUNS times and the medians are compared.
#
#   bench/verify.sh               (DURATION=20s CONNECTIONS=64 RUNS=3 by default)
#
# Goal: verify at >= 0.5x the /healthz request rate, p99 < 10 ms. Installs wrk from Debian if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/gate-setup.sh

exec python3 - "$custody" "${DURATION:-20s}" "${CONNECTIONS:-64}" "${RUNS:-3}" <<'PY'
import os, shutil, statistics, sys, tempfile, time
sys.path.insert(0, "bench")
from fixture import Registry

custody, duration, connections, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
work = tempfile.mkdtemp(prefix="custody-verify-bench-")
registry = Registry(custody, work)
start = time.perf_counter()
names = registry.load(models=1000, versions=10, advisories=100)
print(f"loaded 1,000 models x 10 versions and 100 advisories in {time.perf_counter() - start:.1f} s")
script = registry.verify_script(names, 10, registry.token_for("gate", "bench"))
# Cold: nothing decided yet since the load, so the first of the 2,000 distinct requests are evaluated and recorded.
cold = registry.wrk("/v1/verify", ["-s", script], connections, duration)
# Warm: a gate in service, its decisions kept; /healthz and /v1/verify alternate, medians of the runs.
health, verify = [], []
for _ in range(runs):
    health.append(registry.wrk("/healthz", [], connections, duration))
    verify.append(registry.wrk("/v1/verify", ["-s", script], connections, duration))
events = registry.sql("select count(*) from events where type='decision'")
decisions = registry.sql("select sum(count) from events where type='decision'")
registry.stop()
shutil.rmtree(work)

def median(results, i):
    return statistics.median(r[i] for r in results)
ratios = [v[0] / h[0] for h, v in zip(health, verify)]
print(f"\nwrk -t2 -c{connections} -d{duration}, one daemon; warm figures are medians of {runs} alternating runs:")
print(f"  GET  /healthz          {median(health, 0):10.0f} req/s   p50 {median(health, 1):6.2f} ms   p99 {median(health, 2):6.2f} ms")
print(f"  POST /v1/verify        {median(verify, 0):10.0f} req/s   p50 {median(verify, 1):6.2f} ms   p99 {median(verify, 2):6.2f} ms"
      f"   non-200: {sum(v[3] for v in verify)}")
print(f"  POST /v1/verify, cold  {cold[0]:10.0f} req/s   p50 {cold[1]:6.2f} ms   p99 {cold[2]:6.2f} ms   (first run after the load)")
print(f"  runs: verify/healthz " + ", ".join(f"{r:.2f}" for r in ratios) + "; verify p99 " + ", ".join(f"{v[2]:.2f}" for v in verify) + " ms")
print(f"  decisions answered: {decisions}, recorded as {events} events (repeats within the repeat window counted into one)")
ratio = statistics.median(ratios)
p99 = median(verify, 2)
print("\ngoals:")
print(f"  [{'met' if ratio >= 0.5 else 'MISSED'}] verify at {ratio:.2f} x the /healthz rate (>= 0.5)")
print(f"  [{'met' if p99 < 10 else 'MISSED'}] verify p99 {p99:.2f} ms (< 10 ms)")
PY
