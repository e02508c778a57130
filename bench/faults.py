#!/usr/bin/env python3
"""Deploys through the fake API server's seeded fault mode: does every deploy end as it would without
faults?

    python bench/faults.py [--seeds 50] [--rate 0.1] [--watch-rate 0.5] [--json]

For each seed, a fresh fake API server with the fault mode on (429 with Retry-After 0 or 1 on any
request, 503 and dropped connections on repeatable ones, watch streams cut mid-event, ended with 410, or
carrying a line that is not an event) runs four deploys of one app, in process:
  1. first deploy (namespace, ConfigMap, Service, Deployment with 2 replicas),
  2. a new image,
  3. a changed variable (a new env ConfigMap; the old one is pruned),
  4. an image that crash-loops (the deploy fails and rolls back to 3).
Each deploy's outcome (exit code, the image the Deployment runs, the env ConfigMaps left, the failure
reason, whether it rolled back) is compared with the same deploy without faults. Prints the counts of
faults injected by kind and of deploys that ended differently (0 is the goal), with each difference.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "entrypoint"), str(ROOT / "tests")]

DIGESTS = {name: "sha256:" + ch * 64 for name, ch in (("a", "a"), ("b", "b"), ("c", "c"))}
CONFIG = """\
app: hello
image: ghcr.io/acme/hello
manifests: deploy
env: {LOG_LEVEL: info}
environments:
  staging: {context: fake, namespace: hello-staging, create-namespace: true}
"""
MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  progressDeadlineSeconds: 10
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: ghcr.io/acme/hello:latest}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
"""
STEPS = (("first deploy", "a", ()), ("new image", "b", ()), ("changed variable", "b", ("--set", "LOG_LEVEL=debug")),
         ("crash-looping image", "c", ()))


@dataclass(frozen=True)
class Outcome:
    code: int
    image: str
    env_configmaps: int
    reason: str
    rolled_back: bool


@dataclass
class SeedRun:
    seed: int
    outcomes: list[Outcome] = field(default_factory=list)
    expected: list[Outcome] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def same(self) -> bool:
        return self.outcomes == self.expected


def deploy_steps(root: Path, seed: int | None, rate: float, watch_rate: float) -> tuple[list[Outcome], Counter[str]]:
    from fakes.kube_apiserver import FakeKube

    from envship.cli import main

    root.mkdir(parents=True, exist_ok=True)
    (root / "deploy").mkdir(exist_ok=True)
    (root / "envship.yaml").write_text(CONFIG)
    (root / "deploy" / "app.yaml").write_text(MANIFEST)
    outcomes = []
    with FakeKube.start(crash_interval=0.2) as kube:
        kubeconfig = kube.kubeconfig(root / "kubeconfig")
        kube.set_scenario("crashloop", image=DIGESTS["c"])
        faults = kube.set_faults(seed, rate=rate, watch_rate=watch_rate) if seed is not None else None
        environ = {"KUBECONFIG": str(kubeconfig), "SOURCE_DATE_EPOCH": "1700000000", "ENVSHIP_LEASE_SECONDS": "5"}
        for _, digest, extra in STEPS:
            err = io.StringIO()
            code = main(["deploy", "--config", str(root / "envship.yaml"), "--env", "staging", "--image",
                         f"ghcr.io/acme/hello@{DIGESTS[digest]}", "--skip-image-check", "--timeout", "60s", *extra],
                        environ=environ, out=io.StringIO(), err=err)
            text = err.getvalue()
            deployment = kube.get("deployments", "hello-staging", "web") or {}
            image = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0].get(
                "image", "")
            env_cms = [c for c in kube.list("configmaps", "hello-staging") if c["metadata"]["name"].startswith(
                "hello-env-")]
            reason = next((r for r in ("CrashLoopBackOff", "WatchFailed", "Timeout", "LockLost") if r in text), "")
            outcomes.append(Outcome(code, image.rsplit("@", 1)[-1][:15], len(env_cms), reason,
                                    "rolled back to revision" in text and ": healthy" in text))
        counts = Counter(faults.counts) if faults is not None else Counter()
    return outcomes, counts


def run_seeds(seeds: Iterable[int], workdir: Path, rate: float = 0.1, watch_rate: float = 0.5,
              out: TextIO = sys.stdout) -> list[SeedRun]:
    expected, _ = deploy_steps(workdir / "baseline", None, rate, watch_rate)
    runs = []
    for seed in seeds:
        started = time.monotonic()
        outcomes, counts = deploy_steps(workdir / f"seed-{seed}", seed, rate, watch_rate)
        run = SeedRun(seed, outcomes, expected, counts, time.monotonic() - started)
        runs.append(run)
        status = "same" if run.same else "DIFFERENT"
        print(f"seed {seed}: {status} in {run.seconds:.1f} s, faults {dict(sorted(counts.items()))}", file=out)
        if not run.same:
            for step, got, want in zip(STEPS, outcomes, expected, strict=True):
                if got != want:
                    print(f"  {step[0]}: {got} (without faults: {want})", file=out)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--watch-rate", type=float, default=0.5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = run_seeds(range(args.seeds), Path(tmp), args.rate, args.watch_rate,
                         out=sys.stderr if args.json else sys.stdout)
    total: Counter[str] = Counter()
    for run in runs:
        total.update(run.faults)
    summary: dict[str, Any] = {
        "seeds": len(runs), "deploys": len(runs) * len(STEPS),
        "deploys_ending_differently": sum(o != e for r in runs for o, e in zip(r.outcomes, r.expected, strict=True)),
        "faults_injected": dict(sorted(total.items())), "faults_total": sum(total.values()),
        "seconds_per_seed_median": sorted(r.seconds for r in runs)[len(runs) // 2] if runs else 0.0,
    }
    print(json.dumps(summary, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
