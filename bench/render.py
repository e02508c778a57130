#!/usr/bin/env python3
"""Render speed and CLI start-up, side by side with kubectl's built-in kustomize in one run.

    python bench/render.py [--objects 2000] [--repeat 5] [--json]

Generates an app of N objects (Deployment, Service, Ingress, HPA and a plain ConfigMap per component),
then measures:
  - envship render in-process (parse + render + YAML dump), median of --repeat runs;
  - `envship render` as a command (what a user waits for);
  - `kubectl kustomize` on the same objects with the equivalent transformers (namespace, image pin,
    hashed configMapGenerator, common labels and annotations): the closest peer that renders offline;
  - `envship --help` start-up against `python -c pass` and `kubectl --help`.
kubectl is optional: its rows say "not installed" when it is missing.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "entrypoint"))

DIGEST = "sha256:" + "ab" * 32
REPO = "ghcr.io/acme/bench"
ENV = {"SOURCE_DATE_EPOCH": "1700000000", "PATH": "/usr/bin:/bin"}

COMPONENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: c{i}, labels: {{app: c{i}}}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: c{i}}}}}
  template:
    metadata: {{labels: {{app: c{i}}}}}
    spec:
      initContainers:
        - {{name: migrate, image: "ghcr.io/acme/bench:latest", args: [migrate]}}
      containers:
        - name: web
          image: ghcr.io/acme/bench:latest
          ports: [{{name: http, containerPort: 8080}}]
          env: [{{name: PUBLIC_URL, value: "https://${{ENVSHIP_HOST}}/c{i}"}}]
          readinessProbe: {{httpGet: {{path: /healthz, port: http}}}}
          resources: {{requests: {{cpu: 10m, memory: 32Mi}}}}
        - {{name: proxy, image: "envoyproxy/envoy:v1.30.0"}}
---
apiVersion: v1
kind: Service
metadata: {{name: c{i}}}
spec:
  selector: {{app: c{i}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: c{i}}}
spec:
  rules:
    - host: "${{ENVSHIP_HOST}}"
      http:
        paths:
          - {{path: /c{i}, pathType: Prefix, backend: {{service: {{name: c{i}, port: {{name: http}}}}}}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: c{i}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: c{i}}}
  minReplicas: 2
  maxReplicas: 4
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: c{i}-static}}
data: {{ROUTE: /c{i}, ENABLED: "true"}}
"""
PER_COMPONENT = 5

CONFIG = """\
app: bench
image: ghcr.io/acme/bench
manifests: deploy
env: {LOG_LEVEL: info, REGION: eu}
environments:
  staging:
    context: kind-bench
    namespace: bench-staging
    host: staging.bench.example.com
    env: {LOG_LEVEL: debug}
"""

KUSTOMIZATION = f"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: bench-staging
resources: [all.yaml]
labels:
  - pairs:
      app.kubernetes.io/managed-by: envship
      app.kubernetes.io/instance: bench
      envship.dev/environment: staging
commonAnnotations:
  envship.dev/digest: "{DIGEST}"
images:
  - name: ghcr.io/acme/bench
    digest: "{DIGEST}"
configMapGenerator:
  - name: bench-env
    literals: [LOG_LEVEL=debug, REGION=eu]
"""


def make_app(base: Path, objects: int) -> Path:
    components = max(1, objects // PER_COMPONENT)
    deploy = base / "deploy"
    deploy.mkdir(parents=True)
    text = "---\n".join(COMPONENT.format(i=i) for i in range(components))
    (deploy / "all.yaml").write_text(text)
    (base / "envship.yaml").write_text(CONFIG)
    # kustomize's input: the same objects with the two variables already substituted (it has none)
    kdir = base / "kustomize"
    kdir.mkdir()
    (kdir / "all.yaml").write_text(text.replace("${ENVSHIP_HOST}", "staging.bench.example.com"))
    (kdir / "kustomization.yaml").write_text(KUSTOMIZATION)
    return base / "envship.yaml"


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def run_cmd(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**ENV, "PYTHONPATH": str(ROOT / "entrypoint")}
    result = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=120, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({result.returncode}): {result.stderr.decode()[-2000:]}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    from envship.cli import main as envship_main

    kubectl = shutil.which("kubectl")
    results: dict[str, object] = {"objects_requested": args.objects, "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory(prefix="envship-bench-") as tmp:
        config = make_app(Path(tmp), args.objects)
        argv = ["render", "--config", str(config), "--env", "staging", "--image", f"{REPO}@{DIGEST}"]
        out = io.StringIO()
        rc = envship_main(argv, environ=ENV, out=out, err=io.StringIO())
        assert rc == 0, "envship render failed"
        results["objects_rendered"] = out.getvalue().count("\n---\n") + 1

        def in_process() -> None:
            envship_main(argv, environ=ENV, out=io.StringIO(), err=io.StringIO())

        results["envship_render_inprocess_s"] = statistics.median(timed(in_process, args.repeat))
        cli = [sys.executable, "-m", "envship", *argv]
        results["envship_render_cli_s"] = statistics.median(timed(lambda: run_cmd(cli), args.repeat))
        if kubectl:
            kz = [kubectl, "kustomize", str(Path(tmp) / "kustomize")]
            results["kubectl_kustomize_s"] = statistics.median(timed(lambda: run_cmd(kz), args.repeat))
        help_repeat = max(args.repeat, 10)
        results["envship_help_s"] = statistics.median(
            timed(lambda: run_cmd([sys.executable, "-m", "envship", "--help"]), help_repeat))
        results["python_startup_s"] = statistics.median(
            timed(lambda: run_cmd([sys.executable, "-c", "pass"]), help_repeat))
        if kubectl:
            results["kubectl_help_s"] = statistics.median(timed(lambda: run_cmd([kubectl, "--help"]), help_repeat))

    if args.json:
        print(json.dumps(results, indent=2))
        return
    rows = [
        ("objects rendered", results["objects_rendered"], ""),
        ("envship render, in-process (parse+render+dump)", results["envship_render_inprocess_s"], "goal < 1 s"),
        ("envship render, command", results["envship_render_cli_s"], ""),
        ("kubectl kustomize, same objects", results.get("kubectl_kustomize_s", "not installed"), "peer"),
        ("envship --help", results["envship_help_s"], "goal < 0.3 s"),
        ("python -c pass", results["python_startup_s"], "interpreter floor"),
        ("kubectl --help", results.get("kubectl_help_s", "not installed"), "peer"),
    ]
    for name, value, note in rows:
        shown = f"{value:.3f} s" if isinstance(value, float) else str(value)
        print(f"{name:<50} {shown:>14}  {note}")


if __name__ == "__main__":
    main()
