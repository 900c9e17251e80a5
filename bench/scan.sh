#!/usr/bin/env bash
# Scanner detection and speed against the peers, in one run, over the picklescan corpus (read in place):
#   picklescan, modelscan and fickling (PyPI, in .venv-scan) and `custody inspect`, file by file side by side, plus
#   the wall time of each tool over the whole corpus (medians of RUNS runs), and `custody inspect` of a 4 GiB
#   safetensors model (headers only).
#
#   bench/scan.sh                 (RUNS=5 by default; CUSTODY_CORPUS=DIR to point at another copy of the corpus)
#
# Goals: no file that any peer flags is missed by Custody; Custody scans the corpus >= 5x faster than picklescan;
# inspecting a 4 GiB safetensors model takes < 1 s.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-5}
custody=${CUSTODY_BIN:-"$(swift build -c release --product custody --show-bin-path)/custody"}
[ -x "$custody" ] || { echo "build first: make release" >&2; exit 2; }
corpus=${CUSTODY_CORPUS:-}
if [ -z "$corpus" ]; then
  dir=$(pwd)
  while [ "$dir" != "/" ]; do
    [ -f "$dir/shared/corpus/picklescan/expectations.tsv" ] && { corpus="$dir/shared/corpus"; break; }
    dir=$(dirname "$dir")
  done
fi
[ -n "$corpus" ] || { echo "no corpus found: set CUSTODY_CORPUS to the directory holding picklescan/" >&2; exit 2; }

venv=.venv-scan
if ! "$venv/bin/python" -c 'import picklescan, modelscan, fickling' 2>/dev/null; then
  echo "bench: creating $venv with picklescan, modelscan and fickling"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet picklescan==1.0.5 modelscan==0.8.8 fickling==0.1.12 typing_extensions
fi

exec "$venv/bin/python" - "$custody" "$corpus/picklescan" "$venv/bin" "$runs" <<'PY'
import json, os, statistics, subprocess, sys, tempfile, time

custody, corpus, bin, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
dirs = ["data", "data2"]
expect = {}
for line in open(f"{corpus}/expectations.tsv").read().splitlines()[1:]:
    fields = line.split("\t")
    expect[fields[0]] = fields[1]
files = sorted(expect)

def run(argv):
    return subprocess.run(argv, capture_output=True, text=True)

def picklescan(path):
    r = run([f"{bin}/picklescan", "-p", path])
    return {0: "clean", 1: "flagged"}.get(r.returncode, "error")

def modelscan(path):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        r = run([f"{bin}/modelscan", "-p", path, "-r", "json", "-o", out.name])
        try:
            report = json.load(open(out.name))
        except Exception:
            return "error"
    summary = report.get("summary", {})
    if summary.get("total_issues", 0) > 0:
        return "flagged"
    if summary.get("scanned", {}).get("total_scanned", 0) == 0:
        return "skipped"
    return "clean"

scratch = tempfile.mkdtemp(prefix="custody-scan-bench-")
fickling_json = f"{scratch}/fickling.json"

def fickling(path):
    # fickling exits non-zero even for LIKELY_SAFE; its verdict is the severity in the JSON it writes (appending,
    # hence the fresh file). It reads bare pickles only: a parse failure is not a finding.
    if os.path.exists(fickling_json):
        os.unlink(fickling_json)
    r = run([f"{bin}/fickling", "--check-safety", "--json-output", fickling_json, path])
    output = r.stdout + r.stderr
    if "Traceback" in output or "failed to parse" in output:
        return "error"
    try:
        severity = json.load(open(fickling_json)).get("severity", "")
    except Exception:
        return "error"
    return "clean" if severity == "LIKELY_SAFE" else "flagged"

def custody_reports():
    verdicts = {}
    for d in dirs:
        r = run([custody, "inspect", "--json", f"{corpus}/{d}"])
        for f in json.loads(r.stdout)["files"]:
            verdicts[f"{d}/{f['path']}"] = f["verdict"] + ("" if f.get("invalid") is None else "*")
    return verdicts

ours = custody_reports()
rows, missed = [], []
for name in files:
    path = f"{corpus}/{name}"
    peers = {"picklescan": picklescan(path), "modelscan": modelscan(path), "fickling": fickling(path)}
    mine = ours.get(name, "missing")
    flagged_by = [p for p, v in peers.items() if v == "flagged"]
    if flagged_by and mine.rstrip("*") == "clean":
        missed.append((name, flagged_by))
    rows.append((name, expect[name], mine, peers))

width = max(len(n) for n in files)
print(f"corpus: {corpus} ({len(files)} files)   (* = custody also reports the file invalid)\n")
print(f"{'file':<{width}}  {'expected':<9}  {'custody':<12}  {'picklescan':<10}  {'modelscan':<9}  fickling")
for name, expected, mine, peers in rows:
    print(f"{name:<{width}}  {expected:<9}  {mine:<12}  {peers['picklescan']:<10}  {peers['modelscan']:<9}  {peers['fickling']}")

def tally(tool):
    values = [r[2] if tool == "custody" else r[3][tool] for r in rows]
    flagged = sum(1 for r, v in zip(rows, values) if (v.rstrip("*") != "clean" if tool == "custody" else v == "flagged"))
    dangerous_caught = sum(1 for r, v in zip(rows, values) if r[1] == "dangerous" and (v.rstrip("*") == "dangerous" if tool == "custody" else v == "flagged"))
    return flagged, dangerous_caught
total_dangerous = sum(1 for r in rows if r[1] == "dangerous")
print(f"\nexpected dangerous: {total_dangerous}")
for tool in ["custody", "picklescan", "modelscan", "fickling"]:
    flagged, caught = tally(tool)
    print(f"  {tool:<10}  flags {flagged:3d} files, catches {caught:3d}/{total_dangerous} expected dangerous")

def timed(argvs):
    start = time.perf_counter()
    for argv in argvs:
        subprocess.run(argv, capture_output=True)
    return time.perf_counter() - start

scenarios = {
    "custody inspect": [[custody, "inspect", f"{corpus}/{d}"] for d in dirs],
    "picklescan -p": [[f"{bin}/picklescan", "-p", f"{corpus}/{d}"] for d in dirs],
    "modelscan -p": [[f"{bin}/modelscan", "-p", f"{corpus}/{d}"] for d in dirs],
    "fickling -s (per file)": [[f"{bin}/fickling", "--check-safety", "--json-output", fickling_json, f"{corpus}/{n}"] for n in files],
}
times = {name: [] for name in scenarios}
for _ in range(runs):
    for name, argvs in scenarios.items():
        times[name].append(timed(argvs))
print(f"\nwall time over the whole corpus, median of {runs} runs:")
med = {name: statistics.median(t) for name, t in times.items()}
for name, t in times.items():
    print(f"  {name:<24} {med[name]:8.3f} s   runs: {', '.join(f'{x:.3f}' for x in t)}")

# A 4 GiB safetensors model: 32 tensors of 128 MiB. The data is sparse on disk; inspect reads only the header.
work = tempfile.mkdtemp(prefix="custody-scan-bench-")
big = f"{work}/model.safetensors"
tensor = 128 << 20
entries = ",".join(f'"layer.{i}.weight":{{"dtype":"BF16","shape":[8192,8192],"data_offsets":[{i*tensor},{(i+1)*tensor}]}}' for i in range(32))
header = ("{" + entries + "}").encode()
header += b" " * (-len(header) % 8)
with open(big, "wb") as f:
    f.write(len(header).to_bytes(8, "little") + header)
    f.truncate(8 + len(header) + 32 * tensor)
big_times = []
for _ in range(runs):
    start = time.perf_counter()
    r = subprocess.run([custody, "inspect", big], capture_output=True, text=True)
    big_times.append(time.perf_counter() - start)
    assert r.returncode == 0, r.stdout + r.stderr
os.unlink(big); os.rmdir(work)
big_median = statistics.median(big_times)
print(f"  custody inspect, 4 GiB safetensors {big_median:8.3f} s   runs: {', '.join(f'{x:.3f}' for x in big_times)}")

ratio = med["picklescan -p"] / med["custody inspect"]
print("\ngoals:")
print(f"  [{'met' if not missed else 'MISSED'}] files flagged by a peer but clean in custody: {len(missed)}"
      + "".join(f"\n      {n} (flagged by {', '.join(p)})" for n, p in missed))
print(f"  [{'met' if ratio >= 5 else 'MISSED'}] custody scans the corpus {ratio:.1f} x faster than picklescan (>= 5)")
print(f"  [{'met' if big_median < 1 else 'MISSED'}] custody inspect of a 4 GiB safetensors model: {big_median:.3f} s (< 1 s)")
PY
