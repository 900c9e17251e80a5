#!/usr/bin/env bash
# The audit log at scale, on one daemon: append 1,000,000 events through the real API (gate decisions, each one
# event, each a leaf of the Merkle tree, with the repeat window off; checkpoints signed every half second meanwhile)
# and report events/s; then,
# on that database, the p50 of a model's history, of an advisory's exposure report, and of an inclusion proof.
#
#   bench/audit.sh                (EVENTS=1000000 by default)
#
# Goals: >= 5,000 events/s sustained; history and exposure p50 < 20 ms; inclusion proof p50 < 5 ms. Installs wrk
# from Debian if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/gate-setup.sh

exec python3 - "$custody" "${EVENTS:-1000000}" <<'PY'
import os, random, shutil, sys, tempfile, time
sys.path.insert(0, "bench")
from fixture import Registry

custody, target = sys.argv[1], int(sys.argv[2])
work = tempfile.mkdtemp(prefix="custody-audit-bench-")
# Every decision its own event (no repeat window): this measures how fast the log takes events.
registry = Registry(custody, work, config="audit:\n  repeatWindow: 0\n")
names = registry.load(models=100, versions=10, advisories=10)
script = registry.verify_script(names, 10, registry.token_for("gate", "bench"))

start = time.perf_counter()
first = int(registry.sql("select count(*) from events"))
rates = []
while int(registry.sql("select count(*) from events")) - first < target:
    before = int(registry.sql("select count(*) from events"))
    t0 = time.perf_counter()
    registry.wrk("/v1/verify", ["-s", script], 64, "20s")
    after = int(registry.sql("select count(*) from events"))
    rates.append((after - before) / (time.perf_counter() - t0))
elapsed = time.perf_counter() - start
total = int(registry.sql("select count(*) from events"))
appended = total - first
time.sleep(1.5)  # let the checkpointer sign the last appends
signed = int(registry.sql("select max(size) from checkpoints"))
checkpoints = int(registry.sql("select count(*) from checkpoints"))

model = names[0]
history = registry.timed("GET", f"/v1/audit/events?model={model}&limit=1000")
exposure = registry.timed("GET", "/v1/advisories/x_BENCH-0000")
proofs = [registry.timed("GET", f"/v1/audit/proof/inclusion?index={random.randrange(signed)}&size={signed}", runs=1) for _ in range(51)]
proof = sorted(proofs)[len(proofs) // 2]
history_rows = registry.sql(f"select count(*) from events where model = '{model}'")
registry.stop()
size = sum(os.path.getsize(f"{registry.home}/data/{name}") for name in os.listdir(f"{registry.home}/data") if name.startswith("custody.sqlite"))
shutil.rmtree(work)

print(f"appended {appended:,} events in {elapsed:.0f} s: {appended / elapsed:,.0f} events/s "
      f"(per 20 s round: {', '.join(f'{r:,.0f}' for r in rates)}); {checkpoints:,} checkpoints signed, the last at size {signed:,}")
print(f"database: {size / 2**20:,.0f} MiB for {total:,} events ({size / total * 1e6 / 2**20:,.0f} MiB per million)")
print(f"p50 of 21: history of {model} (first page of 1,000 of its {history_rows} events) {history:.1f} ms; exposure of x_BENCH-0000 {exposure:.1f} ms; "
      f"inclusion proof at size {signed:,} {proof:.2f} ms (p50 of 51)")
print("\ngoals:")
print(f"  [{'met' if appended / elapsed >= 5000 else 'MISSED'}] {appended / elapsed:,.0f} events/s sustained (>= 5,000)")
print(f"  [{'met' if max(history, exposure) < 20 else 'MISSED'}] history {history:.1f} ms, exposure {exposure:.1f} ms (p50 < 20 ms)")
print(f"  [{'met' if proof < 5 else 'MISSED'}] inclusion proof {proof:.2f} ms (p50 < 5 ms)")
PY
