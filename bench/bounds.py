#!/usr/bin/env python3
"""How fast hostile YAML is refused, side by side with kubectl in one run.

    python bench/bounds.py [--timeout 30] [--json]

Each case is a manifest (a pull request's, for previews) that tries to tie up the runner: a "billion
laughs" alias bomb, recursive aliases, 300 levels of nesting, aliases copying a 100 kB string, a 17 MiB
file. envship: `envship render` in-process on a project holding the file (median of 5); the exit code
and the first line of its message. kubectl: `kubectl apply --dry-run=client -f FILE` against the fake
API server (sigs.k8s.io/yaml, go-yaml's "excessive aliasing" rule), and `kubectl kustomize` on a
kustomization naming the file, each cut off after --timeout seconds.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "entrypoint"), str(ROOT / "tests")]

HEADER = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  "
CONFIG = ("app: hello\nimage: ghcr.io/acme/hello\nmanifests: deploy\nenvironments:\n"
          "  staging: {context: fake, namespace: hello-staging}\n")
IMAGE = "ghcr.io/acme/hello@sha256:" + "a" * 64


def cases() -> dict[str, str | int]:
    from test_bounds import BILLION_LAUGHS, DEEP, RECURSIVE_MAPPING, RECURSIVE_SEQUENCE, WIDE_TEXT

    def doc(text: str) -> str:
        return HEADER + text.replace("\n", "\n  ")

    return {"billion laughs (10 levels of 9 aliases)": doc(BILLION_LAUGHS),
            "recursive alias (sequence)": doc(RECURSIVE_SEQUENCE),
            "recursive alias (mapping)": doc(RECURSIVE_MAPPING),
            "300 levels of nesting": doc(DEEP),
            "60 aliases of a 100 kB string": doc(WIDE_TEXT),
            "17 MiB manifest": 17 * 1024 * 1024}


def write_case(root: Path, content: str | int) -> Path:
    (root / "deploy").mkdir(parents=True, exist_ok=True)
    (root / "envship.yaml").write_text(CONFIG)
    path = root / "deploy" / "case.yaml"
    if isinstance(content, int):  # a sparse file of that size: YAML of spaces as far as a reader goes
        with path.open("wb") as handle:
            handle.write(HEADER.encode() + b"a: b\n")
            handle.truncate(content)
    else:
        path.write_text(content)
    return path


def envship_render(root: Path, repeat: int) -> tuple[float, int, str]:
    from envship.cli import main

    times, code, first = [], 0, ""
    for _ in range(repeat):
        out, err = io.StringIO(), io.StringIO()
        started = time.perf_counter()
        code = main(["render", "--config", str(root / "envship.yaml"), "--env", "staging", "--image", IMAGE],
                    environ={"SOURCE_DATE_EPOCH": "1700000000"}, out=out, err=err)
        times.append(time.perf_counter() - started)
        first = err.getvalue().splitlines()[0] if err.getvalue() else ""
    return statistics.median(times), code, first


def timed(argv: list[str], env: dict[str, str], timeout: float, cwd: Path) -> tuple[str, str]:
    started = time.perf_counter()
    try:
        result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                                check=False)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s (killed)", "no answer"
    elapsed = time.perf_counter() - started
    text = (result.stderr or result.stdout).strip().splitlines()
    return f"{elapsed:.2f} s (exit {result.returncode})", (text[0][:90] if text else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=30.0, help="cut kubectl off after this many seconds")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from fakes.kube_apiserver import FakeKube
    from fakes.pytest_plugin import kubectl_env

    rows = []
    with tempfile.TemporaryDirectory() as tmp, FakeKube.start() as kube:
        kubeconfig = kube.kubeconfig(Path(tmp) / "kubeconfig")
        env = {**kubectl_env(kubeconfig, Path(tmp) / "home"), "PATH": os.environ.get("PATH", "")}
        for index, (name, content) in enumerate(cases().items()):
            root = Path(tmp) / f"case{index}"
            path = write_case(root, content)
            seconds, code, first = envship_render(root, args.repeat)
            apply_time, apply_says = timed(["kubectl", "apply", "--dry-run=client", "-o", "name", "-f", str(path)],
                                           env, args.timeout, root)
            (root / "deploy" / "kustomization.yaml").write_text("resources: [case.yaml]\n")
            kustomize_time, kustomize_says = timed(["kubectl", "kustomize", "deploy"], env, args.timeout, root)
            rows.append({"case": name, "envship_s": round(seconds, 4), "envship_exit": code, "envship_says": first,
                         "kubectl_apply": apply_time, "kubectl_apply_says": apply_says,
                         "kubectl_kustomize": kustomize_time, "kubectl_kustomize_says": kustomize_says})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| case | envship render | kubectl apply --dry-run=client | kubectl kustomize |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row['envship_s'] * 1000:.1f} ms (exit {row['envship_exit']}) | "
              f"{row['kubectl_apply']} | {row['kubectl_kustomize']} |")
    print()
    for row in rows:
        print(f"{row['case']}:\n  envship: {row['envship_says']}\n  kubectl apply: {row['kubectl_apply_says']}\n"
              f"  kubectl kustomize: {row['kubectl_kustomize_says']}")


if __name__ == "__main__":
    main()
