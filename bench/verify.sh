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
import os, shutil, sys, tempfile, time
sys.path.insert(0, "bench")
from fixture import Registry

custody, duration, connections = sys.argv[1], sys.argv[2], int(sys.argv[3])
work = tempfile.mkdtemp(prefix="custody-verify-bench-")
registry = Registry(custody, work)
start = time.perf_counter()
names = registry.load(models=1000, versions=10, advisories=100)
print(f"loaded 1,000 models x 10 versions and 100 advisories in {time.perf_counter() - start:.1f} s")
script = registry.verify_script(names, 10, registry.token_for("gate", "bench"))
health = registry.wrk("/healthz", [], connections, duration)
verify = registry.wrk("/v1/verify", ["-s", script], connections, duration)
events = registry.sql("select count(*) from events where type='decision'")
registry.stop()
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
