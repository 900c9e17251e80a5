#!/usr/bin/env bash
# A refused-request flood against the log and the gate: `wrk -t2 -c32 -d10s` with a bogus bearer token against
# GET /v1/models, while a legitimate gate token asks POST /v1/verify from 4 connections. Reports the log leaves the
# flood added (events before and after), the flood's answers by status (401 first, then 429 from the failed-
# authentication limit) and the verify p99 with and without the flood, medians of RUNS alternating runs.
#
#   bench/flood.sh            (DURATION=10s RUNS=3 by default; 100 models x 3 versions and 10 advisories loaded)
#
# Goals: the flood adds at most a few dozen leaves (< 50), verify p99 during it within 2x its quiet value.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/gate-setup.sh

exec python3 - "$custody" "${DURATION:-10s}" "${RUNS:-3}" <<'PY'
import re, shutil, statistics, subprocess, sys, tempfile, time
sys.path.insert(0, "bench")
from fixture import Registry

custody, duration, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
work = tempfile.mkdtemp(prefix="custody-flood-bench-")
registry = Registry(custody, work)
names = registry.load(models=100, versions=3, advisories=10)
script = registry.verify_script(names, 3, registry.token_for("gate", "bench"), count=300)
url = f"http://127.0.0.1:{registry.port}"

def wrk(threads, connections, path, extra):
    return subprocess.Popen(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}", "--latency", *extra, url + path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

def parse(output):
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", output)
    return rate, float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]

def statuses():
    text = registry.call("GET", "/metrics").decode()
    return {int(s): float(n) for s, n in re.findall(r'custody_http_requests_total\{method="GET",status="(\d+)"\} ([\d.e+]+)', text)}

def leaves():
    """Leaves the flood can add: refusals and token uses (the gate's own decisions are counted apart)."""
    return int(registry.sql("select count(*) from events where type in ('request.denied', 'token.use')"))

verify = lambda: wrk(1, 4, "/v1/verify", ["-s", script])
wrk(1, 4, "/v1/verify", ["-s", script]).communicate()   # warm: decisions kept, as in service
quiet, loud, added, answers = [], [], [], []
for _ in range(runs):
    quiet.append(parse(verify().communicate()[0]))
    before, counts = leaves(), statuses()
    flood = wrk(2, 32, "/v1/models", ["-H", "Authorization: Bearer cst_bogus_token_from_a_hostile_client"])
    gate = verify()
    flood_out, gate_out = flood.communicate()[0], gate.communicate()[0]
    loud.append(parse(gate_out))
    registry.call("GET", "/readyz")
    after = statuses()
    # Repeats of the last window are written when it closes: wait for the writer, then count.
    time.sleep(2)
    added.append(leaves() - before)
    answers.append((parse(flood_out)[0], after.get(401, 0) - counts.get(401, 0), after.get(429, 0) - counts.get(429, 0)))
registry.stop()
shutil.rmtree(work)

p99_quiet = statistics.median(q[1] for q in quiet)
p99_loud = statistics.median(l[1] for l in loud)
print(f"flood: wrk -t2 -c32 -d{duration} GET /v1/models with a bogus token; gate: wrk -t1 -c4 -d{duration} POST /v1/verify; medians of {runs} runs")
for i, ((rate, a401, a429), leaf) in enumerate(zip(answers, added)):
    print(f"  run {i + 1}: flood {rate:8.0f} answers/s ({a401:.0f} x 401, {a429:.0f} x 429), log leaves added {leaf}, "
          f"verify p99 quiet {quiet[i][1]:.2f} ms / flooded {loud[i][1]:.2f} ms, verify {quiet[i][0]:.0f} / {loud[i][0]:.0f} req/s")
leaf = statistics.median(added)
print("\ngoals:")
print(f"  [{'met' if leaf < 50 else 'MISSED'}] log leaves added by a {duration} flood: {leaf:.0f} (a few dozen at most)")
print(f"  [{'met' if p99_loud <= 2 * p99_quiet else 'MISSED'}] verify p99 {p99_loud:.2f} ms during the flood, {p99_loud / p99_quiet:.2f} x quiet {p99_quiet:.2f} ms (<= 2x)")
PY
