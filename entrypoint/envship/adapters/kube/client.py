"""The Kubernetes API over HTTP: discovery, server-side apply, list, watch, delete, logs.

One `requests` session with a connection pool sized for parallel applies; retries follow client-go's
rest client (429 on every verb after Retry-After; 5xx and broken connections for idempotent requests).
Every request asks `Connection.token()` for the bearer token, so a self-refreshing credential (GKE
through google-auth) stays valid during long waits.
Errors become `KubeError` with the API's own reason and message.
"""

from __future__ import annotations

import concurrent.futures
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
import urllib3
from requests.adapters import HTTPAdapter

from ... import __version__
from ...errors import OperationError

FIELD_MANAGER = "envship"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
RETRY_STATUSES = (429, 500, 502, 503, 504)
AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


@dataclass(frozen=True)
class Connection:
    """How to reach one cluster."""

    server: str                                     # https://host[:port]
    description: str                                # "GKE cluster projects/.../clusters/x", "context kind-dev"
    token: Callable[[], str | None] = lambda: None  # called for every request: refreshing credentials
    verify: bool | str = True                       # CA bundle path, or False (insecure-skip-tls-verify)
    cert: tuple[str, str] | None = None             # client certificate and key files
    secrets: tuple[str, ...] = field(default_factory=tuple)  # values to mask (static tokens)


@dataclass(frozen=True)
class ApiResource:
    group_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        if sub:
            base += f"/{sub}"
        return base


@dataclass(frozen=True)
class RetryPolicy:
    """client-go's defaults: 10 retries (rest.Request maxRetries) honouring Retry-After; envship adds a
    bound on the total wait and caps one Retry-After, so a server asking for an hour cannot hang a job."""

    attempts: int = 11              # the first try and 10 retries
    max_wait: float = 120.0         # seconds of waiting between tries, in all
    max_retry_after: float = 30.0   # one Retry-After is honoured up to this
    base: float = 0.2               # backoff: base * 2^(attempt-1), jittered, capped
    cap: float = 5.0

    def backoff(self, attempt: int) -> float:
        delay = min(self.cap, self.base * 2.0 ** (attempt - 1))
        return float(delay * (0.5 + random.random() / 2))  # jitter: between half and all of it

    def delay(self, retry_after: str | None, attempt: int) -> float:
        if retry_after:
            try:
                return min(self.max_retry_after, max(0.0, float(retry_after)))
            except ValueError:
                pass  # an HTTP date: the API server sends seconds; fall back to backoff
        return self.backoff(attempt)


class KubeError(OperationError):
    """An API request failed; `status` and `reason` are the server's (0 and 'Unreachable' without answer)."""

    def __init__(self, message: str, hint: str = "", status: int = 0, reason: str = "",
                 causes: list[str] | None = None, fields: list[str] | None = None) -> None:
        super().__init__(message, hint)
        self.status = status
        self.reason = reason
        self.causes = causes or []
        self.fields = fields or []   # the field paths of details.causes, as the API server names them


def _dropped(error: BaseException) -> bool:
    """A connection that broke under a request (reset, closed without an answer, cut mid-answer): worth
    another try, as client-go retries IsConnectionReset and IsProbableEOF. A connection that could not be
    made at all (refused, no such host, timed out) is not: the server is not there, so fail at once."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
                                urllib3.exceptions.NameResolutionError)):
            return False
        if isinstance(current, (urllib3.exceptions.ProtocolError, ConnectionResetError, ConnectionAbortedError,
                                requests.exceptions.ChunkedEncodingError)):
            return True
        pending.extend([current.__cause__, current.__context__,
                        *(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))])
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
    return False


WATCH_EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})


def _watch_event(line: bytes) -> tuple[str, dict[str, Any]] | None:
    """(type, object) of a watch event line, or None for anything else (not JSON, half a line, a List)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("type") not in WATCH_EVENT_TYPES:
        return None
    obj = event.get("object")
    if not isinstance(obj, dict) or (event["type"] != "ERROR" and not isinstance(obj.get("metadata"), dict)):
        return None
    return str(event["type"]), obj


class WatchExpired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again and resume from there."""


class Kube:
    def __init__(self, connection: Connection, timeout: float = 30.0, pool: int = 16,
                 retry: RetryPolicy | None = None, trace: Callable[[str], None] | None = None) -> None:
        self.connection = connection
        self.trace = trace   # hears "GET /api/v1/... 200 12 ms" per answer (-v)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.session = requests.Session()
        # retries are this class's own (client-go's rules below), not urllib3's
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.verify = connection.verify
        if connection.cert:
            self.session.cert = connection.cert
        self._discovery: dict[str, dict[str, ApiResource]] = {}
        self._discovery_lock = threading.Lock()
        self._preferred: dict[str, str | None] = {}
        self._aggregated_tried = False
        self._aggregated_ok = False   # aggregated discovery listed every group the cluster serves
        self._stats_lock = threading.Lock()
        self.requests_made = 0
        self.throttled_seconds = 0.0   # waited on 429s (Retry-After), for the run's report
        self.retries = 0

    # -- plumbing -------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: Any = None, content_type: str = "application/json", stream: bool = False,
                timeout: float | None = None, ok_missing: bool = False,
                accept: str = "application/json") -> requests.Response | None:
        """One API call, retried as client-go's rest client does: a 429 on any verb after its Retry-After
        (a throttled request was never processed), a 5xx or a broken connection only when repeating the
        request cannot do anything twice (GET, DELETE, server-side apply), with jittered exponential backoff
        otherwise; at most `retry.attempts` tries and `retry.max_wait` seconds of waiting in all."""
        idempotent = method in ("GET", "HEAD", "DELETE") or (method == "PATCH" and content_type == APPLY_CONTENT_TYPE)
        waited = 0.0
        for attempt in range(1, self.retry.attempts + 1):
            last = attempt == self.retry.attempts
            try:
                sent = time.monotonic()
                response = self._send(method, path, params, body, content_type, stream, timeout, accept)
                if self.trace is not None:
                    self.trace(f"{method} {path} {response.status_code} {(time.monotonic() - sent) * 1000:.0f} ms"
                               + (" (watch)" if stream else ""))
            except requests.exceptions.SSLError as e:
                raise KubeError(f"TLS verification failed talking to {self.connection.description}: {e}",
                                "the cluster's CA certificate does not match; check the cluster endpoint and CA",
                                reason="Unreachable") from e
            except requests.exceptions.RequestException as e:
                delay = self.retry.backoff(attempt)
                if not idempotent or last or waited + delay > self.retry.max_wait or not _dropped(e):
                    raise KubeError(f"cannot reach the Kubernetes API of {self.connection.description} "
                                    f"({self.connection.server}): {type(e).__name__}",
                                    "check the cluster endpoint, the network path (private clusters need a route), "
                                    "and that the API server is up", reason="Unreachable") from e
                waited += self._pause(delay, throttled=False)
                continue
            code = response.status_code
            retryable = code == 429 or (code in RETRY_STATUSES and idempotent)
            if retryable and not last:
                delay = self.retry.delay(response.headers.get("Retry-After"), attempt)
                if waited + delay <= self.retry.max_wait:
                    response.close()
                    waited += self._pause(delay, throttled=code == 429)
                    continue
            if code == 404 and ok_missing:
                return None
            if code >= 400:
                raise self._error(method, path, response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover - the last attempt returns or raises

    def _send(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any, content_type: str,
              stream: bool, timeout: float | None, accept: str = "application/json") -> requests.Response:
        headers = {"Accept": accept, "User-Agent": f"envship/{__version__}"}
        token = self.connection.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        with self._stats_lock:
            self.requests_made += 1
        # verify per request: a session-level value loses to REQUESTS_CA_BUNDLE (requests issue 3829)
        return self.session.request(method, self.connection.server.rstrip("/") + path, params=params, data=data,
                                    headers=headers, stream=stream, timeout=(10.0, timeout or self.timeout),
                                    verify=self.connection.verify)

    def _pause(self, seconds: float, throttled: bool) -> float:
        with self._stats_lock:
            self.retries += 1
            if throttled:
                self.throttled_seconds += seconds
        time.sleep(seconds)
        return seconds

    def _error(self, method: str, path: str, response: requests.Response) -> KubeError:
        try:
            status = response.json()
        except ValueError:
            status = {}
        message = str(status.get("message") or response.reason or "")
        reason = str(status.get("reason") or "")
        details = (status.get("details") or {}).get("causes") or []
        causes = [f"{c.get('field', '')}: {c.get('message', '')}".strip(": ") for c in details]
        fields = [str(c["field"]) for c in details if c.get("field")]
        code = response.status_code
        hint = {
            401: f"the credentials for {self.connection.description} were rejected: re-authenticate "
                 "(in Actions: google-github-actions/auth before envship) or refresh the kubeconfig",
            403: "the identity lacks RBAC permission for this; grant it (e.g. roles/container.developer on GKE)",
            409: "someone else changed the object meanwhile; re-run envship",
            422: "the object is invalid for this cluster; fix the manifest",
            429: "the API server is throttling; re-run later",
        }.get(code, "")
        return KubeError(f"{method} {path} failed: {code} {reason}: {message}", hint, code, reason, causes, fields)

    # -- discovery ------------------------------------------------------------------------------
    def resource(self, api_version: str, kind: str) -> ApiResource:
        """Resolve kind -> REST resource (discovery as `discover` does it, once)."""
        self.discover([api_version])
        found = self._discovery[api_version].get(kind)
        if found is None:
            raise KubeError(f"the cluster does not serve {kind} in {api_version}",
                            "check apiVersion and kind; for a custom resource, install its CRD first",
                            404, "NotFound")
        return found

    def preferred_version(self, group: str) -> str | None:
        """The group/version the server prefers for an API group (`apps` -> `apps/v1`), or None when it
        does not serve the group. ApplySet parents name group-kinds without a version."""
        if not group:
            return "v1"
        with self._discovery_lock:
            if group in self._preferred or self._aggregated_ok:
                return self._preferred.get(group)
        response = self.request("GET", f"/apis/{quote(group, safe='')}", ok_missing=True)
        version = None
        if response is not None:
            version = ((response.json().get("preferredVersion") or {}).get("groupVersion")) or None
        with self._discovery_lock:
            self._preferred[group] = version
        return version

    def discover(self, api_versions: Iterable[str]) -> None:
        """Learn the resources of these group/versions: with aggregated discovery (two requests, /api and
        /apis, for the whole cluster, as kubectl 1.26+ does) when the server offers it, else one request
        per group/version, in parallel."""
        with self._discovery_lock:
            missing = sorted(set(api_versions) - set(self._discovery))
            aggregated_tried = self._aggregated_tried
        if not missing:
            return
        if not aggregated_tried and self._discover_aggregated():
            with self._discovery_lock:
                missing = sorted(set(missing) - set(self._discovery))
                for api_version in missing:   # not served: cached as such, answered as not found
                    self._discovery[api_version] = {}
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(missing))) as pool:
            found = dict(zip(missing, pool.map(self._discover, missing), strict=True))
        with self._discovery_lock:
            self._discovery.update(found)

    def _discover_aggregated(self) -> bool:
        """Read /api and /apis as APIGroupDiscoveryList (v2, else v2beta1); False when the server answers
        with the older documents (then discovery goes per group/version)."""
        accept = f"{AGGREGATED_V2},{AGGREGATED_V2BETA1},application/json"
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(lambda path: self.request("GET", path, accept=accept), ("/api", "/apis")))
        with self._discovery_lock:
            self._aggregated_tried = True
        documents = [r.json() for r in answers if r is not None]
        if len(documents) != 2 or any(d.get("kind") != "APIGroupDiscoveryList" for d in documents):
            return False
        found: dict[str, dict[str, ApiResource]] = {}
        preferred: dict[str, str | None] = {}
        for document in documents:
            for group in document.get("items") or []:
                name = str((group.get("metadata") or {}).get("name") or "")
                for index, version in enumerate(group.get("versions") or []):
                    group_version = f"{name}/{version['version']}" if name else str(version["version"])
                    if index == 0:   # versions are listed in order of preference
                        preferred[name] = group_version
                    table = found.setdefault(group_version, {})
                    for res in version.get("resources") or []:
                        kind = str((res.get("responseKind") or {}).get("kind") or "")
                        if kind:
                            table[kind] = ApiResource(group_version, kind, str(res["resource"]),
                                                      res.get("scope") == "Namespaced")
        with self._discovery_lock:
            self._discovery.update(found)
            self._preferred.update(preferred)
            self._aggregated_ok = True
        return True

    def _discover(self, api_version: str) -> dict[str, ApiResource]:
        path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        response = self.request("GET", path, ok_missing=True)
        if response is None:
            return {}
        result: dict[str, ApiResource] = {}
        for res in response.json().get("resources", []):
            if "/" in res.get("name", ""):
                continue  # subresources
            result[res["kind"]] = ApiResource(api_version, res["kind"], res["name"], bool(res.get("namespaced")))
        return result

    # -- objects --------------------------------------------------------------------------------
    def apply(self, obj: Mapping[str, Any], dry_run: bool = False, force: bool = True) -> dict[str, Any]:
        res = self.resource(str(obj["apiVersion"]), str(obj["kind"]))
        meta = obj["metadata"]
        params = {"fieldManager": FIELD_MANAGER, "force": "true" if force else "false"}
        if dry_run:
            params["dryRun"] = "All"
        response = self.request("PATCH", res.path(meta.get("namespace"), meta["name"]), params=params,
                                body=json.dumps(obj), content_type=APPLY_CONTENT_TYPE)
        assert response is not None
        return dict(response.json())

    def get(self, res: ApiResource, namespace: str | None, name: str) -> dict[str, Any] | None:
        response = self.request("GET", res.path(namespace, name), ok_missing=True)
        return dict(response.json()) if response is not None else None

    def list(self, res: ApiResource, namespace: str | None = None, selector: str = "",
             field_selector: str = "") -> tuple[list[dict[str, Any]], str]:
        """All items (following `continue`), and the list's resourceVersion for a watch to start from."""
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 500}
        if selector:
            params["labelSelector"] = selector
        if field_selector:
            params["fieldSelector"] = field_selector
        while True:
            response = self.request("GET", res.path(namespace), params=params, ok_missing=True)
            if response is None:
                return [], ""
            body = response.json()
            for item in body.get("items") or []:
                item.setdefault("kind", res.kind)
                item.setdefault("apiVersion", res.group_version)
                items.append(item)
            meta = body.get("metadata") or {}
            if not meta.get("continue"):
                return items, str(meta.get("resourceVersion", ""))
            params["continue"] = meta["continue"]

    def delete(self, res: ApiResource, namespace: str | None, name: str, dry_run: bool = False,
               uid: str = "", resource_version: str = "") -> bool:
        """Delete (background propagation); with `uid` (and `resource_version`), only that very object (in
        that very version): preconditions, so one deleted and created again, or changed, meanwhile answers
        409 Conflict instead."""
        params = {"propagationPolicy": "Background"}
        if dry_run:
            params["dryRun"] = "All"
        body = None
        if uid:
            preconditions = {"uid": uid, **({"resourceVersion": resource_version} if resource_version else {})}
            body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
                    "preconditions": preconditions}
        return self.request("DELETE", res.path(namespace, name), params=params, body=body,
                            ok_missing=True) is not None

    def create(self, res: ApiResource, namespace: str | None, obj: Mapping[str, Any]) -> dict[str, Any]:
        """POST: creates, or answers 409 AlreadyExists (never changes an existing object)."""
        response = self.request("POST", res.path(namespace), params={"fieldManager": FIELD_MANAGER}, body=obj)
        assert response is not None
        return dict(response.json())

    def replace(self, res: ApiResource, namespace: str | None, obj: Mapping[str, Any]) -> dict[str, Any]:
        response = self.request("PUT", res.path(namespace, obj["metadata"]["name"]), body=obj)
        assert response is not None
        return dict(response.json())

    def log(self, namespace: str, pod: str, container: str, tail: int = 20, previous: bool = False) -> str:
        params: dict[str, Any] = {"container": container, "tailLines": tail}
        if previous:
            params["previous"] = "true"
        try:
            response = self.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log", params=params,
                                    ok_missing=True)
        except KubeError:
            return ""  # logs are best effort: the container may never have started
        return response.text if response is not None else ""

    def watch(self, res: ApiResource, namespace: str | None, resource_version: str, selector: str = "",
              timeout_s: int = 60, stop: threading.Event | None = None,
              opened: Callable[[requests.Response], None] | None = None,
              odd_line: Callable[[str], None] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Stream (type, object) events after `resource_version` until the watch ends: the server closes
        it, or the stream breaks (a cut connection, a half-sent line). Either way the caller re-opens it
        from the last resourceVersion it saw, as client-go's reflector does. A line that is not a watch
        event (some proxies and doubles send a List) is skipped and handed to `odd_line`. An ERROR event
        with 410 raises WatchExpired (list again); another ERROR event raises KubeError. `opened` receives
        the streaming response, so another thread can close it to end the watch."""
        params: dict[str, Any] = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": timeout_s,
                                  "allowWatchBookmarks": "true"}
        if selector:
            params["labelSelector"] = selector
        response = self.request("GET", res.path(namespace), params=params, stream=True, timeout=timeout_s + 10)
        assert response is not None
        if opened is not None:
            opened(response)
        with response:
            try:
                # chunk_size None: hand over each chunk as it arrives, so events are seen without delay
                for line in response.iter_lines(chunk_size=None):  # type: ignore[call-overload]
                    if stop is not None and stop.is_set():
                        return
                    if not line:
                        continue
                    event = _watch_event(line)
                    if event is None:
                        if odd_line is not None:
                            odd_line(line[:120].decode("utf-8", "replace"))
                        continue
                    kind, obj = event
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise WatchExpired(str(obj.get("message", "")))
                        raise KubeError(f"watch of {res.plural} failed: {obj.get('message', obj)}", "re-run envship",
                                        int(obj.get("code", 0) or 0), str(obj.get("reason", "")))
                    yield kind, obj
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError):
                return  # the stream broke: the caller resumes from the last resourceVersion

    def close(self) -> None:
        self.session.close()
