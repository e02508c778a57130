#!/usr/bin/env python3
"""Deploy engine: API requests and wall time against the fake API server, side by side with kubectl.

    python bench/kube.py [--latency-ms 20] [--sizes 6,20,50,200] [--repeat 3] [--json] [--kubectl PATH]

Every measurement gets a FRESH fake Kubernetes API server (tests/fakes/kube_apiserver.py, in this
process, `--latency-ms` added to every request, healthy pods Ready 0.15 s after they start) with the
namespace `bench` already created, so both tools start from the same empty namespace. The namespace
is not counted or applied by either tool.

Apply and wait, N objects (`--sizes`): the generated app has exactly N rendered objects: envship's
env ConfigMap, and per component a Deployment (2 replicas), a Service, a ConfigMap, an Ingress and an
HPA ((N - 1) // 5 components), filled up with plain ConfigMaps.
  - envship: `python -m envship deploy` as a process (start-up included, like kubectl's), from start
    to exit 0: discovery, deploy lock, live state, apply, wait (Deployments Ready and Ingresses with an
    address), release record. Also in-process through envship.cli.main (no start-up; the fake shares
    the interpreter).
  - kubectl: the same objects (`envship render --output DIR`), then what a script would run:
    `kubectl apply --server-side --field-manager=envship -f DIR` and, one after the other,
    `kubectl rollout status deployment/NAME -n bench` for every Deployment. Cold: a fresh HOME (empty
    discovery cache); warm: a second run with that HOME (the fake listens on the same port).
  API requests are counted from the fake's request log (its /_fake endpoints are not logged; a watch
  counts as one request). The wall ratio divides envship's process time by kubectl's faster case.
  The floor beside it: the cluster's own rollout (first Deployment created -> last one available, seen
  in the fake's store during envship's runs) + one round trip + the start-up of a Python process that
  only imports urllib3 (measured first; `floor_ratio_vs_kubectl_N`), and the same for a client on the
  standard library's http.client with a YAML parser (`floor_stdlib_ratio_vs_kubectl_N`): no such Python
  client can finish sooner, whatever it leaves out.

Crash loop: one Deployment (2 replicas, progressDeadlineSeconds 10) whose image the fake runs in the
`crashloop` scenario (a restart every 0.2 s). From the moment the first pod reports CrashLoopBackOff
to envship printing "... is not healthy" (`deploy --no-rollback`, in-process, its stderr writes
timestamped), with the default --crashloop-restarts 1 and with 2; and to `kubectl rollout status`
exiting non-zero (it waits for the progress deadline).

Ready: five Deployments whose pods are Ready 1 s after they start (`slow` scenario). From the moment
a Deployment is available in the store (observedGeneration == generation, availableReplicas ==
replicas) to envship printing `NAME 2/2 ready`, median over the Deployments and runs; and to
`kubectl rollout status` exiting 0.

Moments in the fake are taken at the commit in its store, in-process (see StoreObserver); the fake
adds its latency when a request arrives, so watch events reach both tools without it.

kubectl is optional (rows say "not installed", ratios are null). gcloud's kubectl dispatcher (which
asks GET /version before every command) is bypassed for the versioned kubectl it would run, unless
--kubectl names it. Figures only: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "entrypoint"))
sys.path.insert(0, str(ROOT / "tests"))

from fakes.kube_apiserver import SERVER_VERSION, FakeKube  # noqa: E402 - after the path set-up
from fakes.store import WatchEvent  # noqa: E402

NAMESPACE = "bench"
REPO = "ghcr.io/acme/bench"
DIGEST = "sha256:" + "ab" * 32
CRASH_DIGEST = "sha256:" + "cc" * 32
SLOW_DIGEST = "sha256:" + "5e" * 32
PER_COMPONENT = 5
CRASH_DEADLINE_S = 10
READY_AFTER_S = 1.0
READY_DEPLOYMENTS = 5
PROCESS_TIMEOUT = 180

CONFIG = f"""\
app: bench
image: {REPO}
manifests: deploy
env: {{LOG_LEVEL: info, REGION: eu}}
environments:
  bench:
    context: fake
    namespace: {NAMESPACE}
    host: bench.example.com
"""

COMPONENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  replicas: 2
{extra}  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: web
          image: ghcr.io/acme/bench:latest
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe: {{httpGet: {{path: /healthz, port: http}}}}
          resources: {{requests: {{cpu: 10m, memory: 32Mi}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"""

EXTRAS = """\
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}-static}}
data: {{ROUTE: /{name}, ENABLED: "true"}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: {name}}}
spec:
  rules:
    - host: "${{ENVSHIP_HOST}}"
      http:
        paths:
          - {{path: /{name}, pathType: Prefix, backend: {{service: {{name: {name}, port: {{name: http}}}}}}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: {name}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}
  minReplicas: 2
  maxReplicas: 4
"""

FILLER = """\
apiVersion: v1
kind: ConfigMap
metadata: {{name: filler-{i}}}
data: {{INDEX: "{i}"}}
"""


# -- the app ----------------------------------------------------------------------------------------

@dataclass
class App:
    config: Path
    deployments: list[str]
    objects: int  # rendered objects, envship's env ConfigMap included


def write_app(base: Path, objects: int) -> App:
    """An app that renders to exactly `objects` objects."""
    if objects < 1 + PER_COMPONENT:
        raise SystemExit(f"--sizes: at least {1 + PER_COMPONENT} objects")
    components, fill = divmod(objects - 1, PER_COMPONENT)
    names = [f"c{i}" for i in range(components)]
    docs = [COMPONENT.format(name=n, extra="") + EXTRAS.format(name=n) for n in names]
    docs += [FILLER.format(i=i) for i in range(fill)]
    return _write(base, docs, names, objects)


def write_small_app(base: Path, count: int, extra: str = "") -> App:
    """`count` Deployments with a Service each (and the env ConfigMap)."""
    names = [f"d{i}" for i in range(count)]
    docs = [COMPONENT.format(name=n, extra=extra) for n in names]
    return _write(base, docs, names, 2 * count + 1)


def _write(base: Path, docs: list[str], names: list[str], objects: int) -> App:
    (base / "deploy").mkdir(parents=True, exist_ok=True)
    (base / "deploy" / "all.yaml").write_text("---\n".join(docs))
    (base / "envship.yaml").write_text(CONFIG)
    return App(base / "envship.yaml", names, objects)


# -- the fake ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fresh_fake(latency_s: float, port: int, kubeconfig: Path) -> Iterator[FakeKube]:
    """A new fake on `port` (the same port every time: kubectl's cache is per server URL) with the
    namespace created and the request log empty."""
    fake = None
    for attempt in range(50):  # the previous server's socket may linger for a moment
        try:
            fake = FakeKube.start(latency_s=latency_s, port=port)
            break
        except OSError:
            if attempt == 49:
                raise
            time.sleep(0.1)
    assert fake is not None
    try:
        fake.kubeconfig(kubeconfig)
        fake.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        fake.requests.clear()
        yield fake
    finally:
        fake.stop()
        problems = fake.errors + fake.controller.errors
        if problems:
            print("warning: the fake failed internally:\n" + "\n".join(problems)[:4000], file=sys.stderr)


class StoreObserver:
    """Calls `on_event(time, event)` for every change committed to the fake's store, timed at the
    commit: the store's `_record` (every commit goes through it, with the store's lock held) is wrapped
    on this instance for the observer's lifetime. No file of the fake changes; `on_event` runs in the
    committing thread and must be quick."""

    def __init__(self, fake: FakeKube, on_event: Callable[[float, WatchEvent], None]) -> None:
        self.store = fake.store
        self.on_event = on_event

    def __enter__(self) -> StoreObserver:
        record = self.store._record

        def timed(event: WatchEvent) -> None:
            self.on_event(time.monotonic(), event)
            record(event)

        self.store._record = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self.store._record  # the class's method again


# -- running the tools ------------------------------------------------------------------------------

class TimedStream(io.StringIO):
    """A text stream that remembers when each write arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[float, str]] = []

    def write(self, s: str) -> int:
        self.writes.append((time.monotonic(), s))
        return super().write(s)

    def first(self, pattern: str) -> float | None:
        regex = re.compile(pattern)
        return next((t for t, s in self.writes if regex.search(s)), None)

    def text(self) -> str:
        return "".join(s for _, s in self.writes)


@dataclass
class Tools:
    kubectl: str | None
    kubectl_note: str
    skip_image_check: list[str]
    work: Path
    port: int
    latency_s: float
    kubeconfig: Path = field(init=False)

    def __post_init__(self) -> None:
        self.kubeconfig = self.work / "kubeconfig"

    def envship_environ(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.work),
                "KUBECONFIG": str(self.kubeconfig), "SOURCE_DATE_EPOCH": "1700000000",
                "PYTHONPATH": str(ROOT / "entrypoint")}

    def deploy_argv(self, app: App, image: str, *extra: str) -> list[str]:
        return ["deploy", "--config", str(app.config), "--env", "bench", "--image", image, "--timeout", "120s",
                *self.skip_image_check, *extra]

    def envship_process(self, app: App, fake: FakeKube) -> tuple[float, dict[str, float]]:
        """Wall time of `python -m envship deploy`, and its phases from the fake's request log."""
        argv = [sys.executable, "-m", "envship", *self.deploy_argv(app, f"{REPO}@{DIGEST}")]
        wall_start, start = time.time(), time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, env=self.envship_environ(),
                                timeout=PROCESS_TIMEOUT, check=False)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"envship deploy failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return wall, phases(sorted(fake.requests, key=lambda r: r.started), wall_start, wall_start + wall,
                            self.latency_s)

    def envship_inprocess(self, app: App, image: str, *extra: str) -> tuple[int, float, TimedStream]:
        from envship.cli import main

        err = TimedStream()
        start = time.perf_counter()
        code = main(self.deploy_argv(app, image, *extra), environ=self.envship_environ(), out=io.StringIO(),
                    err=err)
        return code, time.perf_counter() - start, err

    def render(self, app: App, image: str) -> Path:
        from envship.cli import main

        out = app.config.parent / "rendered"
        err = io.StringIO()
        code = main(["render", "--config", str(app.config), "--env", "bench", "--image", image, "--output",
                     str(out)], environ=self.envship_environ(), out=io.StringIO(), err=err)
        if code != 0:
            raise SystemExit(f"envship render failed:\n{err.getvalue()}")
        return out

    def kubectl_environ(self, home: Path) -> dict[str, str]:
        """Like tests/fakes/pytest_plugin.py's kubectl_env: the fake's kubeconfig, a private HOME."""
        env = {k: v for k, v in os.environ.items()
               if not k.upper().startswith(("KUBE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"))}
        env.update(KUBECONFIG=str(self.kubeconfig), HOME=str(home), KUBECACHEDIR=str(home / "cache"))
        return env

    def kubectl_run(self, home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        assert self.kubectl is not None
        result = subprocess.run([self.kubectl, *args], capture_output=True, text=True,
                                env=self.kubectl_environ(home), timeout=PROCESS_TIMEOUT, check=False)
        if ok and result.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args[:2])} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result

    def kubectl_apply(self, home: Path, rendered: Path) -> None:
        self.kubectl_run(home, "apply", "--server-side", "--field-manager=envship", "-f", str(rendered))

    def kubectl_status(self, home: Path, name: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.kubectl_run(home, "rollout", "status", f"deployment/{name}", "-n", NAMESPACE,
                                f"--timeout={PROCESS_TIMEOUT - 30}s", ok=ok)


def kubectl_binary(requested: str | None) -> tuple[str | None, str]:
    """(path, note). gcloud's dispatcher is replaced by the versioned kubectl it would run."""
    if requested:
        return (requested, "") if shutil.which(requested) else (None, f"{requested} not found")
    found = shutil.which("kubectl")
    if not found:
        return None, ""
    real = Path(os.path.realpath(found))
    versioned = real.with_name(f"kubectl.{SERVER_VERSION['major']}.{SERVER_VERSION['minor']}")
    version = subprocess.run([found, "version", "--client"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
    if "dispatcher" in version and versioned.is_file() and os.access(versioned, os.X_OK):
        return str(versioned), (f"{found} is gcloud's dispatcher (GET /version before every command); "
                                f"measured {versioned}, the binary it runs for this server")
    return found, ""


def kubectl_version(kubectl: str | None) -> str:
    if kubectl is None:
        return "not installed"
    out = subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True,
                         timeout=30, check=False).stdout
    try:
        return str(json.loads(out)["clientVersion"]["gitVersion"])
    except (ValueError, KeyError):
        return "unknown"


def skip_image_check_flag() -> list[str]:
    """The bench's images exist in no registry: skip deploy's registry check where envship has one."""
    from envship.cli import main

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        main(["deploy", "--help"], environ={}, out=io.StringIO(), err=io.StringIO())
    return ["--skip-image-check"] if "--skip-image-check" in text.getvalue() else []


def request_counts(fake: FakeKube) -> dict[str, int]:
    records = list(fake.requests)
    dispatcher = sum(1 for r in records if r.user_agent.startswith("kubectl-dispatcher"))
    return {"total": len(records) - dispatcher, "writes": sum(1 for r in records if r.method != "GET"),
            "watches": sum(1 for r in records if r.watch), "dispatcher": dispatcher}


def phases(records: list[Any], start: float, end: float, latency: float = 0.0) -> dict[str, float]:
    """Where a deploy's time goes, from the request log: start-up (interpreter, imports, render) until
    the first request; preamble (discovery, namespace, lock, release records, live state) until the
    first apply; apply (every object) until the last object's apply is answered; wait (watches until
    healthy; they open during the apply) until the release record is written; finish (record, lock
    release, exit). A run without applies has only a start-up."""
    patches = [i for i, r in enumerate(records) if r.method == "PATCH"]
    if len(patches) < 2 or not records:
        return {"startup_s": records[0].started - start} if records else {}
    first_apply, record = records[patches[0]].started, records[patches[-1]].started
    after_apply = records[patches[-2]].started + latency   # the last object's apply answered
    return {"startup_s": records[0].started - start, "preamble_s": first_apply - records[0].started,
            "apply_s": after_apply - first_apply, "wait_s": record - after_apply, "finish_s": end - record}


def median(values: list[float]) -> float:
    return statistics.median(values)


def progress(message: str) -> None:
    print(f"bench/kube.py: {message}", file=sys.stderr, flush=True)


# -- measurements -----------------------------------------------------------------------------------

def measure_size(tools: Tools, objects: int, repeat: int) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix=f"size{objects}-", dir=tools.work))
    app = write_app(base, objects)
    rendered = tools.render(app, f"{REPO}@{DIGEST}")
    assert len(list(rendered.glob("*.yaml"))) == objects, "the generated app renders a different count"
    result: dict[str, Any] = {"objects": objects, "deployments": len(app.deployments)}

    progress(f"{objects} objects: envship deploy (process), then the same again (nothing to change) x{repeat}")
    walls, counts, split, noop_walls, noop_counts, rollouts = [], [], [], [], [], []
    for _ in range(repeat):
        with fresh_fake(tools.latency_s, tools.port, tools.kubeconfig) as fake:
            marks: dict[str, float] = {}
            with StoreObserver(fake, rollout_marks(marks)):
                wall, parts = tools.envship_process(app, fake)
            rollouts.append(max(marks[name] for name in app.deployments) - marks["created"])
            walls.append(wall)
            split.append(parts)
            counts.append(request_counts(fake))
            fake.requests.clear()
            noop_wall, _ = tools.envship_process(app, fake)
            noop_walls.append(noop_wall)
            noop_counts.append(request_counts(fake))
    result["envship"] = {"wall_s": median(walls), "wall_runs_s": walls, "requests": counts[0]["total"],
                         "writes": counts[0]["writes"], "watches": counts[0]["watches"],
                         "requests_runs": [c["total"] for c in counts],
                         "phases_s": {k: median([p[k] for p in split if k in p]) for k in split[0]}}
    # The cluster's own part: first Deployment created -> last one available, during envship's runs.
    result["rollout_s"] = median(rollouts)
    result["envship_noop"] = {"wall_s": median(noop_walls), "requests": noop_counts[0]["total"],
                              "writes": noop_counts[0]["writes"], "requests_runs": [c["total"] for c in noop_counts]}

    progress(f"{objects} objects: envship deploy (in-process) x{repeat}")
    walls = []
    for _ in range(repeat):
        with fresh_fake(tools.latency_s, tools.port, tools.kubeconfig):
            code, wall, err = tools.envship_inprocess(app, f"{REPO}@{DIGEST}")
            if code != 0:
                raise SystemExit(f"envship deploy (in-process) failed ({code}):\n{err.text()[-3000:]}")
            walls.append(wall)
    result["envship_inprocess"] = {"wall_s": median(walls), "wall_runs_s": walls}

    if tools.kubectl is None:
        result["kubectl_cold"] = result["kubectl_warm"] = None
        return result
    progress(f"{objects} objects: kubectl apply + {len(app.deployments)} x rollout status, cold and warm, x{repeat}")
    runs: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
    for index in range(repeat):
        home = base / f"home{index}"  # fresh: an empty discovery cache
        home.mkdir()
        for case in ("cold", "warm"):
            with fresh_fake(tools.latency_s, tools.port, tools.kubeconfig) as fake:
                start = time.perf_counter()
                tools.kubectl_apply(home, rendered)
                applied = time.perf_counter()
                for name in app.deployments:
                    tools.kubectl_status(home, name)
                end = time.perf_counter()
                counts_now = request_counts(fake)
            runs[case].append({"apply_s": applied - start, "status_s": end - applied, "wall_s": end - start,
                               **{k: counts_now[k] for k in ("total", "writes", "watches", "dispatcher")}})
    for case, items in runs.items():
        result[f"kubectl_{case}"] = {
            "wall_s": median([r["wall_s"] for r in items]), "apply_s": median([r["apply_s"] for r in items]),
            "status_s": median([r["status_s"] for r in items]), "wall_runs_s": [r["wall_s"] for r in items],
            "requests": items[0]["total"], "writes": items[0]["writes"], "watches": items[0]["watches"],
            "dispatcher_requests": items[0]["dispatcher"], "requests_runs": [r["total"] for r in items]}
    return result


def measure_crashloop(tools: Tools, repeat: int) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="crash-", dir=tools.work))
    app = write_small_app(base, 1, extra=f"  progressDeadlineSeconds: {CRASH_DEADLINE_S}\n")
    image = f"{REPO}@{CRASH_DIGEST}"
    rendered = tools.render(app, image)
    result: dict[str, Any] = {"crash_interval_s": 0.2, "crashloop_restarts": 1, "progress_deadline_s": CRASH_DEADLINE_S}
    for key, threshold in (("envship", 1), ("envship_restarts_2", 2)):
        runs = [envship_crashloop(tools, app, image, threshold) for _ in range(repeat)]
        result[key] = {k: median([r[k] for r in runs]) for k in runs[0]}
        result[f"{key}_runs"] = runs
    if tools.kubectl is None:
        result["kubectl"] = None
        return result
    progress(f"crash loop: kubectl rollout status (waits for the {CRASH_DEADLINE_S} s progress deadline) x{repeat}")
    kubectl_runs = []
    home = base / "home"
    home.mkdir()
    for _ in range(repeat):
        with fresh_fake(tools.latency_s, tools.port, tools.kubeconfig) as fake:
            fake.set_scenario("crashloop", image=CRASH_DIGEST)
            marks: dict[str, float] = {}
            with StoreObserver(fake, crashloop_marks(marks, 2)):
                tools.kubectl_apply(home, rendered)
                status = tools.kubectl_status(home, app.deployments[0], ok=False)
                ended = time.monotonic()
            if status.returncode == 0 or "first" not in marks:
                raise SystemExit(f"kubectl rollout status did not fail:\n{status.stdout}{status.stderr}")
            kubectl_runs.append(ended - marks["first"])
            result["kubectl_message"] = status.stderr.strip().splitlines()[-1] if status.stderr.strip() else ""
    result["kubectl"] = {"verdict_s": median(kubectl_runs), "runs_s": kubectl_runs}
    return result


def envship_crashloop(tools: Tools, app: App, image: str, threshold: int) -> dict[str, float]:
    """One `deploy --no-rollback --crashloop-restarts N` into a fresh fake: first CrashLoopBackOff ->
    restartCount N reached -> the verdict printed (after reading the pod's events and logs)."""
    progress(f"crash loop: envship deploy --no-rollback --crashloop-restarts {threshold}")
    with fresh_fake(tools.latency_s, tools.port, tools.kubeconfig) as fake:
        fake.set_scenario("crashloop", image=CRASH_DIGEST)
        marks: dict[str, float] = {}
        with StoreObserver(fake, crashloop_marks(marks, threshold)):
            offset = time.time() - time.monotonic()
            code, _, err = tools.envship_inprocess(app, image, "--no-rollback", "--crashloop-restarts",
                                                   str(threshold))
        verdict = err.first(r"is not healthy")
        if code != 1 or verdict is None or "first" not in marks:
            raise SystemExit(f"envship did not report the crash loop ({code}):\n{err.text()[-3000:]}")
        details = [r.started - offset for r in fake.requests if "/events" in r.path or r.path.endswith("/log")]
    reached = marks.get("threshold", verdict)
    return {"verdict_s": verdict - marks["first"], "threshold_s": reached - marks["first"],
            "detect_s": verdict - reached, "details_s": verdict - min(details) if details else 0.0}


def crashloop_marks(marks: dict[str, float], threshold: int) -> Callable[[float, WatchEvent], None]:
    """Record when a pod first reports CrashLoopBackOff, and first with restartCount >= threshold."""
    def on_event(now: float, event: WatchEvent) -> None:
        if event.storage != ("", "pods"):
            return
        for status in (event.obj.get("status") or {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff":
                marks.setdefault("first", now)
                if int(status.get("restartCount", 0)) >= threshold:
                    marks.setdefault("threshold", now)
    return on_event


def measure_python_startup(tools: Tools, repeat: int) -> dict[str, float]:
    """Wall time of a Python process that only starts (`pass`) and one that imports an HTTP client
    (urllib3, which every Python Kubernetes client stands on; requests adds to it), with envship's
    environment: the least start-up any Python deploy tool pays before its first request."""
    def wall(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=tools.envship_environ(), check=True, timeout=60)
        return time.perf_counter() - start

    runs = max(repeat, 5)
    progress(f"python start-up: bare, importing urllib3, importing only the standard library's client, x{runs}")
    return {"bare_s": median([wall("pass") for _ in range(runs)]),
            "urllib3_s": median([wall("import urllib3") for _ in range(runs)]),
            # what a client written on the standard library alone needs, with a YAML parser for manifests
            "stdlib_s": median([wall("import http.client, ssl, json, yaml") for _ in range(runs)])}


def rollout_marks(marks: dict[str, float]) -> Callable[[float, WatchEvent], None]:
    """Record when the first Deployment is created ("created") and when each becomes available (by name,
    through available_marks): from the first creation to the last availability is the cluster's own
    rollout, which no client can shorten."""
    available = available_marks(marks)

    def on_event(now: float, event: WatchEvent) -> None:
        if event.storage == ("apps", "deployments") and event.type == "ADDED":
            marks.setdefault("created", now)
        available(now, event)
    return on_event


def available_marks(marks: dict[str, float]) -> Callable[[float, WatchEvent], None]:
    """Record when each Deployment first is available: observed, availableReplicas == replicas."""
    def on_event(now: float, event: WatchEvent) -> None:
        if event.storage != ("apps", "deployments"):
            return
        obj = event.obj
        meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
        if int(status.get("observedGeneration", 0)) == int(meta.get("generation", 0)) \
                and int(status.get("availableReplicas", 0)) == int(spec.get("replicas", 1)):
            marks.setdefault(str(meta.get("name")), now)
    return on_event


def measure_ready(tools: Tools, repeat: int) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="ready-", dir=tools.work))
    app = write_small_app(base, READY_DEPLOYMENTS)
    image = f"{REPO}@{SLOW_DIGEST}"
    rendered = tools.render(app, image)
    notices: list[float] = []
    progress(f"ready: envship deploy, {READY_DEPLOYMENTS} Deployments Ready {READY_AFTER_S:g} s after start, x{repeat}")
    for _ in range(repeat):
        with fresh_fake(tools.latency_s, tools.port, tools.kubeconfig) as fake:
            fake.set_scenario("slow", image=SLOW_DIGEST, ready_after=READY_AFTER_S)
            marks: dict[str, float] = {}
            with StoreObserver(fake, available_marks(marks)):
                code, _, err = tools.envship_inprocess(app, image)
            if code != 0:
                raise SystemExit(f"envship deploy (slow pods) failed ({code}):\n{err.text()[-3000:]}")
            for name in app.deployments:
                printed = err.first(rf"(^|\s){name} (\d+)/\2 ready")
                if printed is None or name not in marks:
                    raise SystemExit(f"no ready line or no available moment for {name}:\n{err.text()[-3000:]}")
                notices.append(printed - marks[name])
    result: dict[str, Any] = {"deployments": READY_DEPLOYMENTS, "ready_after_s": READY_AFTER_S,
                              "envship": {"notice_s": median(notices), "max_s": max(notices), "runs_s": notices}}
    if tools.kubectl is None:
        result["kubectl"] = None
        return result
    progress(f"ready: kubectl rollout status x{repeat}")
    exits = []
    home = base / "home"
    home.mkdir()
    for _ in range(repeat):
        with fresh_fake(tools.latency_s, tools.port, tools.kubeconfig) as fake:
            fake.set_scenario("slow", image=SLOW_DIGEST, ready_after=READY_AFTER_S)
            marks = {}
            with StoreObserver(fake, available_marks(marks)):
                tools.kubectl_apply(home, rendered)
                tools.kubectl_status(home, app.deployments[0])
                ended = time.monotonic()
            exits.append(ended - marks[app.deployments[0]])
    result["kubectl"] = {"exit_s": median(exits), "runs_s": exits}
    return result


# -- report -----------------------------------------------------------------------------------------

def summarize(results: dict[str, Any]) -> None:
    """The headline figures and the goals, next to the raw ones."""
    ordered = sorted(results["sizes"].values(), key=lambda s: s["objects"])
    latency = results["latency_ms"] / 1000
    for size in ordered:
        n = size["objects"]
        results[f"requests_per_object_{n}"] = round(size["envship"]["requests"] / n, 3)
        best = [size[k]["wall_s"] for k in ("kubectl_cold", "kubectl_warm") if size.get(k)]
        results[f"apply_wall_ratio_vs_kubectl_{n}"] = round(size["envship"]["wall_s"] / min(best), 3) if best else None
        # The floors: a Python tool that only imports an HTTP client (urllib3, or the standard library's with
        # yaml), applies everything in one round trip and learns the instant the last Deployment is available.
        size["floor_s"] = {"python_client": results["python_startup"]["urllib3_s"] + latency + size["rollout_s"],
                           "stdlib_client": results["python_startup"]["stdlib_s"] + latency + size["rollout_s"]}
        for key, floor in (("floor", "python_client"), ("floor_stdlib", "stdlib_client")):
            results[f"{key}_ratio_vs_kubectl_{n}"] = round(size["floor_s"][floor] / min(best), 3) if best else None
    results["requests_constant"] = {str(s["objects"]): s["envship"]["requests"] - s["objects"] for s in ordered}
    for size in ordered:
        n = size["objects"]
        results[f"requests_first_deploy_{n}"] = size["envship"]["requests"]
        results[f"requests_noop_redeploy_{n}"] = size["envship_noop"]["requests"]
        results[f"writes_noop_redeploy_{n}"] = size["envship_noop"]["writes"]
    results["startup_s"] = round(median([s["envship"]["phases_s"]["startup_s"] for s in ordered]), 3)
    if len(ordered) >= 2:
        small, large = ordered[0], ordered[-1]
        results["requests_per_added_object"] = round(
            (large["envship"]["requests"] - small["envship"]["requests"]) / (large["objects"] - small["objects"]), 3)
    results["crashloop_verdict_s"] = round(results["crashloop"]["envship"]["verdict_s"], 3)
    results["crashloop_verdict_restarts_2_s"] = round(results["crashloop"]["envship_restarts_2"]["verdict_s"], 3)
    results["ready_notice_s"] = round(results["ready"]["envship"]["notice_s"], 3)
    per_added = results.get("requests_per_added_object")
    ratio = results.get("apply_wall_ratio_vs_kubectl_200")
    def at_most(key: str, goal: float) -> bool | None:
        value = results.get(key)
        return None if value is None else value <= goal

    results["goals_met"] = {
        "one_request_per_object_plus_constant": None if per_added is None else per_added <= 1,
        "wall_under_quarter_of_kubectl_200": None if ratio is None else ratio < 0.25,
        "ratio_6_at_most_0.6": at_most("apply_wall_ratio_vs_kubectl_6", 0.6),
        "ratio_20_at_most_0.5": at_most("apply_wall_ratio_vs_kubectl_20", 0.5),
        "first_deploy_at_most_n_plus_8": all(s["envship"]["requests"] <= s["objects"] + 8 for s in ordered),
        "noop_redeploy_at_most_12_requests_0_writes": all(
            s["envship_noop"]["requests"] <= 12 and s["envship_noop"]["writes"] == 0 for s in ordered),
        "startup_at_most_0.15s": results["startup_s"] <= 0.15,
        "crashloop_verdict_under_2s": results["crashloop_verdict_s"] < 2.0,
        "ready_notice_under_0.2s": results["ready_notice_s"] < 0.2,
    }


def seconds(value: float | None) -> str:
    if value is None:
        return "not installed"
    return f"{value * 1000:.0f} ms" if value < 0.1 else f"{value:.2f} s"


def print_table(results: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str, str]] = []
    for size in sorted(results["sizes"].values(), key=lambda s: s["objects"]):
        n, e = size["objects"], size["envship"]
        cold, warm = size.get("kubectl_cold"), size.get("kubectl_warm")
        rows.append((f"{n} objects ({size['deployments']} Deployments): API requests",
                     f"{e['requests']} = {n} + {e['requests'] - n}",
                     f"{cold['requests']} / {warm['requests']}" if cold and warm else "not installed",
                     "1/object + constant"))
        rows.append((f"{n} objects: wall time, apply + wait", seconds(e["wall_s"]),
                     f"{seconds(cold['wall_s'])} / {seconds(warm['wall_s'])}" if cold and warm else "not installed",
                     ""))
        parts = e.get("phases_s") or {}
        if parts:
            rows.append(("  envship: start-up, preamble, apply, wait, finish",
                         " ".join(f"{parts[k]:.2f}" for k in ("startup_s", "preamble_s", "apply_s", "wait_s",
                                                               "finish_s")), "", ""))
        if cold and warm:
            rows.append(("  kubectl: apply + rollout status (cold / warm)", "",
                         f"{cold['apply_s']:.2f}+{cold['status_s']:.2f} / {warm['apply_s']:.2f}+{warm['status_s']:.2f}",
                         ""))
        rows.append(("  envship in-process (no start-up)", seconds(size["envship_inprocess"]["wall_s"]), "", ""))
        floor = size["floor_s"]
        floor_ratio = results.get(f"floor_ratio_vs_kubectl_{n}")
        rows.append(("  the cluster's rollout (first Deployment created ->", seconds(size["rollout_s"]), "", ""))
        rows.append(("    last available); floor: python + urllib3 + 1 RTT", seconds(floor["python_client"]),
                     f"ratio {floor_ratio:.3f}" if floor_ratio is not None else "", ""))
        stdlib_ratio = results.get(f"floor_stdlib_ratio_vs_kubectl_{n}")
        rows.append(("    the same on the standard library's http.client", seconds(floor["stdlib_client"]),
                     f"ratio {stdlib_ratio:.3f}" if stdlib_ratio is not None else "", ""))
        noop = size["envship_noop"]
        rows.append((f"{n} objects: redeploy, nothing to change", f"{noop['requests']} requests, {noop['writes']} "
                     f"writes, {seconds(noop['wall_s'])}", "", "<= 12 requests, 0 writes"))
        ratio = results.get(f"apply_wall_ratio_vs_kubectl_{n}")
        rows.append((f"{n} objects: wall time envship / kubectl", f"{ratio:.3f}" if ratio is not None else "null",
                     "", "< 0.25 at 200" if n == 200 else ""))
    py = results["python_startup"]
    rows.append(("python start-up: bare / urllib3 / stdlib client + yaml",
                 f"{seconds(py['bare_s'])} / {seconds(py['urllib3_s'])} / {seconds(py['stdlib_s'])}", "",
                 "start-up <= 0.15 s"))
    if "requests_per_added_object" in results:
        rows.append(("API requests per added object", f"{results['requests_per_added_object']:.2f}", "", "<= 1"))
    crash = results["crashloop"]
    e = crash["envship"]
    rows.append(("crash loop: first CrashLoopBackOff -> verdict", seconds(e["verdict_s"]),
                 seconds(crash["kubectl"]["verdict_s"]) if crash["kubectl"] else "not installed", "< 2 s"))
    rows.append((f"  to restartCount {crash['crashloop_restarts']} + to the printed verdict",
                 f"{seconds(e['threshold_s'])} + {seconds(e['detect_s'])}", "", ""))
    two = crash["envship_restarts_2"]
    rows.append(("  with --crashloop-restarts 2", seconds(two["verdict_s"]), "", ""))
    ready = results["ready"]
    rows.append(("Deployment available -> noticed", seconds(ready["envship"]["notice_s"]),
                 seconds(ready["kubectl"]["exit_s"]) if ready["kubectl"] else "not installed", "< 0.2 s"))
    print(f"fake API server with {results['latency_ms']:g} ms per request; kubectl {results['kubectl_version']}; "
          f"medians of {results['repeat']} runs; {results['machine']}")
    print(f"{'':<52} {'envship':>26}  {'kubectl (cold / warm)':>24}  goal")
    for name, ours, theirs, goal in rows:
        print(f"{name:<52} {ours:>26}  {theirs:>24}  {goal}")
    print(f"goals met: {', '.join(f'{k}={v}' for k, v in results['goals_met'].items())}")
    print(f"crash loop: envship's figure includes waiting for restartCount {crash['crashloop_restarts']} "
          f"(--crashloop-restarts default; the fake restarts every {crash['crash_interval_s']:g} s) and reading the "
          f"pod's events and logs for the message ({seconds(e['details_s'])}). The first CrashLoopBackOff already "
          f"carries restartCount 1, so the default decides at once, on a real cluster too; with "
          f"--crashloop-restarts 2 a real kubelet's 10 s back-off comes first. `kubectl rollout status` fails only "
          f"at progressDeadlineSeconds "
          f"({crash['progress_deadline_s']} s here, 600 s by default).")
    print("ready: kubectl's figure is the time until `kubectl rollout status` exits.")
    if results.get("kubectl_note"):
        print(f"kubectl: {results['kubectl_note']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added to every API request (default 20)")
    parser.add_argument("--sizes", default="6,20,50,200",
                        help="object counts, comma-separated (default 6,20,50,200)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; medians are reported (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--kubectl", metavar="PATH", help="the kubectl to compare with (default: kubectl on PATH)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    repeat = max(1, args.repeat)

    import envship

    kubectl, note = kubectl_binary(args.kubectl)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "latency_ms": args.latency_ms, "repeat": repeat, "python": sys.version.split()[0],
        "envship_version": envship.__version__, "kubectl": kubectl, "kubectl_version": kubectl_version(kubectl),
        "kubectl_note": note, "fake_server_version": SERVER_VERSION["gitVersion"],
        "machine": f"{os.cpu_count()} cores, {platform.platform()}"}
    work = Path(tempfile.mkdtemp(prefix="envship-bench-kube-"))
    try:
        tools = Tools(kubectl, note, skip_image_check_flag(), work, free_port(), args.latency_ms / 1000)
        results["python_startup"] = measure_python_startup(tools, repeat)
        results["sizes"] = {str(n): measure_size(tools, n, repeat) for n in sizes}
        results["crashloop"] = measure_crashloop(tools, repeat)
        results["ready"] = measure_ready(tools, repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["bench_seconds"] = round(time.perf_counter() - started, 1)
    summarize(results)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
