"""A fake Kubernetes API server for tests and benchmarks: a real HTTP/1.1 server on 127.0.0.1 that
behaves like kube-apiserver for what envship and kubectl use, plus a fake controller that drives
workloads through their status (tests/fakes/controller.py).

Start it from Python::

    with FakeKube.start() as kube:                 # port 0: an ephemeral port
        kube.kubeconfig(tmp_path / "kubeconfig")   # server URL + bearer token, for kubectl or envship
        requests.get(kube.url + "/api/v1/namespaces", headers=kube.auth_headers)
        kube.requests.count("PATCH")               # every request is logged (method, path, query, status)

or as a script (manual runs, benchmarks)::

    python -m tests.fakes.kube_apiserver --port 0 --latency-ms 20 --kubeconfig /tmp/kc --max-seconds 600

which prints the URL on the first line of stdout and exits after --max-seconds (default 600), on
SIGTERM or on Ctrl-C (--tls: https with a throw-away CA, written into the kubeconfig).
`GET /_fake/requests` answers request counts by method and path, `DELETE /_fake/requests` resets
them (neither is logged nor needs the token).

Authentication: a bearer token (`token`, written into kubeconfig()). kubectl never sends credentials
over plain http, so over http requests without an Authorization header are let in (a wrong token is
401); with `tls=True` (self-signed CA made with the openssl CLI: `ca_file`, embedded by kubeconfig())
the token is required. `authenticate=callable(authorization_header) -> bool` replaces the check
(the GKE tests accept the access tokens their fake STS issued).

What it serves
- Discovery: /version, /api (APIVersions), /apis (APIGroupList), /api/v1 and /apis/G/V
  (APIResourceList with singularName, namespaced, kind, verbs, shortNames, categories, subresources),
  /apis/G (APIGroup); aggregated discovery (apidiscovery.k8s.io/v2 and v2beta1 APIGroupDiscoveryList)
  when the Accept header asks for it, as kubectl >= 1.26 does; /openapi/v3 (an index and per
  group-version documents whose PATCH operations declare the `fieldValidation` parameter, so kubectl
  uses server-side field validation) and /openapi/v2 (a minimal protobuf document, for older kubectl's
  client-side validation, which then finds no schema and skips). /healthz, /readyz, /livez.
- Kinds: core/v1 namespaces, nodes, pods (+status, +log), services, configmaps, secrets,
  serviceaccounts, events, persistentvolumeclaims; apps/v1 deployments, statefulsets, replicasets
  (+status, +scale), daemonsets; batch/v1 jobs, cronjobs; networking.k8s.io/v1 ingresses,
  ingressclasses, networkpolicies; autoscaling/v2 horizontalpodautoscalers; policy/v1
  poddisruptionbudgets; rbac.authorization.k8s.io/v1 roles, rolebindings, clusterroles,
  clusterrolebindings; coordination.k8s.io/v1 leases; apiextensions.k8s.io/v1
  customresourcedefinitions (a CRD registers its kinds in discovery; deleting it removes them).
- Verbs: create (POST, generateName), get, list (labelSelector, fieldSelector, limit/continue),
  replace (PUT, resourceVersion precondition -> 409 Conflict), patch (application/merge-patch+json,
  application/strategic-merge-patch+json, application/json-patch+json, and server-side apply
  application/apply-patch+yaml with fieldManager (required, 422) and force; apply creates when absent
  (201); see ssa.py), delete (DeleteOptions preconditions, propagationPolicy: Background and Foreground
  delete dependents through ownerReferences, Orphan strips the references; Job defaults to Orphan like
  batch/v1), deletecollection, watch. `dryRun=All` on every write validates and answers without storing.
- Objects: uid, resourceVersion (one global counter; unchanged by a write that changes nothing, such
  as a repeated identical apply), creationTimestamp, generation (kinds with a spec to roll out: 1 on
  create, +1 when spec changes, never for status writes), managedFields (FieldsV1, Apply and Update
  entries, conflicts), /status subresources (status is ignored on the main resource and only status
  is written through /status), finalizers (delete sets deletionTimestamp; removing the last finalizer
  deletes), defaulting of the fields kubectl and envship see (Deployment strategy, container
  imagePullPolicy, Service clusterIP/ports/nodePorts, Secret stringData -> data, Job selector and
  labels, ...). List items of built-in kinds carry no apiVersion/kind, as on a real server.
- Validation (422 Invalid with details.causes): names (DNS subdomain; DNS label for Namespaces;
  DNS-1035 for Services), label keys and values, workloads without selector, selector not matching
  the template labels, immutable selectors, Job template and StatefulSet spec rules, containers
  without name or image, Services without ports, immutable ConfigMaps/Secrets, Secret type, PVC spec.
  The namespace of a namespaced object must exist (404 `namespaces "x" not found`) and not be
  terminating (403 Forbidden); a body namespace that differs from the URL's is 400 BadRequest (as on
  a real server).
- Watch (?watch=1 or /watch/ paths): newline-delimited JSON events over chunked transfer encoding;
  from resourceVersion N replays the history after N (the last `history_size` events; older -> an
  ERROR event with a 410 Expired Status), without one (or "0") starts with synthetic ADDED events;
  labelSelector/fieldSelector with ADDED/DELETED for objects entering/leaving the selection;
  BOOKMARK events every `bookmark_interval` seconds with allowWatchBookmarks=true;
  sendInitialEvents=true ends the initial events with a bookmark annotated
  `k8s.io/initial-events-end`; ends after timeoutSeconds (default 300).
- Tables: `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` (kubectl get) gets a
  meta.k8s.io/v1 Table with the usual columns for common kinds.
- Errors: Status bodies with reason and code: 400 BadRequest, 401 Unauthorized (see above;
  FakeKube.start(token=None) disables auth), 403 Forbidden, 404 NotFound, 405
  MethodNotAllowed, 406 NotAcceptable, 409 AlreadyExists/Conflict (apply conflicts list the fields in
  details.causes), 410 Expired, 415 UnsupportedMediaType, 422 Invalid, and injected failures
  (inject_failure: 429 TooManyRequests with Retry-After, 500, 503, ... for the next N matching requests).
- Namespaces: deleting one sets status.phase Terminating and deletionTimestamp; after
  `namespace_delete_delay` seconds the controller deletes its content and then the namespace;
  deleting it again is 409 Conflict. New namespaces get a `default` ServiceAccount and the
  `kube-root-ca.crt` ConfigMap.

Scenarios (controller.py): what each container of a pod does is chosen by, first match wins:
1. rules added with `FakeKube.set_scenario(scenario, image=..., name=..., namespace=...)`;
2. the pod (template) annotation `fake.envship.dev/scenario: <scenario>` (or
   `container=scenario,other=scenario` per container);
3. the image: a repository path or tag containing `crashloop`, `pullfail`, `unschedulable`,
   `neverready`, `missingkey` or `slow` selects that scenario (e.g. `ghcr.io/acme/crashloop@sha256:...`,
   `app:slow`);
4. otherwise `healthy`.
Scenarios: healthy (Ready after `ready_delay`, default 0.15 s), slow (Ready after the annotation
`fake.envship.dev/ready-after: 2s` or `slow_delay`), crashloop (CrashLoopBackOff, restartCount +1
every `crash_interval`, lastState.terminated exitCode 1, log lines), pullfail (ErrImagePull /
ImagePullBackOff and "Failed to pull image" events), missingkey (CreateContainerConfigError
"couldn't find key ... in Secret ns/name"), unschedulable (Pending, PodScheduled False Unschedulable
"0/3 nodes are available: 3 Insufficient cpu."), neverready (Running, never Ready, "Readiness probe
failed" events). Independently of scenarios, env `secretKeyRef`/`configMapKeyRef` to a missing
Secret/ConfigMap or key, `envFrom` to a missing one (CreateContainerConfigError) and configMap/secret
volumes that do not exist (ContainerCreating, FailedMount) block a container like on a real node, and
invalid image references give InvalidImageName. The pod annotation `fake.envship.dev/log` holds lines its
containers print after starting (what an app writes, for tests of log handling). Jobs run pods to completion
(`fake.envship.dev/run-for`, default 0.3 s); crashing Job pods fail until backoffLimit. Services of type
LoadBalancer get status.loadBalancer.ingress (`lb_ip`, default 203.0.113.10) after `lb_delay`, and so do
Ingresses that the fake's ingress controller serves: a fresh fake has its IngressClass `fake`, marked the
default class; an Ingress naming another class (or none, once that class is gone or not the default)
never gets an address, as on a cluster without a controller for it.

Known differences from a real kube-apiserver: no schemas (unknown fields are accepted and kept;
fieldValidation is ignored), no conversion between versions of a group, no admission webhooks, RBAC,
quotas or limit ranges; strategic merge patch and apply know the merge keys listed in ssa.py, not the
full schemas; pods are deleted at once (no graceful termination); controller writes (status, pods,
events) are not recorded in managedFields; list continue tokens page over the current state rather
than a snapshot; JSON only (no protobuf or CBOR bodies).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import random
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from . import ssa
from .controller import Controller, Timing
from .http import FakeHandler, FakeHTTPServer
from .objects import jcopy, meta, now_iso
from .resources import AGGREGATED_V2, AGGREGATED_V2BETA1, Registry, ResourceType, openapi_v2_protobuf
from .store import ApiError, Store, bad_request, expired

DEFAULT_TOKEN = "envship-fake-token"
SERVER_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-envship-fake",
                  "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                  "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
                  "platform": "linux/amd64"}
_UNAUTHENTICATED = ("/version", "/healthz", "/readyz", "/livez")


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    user_agent: str
    started: float
    status: int = 0

    @property
    def watch(self) -> bool:
        return "watch=1" in self.query or "watch=true" in self.query or "/watch/" in self.path


class RequestLog:
    """Every API request the server received, in arrival order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def __iter__(self) -> Iterator[RequestRecord]:
        with self._lock:
            return iter(list(self._records))

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def count(self, method: str | None = None, path: str | None = None, *, prefix: str | None = None,
              contains: str | None = None, watch: bool | None = None) -> int:
        """Requests matching every given filter (method, exact path, path prefix, substring of the
        path, watch or not)."""
        n = 0
        for r in self:
            if method and r.method != method:
                continue
            if path is not None and r.path != path:
                continue
            if prefix is not None and not r.path.startswith(prefix):
                continue
            if contains is not None and contains not in r.path:
                continue
            if watch is not None and r.watch != watch:
                continue
            n += 1
        return n

    def by_method_path(self) -> Counter[str]:
        return Counter(f"{r.method} {r.path}" for r in self)


@dataclass
class _Failure:
    status: int
    remaining: int
    path: re.Pattern[str]
    method: str | None
    retry_after: float | None
    message: str


FAULT_KINDS = ("429", "5xx", "reset", "cut", "410", "odd-line")


class FaultMode:
    """Seeded faults, as a real API server, its load balancers and proxies produce them. A share `rate` of
    requests fails with a 429 (Retry-After 0 or 1), a 5xx, or a dropped connection (5xx and drops only on
    requests a client may repeat: GET, DELETE, server-side apply; on a create or an update they cannot
    be told apart from success, and no client retries them). A share `watch_rate` of watch streams is cut
    after a few events with half an event sent ("cut"), ends with a 410 Expired ERROR event ("410"), or
    carries a line that is not a watch event, a List ("odd-line"). The same seed gives the same choices
    in the same order."""

    def __init__(self, seed: int, rate: float, watch_rate: float, kinds: tuple[str, ...]) -> None:
        self.seed = seed
        self.rate = rate
        self.watch_rate = watch_rate
        self.kinds = tuple(kinds)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def for_request(self, idempotent: bool) -> str | None:
        with self.lock:
            if self.rng.random() >= self.rate:
                return None
            choices = [k for k in self.kinds if k == "429" or (idempotent and k in ("5xx", "reset"))]
            if not choices:
                return None
            kind = self.rng.choice(choices)
            self.counts[kind] += 1
            return kind

    def for_watch(self) -> tuple[str, int] | None:
        with self.lock:
            choices = [k for k in self.kinds if k in ("cut", "410", "odd-line")]
            if not choices or self.rng.random() >= self.watch_rate:
                return None
            kind = self.rng.choice(choices)
            self.counts[kind] += 1
            return kind, self.rng.randint(0, 3)

    def retry_after(self) -> str:
        with self.lock:
            return "1" if self.rng.random() < 0.2 else "0"


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
            410: "Expired", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
            504: "Timeout"}


class _Handler(FakeHandler):
    server_version = "envship-fake-kube-apiserver"
    timeout = 120  # idle keep-alive connections end after this

    def send(self, code: int, body: bytes, content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", f"{id(self):x}")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, code: int, obj: Any, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
        self.send(code, json.dumps(obj, separators=(",", ":")).encode(), content_type, headers)


class FakeKube:
    """The fake API server plus its controller. Use `FakeKube.start(...)`; `stop()` (or leaving the
    `with` block) shuts both down."""

    def __init__(self, *, latency_s: float = 0.0, token: str | None = DEFAULT_TOKEN, host: str = "127.0.0.1",
                 port: int = 0, history_size: int = 1000, bookmark_interval: float = 1.0,
                 default_watch_timeout: float = 300.0, timing: Timing | None = None, tls: bool = False,
                 anonymous: bool | None = None,
                 authenticate: Callable[[str], bool] | None = None) -> None:
        self.latency_s = latency_s
        self.token = token
        # Like GKE's webhook token authentication: decides on the whole Authorization header (the GKE
        # tests accept the access tokens the fake Google STS issued and that have not expired).
        self.authenticate = authenticate
        # kubectl never sends credentials over plain http, so there requests without a token are let in
        # (a wrong token is still 401); over https (tls=True) the token is required.
        self.anonymous = (not tls) if anonymous is None else anonymous
        self.tls_dir: Path | None = None
        self.bookmark_interval = bookmark_interval
        self.default_watch_timeout = default_watch_timeout
        self.registry = Registry()
        self.store = Store(self.registry, history_size=history_size)
        self.controller = Controller(self.store, timing or Timing())
        self.requests = RequestLog()
        self.errors: list[str] = []  # unexpected exceptions while handling requests (tests assert none)
        self._failures: list[_Failure] = []
        self._failure_lock = threading.Lock()
        self.faults: FaultMode | None = None
        self.aggregated_discovery = True   # False: answer /api and /apis as servers before 1.26 do
        self._httpd = FakeHTTPServer((host, port), self, _Handler)
        self.host, self.port = self._httpd.server_address[0], self._httpd.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self.ca_file: Path | None = None
        if tls:
            self._enable_tls()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fake-kube-apiserver", daemon=True)
        self._stopped = False

    @classmethod
    def start(cls, latency_s: float = 0.0, **kwargs: Any) -> FakeKube:
        """Start the server and its controller. Keyword arguments: token (None: no auth), tls (serve
        https with a throw-away CA: `ca_file`, and kubeconfig() embeds it), anonymous, port,
        history_size, bookmark_interval, default_watch_timeout, and the controller's timing
        (ready_delay, slow_delay, crash_interval, pull_backoff, lb_delay, namespace_delete_delay,
        job_run_for, node_count, tick, lb_ip) or timing=Timing(...)."""
        timing_fields = set(Timing.__dataclass_fields__)
        timing_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in timing_fields}
        if timing_kwargs:
            kwargs["timing"] = Timing(**timing_kwargs)
        fake = cls(latency_s=latency_s, **kwargs)
        fake.controller.bootstrap()
        fake._thread.start()
        fake.controller.start()
        return fake

    def _enable_tls(self) -> None:
        """Serve https with a throw-away CA and a certificate for 127.0.0.1 (made with the openssl CLI)."""

        directory = Path(tempfile.mkdtemp(prefix="envship-fake-kube-tls-"))
        self.tls_dir = directory

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=30)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj",
                "/CN=envship-fake-kube-ca", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
        (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                           "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
                                           "keyUsage=critical,digitalSignature\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(directory / "server.crt", directory / "server.key")
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True,
                                                 do_handshake_on_connect=False)
        self.ca_file = directory / "ca.crt"
        self.url = f"https://{self.host}:{self.port}"
        self._cleanup_tls = lambda: shutil.rmtree(directory, ignore_errors=True)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with self.store.cond:
            self.store.stopping = True
            self.store.cond.notify_all()
        self.controller.stop()
        self._httpd.stop(self._thread)
        if self.tls_dir is not None:
            self._cleanup_tls()

    def __enter__(self) -> FakeKube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests --------------------------------------------------------------------------

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def kubeconfig(self, path: str | Path, *, context: str = "fake", namespace: str = "default") -> Path:
        """Write a kubeconfig for this server (bearer token; plain http) and return its path."""
        path = Path(path)
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        cluster: dict[str, Any] = {"server": self.url}
        if self.ca_file is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_file.read_bytes()).decode()
        else:
            cluster["insecure-skip-tls-verify"] = True
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": context, "cluster": cluster}],
            "users": [{"name": context, "user": user}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context,
                                                       "namespace": namespace}}],
            "current-context": context,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        path.chmod(0o600)
        return path

    def resource(self, name: str) -> ResourceType:
        """A resource type by plural, singular, kind, short name or `plural.group`."""
        lowered = name.lower()
        for rt in self.registry.all():
            names = {rt.plural, rt.singular, rt.kind.lower(), f"{rt.plural}.{rt.group}", *rt.short_names}
            if lowered in names:
                return rt
        raise KeyError(f"unknown resource {name!r}")

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        rt = self.resource(resource)
        with self.store.cond:
            obj = self.store.lookup(rt, namespace or "", name)
            return jcopy(obj) if obj is not None else None

    def list(self, resource: str, namespace: str | None = None, labels: str = "") -> list[dict[str, Any]]:
        rt = self.resource(resource)
        return [dict(i, apiVersion=rt.group_version, kind=rt.kind)
                for i in self.store.list(rt, namespace, label_selector=labels)["items"]]

    def create(self, obj: dict[str, Any], *, manager: str = "fake-test") -> dict[str, Any]:
        """Create an object as a client would (validation, defaulting); returns the stored object."""
        rt = self._rt_of(obj)
        return self.store.create(rt, meta(obj).get("namespace", "") if rt.namespaced else "", obj, manager=manager)

    def apply(self, obj: dict[str, Any], *, manager: str = "fake-test", force: bool = True) -> dict[str, Any]:
        rt = self._rt_of(obj)
        ns = meta(obj).get("namespace", "") if rt.namespaced else ""
        return self.store.patch(rt, ns, meta(obj)["name"], "apply", json.dumps(obj).encode(), manager=manager,
                                force=force)[1]

    def delete(self, resource: str, namespace: str | None, name: str) -> None:
        rt = self.resource(resource)
        self.store.delete(rt, namespace or "", name)

    def events(self, namespace: str | None = None, *, involved: str | None = None,
               reason: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.list("events", namespace)
                if (involved is None or e["involvedObject"].get("name") == involved)
                and (reason is None or e.get("reason") == reason)]

    def pods(self, namespace: str, labels: str = "") -> list[dict[str, Any]]:
        return self.list("pods", namespace, labels)

    def set_scenario(self, scenario: str, *, image: str | None = None, name: str | None = None,
                     namespace: str | None = None, **params: Any) -> None:
        """Containers whose image contains `image` (and/or whose pod name starts with `name`, in
        `namespace`) follow `scenario` from the controller's next pass, existing pods included (the
        newest rule wins). `params`: ready_after, run_for (seconds), missing_key, missing_secret."""
        self.controller.add_rule(scenario, image=image, name=name, namespace=namespace, **params)

    def inject_failure(self, path: str = "", *, status: int = 429, count: int = 1, retry_after: float | None = 1,
                       method: str | None = None, message: str | None = None) -> None:
        """The next `count` requests whose path matches the regular expression `path` (and `method`)
        get `status` with a Status body (and, for 429/503 with retry_after set, `Retry-After` in whole
        seconds and details.retryAfterSeconds)."""
        default = {429: "Too many requests, please try again later.",
                   500: "Internal error occurred: injected failure",
                   503: "The server is currently unable to handle the request",
                   504: "The server was unable to return a response in the time allotted"}.get(
                       status, f"injected failure {status}")
        with self._failure_lock:
            self._failures.append(_Failure(status, count, re.compile(path), method, retry_after,
                                           message or default))

    def set_faults(self, seed: int | None, *, rate: float = 0.1, watch_rate: float = 0.5,
                   kinds: tuple[str, ...] = FAULT_KINDS) -> FaultMode | None:
        """Switch the seeded fault mode on (see FaultMode), or off with seed None; returns it (its
        `counts` say what was injected)."""
        self.faults = None if seed is None else FaultMode(seed, rate, watch_rate, kinds)
        return self.faults

    def logs(self, namespace: str, pod: str, container: str | None = None, previous: bool = False) -> str:
        return "".join(line + "\n" for line in self.controller.log_lines(namespace, pod, container, previous))

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
        """Poll until predicate() is truthy; return its value or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            time.sleep(interval)

    def _rt_of(self, obj: dict[str, Any]) -> ResourceType:
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.split("/")[0] if "/" in api_version else ""
        rt = self.registry.by_kind(group, str(obj.get("kind", "")))
        if rt is None:
            raise KeyError(f"unknown kind {api_version}/{obj.get('kind')}")
        return rt

    # -- request handling -----------------------------------------------------------------------------

    def _handle(self, h: _Handler, method: str) -> None:
        url = urlsplit(h.path)
        path = unquote(url.path)
        if path.startswith("/_fake/"):
            self._handle_meta(h, method, path)
            return
        record = RequestRecord(method, url.path, url.query, h.headers.get("User-Agent", ""), time.time())
        self.requests.append(record)
        try:
            body = h.read_body()
            if self.latency_s > 0:
                time.sleep(self.latency_s)
            self._check_failures(method, url.path)
            if self._injected_fault(h, method, url.query):
                record.status = 0
                return
            if self.authenticate is not None and path not in _UNAUTHENTICATED:
                if not self.authenticate(h.headers.get("Authorization", "")):
                    raise ApiError(401, "Unauthorized", "Unauthorized")
            elif self.token and path not in _UNAUTHENTICATED:
                auth = h.headers.get("Authorization", "")
                if auth != f"Bearer {self.token}" and (auth or not self.anonymous):
                    raise ApiError(401, "Unauthorized", "Unauthorized")
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            record.status = self._route(h, method, path, query, body)
        except ApiError as e:
            record.status = e.code
            with contextlib.suppress(OSError):
                h.send_json(e.code, e.status(), headers=e.headers)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            record.status = 499
            h.close_connection = True
        except Exception as e:  # noqa: BLE001 - a fake must answer 500 like a server, and record why
            self.errors.append(f"{method} {h.path}: {traceback.format_exc()}")
            record.status = 500
            with contextlib.suppress(OSError):
                h.send_json(500, ApiError(500, "InternalError", f"Internal error occurred: {e}").status())

    def _handle_meta(self, h: _Handler, method: str, path: str) -> None:
        h.read_body()
        if path == "/_fake/requests" and method == "GET":
            counts = self.requests.by_method_path()
            h.send_json(200, {"total": len(self.requests), "watches": self.requests.count(watch=True),
                              "byMethodPath": dict(sorted(counts.items()))})
        elif path == "/_fake/requests" and method == "DELETE":
            self.requests.clear()
            h.send_json(200, {"total": 0})
        else:
            h.send(404, b"404 page not found\n", "text/plain; charset=utf-8")

    def _injected_fault(self, h: _Handler, method: str, query: str) -> bool:
        """The fault mode's choice for this request: an ApiError raised, True for a dropped connection."""
        faults = self.faults
        if faults is None:
            return False
        content_type = h.headers.get("Content-Type", "")
        idempotent = method in ("GET", "DELETE") or (method == "PATCH" and "apply-patch" in content_type)
        kind = faults.for_request(idempotent)
        if kind == "429":
            retry_after = faults.retry_after()
            raise ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                           {"retryAfterSeconds": int(retry_after)}, {"Retry-After": retry_after})
        if kind == "5xx":
            raise ApiError(503, "ServiceUnavailable", "The server is currently unable to handle the request")
        if kind == "reset":  # the connection goes away without an answer
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            return True
        return False

    def _check_failures(self, method: str, path: str) -> None:
        with self._failure_lock:
            for f in self._failures:
                if f.remaining > 0 and (f.method is None or f.method == method) and f.path.search(path):
                    f.remaining -= 1
                    headers = {}
                    details = None
                    if f.retry_after is not None and f.status in (429, 503):
                        # whole seconds, as the header allows (a sub-second value gives "0": retry at once)
                        headers["Retry-After"] = str(max(0, int(f.retry_after)))
                        details = {"retryAfterSeconds": max(0, int(f.retry_after))}
                    raise ApiError(f.status, _REASONS.get(f.status, "InternalError"), f.message, details, headers)
            self._failures = [f for f in self._failures if f.remaining > 0]

    def _route(self, h: _Handler, method: str, path: str, q: dict[str, str], body: bytes) -> int:
        accept = h.headers.get("Accept", "") or "*/*"
        parts = [p for p in path.split("/") if p]
        if path in ("/healthz", "/readyz", "/livez"):
            h.send(200, b"ok", "text/plain; charset=utf-8")
            return 200
        if path == "/version":
            h.send_json(200, SERVER_VERSION)
            return 200
        if parts and parts[0] == "openapi":
            return self._openapi(h, parts, accept)
        if method == "GET" and parts in (["api"], ["apis"]):
            legacy = parts == ["api"]
            for media, api_version in ((AGGREGATED_V2, "apidiscovery.k8s.io/v2"),
                                       (AGGREGATED_V2BETA1, "apidiscovery.k8s.io/v2beta1")):
                if self.aggregated_discovery and _accepts(accept, media):
                    h.send_json(200, self.registry.aggregated(legacy, api_version), media)
                    return 200
            doc = self.registry.api_versions(f"{self.host}:{self.port}") if legacy else self.registry.api_group_list()
            h.send_json(200, doc)
            return 200
        if len(parts) < 2 or parts[0] not in ("api", "apis") or (parts[0] == "api" and parts[1] != "v1"):
            h.send(404, b"404 page not found\n", "text/plain; charset=utf-8")
            return 404
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        else:
            group = parts[1]
            if len(parts) == 2:
                if group not in self.registry.group_versions() or method != "GET":
                    h.send(404, b"404 page not found\n", "text/plain; charset=utf-8")
                    return 404
                h.send_json(200, self.registry.api_group(group))
                return 200
            version, rest = parts[2], parts[3:]
        if not self.registry.in_group_version(group, version):
            h.send(404, b"404 page not found\n", "text/plain; charset=utf-8")
            return 404
        if not rest:
            if method != "GET":
                raise _method_not_allowed()
            h.send_json(200, self.registry.resource_list(group, version))
            return 200
        if not _accepts_json(accept):
            raise ApiError(406, "NotAcceptable", "only the following media types are accepted: application/json, "
                                                 "application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io")
        watch_path = rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        ns: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            candidate = self.registry.find(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                ns, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise _not_found_resource()
        rt = self.registry.find(group, version, rest[0])
        if rt is None:
            raise _not_found_resource()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if rt.namespaced and name is not None and ns is None:
            raise _not_found_resource()
        if sub and sub not in rt.subresources:
            raise _not_found_resource()
        ns_key = ns or ""
        dry_run = _dry_run(q)
        manager = q.get("fieldManager") or _manager_from_agent(h.headers.get("User-Agent", ""))
        table = "as=Table" in accept and method == "GET"

        if name is None:
            if method == "GET":
                if watch_path or q.get("watch") in ("1", "true", "True"):
                    return self._watch(h, rt, ns, q, None, table=table)
                listing = self.store.list(rt, ns, label_selector=q.get("labelSelector"),
                                          field_selector=q.get("fieldSelector"), limit=_int(q, "limit"),
                                          continue_token=q.get("continue", ""))
                if table:
                    h.send_json(200, _table(rt, listing, q), "application/json")
                else:
                    h.send_json(200, listing)
                return 200
            if method == "POST":
                if rt.namespaced and ns is None:
                    raise _method_not_allowed()
                obj = self.store.create(rt, ns_key, _decode(body, h), manager=manager, dry_run=dry_run)
                h.send_json(201, obj)
                return 201
            if method == "DELETE":
                opts = _delete_options(body)
                result = self.store.delete_collection(
                    rt, ns, label_selector=q.get("labelSelector"), field_selector=q.get("fieldSelector"),
                    dry_run=dry_run or _dry_run(opts), options=opts, propagation=q.get("propagationPolicy", ""))
                h.send_json(200, result)
                return 200
            raise _method_not_allowed()

        if watch_path:
            if method != "GET":
                raise _method_not_allowed()
            return self._watch(h, rt, ns, q, name, table=table)
        if sub == "log":
            if method != "GET":
                raise _method_not_allowed()
            return self._log(h, rt, ns_key, name, q)
        if sub == "scale":
            return self._scale(h, method, rt, ns_key, name, body, manager, dry_run)
        if method == "GET":
            obj = self.store.get(rt, ns_key, name)
            if table:
                h.send_json(200, _table(rt, {"metadata": {"resourceVersion": meta(obj)["resourceVersion"]},
                                             "items": [obj]}, q))
            else:
                h.send_json(200, obj)
            return 200
        if method == "PUT":
            obj = self.store.replace(rt, ns_key, name, _decode(body, h), manager=manager, dry_run=dry_run,
                                     subresource=sub)
            h.send_json(200, obj)
            return 200
        if method == "PATCH":
            ctype = h.headers.get("Content-Type", "").split(";")[0].strip()
            patch_type = {"application/apply-patch+yaml": "apply", "application/apply-patch+cbor": "",
                          "application/merge-patch+json": "merge",
                          "application/strategic-merge-patch+json": "strategic",
                          "application/json-patch+json": "json"}.get(ctype, "")
            if not patch_type:
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                               "accepted media types include: application/json-patch+json, "
                               "application/merge-patch+json, application/apply-patch+yaml")
            if patch_type == "strategic" and not rt.builtin:
                raise ApiError(415, "UnsupportedMediaType", "strategic merge patch is not supported for custom "
                               "resources; use a merge patch or server-side apply")
            code, obj = self.store.patch(rt, ns_key, name, patch_type, body,
                                         manager=q.get("fieldManager", "" if patch_type == "apply" else manager),
                                         force=q.get("force") in ("true", "1", "True"), dry_run=dry_run,
                                         subresource=sub)
            h.send_json(code, obj)
            return code
        if method == "DELETE":
            if sub:
                raise _method_not_allowed()
            opts = _delete_options(body)
            code, obj = self.store.delete(rt, ns_key, name, options=opts, dry_run=dry_run or _dry_run(opts),
                                          propagation=q.get("propagationPolicy", ""))
            h.send_json(code, obj)
            return code
        raise _method_not_allowed()

    def _openapi(self, h: _Handler, parts: list[str], accept: str) -> int:
        if parts == ["openapi", "v2"]:
            if "protobuf" in accept:
                # the real server labels the protobuf document application/octet-stream
                h.send(200, openapi_v2_protobuf(self.registry.all()), "application/octet-stream")
            else:
                h.send_json(200, {"swagger": "2.0", "info": {"title": "Kubernetes (envship fake)",
                                                              "version": "v1.32.0"}, "paths": {},
                                  "definitions": {}})
            return 200
        if parts == ["openapi", "v3"]:
            h.send_json(200, self.registry.openapi_v3_index())
            return 200
        if len(parts) >= 4 and parts[:2] == ["openapi", "v3"]:
            rest = parts[2:]
            if rest[0] == "api" and len(rest) == 2:
                group, version = "", rest[1]
            elif rest[0] == "apis" and len(rest) == 3:
                group, version = rest[1], rest[2]
            else:
                group, version = "-", "-"
            if self.registry.in_group_version(group, version):
                h.send_json(200, self.registry.openapi_v3_doc(group, version))
                return 200
        h.send(404, b"404 page not found\n", "text/plain; charset=utf-8")
        return 404

    def _scale(self, h: _Handler, method: str, rt: ResourceType, ns: str, name: str, body: bytes, manager: str,
               dry_run: bool) -> int:
        obj = self.store.get(rt, ns, name)
        if method == "GET":
            h.send_json(200, _scale_of(obj))
            return 200
        if method not in ("PUT", "PATCH"):
            raise _method_not_allowed()
        current = _scale_of(obj)
        if method == "PUT":
            scale = _decode(body, h)
        else:
            ctype = h.headers.get("Content-Type", "").split(";")[0].strip()
            patch = json.loads(body or b"{}") if ctype != "application/apply-patch+yaml" else yaml.safe_load(body)
            scale = ssa.json_patch(current, patch) if ctype == "application/json-patch+json" else \
                ssa.merge_patch(current, patch)
        replicas = ((scale or {}).get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                                           f"{replicas}: must be greater than or equal to 0")
        new = jcopy(obj)
        new.setdefault("spec", {})["replicas"] = replicas
        updated = self.store.replace(rt, ns, name, new, manager=manager, dry_run=dry_run)
        h.send_json(200, _scale_of(updated))
        return 200

    def _log(self, h: _Handler, rt: ResourceType, ns: str, name: str, q: dict[str, str]) -> int:
        pod = self.store.get(rt, ns, name)
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        inits = [c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []]
        container = q.get("container")
        if not container:
            if len(containers) != 1:
                raise bad_request(f"a container name must be specified for pod {name}, choose one of: "
                                  f"[{' '.join(containers)}]" + (f" or one of the init containers: "
                                                                  f"[{' '.join(inits)}]" if inits else ""))
            container = containers[0]
        if container not in containers + inits:
            raise bad_request(f"container {container} is not valid for pod {name}")
        previous = q.get("previous") in ("true", "1", "True")
        lines = self.controller.log_lines(ns, name, container, previous)
        if lines is None:
            reason = self.controller.waiting_reason(ns, name, container) or "ContainerCreating"
            if previous:
                raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
            raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        tail = q.get("tailLines")
        if tail is not None and tail.lstrip("-").isdigit() and int(tail) >= 0:
            lines = lines[len(lines) - int(tail):] if int(tail) < len(lines) else lines
        if q.get("timestamps") in ("true", "1"):
            stamp = now_iso().replace("Z", ".000000000Z")
            lines = [f"{stamp} {line}" for line in lines]
        text = "".join(line + "\n" for line in lines).encode()
        limit = _int(q, "limitBytes")
        if limit > 0:
            text = text[:limit]
        h.send(200, text, "text/plain")
        return 200

    # -- watch --------------------------------------------------------------------------------------------

    def _watch(self, h: _Handler, rt: ResourceType, ns: str | None, q: dict[str, str], name: str | None, *,
               table: bool = False) -> int:
        field_selector = q.get("fieldSelector") or ""
        if name is not None:
            field_selector = ",".join(filter(None, [field_selector, f"metadata.name={name}"]))
        labels_ok, fields_ok = self.store.selectors(rt, q.get("labelSelector"), field_selector)
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds", "").isdigit() else self.default_watch_timeout
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1", "True")
        send_initial = q.get("sendInitialEvents") in ("true", "1", "True")
        rv_param = q.get("resourceVersion", "")
        if rv_param and not rv_param.isdigit():
            raise bad_request(f"invalid resource version: {rv_param}")
        gv, kind = rt.group_version, rt.kind

        def visible(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            m = obj.get("metadata") or {}
            if ns is not None and m.get("namespace") != ns:
                return False
            return labels_ok(m.get("labels") or {}) and fields_ok(obj)

        first_table = [True]

        def line(etype: str, obj: dict[str, Any]) -> bytes:
            out: dict[str, Any] = {**obj, "apiVersion": gv, "kind": kind}
            if table:  # kubectl get -w: each event is a one-row Table, column definitions only in the first
                rv = (obj.get("metadata") or {}).get("resourceVersion", "")
                out = _table(rt, {"metadata": {"resourceVersion": rv}, "items": [out]}, q)
                if not first_table[0]:
                    out["columnDefinitions"] = []
                first_table[0] = False
            return json.dumps({"type": etype, "object": out}, separators=(",", ":")).encode() + b"\n"

        def error_line(error: ApiError) -> bytes:
            return json.dumps({"type": "ERROR", "object": error.status()}, separators=(",", ":")).encode() + b"\n"

        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Cache-Control", "no-cache, private")
        h.end_headers()

        def write(data: bytes) -> None:
            if data:
                h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                h.wfile.flush()

        def bookmark(rv: int, initial_end: bool = False) -> bytes:
            m: dict[str, Any] = {"resourceVersion": str(rv)}
            if initial_end:
                m["annotations"] = {"k8s.io/initial-events-end": "true"}
            return json.dumps({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": gv, "metadata": m}},
                              separators=(",", ":")).encode() + b"\n"

        fault = self.faults.for_watch() if self.faults is not None else None
        sent = [0]

        def disturb(before_event: bool) -> bool:
            """Apply the watch fault when its moment has come; True when the stream must end now."""
            if fault is None or sent[0] < fault[1] or (fault[0] == "odd-line" and sent[0] > fault[1]):
                return False
            if fault[0] == "odd-line":
                sent[0] += 1
                write(json.dumps({"kind": f"{kind}List", "apiVersion": gv, "metadata": {}, "items": []}).encode()
                      + b"\n")
                return False
            if fault[0] == "410":
                write(error_line(expired("too old resource version: injected by the fault mode")))
                h.wfile.write(b"0\r\n\r\n")
                h.wfile.flush()
                return True
            if before_event:  # "cut": half an event, then the connection goes away
                write(b'{"type":"MODIFIED","object":{"kind":"' + kind.encode() + b'","metadata":{"na')
                h.close_connection = True
                with contextlib.suppress(OSError):
                    h.connection.shutdown(socket.SHUT_RDWR)
                return True
            return False

        def send_events(lines: list[bytes]) -> bool:
            """Write event lines, letting the fault in between; True when the stream was ended."""
            for one in lines:
                if disturb(before_event=True):
                    return True
                write(one)
                sent[0] += 1
            return False

        try:
            with self.store.cond:
                if rv_param in ("", "0") or send_initial:
                    initial = [o for o in self.store.items(rt.storage_key, ns) if visible(o)]
                    last = self.store.rv
                    error = None
                else:
                    last = int(rv_param)
                    initial = []
                    error = None if last >= self.store.floor else expired(
                        f"too old resource version: {last} ({self.store.floor + 1})")
            if error is not None:
                write(error_line(error))
                h.wfile.write(b"0\r\n\r\n")
                h.wfile.flush()
                return 200
            if fault is None:
                write(b"".join(line("ADDED", o) for o in initial))
            elif send_events([line("ADDED", o) for o in initial]):
                return 200
            if send_initial and bookmarks:
                write(bookmark(last, initial_end=True))
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + self.bookmark_interval
            while True:
                now = time.monotonic()
                if now >= deadline or _client_gone(h.connection):
                    break
                with self.store.cond:
                    if self.store.stopping:
                        break
                    try:
                        events = self.store.events_after(last)
                    except ApiError as e:
                        events, error = [], e
                    if not events and error is None:
                        self.store.cond.wait(max(0.0, min(deadline, next_bookmark, now + 0.5) - now))
                        if self.store.stopping:
                            break
                        try:
                            events = self.store.events_after(last)
                        except ApiError as e:
                            events, error = [], e
                    current = self.store.rv
                if error is not None:
                    write(error_line(error))
                    break
                chunk = []
                for ev in events:
                    if ev.storage != rt.storage_key:
                        continue
                    new_ok = visible(ev.obj)
                    if ev.type == "MODIFIED":
                        old_ok = visible(ev.old)
                        if new_ok and old_ok:
                            chunk.append(line("MODIFIED", ev.obj))
                        elif new_ok:
                            chunk.append(line("ADDED", ev.obj))
                        elif old_ok:
                            chunk.append(line("DELETED", ev.obj))
                    elif new_ok:
                        chunk.append(line(ev.type, ev.obj))
                last = max(last, current)
                if bookmarks and time.monotonic() >= next_bookmark:
                    chunk.append(bookmark(last))
                    next_bookmark = time.monotonic() + self.bookmark_interval
                if fault is None:
                    write(b"".join(chunk))
                elif send_events(chunk) or (not chunk and disturb(before_event=True)):
                    return 200
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            h.close_connection = True
        return 200


# ------------------------------------------------------------------------------------------------
# request helpers
# ------------------------------------------------------------------------------------------------

def _client_gone(conn: socket.socket) -> bool:
    """True when the peer closed the connection (a watch has no one left to stream to)."""
    if isinstance(conn, ssl.SSLSocket):
        return False  # MSG_PEEK is not available; the next write (a bookmark or event) finds out
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _accepts(accept: str, media: str) -> bool:
    want = {p.strip() for p in media.split(";")}
    for option in accept.split(","):
        params = {p.strip() for p in option.split(";") if not p.strip().startswith("q=")}
        if params == want:
            return True
    return False


def _accepts_json(accept: str) -> bool:
    for option in accept.split(","):
        media = option.split(";")[0].strip()
        if media in ("application/json", "*/*", "application/*", "application/yaml"):
            return True
    return False


def _not_found_resource() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def _method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def _dry_run(q: dict[str, Any]) -> bool:
    value = q.get("dryRun")
    if isinstance(value, list):
        value = value[0] if value else ""
    if not value:
        return False
    if value != "All":
        raise ApiError(422, "Invalid", f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return True


def _int(q: dict[str, str], key: str) -> int:
    value = q.get(key, "")
    return int(value) if value.isdigit() else 0


def _decode(body: bytes, h: _Handler) -> Any:
    ctype = h.headers.get("Content-Type", "application/json").split(";")[0].strip()
    if "protobuf" in ctype:
        raise ApiError(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - accepted '
                                                    "media types include: application/json, application/yaml")
    try:
        if ctype == "application/yaml":
            return yaml.safe_load(body.decode() or "null")
        return json.loads(body or b"null")
    except (ValueError, yaml.YAMLError) as e:
        raise bad_request(f"error decoding request body: {e}") from e


def _delete_options(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        opts = json.loads(body)
    except ValueError as e:
        raise bad_request(f"invalid DeleteOptions: {e}") from e
    return opts if isinstance(opts, dict) else {}


def _manager_from_agent(agent: str) -> str:
    return (agent.split("/")[0] or "unknown")[:128]


def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj["metadata"]
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in m},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))}}


def _age(timestamp: str) -> str:
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return "<unknown>"
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds < 600 else f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60}m" if seconds < 36000 else f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _table(rt: ResourceType, listing: dict[str, Any], q: dict[str, str]) -> dict[str, Any]:
    columns: list[tuple[str, str, Callable[[dict[str, Any]], Any]]] = [
        ("Name", "string", lambda o: o["metadata"]["name"])]
    spec = lambda o: o.get("spec") or {}  # noqa: E731
    status = lambda o: o.get("status") or {}  # noqa: E731
    wide: list[tuple[str, str, Callable[[dict[str, Any]], Any]]] = []  # priority 1: kubectl get -o wide
    if rt.kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        pod_spec = lambda o: (spec(o).get("template") or {}).get("spec") or {}  # noqa: E731
        wide = [("Containers", "string", lambda o: ",".join(c.get("name", "") for c in pod_spec(o).get(
                    "containers") or [])),
                ("Images", "string", lambda o: ",".join(c.get("image", "") for c in pod_spec(o).get(
                    "containers") or [])),
                ("Selector", "string", lambda o: ",".join(f"{k}={v}" for k, v in sorted(((spec(o).get(
                    "selector") or {}).get("matchLabels") or {}).items())))]
    elif rt.kind == "Pod":
        wide = [("IP", "string", lambda o: status(o).get("podIP", "<none>")),
                ("Node", "string", lambda o: spec(o).get("nodeName", "<none>"))]
    if rt.kind == "Deployment":
        columns += [("Ready", "string", lambda o: f"{status(o).get('readyReplicas', 0)}/{spec(o).get('replicas', 0)}"),
                    ("Up-to-date", "integer", lambda o: status(o).get("updatedReplicas", 0)),
                    ("Available", "integer", lambda o: status(o).get("availableReplicas", 0))]
    elif rt.kind == "ReplicaSet":
        columns += [("Desired", "integer", lambda o: spec(o).get("replicas", 0)),
                    ("Current", "integer", lambda o: status(o).get("replicas", 0)),
                    ("Ready", "integer", lambda o: status(o).get("readyReplicas", 0))]
    elif rt.kind == "StatefulSet":
        columns += [("Ready", "string", lambda o: f"{status(o).get('readyReplicas', 0)}/{spec(o).get('replicas', 0)}")]
    elif rt.kind == "Pod":
        def ready(o: dict[str, Any]) -> str:
            cs = status(o).get("containerStatuses") or []
            return f"{sum(1 for c in cs if c.get('ready'))}/{len(spec(o).get('containers') or [])}"

        def phase(o: dict[str, Any]) -> str:
            for c in status(o).get("containerStatuses") or []:
                waiting = (c.get("state") or {}).get("waiting")
                if waiting and waiting.get("reason"):
                    return str(waiting["reason"])
            return str(status(o).get("phase", ""))

        columns += [("Ready", "string", ready), ("Status", "string", phase),
                    ("Restarts", "string", lambda o: str(sum(c.get("restartCount", 0)
                                                             for c in status(o).get("containerStatuses") or [])))]
    elif rt.kind == "Service":
        columns += [("Type", "string", lambda o: spec(o).get("type", "")),
                    ("Cluster-IP", "string", lambda o: spec(o).get("clusterIP", "")),
                    ("External-IP", "string", lambda o: ",".join(i.get("ip", i.get("hostname", "")) for i in (
                        status(o).get("loadBalancer") or {}).get("ingress") or []) or "<none>"),
                    ("Port(s)", "string", lambda o: ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}"
                                                             for p in spec(o).get("ports") or []))]
    elif rt.kind == "PersistentVolumeClaim":
        columns += [("Status", "string", lambda o: status(o).get("phase", "")),
                    ("Capacity", "string", lambda o: (status(o).get("capacity") or {}).get("storage", ""))]
    elif rt.kind == "Namespace":
        columns += [("Status", "string", lambda o: status(o).get("phase", ""))]
    elif rt.kind == "Job":
        def job_status(o: dict[str, Any]) -> str:
            true = {c.get("type") for c in status(o).get("conditions") or [] if c.get("status") == "True"}
            return next((t for t in ("Complete", "Failed", "Suspended") if t in true), "Running")

        columns += [("Status", "string", job_status),
                    ("Completions", "string",
                     lambda o: f"{status(o).get('succeeded', 0)}/{spec(o).get('completions', 1)}")]
    elif rt.kind == "Event":
        columns = [("Last Seen", "string", lambda o: _age(o.get("lastTimestamp", ""))),
                   ("Type", "string", lambda o: o.get("type", "")),
                   ("Reason", "string", lambda o: o.get("reason", "")),
                   ("Object", "string", lambda o: f"{o['involvedObject'].get('kind', '').lower()}/"
                                                  f"{o['involvedObject'].get('name', '')}"),
                   ("Message", "string", lambda o: o.get("message", ""))]
    if rt.kind != "Event":
        columns.append(("Age", "string", lambda o: _age(o["metadata"].get("creationTimestamp", ""))))
    priorities = [0] * len(columns) + [1] * len(wide)
    columns += wide
    include = q.get("includeObject", "Metadata")
    rows = []
    for item in listing.get("items") or []:
        obj = dict(item, apiVersion=rt.group_version, kind=rt.kind)
        if include == "Object":
            row_obj: Any = obj
        elif include == "None":
            row_obj = None
        else:
            row_obj = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
        row: dict[str, Any] = {"cells": [f(obj) for _, _, f in columns]}
        if row_obj is not None:
            row["object"] = row_obj
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": listing.get("metadata") or {},
            "columnDefinitions": [{"name": n, "type": t, "format": "name" if n == "Name" else "",
                                   "description": n, "priority": p} for (n, t, _), p in zip(columns, priorities,
                                                                                          strict=True)],
            "rows": rows}


# ------------------------------------------------------------------------------------------------
# script
# ------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.kube_apiserver",
                                     description="Run the fake Kubernetes API server (prints its URL).")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: an ephemeral one)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="sleep before answering each request")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="exit after this long (default 600)")
    parser.add_argument("--kubeconfig", help="write a kubeconfig for the server to this path")
    parser.add_argument("--context", default="fake", help="the kubeconfig's context name (default fake)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="bearer token clients must send ('' disables auth)")
    parser.add_argument("--tls", action="store_true", help="serve https with a throw-away CA (in the kubeconfig)")
    parser.add_argument("--ready-delay", type=float, default=None, help="seconds until healthy pods are Ready")
    parser.add_argument("--nodes", type=int, default=None, help="number of fake nodes (default 3)")
    args = parser.parse_args(argv)
    timing: dict[str, Any] = {}
    if args.ready_delay is not None:
        timing["ready_delay"] = args.ready_delay
    if args.nodes is not None:
        timing["node_count"] = args.nodes
    fake = FakeKube.start(args.latency_ms / 1000.0, port=args.port, token=args.token or None, tls=args.tls, **timing)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if args.kubeconfig:
            fake.kubeconfig(args.kubeconfig, context=args.context)
        print(fake.url, flush=True)
        stop.wait(args.max_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
