"""Secrets never leak and untrusted text never becomes a workflow command.

Every command runs as in GitHub Actions (the CLI in a `run:` step and the action itself), on success
and failure paths, with a manifest and a pod log that try to forge `::warning` and `::add-mask::`
commands, and with `--secret` slips. Everything a run prints and writes is scanned: stdout, stderr,
the step summary, the outputs file and rendered files. A small model of the runner reads each stream
as the runner does (a line is a command when it starts, after whitespace, with `::` or `##[`, unless
`::stop-commands::TOKEN` is in force until `::TOKEN::`) and lists the commands it would run.
"""

from __future__ import annotations

import base64
import io
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import parse_github_output
from fakes.kube_apiserver import FakeKube
from fakes.pytest_plugin import fake_kube  # noqa: F401 - the fixture

from envship.cli import main

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
TOKEN = "tok-9f8e7d6c5b4a-secret"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n" \
      "-----END PRIVATE KEY-----"
SLIPPED = "pasted-value-without-name-7f3a"
SECRETS = [TOKEN, PEM, SLIPPED]

CONFIG = """\
app: hello
image: ghcr.io/acme/hello
manifests: deploy
environments:
  staging:
    context: fake
    namespace: hello-staging
    host: staging.example.com
    create-namespace: true
"""

FORGING_MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: forged
  annotations: {note: "::warning title=forged::from a manifest annotation"}
data:
  value: "::add-mask::hello"
  block: |
    first line
      ::warning title=forged::from an indented block line
    ##[warning]forged in the runner's older form
    ::add-mask::staging
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  progressDeadlineSeconds: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations:
        fake.envship.dev/log: |-
          ::warning title=forged::from a pod log
          ::add-mask::envship
              ##[error]forged from a pod log
    spec:
      containers: [{name: app, image: ghcr.io/acme/hello:latest}]
"""


@dataclass
class Run:
    code: int
    out: str
    err: str
    files: dict[str, str] = field(default_factory=dict)

    def everything(self) -> str:
        return "\n".join([self.out, self.err, *self.files.values()])


def runner_commands(stream: str) -> list[str]:
    """The workflow commands the runner would carry out from one output stream."""
    commands, stopped = [], ""
    for raw in stream.splitlines():
        line = raw.lstrip()
        if stopped:
            if line == f"::{stopped}::":
                stopped = ""
            continue
        if line.startswith("::stop-commands::"):
            stopped = line.removeprefix("::stop-commands::")
            continue
        if line.startswith(("::", "##[")):
            commands.append(line)
    return commands


def masked_values(run: Run) -> set[str]:
    return {c.removeprefix("::add-mask::") for c in runner_commands(run.err) if c.startswith("::add-mask::")}


def assert_clean(run: Run, stdout_is_data: bool = True) -> None:
    """No secret anywhere but in ::add-mask:: commands, and no command but envship's own."""
    commands = runner_commands(run.out) + runner_commands(run.err)
    if stdout_is_data:
        assert runner_commands(run.out) == [], run.out   # data only: nothing the runner would act on
    for command in commands:
        # envship's own: a name it uses, properties it set (text it quotes is in the escaped message)
        parsed = re.fullmatch(r"::(add-mask|group|endgroup|error|warning|stop-commands)( [^:]*)?::.*", command)
        assert parsed is not None, command
        assert "forged" not in (parsed.group(2) or ""), command
    masks = masked_values(run)
    assert not masks & {"hello", "staging", "envship"}, masks   # nothing a manifest or a pod asked for
    mask_lines = {f"::add-mask::{m}" for m in masks}
    visible = "\n".join(line for line in run.everything().splitlines() if line.strip() not in mask_lines)
    for secret in SECRETS:
        for piece in [secret, base64.b64encode(secret.encode()).decode(), *secret.splitlines()]:
            if len(piece) >= 8:
                assert piece not in visible, f"{piece!r} leaked"


class Workflow:
    """A checkout in a GitHub Actions job, deploying to the fake cluster."""

    def __init__(self, root: Path, kube: FakeKube) -> None:
        self.root = root
        self.kube = kube
        (root / "deploy").mkdir(parents=True)
        (root / "envship.yaml").write_text(CONFIG)
        (root / "deploy" / "forging.yaml").write_text(FORGING_MANIFEST)
        (root / "deploy" / "deployment.yaml").write_text(DEPLOYMENT)
        self.kubeconfig = kube.kubeconfig(root / "kubeconfig")
        self.count = 0

    def environ(self, **extra: str) -> dict[str, str]:
        self.count += 1
        return {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(self.root), "KUBECONFIG": str(self.kubeconfig),
                "GITHUB_OUTPUT": str(self.root / f"output-{self.count}"),
                "GITHUB_STEP_SUMMARY": str(self.root / f"summary-{self.count}"),
                "SOURCE_DATE_EPOCH": "1700000000", "ENVSHIP_LEASE_SECONDS": "2", "TLS_KEY": PEM, **extra}

    def run(self, argv: list[str], environ: dict[str, str]) -> Run:
        out, err = io.StringIO(), io.StringIO()
        code = main(argv, environ=environ, out=out, err=err)
        files = {}
        for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
            path = Path(environ[name])
            files[name] = path.read_text() if path.exists() else ""
        rendered = self.root / "rendered"
        if rendered.exists():
            files.update({p.name: p.read_text() for p in rendered.iterdir()})
        return Run(code, out.getvalue(), err.getvalue(), files)

    def cli(self, command: str, *args: str, image: str = f"ghcr.io/acme/hello@{DIGEST_A}") -> Run:
        argv = [command, "--config", str(self.root / "envship.yaml"), "--env", "staging", "--image", image,
                "--secret", f"TOKEN={TOKEN}", "--secret", "TLS_KEY", *args]
        if command != "render":
            argv.append("--skip-image-check")
        return self.run(argv, self.environ())

    def action(self, command: str, **inputs: str) -> Run:
        environ = self.environ(**{f"INPUT_{k.upper()}": v for k, v in {
            "command": command, "environment": "staging", "image": f"ghcr.io/acme/hello@{DIGEST_A}",
            "config": "envship.yaml", "secrets": f"TOKEN={TOKEN}\nTLS_KEY<<EOF\n{PEM}\nEOF",
            "skip-image-check": "true", "timeout": "20s", **inputs}.items()})
        import os

        cwd = os.getcwd()
        os.chdir(self.root)
        try:
            return self.run(["action"], environ)
        finally:
            os.chdir(cwd)


@pytest.fixture
def workflow(tmp_path: Path, fake_kube: FakeKube) -> Workflow:  # noqa: F811 - the fixture
    return Workflow(tmp_path / "repo", fake_kube)


def test_render_neither_leaks_nor_forges(workflow: Workflow) -> None:
    # a key no API server would take, but render prints it all the same
    (workflow.root / "deploy" / "key.yaml").write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: key}\ndata: {"::error title=forged::from a key": "1"}\n')
    run = workflow.cli("render")
    assert run.code == 0, run.err
    assert_clean(run)
    assert "::warning title=forged::from a manifest annotation" in run.out   # the data itself is intact
    objects = {o["metadata"]["name"]: o for o in yaml.safe_load_all(run.out)}
    assert objects["forged"]["data"]["block"].splitlines()[1] == "  ::warning title=forged::from an indented block line"
    assert objects["key"]["data"] == {"::error title=forged::from a key": "1"}
    files = workflow.cli("render", "--output", str(workflow.root / "rendered"))
    assert files.code == 0 and any("forged" in text for text in files.files.values())
    assert_clean(files)


def test_plan_deploy_and_a_failed_deploy_neither_leak_nor_forge(workflow: Workflow) -> None:
    plan = workflow.cli("plan")
    assert plan.code == 0, plan.err
    assert_clean(plan)
    deployed = workflow.cli("deploy", "--timeout", "20s")
    assert deployed.code == 0, deployed.err
    assert_clean(deployed)
    outputs = parse_github_output(deployed.files["GITHUB_OUTPUT"])
    assert outputs["namespace"] == "hello-staging" and outputs["url"] == "https://staging.example.com"
    again = workflow.cli("plan", "--set", "LOG_LEVEL=debug")
    assert again.code == 0 and "# update Deployment/web" in again.out
    assert_clean(again)
    workflow.kube.set_scenario("crashloop", image=DIGEST_B)
    failed = workflow.cli("deploy", "--timeout", "20s", image=f"ghcr.io/acme/hello@{DIGEST_B}")
    assert failed.code == 1 and "CrashLoopBackOff" in failed.err
    assert "::warning title=forged::from a pod log" in failed.err   # shown, fenced off
    assert "rolled back to revision 1: healthy" in failed.err
    assert_clean(failed)
    summary = failed.files["GITHUB_STEP_SUMMARY"]
    assert "from a pod log" in summary


def test_the_action_neither_leaks_nor_forges(workflow: Workflow) -> None:
    for command in ("render", "plan", "deploy"):
        run = workflow.action(command)
        assert run.code == 0, run.err
        # the action's stdout is only ever read by the log: its data is fenced too
        assert_clean(run, stdout_is_data=False)
    run = workflow.action("render")
    assert run.out.startswith("::stop-commands::")


@pytest.mark.parametrize("slip", [
    ["--secret", SLIPPED],                       # a value without its name
    ["--secret", SLIPPED + "=="],                # a base64-looking value without its name
    ["--secret", "p@ss:" + SLIPPED],             # not a name at all
    ["--secret=" + SLIPPED],
])
def test_secret_slips_are_never_quoted_back(workflow: Workflow, slip: list[str]) -> None:
    environ = workflow.environ()
    run = workflow.run(["render", "--config", str(workflow.root / "envship.yaml"), "--env", "staging", "--image",
                        f"ghcr.io/acme/hello@{DIGEST_A}", *slip], environ)
    assert run.code == 2
    assert "the 1st --secret argument" in run.err and "not shown" in run.err
    assert_clean(run)


def test_a_malformed_secrets_input_is_never_quoted_back(workflow: Workflow) -> None:
    for bad in (SLIPPED, f"{SLIPPED}==", f"p@ss:{SLIPPED}=x"):
        run = workflow.action("render", secrets=f"TOKEN={TOKEN}\n{bad}")
        assert run.code == 2 and "input 'secrets', line 2" in run.err
        assert_clean(run, stdout_is_data=False)


def test_outputs_are_written_verbatim(workflow: Workflow) -> None:
    """A secret that happens to be part of a name ("hello") must not change the value of an output."""
    environ = workflow.environ()
    run = workflow.run(["render", "--config", str(workflow.root / "envship.yaml"), "--env", "staging",
                        "--image", f"ghcr.io/acme/hello@{DIGEST_A}", "--secret", "SHORT=hello"], environ)
    assert run.code == 0, run.err
    outputs = parse_github_output(run.files["GITHUB_OUTPUT"])
    assert outputs["namespace"] == "hello-staging" and outputs["url"] == "https://staging.example.com"
    assert "::add-mask::hello" in run.err.splitlines()   # the runner masks it where outputs are shown


def test_the_model_of_the_runner_sees_forgeries() -> None:
    """The scan above can fail: unfenced, the same text would be carried out."""
    text = textwrap.dedent(FORGING_MANIFEST)
    assert any("forged" in c for c in runner_commands(text))
    assert runner_commands("::stop-commands::t1\n" + text + "::t1::\n") == []
