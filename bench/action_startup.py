#!/usr/bin/env python3
"""What a job pays before envship runs: the action built from the Dockerfile against a prebuilt image.

    python bench/action_startup.py [--repeat 3] [--json]

With `runs.image: Dockerfile` every job that uses the action runs the Dockerfile's builder stage before
envship starts; with the released form (`image: docker://ghcr.io/...@sha256:...`) the runner pulls the
finished image and starts it. This replays the builder stage's RUN steps as the Dockerfile writes them,
on this machine's Python, in a fresh folder each time:

  - `python -m venv --without-pip VENV`
  - `pip --python VENV/bin/python install --no-cache-dir --require-hashes -r requirements.lock`
    (downloads from the package index: no pip cache, like a fresh runner)
  - `pip --python VENV/bin/python install --no-cache-dir --no-deps .` (the wheel built and installed)

then measures the venv the final image carries (bytes on disk, and gzipped as a layer would travel) and
what both forms share at the end: `envship --help` and the action refusing a missing `command` (the
process start to exit). Image pulls are not timed: this machine has no Docker engine. The base image
pulls are the same bytes in both forms, but the Dockerfile form also pulls the docker CLI and buildx
images and spends the steps above on every job.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUIET_PIP = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def timed(command: list[str], env: dict[str, str], cwd: Path = ROOT, check: bool = True) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, check=False)
    elapsed = time.perf_counter() - started
    if check and done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def gzipped_bytes(folder: Path, scratch: Path) -> int:
    """The venv as one gzipped tar, roughly what its image layer weighs on the wire."""
    target = scratch / "layer.tar.gz"
    with gzip.open(target, "wb", compresslevel=6) as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        tar.add(folder, arcname="opt/venv")
    return target.stat().st_size


def builder_stage(scratch: Path) -> dict[str, float]:
    env = {**os.environ, **QUIET_PIP}
    venv = scratch / "venv"
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-cache-dir"]
    steps = {
        "venv_s": timed([sys.executable, "-m", "venv", "--without-pip", str(venv)], env),
        "locked_install_s": timed([*pip, "--require-hashes", "-r", "requirements.lock"], env),
        # pip builds in a copy of the source tree it makes itself; a copy here keeps ROOT's build/ untouched
        "wheel_install_s": 0.0,
    }
    source = scratch / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "*.egg-info", "build",
                                                                   "__pycache__", "tests", "bench"))
    steps["wheel_install_s"] = timed([*pip, "--no-deps", str(source)], env)
    steps["venv_mb"] = folder_bytes(venv) / 1e6
    steps["venv_gzip_mib"] = gzipped_bytes(venv, scratch) / 2**20
    envship = str(venv / "bin" / "envship")
    bare = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(scratch)}
    steps["help_s"] = min(timed([envship, "--help"], bare) for _ in range(5))
    action_env = {**bare, "GITHUB_ACTIONS": "true"}
    steps["action_refusal_s"] = min(timed([envship, "action"], action_env, check=False) for _ in range(5))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="envship-bench-") as scratch:
            runs.append(builder_stage(Path(scratch)))
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    median["dockerfile_form_steps_s"] = median["venv_s"] + median["locked_install_s"] + median["wheel_install_s"]
    if args.json:
        print(json.dumps({key: round(value, 3) for key, value in median.items()}, indent=2))
        return
    print(f"Python {sys.version.split()[0]}, median of {args.repeat} fresh builds")
    print(f"{'step (Dockerfile form, every job)':<48} {'seconds':>8}")
    print(f"{'python -m venv --without-pip':<48} {median['venv_s']:8.2f}")
    print(f"{'pip install --require-hashes -r requirements.lock':<48} {median['locked_install_s']:8.2f}")
    print(f"{'pip install --no-deps . (wheel build + install)':<48} {median['wheel_install_s']:8.2f}")
    print(f"{'builder stage total (before any image pull)':<48} {median['dockerfile_form_steps_s']:8.2f}")
    print(f"venv the image carries: {median['venv_mb']:.1f} MB on disk, {median['venv_gzip_mib']:.1f} MiB gzipped")
    print(f"both forms, once started: envship --help {median['help_s']:.3f} s, "
          f"the action refusing a missing command {median['action_refusal_s']:.3f} s")


if __name__ == "__main__":
    main()
