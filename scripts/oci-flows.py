#!/usr/bin/env python3
"""The OCI flows of the differential test, run the same way against Custody and against CNCF distribution.

    oci-flows.py HOST:PORT WORKDIR [USER PASSWORD]

Pushes a ModelPack artifact with oras-py (monolithic and chunked uploads), pulls it back, reads it with skopeo
(inspect --raw, list-tags, copy to an oci: layout and back), and sends the malformed requests the distribution spec
names an error code for. Prints one JSON document: what each step answered (statuses, digests, codes, headers), so
that the caller compares the two registries where the spec requires the same answer.
"""
import hashlib
import json
import os
import subprocess
import sys

import oras.client
import requests

host, work = sys.argv[1], sys.argv[2]
auth = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else None
base = f"http://{host}"
os.makedirs(work, exist_ok=True)
os.chdir(work)
os.environ["DOCKER_CONFIG"] = os.path.join(work, "docker-config")
out = {}


def blob(path, size, seed):
    # Deterministic pseudo-random bytes, so that both registries receive the same blobs.
    with open(path, "wb") as f:
        block = hashlib.sha256(seed.encode()).digest() * 32768  # 1 MiB
        for _ in range(size // len(block)):
            f.write(block)
        f.write(block[: size % len(block)])


def describe(path, media_type):
    data = open(path, "rb").read()
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data),
            "annotations": {"org.opencontainers.image.title": path, "org.cncf.model.filepath": path}}


client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="token")
if auth:
    client.auth.set_basic_auth(*auth)


def push(repository, chunked):
    ref = client.get_container(f"{host}/{repository}")
    blob("model.safetensors", 20 * 1024 * 1024 + 123, "weights")
    with open("config.json", "w") as f:
        f.write('{"model_type": "bert"}')
    layers = [describe("model.safetensors", "application/vnd.cncf.model.weight.v1.raw"),
              describe("config.json", "application/vnd.cncf.model.weight.config.v1.raw")]
    for layer in layers:
        response = client.upload_blob(layer["annotations"]["org.cncf.model.filepath"], ref, layer, do_chunked=chunked,
                                      chunk_size=8 * 1024 * 1024)
        assert response.status_code in (200, 201), response.text
    config = {"descriptor": {"name": "tiny", "licenses": ["Apache-2.0"], "sourceURL": "https://example.com/acme/tiny",
                             "revision": "4f2c1e0"},
              "config": {"format": "safetensors"}, "modelfs": {"type": "layers", "diffIds": [l["digest"] for l in layers]}}
    with open("modelpack-config.json", "w") as f:
        json.dump(config, f, sort_keys=True)
    cfg = describe("modelpack-config.json", "application/vnd.cncf.model.config.v1+json")
    cfg.pop("annotations")
    client.upload_blob("modelpack-config.json", ref, cfg)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.cncf.model.manifest.v1+json", "config": cfg, "layers": layers}
    response = client.upload_manifest(manifest, ref)
    return {"status": response.status_code, "digest": response.headers.get("Docker-Content-Digest"),
            "location": response.headers.get("Location", "").split("/manifests/")[-1]}


def skopeo(*arguments):
    creds = ["--creds", f"{auth[0]}:{auth[1]}"] if auth else []
    command = ["skopeo", arguments[0]] + (["--tls-verify=false"] + creds if arguments[0] != "copy" else []) + list(arguments[1:])
    if arguments[0] == "copy":
        command[2:2] = ["--src-tls-verify=false", "--dest-tls-verify=false"] + (
            ["--src-creds", creds[1], "--dest-creds", creds[1]] if auth else [])
    result = subprocess.run(command, capture_output=True, text=True)
    return result.returncode, result.stdout, result.stderr.strip()[-400:]


def request(method, path, **kwargs):
    response = requests.request(method, base + path, auth=auth, **kwargs)
    try:
        code = response.json()["errors"][0]["code"]
    except Exception:
        code = None
    return response, code


out["push_monolithic"] = push("acme/tiny:v1", chunked=False)
out["push_chunked"] = push("acme/chunked:v1", chunked=True)
out["tags"] = client.get_tags(f"{host}/acme/tiny")
pulled = client.pull(target=f"{host}/acme/tiny:v1", outdir="pulled")
out["pulled"] = sorted(os.path.basename(p) for p in pulled)
out["pull_identical"] = all(open(p, "rb").read() == open(os.path.basename(p), "rb").read() for p in pulled)

status, raw, error = skopeo("inspect", "--raw", f"docker://{host}/acme/tiny:v1")
out["inspect_raw"] = {"status": status, "digest": "sha256:" + hashlib.sha256(raw.encode()).hexdigest() if status == 0 else error}
status, tags, error = skopeo("list-tags", f"docker://{host}/acme/tiny")
out["list_tags"] = json.loads(tags)["Tags"] if status == 0 else error
status, _, error = skopeo("copy", f"docker://{host}/acme/tiny:v1", "oci:layout:v1")
out["copy_to_layout"] = status if status == 0 else error
status, _, error = skopeo("copy", "oci:layout:v1", f"docker://{host}/acme/copy:v1")
out["copy_from_layout"] = status if status == 0 else error
status, raw, error = skopeo("inspect", "--raw", f"docker://{host}/acme/copy:v1")
out["copy_digest"] = "sha256:" + hashlib.sha256(raw.encode()).hexdigest() if status == 0 else error

accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
response, _ = request("HEAD", "/v2/acme/tiny/manifests/v1", headers=accept)
out["head_manifest"] = {"status": response.status_code, "digest": response.headers.get("Docker-Content-Digest"),
                        "type": response.headers.get("Content-Type"), "length": response.headers.get("Content-Length")}
layer = out["push_monolithic"]["digest"]
response, _ = request("HEAD", "/v2/acme/tiny/blobs/" + describe("config.json", "x")["digest"])
out["head_blob"] = {"status": response.status_code, "digest": response.headers.get("Docker-Content-Digest"),
                    "length": response.headers.get("Content-Length")}
response, _ = request("GET", "/v2/acme/tiny/blobs/" + describe("model.safetensors", "x")["digest"], headers={"Range": "bytes=10-19"})
out["range"] = {"status": response.status_code, "range": response.headers.get("Content-Range"), "length": len(response.content)}
response, _ = request("GET", "/v2/acme/tiny/referrers/" + layer)
out["referrers"] = {"status": response.status_code, "type": response.headers.get("Content-Type"),
                    "artifactTypes": sorted(m.get("artifactType", "") for m in response.json().get("manifests", []))
                    if response.status_code == 200 else None}

# Bad input, each with the spec's status and code.
zero = "sha256:" + "0" * 64
errors = {}
response, code = request("GET", "/v2/acme/tiny/manifests/nope")
errors["manifest_unknown"] = [response.status_code, code]
response, code = request("GET", "/v2/acme/tiny/blobs/" + zero)
errors["blob_unknown"] = [response.status_code, code]
missing = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "artifactType": "application/vnd.cncf.model.manifest.v1+json",
           "config": {"mediaType": "application/vnd.cncf.model.config.v1+json", "digest": zero, "size": 2}, "layers": []}
response, code = request("PUT", "/v2/acme/tiny/manifests/broken", data=json.dumps(missing),
                         headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
errors["manifest_blob_unknown"] = [response.status_code, code]
response, code = request("PUT", "/v2/acme/tiny/manifests/broken", data=b"{not json",
                         headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
errors["manifest_invalid"] = [response.status_code, code]
response, _ = request("POST", "/v2/acme/tiny/blobs/uploads/")
location = response.headers.get("Location", "")
location = location if location.startswith("http") else base + location
separator = "&" if "?" in location else "?"
response = requests.put(location + separator + "digest=" + zero, data=b"hello", auth=auth)
try:
    errors["digest_invalid"] = [response.status_code, response.json()["errors"][0]["code"]]
except Exception:
    errors["digest_invalid"] = [response.status_code, None]
response, _ = request("POST", "/v2/acme/tiny/blobs/uploads/")
location = response.headers.get("Location", "")
location = location if location.startswith("http") else base + location
first = requests.patch(location, data=b"0123456789", auth=auth,
                       headers={"Content-Range": "0-9", "Content-Type": "application/octet-stream"})
next_location = first.headers.get("Location", location)
next_location = next_location if next_location.startswith("http") else base + next_location
again = requests.patch(next_location, data=b"0123456789", auth=auth,
                       headers={"Content-Range": "0-9", "Content-Type": "application/octet-stream"})
errors["chunk_repeated"] = [again.status_code]
response, code = request("GET", "/v2/acme/Bad/tags/list")
errors["name_invalid"] = [response.status_code, code]
out["errors"] = errors

response, _ = request("GET", "/v2/acme/tiny/tags/list?n=0")
out["tags_n0"] = [response.status_code, response.json().get("tags") if response.status_code == 200 else None]
print(json.dumps(out, sort_keys=True))
