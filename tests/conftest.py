"""Shared helpers: run envship in-process against a project written into tmp_path.

`envship.cli.main(argv, environ=..., out=..., err=...)` is called with an explicit environment (so
output is deterministic and nothing leaks in from the test runner's own environment) and string
buffers for stdout and stderr. Each test runs in its own tmp_path (the working directory), so paths in
messages are short and relative: `envship.yaml:3:1`, `deploy/app.yaml:12:18`.
"""

from __future__ import annotations

import base64
import io
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from envship.cli import main

DIGEST = "sha256:" + "0123456789abcdef" * 4
OTHER_DIGEST = "sha256:" + "f" * 64
IMAGE = f"ghcr.io/acme/hello@{DIGEST}"
EPOCH = "1700000000"
BASE_ENVIRON = {"SOURCE_DATE_EPOCH": EPOCH}
REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DIR = REPO_ROOT / "workflows-examples" / "hello"

BASE_CONFIG = """\
app: hello
image: ghcr.io/acme/hello
manifests: deploy
env:
  LOG_LEVEL: info
  GREETING: Hello
environments:
  staging:
    context: kind-dev
    namespace: hello-staging
    host: staging.example.com
    env:
      LOG_LEVEL: debug
  production:
    cluster: projects/acme-prod/locations/us-central1/clusters/prod
    namespace: hello
    host: hello.example.com
    promote-from: staging
    protected: true
  preview:
    preview: true
    context: kind-dev
    namespace: hello-pr-{pr}
    host: hello-pr-{pr}.example.com
    ttl: 72h
    max: 5
routes:
  cloudflare:
    zone: example.com
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
        - name: web
          image: ghcr.io/acme/hello:latest
          env:
            - name: PUBLIC_URL
              value: https://${ENVSHIP_HOST}
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: hello
spec:
  selector: {app: hello}
  ports:
    - port: 80
"""


@dataclass
class Result:
    code: int
    out: str
    err: str
    files: dict[str, str] = field(default_factory=dict)

    @property
    def objects(self) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all(self.out) if d is not None]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind}/{name or '*'}, got {len(found)}:\n{self.out}\n{self.err}"
        return found[0]

    def problem(self, message: str) -> tuple[str, str]:
        """The error line holding `message` and the hint line that follows it ('' if none)."""
        lines = self.err.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("error: ") and message in line:
                nxt = lines[i + 1] if i + 1 < len(lines) else ""
                return line, (nxt.strip() if nxt.startswith("  hint: ") else "")
        raise AssertionError(f"no error line containing {message!r} in stderr:\n{self.err}")


def run(argv: list[str], environ: dict[str, str] | None = None) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ=dict(BASE_ENVIRON if environ is None else environ), out=out, err=err)
    return Result(code, out.getvalue(), err.getvalue())


def location_of(text: str, marker: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based (line, column) where the `occurrence`-th `marker` starts in `text`."""
    start = -1
    for _ in range(occurrence):
        start = text.index(marker, start + 1)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return line, column


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Project:
    """A repository checkout in tmp_path: envship.yaml and deploy/."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def config(self, text: str = BASE_CONFIG) -> Path:
        return self.write("envship.yaml", text)

    def manifest(self, name: str, text: str) -> Path:
        return self.write(f"deploy/{name}", text)

    def standard(self) -> Project:
        self.config()
        self.manifest("deployment.yaml", DEPLOYMENT)
        self.manifest("service.yaml", SERVICE)
        return self

    def render(self, *args: str, env: str = "staging", image: str = IMAGE,
               environ: dict[str, str] | None = None) -> Result:
        return run(["render", "--config", "envship.yaml", "--env", env, "--image", image, *args], environ)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.chdir(tmp_path)
    return Project(tmp_path)


def rendered_files(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.iterdir()) if p.is_file()}


def parse_github_output(text: str) -> dict[str, str]:
    """Parse GITHUB_OUTPUT's `name<<DELIM` ... `DELIM` records (and plain name=value lines)."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        match = re.fullmatch(r"([^=<]+)<<(.+)", line)
        if match:
            name, delimiter = match.groups()
            body: list[str] = []
            while lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            i += 1
            outputs[name] = "\n".join(body)
        else:
            name, _, value = line.partition("=")
            outputs[name] = value
    return outputs


# The registry tests' fixtures (real docker-registry processes, buildah) live in tests/registry_fixture.py, loaded
# with `pytest_plugins` by the modules that use them; registered here so its asserts are rewritten too.
pytest.register_assert_rewrite("registry_fixture")
