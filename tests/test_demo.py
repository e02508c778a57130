"""The README's set-up: its first sh block holds exactly the two commands, and the first of them,
scripts/demo, deploys the bundled example twice against the fake API server it starts and stops.

The demo runs as a user runs it (bash, a real fake API server process, envship as a subprocess), except
that ENVSHIP_DEMO_PYTHON makes it use this interpreter instead of making and filling .venv (which
scripts/test, running these tests, has just done). TMPDIR points at a folder of the test's own, so what
the demo leaves behind is visible.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from envship.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CONFIG = "workflows-examples/hello/envship.yaml"
DEMO_IMAGE = "ghcr.io/acme/hello@sha256:2a97516c354b68848cdbd8f54a226a0a55b21ed138e207ad6c5cbb9c00aa5aea"


def run_demo(tmp_path: Path, **extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    temp = tmp_path / "tmp"
    temp.mkdir()
    # Nothing from the runner's own GitHub Actions environment: the demo is a local run.
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "ENVSHIP_"))}
    environ.update(ENVSHIP_DEMO_PYTHON=sys.executable, TMPDIR=str(temp), **extra)
    result = subprocess.run(["bash", "scripts/demo"], cwd=ROOT, env=environ, capture_output=True, text=True,
                            timeout=120, check=False)
    return result, temp


def server_pid(stdout: str) -> int:
    match = re.search(r"^    http://127\.0\.0\.1:\d+ \(pid (\d+)\)$", stdout, re.M)
    assert match, stdout
    return int(match.group(1))


def assert_gone(pid: int) -> None:
    """The fake API server's process no longer exists (or its PID now belongs to something else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return
    assert b"kube_apiserver" not in cmdline, f"the fake API server (pid {pid}) is still running"


def rendered_configmap(*values: str) -> dict[str, Any]:
    """The env ConfigMap `envship render` gives the demo's local environment with these --set values."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["render", "--config", str(ROOT / CONFIG), "--env", "local", "--image", DEMO_IMAGE]
    for value in values:
        argv += ["--set", value]
    assert main(argv, environ={"SOURCE_DATE_EPOCH": "1700000000"}, out=out, err=err) == 0, err.getvalue()
    objects = [o for o in yaml.safe_load_all(out.getvalue()) if o]
    return next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("hello-env-"))


def test_demo_deploys_the_example_then_rolls_out_a_changed_value(tmp_path: Path) -> None:
    result, temp = run_demo(tmp_path)
    out, err = result.stdout, result.stderr
    assert result.returncode == 0, out + err

    first, second = err.split("deploying ghcr.io/acme/hello@")[1:]
    # Deploy 1 created the app and really waited: the pods were seen not Ready, then Ready.
    assert "revision 1: 6 created, 0 configured, 0 unchanged, 0 pruned" in first
    assert "  hello 0/1 ready\n" in first and "  hello 1/1 ready\n" in first
    # Deploy 2 rolled out the changed value: a new env ConfigMap (its name is its content's hash), the
    # Deployment changed to reference it, the old ConfigMap pruned after the healthy rollout.
    before, after = rendered_configmap(), rendered_configmap("GREETING=Hi")
    assert before["data"]["GREETING"] == "Hello" and after["data"]["GREETING"] == "Hi"
    old, new = before["metadata"]["name"], after["metadata"]["name"]
    assert old != new
    assert f"ConfigMap/{old} created" in first
    assert f"ConfigMap/{new} created" in second and "Deployment/hello configured" in second
    assert f"ConfigMap/{old} pruned" in second
    assert "revision 2: 1 created, 1 configured, 4 unchanged, 1 pruned" in second
    # What the demo read back from the API server, and what `envship status` says.
    assert f"with envFrom ConfigMap/{new}: GREETING=Hi" in out
    assert re.search(r"^local +hello-local +2 +sha256:2a97516c354b .* healthy ", out, re.M), out
    # The fake API server was stopped and the temporary folder (kubeconfig, server output) removed.
    assert_gone(server_pid(out))
    assert list(temp.iterdir()) == []


def test_demo_fails_when_a_deploy_fails_and_still_cleans_up(tmp_path: Path) -> None:
    # A setting envship refuses makes the first deploy exit 2 (bad input) before it changes anything.
    result, temp = run_demo(tmp_path, ENVSHIP_LEASE_SECONDS="30s")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ENVSHIP_LEASE_SECONDS must be a whole number of seconds, not '30s'" in result.stderr
    assert "==> deploy 2" not in result.stdout
    assert_gone(server_pid(result.stdout))
    assert list(temp.iterdir()) == []


def setup_block() -> list[str]:
    """The commands of the README's first sh block, which must come before its first section."""
    text = README.read_text()
    match = re.search(r"^```sh\n(.*?)^```$", text, re.M | re.S)
    assert match and match.start() < text.index("\n## "), "the README opens with no sh block"
    lines = [line.split("#", 1)[0].strip() for line in match.group(1).splitlines()]
    return [line for line in lines if line]


def test_readme_starts_with_exactly_the_two_setup_commands() -> None:
    assert setup_block() == ["bash scripts/demo", "bash scripts/test"]
    for command in setup_block():
        script = ROOT / command.split()[1]
        assert script.is_file() and script.read_text().startswith("#!/usr/bin/env bash\n")


@pytest.mark.parametrize("script", ["scripts/demo", "scripts/test"])
def test_setup_scripts_are_valid_bash(script: str) -> None:
    subprocess.run(["bash", "-n", script], cwd=ROOT, check=True)


def test_readme_contents_links_name_existing_sections() -> None:
    """Every entry of the Contents list points at a heading of the README (GitHub's anchor rules)."""
    text = README.read_text()
    contents = text.split("## Contents\n", 1)[1].split("\n\n", 1)[0]
    anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#{2,3} (.+)$", text, re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", contents)
    assert links and [link for link in links if link not in anchors] == []
    for wanted in ("try-it-on-kind", "authorization", "troubleshooting"):
        assert wanted in links
