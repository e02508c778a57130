#!/usr/bin/env python3
"""GitHub flows: GitHub and Cloudflare API requests and wall time of envship's deploy, promote, preview and
gc against the fake GitHub, Cloudflare and Kubernetes APIs, and what GitHub being down costs a deploy.

    python bench/github_flows.py [--latency-ms 50] [--json]

envship runs in-process (`envship.cli.main([...], environ=..., out=..., err=...)`), as
tests/test_github_flows.py runs it, against the fake GitHub API (tests/fakes/github_api.py, repository
acme/hello) and the fake Cloudflare API (tests/fakes/cloudflare_api.py, zone example.com, a DNS route to
203.0.113.7), both with `--latency-ms` added to every request to mimic a real API round trip, and the fake
Kubernetes API (tests/fakes/kube_apiserver.py, no added latency). All three serve on 127.0.0.1 in this
process; a fresh set per scenario group. An untimed warm-up deploy first pays the imports (envship's
commands, PyGithub), so every figure is a warm in-process one; as a command each adds the interpreter's
start and imports. Requests are counted from the fakes' request logs (injected
failure answers included); GitHub writes are POST, PUT, PATCH and DELETE that reached the API
(FakeGitHub.writes()). Wall time is the envship command's only (set-up runs are not timed).

Scenarios (the config of tests/test_github_flows.py: staging, production promoted from staging, previews
hello-pr-{pr} with ttl 24h and max 3)
- staging: first deploy, second deploy (a new digest), a no-op redeploy (the same digest and commit again).
- promote staging -> production: first; second (staging got a new digest first, untimed): GitHub's
  auto_inactive skips production deployments, so envship retires the first one itself.
- previews, for pull request #1 while #2's preview exists: opened, synchronize (new commit and digest), a
  re-run of the same synchronize event, closed (teardown).
- gc over 3 previews (#1 closed, #2 idle: deployed with SOURCE_DATE_EPOCH=1700000000, #3 active): --dry-run,
  then a real run.
- GitHub down (`fake.down = True`: every request 503) during a first staging deploy: the exit code (must be
  0: GitHub is reporting, not the deploy) and the wall time added, against "staging: first deploy", by
  envship's bounded retries (PyGithub's GithubRetry, total=3, backoff_factor 0.5).

Figures only: nothing here is asserted (an exit code other than 0 is shown, not raised).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "entrypoint"), str(ROOT / "tests")]

from fakes.cloudflare_api import FakeCloudflare  # noqa: E402 - after the path set-up
from fakes.github_api import FakeGitHub  # noqa: E402
from fakes.github_events import pull_request_event, write_event  # noqa: E402
from fakes.kube_apiserver import FakeKube  # noqa: E402

REPO = "acme/hello"
ZONE = "example.com"
SHA_1, SHA_2, SHA_3, SHA_4 = "1" * 40, "2" * 40, "3" * 40, "4" * 40
DIGEST_A, DIGEST_B, DIGEST_C = ("sha256:" + c * 64 for c in "abc")
IMAGE_A, IMAGE_B, IMAGE_C = (f"ghcr.io/acme/hello@{d}" for d in (DIGEST_A, DIGEST_B, DIGEST_C))
OLD = {"SOURCE_DATE_EPOCH": "1700000000"}   # a deploy long ago: idle for longer than the previews' 24h ttl

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
  production:
    context: fake
    namespace: hello-prod
    host: www.example.com
    create-namespace: true
    protected: true
    promote-from: staging
  preview:
    preview: true
    context: fake
    namespace: hello-pr-{pr}
    host: hello-pr-{pr}.example.com
    ttl: 24h
    max: 3
routes:
  cloudflare:
    zone: example.com
    target: 203.0.113.7
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  progressDeadlineSeconds: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/hello:latest
          ports: [{containerPort: 8080}]
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


def progress(message: str) -> None:
    print(f"bench/github_flows.py: {message}", file=sys.stderr, flush=True)


# -- rows -------------------------------------------------------------------------------------------

@dataclass
class Row:
    scenario: str
    exit: int
    github_requests: int
    github_writes: int
    cloudflare_requests: int
    wall_s: float
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def template(method: str, path: str) -> str:
    """'POST /repos/acme/hello/deployments/12/statuses' -> 'POST deployments/{id}/statuses'."""
    path = re.sub(r"^/repos/[^/]+/[^/]+", "", path)
    path = re.sub(r"/\d+(?=/|$)", "/{id}", path)
    path = re.sub(r"preview%2Fpr-\d+", "preview%2Fpr-{n}", path)
    return f"{method} {path.lstrip('/') or '/'}"


# -- the fakes and the project ----------------------------------------------------------------------

class Flows:
    """A temp project dir and one set of fakes (GitHub, Cloudflare with latency; Kubernetes without)."""

    def __init__(self, work: Path, latency_ms: float) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        (work / "deploy").mkdir(exist_ok=True)
        (work / "deploy" / "deployment.yaml").write_text(DEPLOYMENT)
        (work / "deploy" / "service.yaml").write_text(SERVICE)
        self.config = work / "envship.yaml"
        self.config.write_text(CONFIG)
        self.kube: Any = None
        self.cf: Any = None
        self.gh: Any = None
        try:
            self.kube = FakeKube.start()
            self.cf = FakeCloudflare.start(latency_ms=latency_ms)
            self.gh = FakeGitHub.start(latency_ms=latency_ms)
        except BaseException:
            self.stop()
            raise
        self.cf.add_zone(ZONE)
        self.gh.add_repo(REPO)
        self.environ = {"KUBECONFIG": str(self.kube.kubeconfig(work / "kubeconfig")), "HOME": str(work),
                        "ENVSHIP_LEASE_SECONDS": "5", "CLOUDFLARE_API_URL": self.cf.url,
                        "CLOUDFLARE_API_TOKEN": self.cf.token, "GITHUB_RUN_ID": "77", **self.gh.env(REPO)}
        self.events = 0

    def stop(self) -> list[str]:
        problems: list[str] = []
        for name, fake in (("GitHub", self.gh), ("Cloudflare", self.cf), ("Kubernetes", self.kube)):
            if fake is None:
                continue
            fake.stop()
            problems += [f"fake {name} ({self.work.name}): {e}" for e in fake.errors]
        if self.kube is not None:
            problems += [f"fake Kubernetes controller ({self.work.name}): {e}" for e in self.kube.controller.errors]
        return problems

    def run(self, argv: list[str], **extra: str) -> tuple[int, str, str, float]:
        from envship.cli import main

        out, err = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        code = main([argv[0], "--config", str(self.config), *argv[1:]], environ={**self.environ, **extra},
                    out=out, err=err)
        return code, out.getvalue(), err.getvalue(), time.perf_counter() - start

    def deploy_argv(self, env: str, image: str) -> list[str]:
        return ["deploy", "--env", env, "--image", image, "--skip-image-check", "--timeout", "20s"]

    def promote_argv(self) -> list[str]:
        return ["promote", "--from", "staging", "--to", "production", "--skip-image-check", "--timeout", "20s"]

    def preview_argv(self, event: dict[str, Any], image: str) -> list[str]:
        self.events += 1
        path = write_event(self.work, event, f"event-{self.events}.json")
        return ["preview", "--image", image, "--event", str(path), "--skip-image-check", "--timeout", "20s"]

    def setup(self, what: str, argv: list[str], **extra: str) -> None:
        code, _, err, _ = self.run(argv, **extra)
        if code != 0:
            raise SystemExit(f"set-up {what}: envship {argv[0]} exited {code}:\n{err[-3000:]}")

    def measure(self, scenario: str, argv: list[str], notes: str = "", **extra: str) -> Row:
        self.gh.reset_requests()
        self.cf.reset_requests()
        self.kube.requests.clear()
        code, out, err, wall = self.run(argv, **extra)
        gh_requests = self.gh.requests
        calls = Counter(template(r.method, r.path) for r in gh_requests)
        said = [line.strip() for line in (out + err).splitlines()
                if line.lstrip().startswith(("warning", "error", "would remove", "remove #", "keep #", "gc: "))]
        if code != 0:
            progress(f"{scenario}: exit {code}:\n{err[-2000:]}")
        return Row(scenario, code, len(gh_requests), len(self.gh.writes()), len(self.cf.requests), round(wall, 3),
                   notes, {"github_calls": dict(sorted(calls.items())),
                           "github_injected": sum(1 for r in gh_requests if r.injected),
                           "kube_requests": len(self.kube.requests), "said": said[:10],
                           "stderr_tail": err[-1500:] if code != 0 else ""})


@contextmanager
def flows(base: Path, name: str, latency_ms: float, problems: list[str]) -> Iterator[Flows]:
    f = Flows(base / name, latency_ms)   # stops what it started if it cannot start everything
    try:
        yield f
    finally:
        problems += f.stop()


def deployments_note(f: Flows, environment: str) -> str:
    latest = [d["statuses"][-1]["state"] if d["statuses"] else "-" for d in f.gh.deployments(REPO, environment)]
    return f"{environment}: {' '.join(latest)}"


# -- scenarios ---------------------------------------------------------------------------------------

def staging_and_promote(f: Flows) -> list[Row]:
    rows: list[Row] = []
    progress("staging")
    rows.append(f.measure("staging: first deploy", f.deploy_argv("staging", IMAGE_A), GITHUB_SHA=SHA_1))
    rows[-1].notes = deployments_note(f, "staging")
    rows.append(f.measure("staging: second deploy (new digest)", f.deploy_argv("staging", IMAGE_B),
                          GITHUB_SHA=SHA_2))
    rows[-1].notes = deployments_note(f, "staging")
    rows.append(f.measure("staging: no-op redeploy", f.deploy_argv("staging", IMAGE_B), GITHUB_SHA=SHA_2))
    rows[-1].notes = deployments_note(f, "staging")
    progress("promote")
    rows.append(f.measure("promote: first", [*f.promote_argv(), "--expect-digest", DIGEST_B], GITHUB_SHA=SHA_4))
    rows[-1].notes = deployments_note(f, "production")
    f.setup("staging: a new digest", f.deploy_argv("staging", IMAGE_C), GITHUB_SHA=SHA_3)
    rows.append(f.measure("promote: second (retires the first)", [*f.promote_argv(), "--expect-digest", DIGEST_C],
                          GITHUB_SHA=SHA_4))
    rows[-1].notes = deployments_note(f, "production")
    return rows


def previews(f: Flows) -> list[Row]:
    rows: list[Row] = []
    progress("previews")
    f.gh.add_pull(REPO, 2, SHA_2)
    pull = f.gh.add_pull(REPO, 1, SHA_1)
    f.setup("preview #2 opened", f.preview_argv(pull_request_event("opened", 2, SHA_2), IMAGE_A))
    rows.append(f.measure("preview #1: opened", f.preview_argv(pull_request_event("opened", 1, SHA_1), IMAGE_A)))
    pull["head_sha"] = SHA_3    # a push to the pull request's branch: its head moves to the new commit
    sync = pull_request_event("synchronize", 1, SHA_3)
    rows.append(f.measure("preview #1: synchronize", f.preview_argv(sync, IMAGE_B)))
    rows.append(f.measure("preview #1: synchronize re-run", f.preview_argv(sync, IMAGE_B)))
    f.gh.close_pull(REPO, 1)
    rows.append(f.measure("preview #1: closed (teardown)",
                          f.preview_argv(pull_request_event("closed", 1, SHA_3), IMAGE_B)))
    comments = [c for c in f.gh.comments(REPO, 1) if "<!-- envship-preview" in c["body"]]
    kept = f.kube.get("deployments", "hello-pr-2", "web") is not None
    rows[-1].notes = (f"{deployments_note(f, 'preview/pr-1')}; {len(comments)} envship comment(s) on #1; "
                      f"#2 {'kept' if kept else 'GONE'}")
    return rows


def gc(f: Flows) -> list[Row]:
    rows: list[Row] = []
    progress("gc")
    for number, sha in ((1, SHA_1), (2, SHA_2), (3, SHA_3)):
        f.gh.add_pull(REPO, number, sha)
        f.setup(f"preview #{number}", f.preview_argv(pull_request_event("opened", number, sha), IMAGE_A),
                **(OLD if number == 2 else {}))
    f.gh.close_pull(REPO, 1)
    for scenario, argv in (("gc --dry-run (3 previews)", ["gc", "--dry-run"]), ("gc (3 previews)", ["gc"])):
        row = f.measure(scenario, argv)
        row.notes = ", ".join(s.split(" (", 1)[0] for s in row.extra["said"]
                              if s.startswith(("would remove", "remove #", "keep #")))
        rows.append(row)
    left = ", ".join(sorted(r["name"] for r in f.cf.records(ZONE)))
    rows[-1].notes += f"; records left: {left}"
    return rows


def github_down(f: Flows, baseline: Row | None) -> list[Row]:
    progress("GitHub down")
    f.gh.down = True
    row = f.measure("GitHub down: staging first deploy", f.deploy_argv("staging", IMAGE_A), GITHUB_SHA=SHA_1)
    f.gh.down = False
    warned = [s for s in row.extra["said"] if s.startswith("warning")]
    deployed = f.kube.get("deployments", "hello-staging", "web") is not None
    added = row.wall_s - baseline.wall_s if baseline is not None else float("nan")
    row.extra.update(added_s=round(added, 3), deployed=deployed)
    row.notes = (f"+{added:.2f} s vs GitHub up; {row.extra['github_injected']} x 503; {len(warned)} warning(s); "
                 f"app {'deployed' if deployed else 'NOT deployed'}")
    return [row]


# -- report -----------------------------------------------------------------------------------------

def print_table(results: dict[str, Any]) -> None:
    print(f"fake GitHub and Cloudflare APIs with {results['latency_ms']:g} ms per request, fake Kubernetes API "
          f"without; {results['machine']}")
    header = ("scenario", "exit", "github requests", "github writes", "cloudflare requests", "wall s", "notes")
    rows = [header] + [(r["scenario"], str(r["exit"]), str(r["github_requests"]), str(r["github_writes"]),
                        str(r["cloudflare_requests"]), f"{r['wall_s']:.2f}", r["notes"]) for r in results["rows"]]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, 6)]
        print("  ".join([*cells, r[6]]).rstrip())
    if results["problems"]:
        print(f"warning: the fakes reported {len(results['problems'])} problem(s); see --json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, default=50.0,
                        help="added to every GitHub and Cloudflare API request (default 50)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    import envship

    started = time.perf_counter()
    base = Path(tempfile.mkdtemp(prefix="envship-bench-github-"))
    cwd = Path.cwd()
    rows: list[Row] = []
    problems: list[str] = []
    try:
        os.chdir(base)
        with flows(base, "warm-up", args.latency_ms, problems) as f:   # imports (envship, PyGithub): untimed
            progress("warm-up")
            f.setup("warm-up deploy", f.deploy_argv("staging", IMAGE_A), GITHUB_SHA=SHA_1)
        with flows(base, "staging", args.latency_ms, problems) as f:
            rows += staging_and_promote(f)
        with flows(base, "previews", args.latency_ms, problems) as f:
            rows += previews(f)
        with flows(base, "gc", args.latency_ms, problems) as f:
            rows += gc(f)
        with flows(base, "down", args.latency_ms, problems) as f:
            rows += github_down(f, next((r for r in rows if r.scenario == "staging: first deploy"), None))
    finally:
        os.chdir(cwd)
        shutil.rmtree(base, ignore_errors=True)
    results: dict[str, Any] = {
        "latency_ms": args.latency_ms, "python": sys.version.split()[0], "envship_version": envship.__version__,
        "machine": f"{os.cpu_count()} cores, {platform.platform()}", "rows": [asdict(r) for r in rows],
        "problems": problems, "bench_seconds": round(time.perf_counter() - started, 1)}
    for problem in problems:
        print(f"warning: {problem[:2000]}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
