#!/usr/bin/env bash
# The OCI front door over loopback against CNCF distribution 2.8.2 (Debian's docker-registry), side by side in one run:
#   a) push: skopeo 1.9.3 copies an 8-layer ModelPack artifact (8 x 512 MiB safetensors files, 4 GiB) from an oci:
#      layout into an empty registry (a fresh home / storage directory each run, so no blob is already there).
#      Custody hashes while it writes, then scans, signs and records the version; distribution stores the blobs;
#   b) pull: skopeo copies it back into an empty oci: layout. Custody checks the gate and serves what it verified at
#      publish; distribution serves its files.
#   c) skopeo's own ceiling: the same copy from one oci: layout into another, no registry (skopeo hashes what it reads
#      in one thread: this bounds a) and b) whatever the server);
#   d) the servers without skopeo: curl uploads the 8 layer blobs, 4 at a time (POST a session, PUT the body with
#      ?digest=, as oras does), into an empty registry of its own, then downloads them, 4 at a time, to /dev/null
#      (on S3 a second time with the local copies deleted: a cold read, fetched from the bucket while served);
#
#   bench/oci.sh                         (RUNS=3 by default; BENCH_DIR as in bench/sign.sh)
#   LAYERS=8 LAYER_MIB=512 bench/oci.sh  (the artifact's shape)
#   STORE=s3 bench/oci.sh                both registries on one SeaweedFS S3 (started here by scripts/engines on
#                                        loopback): Custody with PostgreSQL + S3, distribution with its s3 driver, proxying
#                                        pulls (redirect disabled, as Custody proxies and verifies by default); 4 x 512 MiB
#
# Needs the release binary (make release), skopeo and docker-registry (scripts/bootstrap --interop). Every server
# listens on 127.0.0.1; both keep their data on the same disk.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-3}
data=${BENCH_DIR:-.build/bench-data}
custody=${CUSTODY_BIN:-"$(swift build -c release --product custody --show-bin-path)/custody"}
[ -x "$custody" ] || { echo "build first: make release" >&2; exit 2; }
for tool in skopeo docker-registry; do
  command -v "$tool" >/dev/null || { echo "no $tool: run scripts/bootstrap --interop" >&2; exit 2; }
done
export STORE="${STORE:-files}"
if [ "$STORE" = s3 ]; then
  export LAYERS="${LAYERS:-4}"
  engines="$(mktemp -d /tmp/custody-bench-engines.XXXXXX)"
  trap 'scripts/engines stop "$engines"' EXIT
  scripts/engines start "$engines" >/dev/null
  # shellcheck disable=SC1091
  source "$engines/env"
fi

# Not exec: with STORE=s3 the trap stops the engines afterwards.
python3 - "$custody" "$data" "$runs" <<'PY'
import hashlib, json, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time

custody, data, runs = sys.argv[1], os.path.abspath(sys.argv[2]), int(sys.argv[3])
on_s3 = os.environ["STORE"] == "s3"
MiB = 1 << 20
layers, layer_mib = int(os.environ.get("LAYERS", "8")), int(os.environ.get("LAYER_MIB", "512"))
layout = f"{data}/oci-modelpack-{layers}x{layer_mib}"
os.makedirs(data, exist_ok=True)
work = tempfile.mkdtemp(prefix="custody-bench-oci-", dir=data)

def put_blob(data_bytes=None, path=None, media_type=None, annotations=None):
    if path is None:
        digest = hashlib.sha256(data_bytes).hexdigest()
        with open(f"{layout}/blobs/sha256/{digest}", "wb") as f:
            f.write(data_bytes)
        size = len(data_bytes)
    else:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(8 * MiB):
                h.update(chunk)
        digest, size = h.hexdigest(), os.path.getsize(path)
        os.replace(path, f"{layout}/blobs/sha256/{digest}")
    descriptor = {"mediaType": media_type, "digest": f"sha256:{digest}", "size": size}
    if annotations:
        descriptor["annotations"] = annotations
    return descriptor

# The artifact, written once into BENCH_DIR: valid safetensors files (a header, then the tensor's bytes).
if not os.path.exists(f"{layout}/index.json"):
    shutil.rmtree(layout, ignore_errors=True)
    os.makedirs(f"{layout}/blobs/sha256")
    block = os.urandom(MiB)
    descriptors = []
    for i in range(layers):
        name = f"model-{i+1:05}-of-{layers:05}.safetensors"
        payload = layer_mib * MiB - 4096
        header = json.dumps({"w": {"dtype": "U8", "shape": [payload], "data_offsets": [0, payload]}}).encode()
        header += b" " * (4096 - 8 - len(header))
        tmp = f"{layout}/{name}.tmp"
        with open(tmp, "wb") as f:
            f.write(len(header).to_bytes(8, "little") + header)
            f.write(i.to_bytes(8, "little"))
            for _ in range(layer_mib):
                f.write(block)
            f.truncate(layer_mib * MiB)
        descriptors.append(put_blob(path=tmp, media_type="application/vnd.cncf.model.weight.v1.raw",
                                    annotations={"org.cncf.model.filepath": name, "org.opencontainers.image.title": name}))
    config = json.dumps({"descriptor": {"name": "bench", "licenses": ["Apache-2.0"]}, "config": {"format": "safetensors"},
                         "modelfs": {"type": "layers", "diffIds": [d["digest"] for d in descriptors]}}, sort_keys=True).encode()
    cfg = put_blob(config, media_type="application/vnd.cncf.model.config.v1+json")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "artifactType": "application/vnd.cncf.model.manifest.v1+json", "config": cfg, "layers": descriptors},
                          sort_keys=True).encode()
    m = put_blob(manifest, media_type="application/vnd.oci.image.manifest.v1+json",
                 annotations={"org.opencontainers.image.ref.name": "v1"})
    with open(f"{layout}/index.json", "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [m]}, f)
    with open(f"{layout}/oci-layout", "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')
total = sum(os.path.getsize(f"{layout}/blobs/sha256/{n}") for n in os.listdir(f"{layout}/blobs/sha256"))
for n in os.listdir(f"{layout}/blobs/sha256"):
    subprocess.run(["cat", f"{layout}/blobs/sha256/{n}"], stdout=subprocess.DEVNULL, check=True)

def wait_for(path, pattern, proc):
    for _ in range(2000):
        with open(path) as f:
            found = re.search(pattern, f.read())
        if found:
            return found
        if proc.poll() is not None:
            sys.exit(f"the server exited: {open(path).read()[-2000:]}")
        time.sleep(0.05)
    sys.exit("the server did not start")

def on_engines(name):
    """A fresh PostgreSQL database and S3 prefix for one Custody run."""
    postgres, endpoint = os.environ["CUSTODY_TEST_POSTGRES"], os.environ["CUSTODY_TEST_S3_ENDPOINT"]
    host, port = postgres.split(":")
    subprocess.run(["psql", "-h", host, "-p", port, "-U", "custody", "-d", "custody", "-qc", f"CREATE DATABASE {name}"],
                   check=True, env={**os.environ, "PGPASSWORD": "custody"})
    return {"CUSTODY_METADATA": f"postgres://custody@{postgres}/{name}?sslmode=disable", "CUSTODY_POSTGRES_PASSWORD": "custody",
            "CUSTODY_BLOBS": f"s3://custody/{name}?endpoint={endpoint}&region=us-east-1",
            "CUSTODY_S3_ACCESS_KEY_ID": "custody", "CUSTODY_S3_SECRET_ACCESS_KEY": "custodysecret123"}

def start_custody(home):
    out = f"{home}.out"
    open(out, "w").close()
    environment = {**os.environ, **(on_engines(os.path.basename(home).replace("-", "_")) if on_s3 else {})}
    proc = subprocess.Popen([custody, "serve", "--home", f"{home}/Registry", "--keys", f"{home}/Keys", "--listen", "127.0.0.1:0"],
                            stdout=open(out, "w"), stderr=subprocess.DEVNULL, env=environment)
    address = wait_for(out, r"listening on http://(127\.0\.0\.1:\d+)", proc).group(1)
    token = re.search(r"hash is stored\): (cst_\S+)", open(out).read()).group(1)
    return proc, address, ["ci:" + token]

def start_distribution(home):
    os.makedirs(home)
    if on_s3:  # the configuration of ../shared/scaleout.md, a prefix of its own per run
        storage = (f"{{s3: {{accesskey: custody, secretkey: custodysecret123, region: us-east-1, "
                   f"regionendpoint: '{os.environ['CUSTODY_TEST_S3_ENDPOINT']}', bucket: custody, "
                   f"rootdirectory: /{os.path.basename(home)}, secure: false, v4auth: true, chunksize: 10485760, "
                   f"forcepathstyle: true}}, redirect: {{disable: true}}, cache: {{blobdescriptor: inmemory}}}}")
    else:
        storage = f"{{filesystem: {{rootdirectory: {home}/data}}}}"
    with open(f"{home}/config.yml", "w") as f:
        f.write(f"version: 0.1\nlog: {{level: warn}}\nstorage: {storage}\nhttp: {{addr: 127.0.0.1:0, secret: bench}}\n")
    log = f"{home}.log"
    open(log, "w").close()
    # The address is logged at info level: start it so, quietly otherwise.
    with open(f"{home}/config.yml") as f:
        text = f.read().replace("level: warn", "level: info")
    with open(f"{home}/config.yml", "w") as f:
        f.write(text)
    # With AWS_CA_BUNDLE set, distribution's S3 driver panics at start (LoadCustomCABundleError).
    environment = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    proc = subprocess.Popen(["docker-registry", "serve", f"{home}/config.yml"], stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            env=environment)
    address = wait_for(log, r"listening on (127\.0\.0\.1:\d+)", proc).group(1)
    return proc, address, []

def skopeo(source, destination, creds, side):
    command = ["skopeo", "copy", "--quiet", f"--{side}-tls-verify=false"] + ([f"--{side}-creds", creds[0]] if creds else [])
    begin = time.perf_counter()
    subprocess.run(command + [source, destination], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - begin

blobs = json.load(open(f"{layout}/blobs/sha256/" + json.load(open(f"{layout}/index.json"))["manifests"][0]["digest"][7:]))["layers"]

def curl_push(address, creds):
    auth = ["-u", creds[0]] if creds else []
    lines = []
    for layer in blobs:
        out = subprocess.run(["curl", "-sf", "-o", "/dev/null", "-D", "-", "-X", "POST"] + auth + [f"http://{address}/v2/acme/raw/blobs/uploads/"],
                             check=True, capture_output=True, text=True).stdout
        location = re.search(r"(?im)^location: (\S+)", out).group(1)
        location = location if location.startswith("http") else f"http://{address}{location}"
        separator = "&" if "?" in location else "?"
        lines.append(f"{layout}/blobs/sha256/{layer['digest'][7:]} {location}{separator}digest={layer['digest']}")
    script = "curl -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' " + " ".join(auth) + ' -T "$0" "$1"'
    begin = time.perf_counter()
    subprocess.run(["xargs", "-P", "4", "-n", "2", "sh", "-c", script], input="\n".join(lines).encode(), check=True)
    return time.perf_counter() - begin

def curl_pull(address, creds):
    auth = ["-u", creds[0]] if creds else []
    urls = "\n".join(f"http://{address}/v2/acme/raw/blobs/{layer['digest']}" for layer in blobs).encode()
    begin = time.perf_counter()
    subprocess.run(["xargs", "-P", "4", "-n", "1", "curl", "-sf", "-o", "/dev/null"] + auth, input=urls, check=True)
    return time.perf_counter() - begin

results = {name: {"push": [], "pull": [], "curl push": [], "curl pull": [], "curl cold pull": []} for name in ("custody", "distribution")}
ceiling = []
for run in range(runs):
    for name, start in (("custody", start_custody), ("distribution", start_distribution)):
        home = f"{work}/{name}-{run}"
        proc, address, creds = start(home)
        subprocess.run(["sync"], check=True)
        results[name]["push"].append(skopeo(f"oci:{layout}:v1", f"docker://{address}/acme/bench:v1", creds, "dest"))
        target = f"{work}/pulled-{name}-{run}"
        subprocess.run(["sync"], check=True)
        results[name]["pull"].append(skopeo(f"docker://{address}/acme/bench:v1", f"oci:{target}:v1", creds, "src"))
        shutil.rmtree(target)
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        shutil.rmtree(home)
        # d) on an empty registry of its own: the blobs a) stored would be found there and not sent again.
        home = f"{work}/{name}-{run}-curl"
        proc, address, creds = start(home)
        subprocess.run(["sync"], check=True)
        results[name]["curl push"].append(curl_push(address, creds))
        results[name]["curl pull"].append(curl_pull(address, creds))
        if on_s3 and name == "custody":
            # Again with no local copy (as on a daemon that did not receive them): fetched from S3 while served.
            cache = f"{home}/Registry/data/s3-cache/blobs"
            for entry in os.listdir(cache):
                os.unlink(f"{cache}/{entry}")
            results[name]["curl cold pull"].append(curl_pull(address, creds))
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        shutil.rmtree(home)
    target = f"{work}/local-{run}"
    subprocess.run(["sync"], check=True)
    begin = time.perf_counter()
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{layout}:v1", f"oci:{target}:v1"], check=True, stdout=subprocess.DEVNULL)
    ceiling.append(time.perf_counter() - begin)
    shutil.rmtree(target)
shutil.rmtree(work)

def row(label, samples):
    m = statistics.median(samples)
    print(f"  {label:44} {m:7.2f} s  {total/m/1e9:5.2f} GB/s   runs: {', '.join(f'{s:.2f}' for s in samples)}")
    return m

store = ("both on one SeaweedFS S3 (Custody: PostgreSQL + S3; distribution: s3 driver, redirect off)" if on_s3
         else "both on the local disk")
print(f"artifact: {layers} layers x {layer_mib} MiB + config, {total/1e9:.2f} GB, in the page cache; {store}; {runs} runs each, medians\n")
print("a) skopeo copy oci: layout -> empty registry")
cp = row("custody (hash, scan, sign, record)", results["custody"]["push"])
dp = row("distribution 2.8.2", results["distribution"]["push"])
print("b) skopeo copy registry -> empty oci: layout")
cl = row("custody (gate, verified blobs)", results["custody"]["pull"])
dl = row("distribution 2.8.2", results["distribution"]["pull"])
print("c) skopeo copy oci: layout -> oci: layout, no registry (the client's ceiling)")
sc = row("skopeo alone", ceiling)
print(f"d) curl, the {layers} layer blobs 4 at a time: upload into the registry, then download to /dev/null")
ccp = row("custody upload (hashed, " + ("multipart completed" if on_s3 else "fsynced") + " before 201)", results["custody"]["curl push"])
dcp = row("distribution 2.8.2 upload", results["distribution"]["curl push"])
ccl = row("custody download", results["custody"]["curl pull"])
dcl = row("distribution 2.8.2 download", results["distribution"]["curl pull"])
if on_s3:
    cold = row("custody download, no local copy (from S3, verified)", results["custody"]["curl cold pull"])
print("\ngoals:")
print(f"  [{'met' if dp / cp >= 2 else 'MISSED'}] a) push {dp / cp:.2f} x as fast as distribution (>= 2)")
print(f"  [{'met' if dl / cl >= 1 else 'MISSED'}] b) pull {dl / cl:.2f} x as fast as distribution (>= 1)")
print(f"  [info] skopeo alone takes {sc:.2f} s: a) at {sc / cp:.2f} x and b) at {sc / cl:.2f} x the client's ceiling (custody)")
print(f"  [info] d) upload {dcp / ccp:.2f} x, download {dcl / ccl:.2f} x as fast as distribution without skopeo"
      + (f" ({dcl / cold:.2f} x with no local copy)" if on_s3 else ""))
PY
