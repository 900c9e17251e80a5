#!/usr/bin/env bash
# What slow and idle clients cost: the daemon's resident memory before, during and after COUNT connections that each
# send half a request header and stall (slowloris), and whether /healthz answers meanwhile; then that the header
# timeout closes them on its own.
#
#   bench/connections.sh          (COUNT=3000 by default)
#
# Goals: COUNT half-open connections add < 50 MB; RSS within 20 % of its idle value after they close; every one is
# closed by the header timeout (30 s by default; 5 s here) without the client closing it.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/gate-setup.sh
ulimit -n "$(ulimit -Hn)"   # COUNT client sockets and as many in the daemon

exec python3 - "$custody" "${COUNT:-3000}" <<'PY'
import re, shutil, socket, sys, tempfile, time
sys.path.insert(0, "bench")
from fixture import Registry

custody, count = sys.argv[1], int(sys.argv[2])
work = tempfile.mkdtemp(prefix="custody-connections-bench-")
registry = Registry(custody, work, config="limits:\n  headerTimeout: 5s\n  maxConnections: 10000\n")

def rss():
    status = open(f"/proc/{registry.server.pid}/status").read()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024

def get(path):
    """A GET on a connection of its own (the header timeout closes idle keep-alive connections)."""
    c = socket.create_connection(("127.0.0.1", registry.port))
    c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    answer = b""
    while data := c.recv(65536):
        answer += data
    c.close()
    return answer

def open_connections():
    text = get("/metrics").decode()
    return int(float(re.search(r"^custody_open_connections ([\d.e+]+)", text, re.M).group(1)))

def healthz():
    return get("/healthz").startswith(b"HTTP/1.1 200")

def half_open(n):
    held = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", registry.port))
        s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nUser-Agent: slow")
        held.append(s)
    while open_connections() <= n:   # the daemon has accepted them all (the /metrics request is one more)
        time.sleep(0.1)
    return held

for _ in range(200):
    registry.call("GET", "/v1/models")
idle = rss()

# 1. Held open: memory while COUNT clients stall, then after the clients close them.
held = half_open(count)
time.sleep(1)
during = rss()
answered = healthz()
for s in held:
    s.close()
while open_connections() > 1:
    time.sleep(0.1)
time.sleep(2)   # the trim after a burst runs off the event loop
after_close = rss()

# 2. Left open: the header timeout closes them; the clients only watch.
held = half_open(count)
start = time.perf_counter()
closed = 0
for s in held:
    s.settimeout(120)
    try:
        closed += s.recv(1) == b""
    except ConnectionResetError:
        closed += 1
elapsed = time.perf_counter() - start
for s in held:
    s.close()
while open_connections() > 1:
    time.sleep(0.1)
time.sleep(2)
after_timeout = rss()
registry.stop()
shutil.rmtree(work)

added = during - idle
print(f"{count} connections sending half a request header, one daemon (RSS from /proc/PID/status):")
print(f"  idle {idle:.1f} MB, with {count} held open {during:.1f} MB (+{added:.1f} MB, {added * 1024 / count:.1f} KB each), "
      f"after they closed {after_close:.1f} MB, after the header timeout closed them {after_timeout:.1f} MB")
print(f"  /healthz while they were held: {'200' if answered else 'no answer'}; closed by the daemon's 5 s header timeout: {closed} of {count} within {elapsed:.1f} s")
print("\ngoals:")
print(f"  [{'met' if added < 50 else 'MISSED'}] {count} half-open connections add {added:.1f} MB (< 50)")
worst = max(after_close, after_timeout)
print(f"  [{'met' if worst <= idle * 1.2 else 'MISSED'}] RSS after they close {worst:.1f} MB, {100 * (worst / idle - 1):+.0f} % of idle {idle:.1f} MB (within 20 %)")
print(f"  [{'met' if closed == count and answered else 'MISSED'}] all closed by the header timeout, /healthz answered meanwhile")
PY
