#!/usr/bin/env python3
"""Tag -> digest latency against a local registry, side by side with skopeo, in one run.

    python bench/registry.py [--repeat 20] [--json]

Starts Debian's docker-registry on a free 127.0.0.1 port (storage in a temporary directory), uploads a
one-layer OCI image and an OCI index over two manifests, then measures, median of --repeat runs each:
  - envship's registry client in-process (a new client per run: connection, HEAD, digest);
  - `envship resolve REPO:TAG` as a command (what a user or a workflow step waits for);
  - `skopeo inspect --format {{.Digest}}` (reads the manifest and the config blob) and
    `skopeo inspect --raw` (the manifest alone; it prints the bytes, not the digest).
The registry is stopped by PID at the end. Figures only: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "entrypoint"))

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(base: str, repo: str, data: bytes) -> dict[str, object]:
    started = requests.post(f"{base}/v2/{repo}/blobs/uploads/", timeout=10)
    location = requests.compat.urljoin(base, started.headers["Location"])
    joiner = "&" if "?" in location else "?"
    requests.put(f"{location}{joiner}digest={digest_of(data)}", data=data, timeout=10).raise_for_status()
    return {"digest": digest_of(data), "size": len(data)}


def push_image(base: str, repo: str, tag: str, arch: str = "amd64") -> tuple[str, int]:
    layer = push_blob(base, repo, f"bench layer {arch}\n".encode())
    config = push_blob(base, repo, json.dumps({"architecture": arch, "os": "linux",
                                               "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}]}).encode()
    requests.put(f"{base}/v2/{repo}/manifests/{tag}", data=manifest, headers={"Content-Type": OCI_MANIFEST},
                 timeout=10).raise_for_status()
    return digest_of(manifest), len(manifest)


def push_index(base: str, repo: str, tag: str) -> str:
    children = []
    for arch in ("amd64", "arm64"):
        digest, size = push_image(base, repo, f"{tag}-{arch}", arch)
        children.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                         "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
    requests.put(f"{base}/v2/{repo}/manifests/{tag}", data=index, headers={"Content-Type": OCI_INDEX},
                 timeout=10).raise_for_status()
    return digest_of(index)


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: imports, page cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def command(argv: list[str], expect: str, env: dict[str, str] | None = None) -> Callable[[], None]:
    def run() -> None:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)
        if proc.returncode != 0 or expect not in proc.stdout + proc.stderr:
            raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    registry_bin, skopeo = shutil.which("docker-registry") or "/usr/bin/docker-registry", shutil.which("skopeo")
    if not Path(registry_bin).exists() or not skopeo:
        raise SystemExit("needs docker-registry and skopeo (Debian packages; .ci/run installs them)")

    from envship.adapters.registry import client
    from envship.core.imageref import parse_image_ref

    with tempfile.TemporaryDirectory(prefix="envship-bench-") as tmp:
        port = free_port()
        config = Path(tmp) / "config.yml"
        config.write_text(json.dumps({"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
                                      "storage": {"filesystem": {"rootdirectory": f"{tmp}/storage"}},
                                      "http": {"addr": f"127.0.0.1:{port}", "secret": "bench"}}))
        process = subprocess.Popen([registry_bin, "serve", str(config)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            base, host = f"http://127.0.0.1:{port}", f"127.0.0.1:{port}"
            deadline = time.monotonic() + 15
            while True:
                try:
                    requests.get(f"{base}/v2/", timeout=1)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        raise SystemExit("docker-registry did not start") from None
                    time.sleep(0.05)
            manifest_digest, _ = push_image(base, "bench/app", "1.0")
            index_digest = push_index(base, "bench/multi", "1.0")
            env = {**os.environ, "PYTHONPATH": str(ROOT / "entrypoint"), "DOCKER_CONFIG": tmp}
            rows = []
            for label, repo, digest in (("image manifest", "bench/app", manifest_digest),
                                        ("image index (2 platforms)", "bench/multi", index_digest)):
                reference = f"{host}/{repo}:1.0"
                ref = parse_image_ref(reference)

                def in_process(ref: object = ref, digest: str = digest) -> None:
                    resolved = client({"DOCKER_CONFIG": tmp}, lambda values: None).resolve(ref)  # type: ignore[arg-type]
                    assert resolved.digest == digest

                cli = [sys.executable, "-m", "envship", "resolve", reference]
                rows.append({
                    "what": label,
                    "envship in-process": median_seconds(in_process, args.repeat),
                    "envship resolve (command)": median_seconds(command(cli, digest, env), args.repeat),
                    "skopeo inspect (Digest)": median_seconds(
                        command([skopeo, "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                                 f"docker://{reference}"], digest), args.repeat),
                    "skopeo inspect --raw": median_seconds(
                        command([skopeo, "inspect", "--tls-verify=false", "--raw", f"docker://{reference}"],
                                "schemaVersion"), args.repeat),
                })
        finally:
            process.terminate()
            process.wait(timeout=10)

    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    columns = ["envship in-process", "envship resolve (command)", "skopeo inspect (Digest)", "skopeo inspect --raw"]
    print(f"median of {args.repeat} runs, local registry on 127.0.0.1 (plain HTTP)")
    print(f"| what | {' | '.join(columns)} |")
    print("|---|" + "---|" * len(columns))
    for row in rows:
        print(f"| {row['what']} | " + " | ".join(f"{float(row[c]) * 1000:.1f} ms" for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
