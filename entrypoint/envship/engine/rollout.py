"""Wait for applied objects to become healthy, watch-based, failing fast with the reason.

Per namespace: one watch per waited kind (selected by envship's ownership labels), one for
ReplicaSets and one for Pods. Each change re-evaluates health; progress lines print when they change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..adapters.kube import Kube
from ..adapters.kube.watch import Informers
from ..core import health, workloads
from ..core.health import FAILED, READY, Failure, Health, HealthRules


@dataclass
class Verdict:
    ok: bool
    healths: dict[str, Health] = field(default_factory=dict)
    failed: str = ""                 # "Deployment/web"
    failure: Failure | None = None
    events: list[str] = field(default_factory=list)
    logs: str = ""
    timed_out: bool = False


class Rollout:
    def __init__(self, kube: Kube, namespace: str, selector: str, objects: Sequence[Mapping[str, Any]],
                 rules: HealthRules, progress: Callable[[str], None],
                 interrupted: Callable[[], str | None] = lambda: None, addresses: bool = True,
                 heartbeat: float = 15.0) -> None:
        self.kube = kube
        self.heartbeat = heartbeat  # seconds without a line before the wait says what it still waits for
        self.addresses = addresses  # wait for Ingress / LoadBalancer addresses (a route needs them)
        self.interrupted = interrupted  # why the wait must stop now (the deploy lock was lost), or None
        self.namespace = namespace
        self.selector = selector
        self.objects = [o for o in objects if health.needs_wait(o, addresses)]
        self.rules = rules
        self.progress = progress
        self.informers = Informers(kube)
        self.current_pods: dict[str, list[dict[str, Any]]] = {}  # "Kind/name" -> pods of its current revision
        self.expected: dict[str, tuple[str, int]] = {}  # "Kind/name" -> (uid, generation) the apply returned

    def start(self) -> None:
        """Open the caches: list and watch every waited kind, their ReplicaSets and Pods. Done before the
        objects are applied, the watches are open by the time the workloads change."""
        if not self.objects or self.informers.caches:
            return
        kinds = sorted({(str(o["apiVersion"]), str(o["kind"])) for o in self.objects})
        for api_version, kind in kinds:
            self.informers.add(kind, self.kube.resource(api_version, kind), self.namespace, self.selector)
        if any(k == "Deployment" for _, k in kinds):
            self.informers.add("ReplicaSet", self.kube.resource("apps/v1", "ReplicaSet"), self.namespace)
        if any(k in health.WORKLOAD_KINDS for _, k in kinds):
            self.informers.add("Pod", self.kube.resource("v1", "Pod"), self.namespace)

    def stop(self) -> None:
        self.informers.stop()

    def expect(self, applied: Iterable[Mapping[str, Any]]) -> None:
        """What the apply answered: an object in a cache is judged only once the cache holds that version
        or a newer one (the same uid, a generation at least as high). The caches open before the apply,
        so until the watch brings the change they hold the previous, perhaps healthy, revision."""
        for obj in applied:
            meta = obj.get("metadata") or {}
            label = f"{obj.get('kind')}/{meta.get('name')}"
            self.expected[label] = (str(meta.get("uid", "")), int(meta.get("generation") or 0))

    def wait(self, timeout: float) -> Verdict:
        if not self.objects:
            return Verdict(ok=True)
        self.start()
        try:
            self.informers.wait_synced(min(timeout, 30.0))  # judge from the first lists, not empty caches
            return self._loop(timeout)
        finally:
            self.stop()

    def _loop(self, timeout: float) -> Verdict:
        started = time.monotonic()
        deadline = started + timeout
        said = started                        # when the last line was printed
        pending_since: dict[str, float] = {}  # "Kind/name" -> when it was first seen not ready
        shown: dict[str, str] = {}
        verdict = Verdict(ok=False)
        noted: set[str] = set()
        with self.informers.changed:
            while True:
                for note in self.informers.notes():
                    if note not in noted:
                        noted.add(note)
                        self.progress(f"note: {note}")
                stop = self.interrupted()
                if stop:
                    verdict.failed, verdict.failure = "the deploy", Failure("LockLost", stop)
                    return verdict
                errors = list(self.informers.errors())
                if errors:  # the wait cannot go on: a failed verdict, so deploy rolls back and reports
                    verdict.failed = self.watched_kind(errors[0])
                    verdict.failure = Failure("WatchFailed", errors[0].problems[0].message)
                    return verdict
                verdict.healths = self._evaluate()
                now = time.monotonic()
                for name, h in verdict.healths.items():
                    if shown.get(name) != h.summary:
                        shown[name] = h.summary
                        self.progress(h.summary)
                        said = now
                    if h.state == READY:
                        pending_since.pop(name, None)
                    else:
                        pending_since.setdefault(name, now)
                if pending_since and now - said >= self.heartbeat:
                    self.progress(still_waiting(verdict.healths, pending_since, now, now - started, timeout))
                    said = now
                failed = [(n, h) for n, h in verdict.healths.items() if h.state == FAILED]
                if failed:
                    verdict.failed, verdict.failure = failed[0][0], failed[0][1].failure
                    return verdict
                if verdict.healths and all(h.state == READY for h in verdict.healths.values()):
                    verdict.ok = True
                    return verdict
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    verdict.timed_out = True
                    pending = [n for n, h in verdict.healths.items() if h.state != READY]
                    verdict.failed = pending[0] if pending else ""
                    summary = verdict.healths[verdict.failed].summary if verdict.failed else ""
                    verdict.failure = Failure("Timeout", f"not healthy after {int(timeout)} s: {summary}")
                    return verdict
                self.informers.changed.wait(min(remaining, 1.0))

    def published(self) -> list[dict[str, Any]]:
        """The Ingresses, Gateways and LoadBalancer Services as the wait last saw them, with their addresses."""
        found: list[dict[str, Any]] = []
        for wanted in self.objects:
            kind = str(wanted["kind"])
            cache = self.informers.caches.get(kind)
            live = cache.objects.get(str(wanted["metadata"]["name"])) if cache else None
            if live is not None:
                found.append({**live, "kind": kind, "apiVersion": wanted.get("apiVersion")})
        return [o for o in found if health.publishes_address(o)]

    def watched_kind(self, error: Exception) -> str:
        """Which cache failed, as `Pod`/`Deployment`..., for the verdict's 'what'."""
        for key, cache in self.informers.caches.items():
            if cache.error is error:
                return f"the watch of {cache.resource.plural}" if key else key
        return "the wait"

    def _evaluate(self) -> dict[str, Health]:
        caches = self.informers.caches
        pods = list(caches["Pod"].objects.values()) if "Pod" in caches else []
        replicasets = list(caches["ReplicaSet"].objects.values()) if "ReplicaSet" in caches else []
        result: dict[str, Health] = {}
        for wanted in self.objects:
            kind, name = str(wanted["kind"]), str(wanted["metadata"]["name"])
            live = caches[kind].objects.get(name)
            label = f"{kind}/{name}"
            if live is None:
                result[label] = Health(health.PENDING, f"{name} not created yet")
                continue
            live.setdefault("kind", kind)
            live.setdefault("apiVersion", wanted.get("apiVersion"))
            if not self._caught_up(label, live):
                result[label] = Health(health.PENDING, f"{name} waiting for the change to arrive")
                continue
            self.current_pods[label] = workloads.current_pods(live, pods, replicasets)
            result[label] = health.object_health(live, self.current_pods[label], self.rules, self.addresses)
        return result

    def _caught_up(self, label: str, live: Mapping[str, Any]) -> bool:
        if label not in self.expected:
            return True
        uid, generation = self.expected[label]
        meta = live.get("metadata") or {}
        return (not uid or str(meta.get("uid", "")) == uid) and int(meta.get("generation") or 0) >= generation

    # -- failure details ------------------------------------------------------------------------
    def explain(self, verdict: Verdict) -> None:
        """Fill in the last events and log lines for a failed verdict (best effort)."""
        failure = verdict.failure
        if failure is None:
            return
        name = verdict.failed.partition("/")[2]
        pod, container = failure.pod, failure.container
        if not pod:  # a deadline or a timeout: show the side of a pod that is stuck
            pod, container = self.unready_pod(verdict.failed)
        names = [n for n in (pod, name) if n]
        try:
            events_res = self.kube.resource("v1", "Event")
            collected = []
            for involved in names:
                items, _ = self.kube.list(events_res, self.namespace, field_selector=f"involvedObject.name={involved}")
                collected.extend(items)
            collected.sort(key=lambda e: (str(e.get("lastTimestamp") or e.get("eventTime") or ""),
                                          int(e.get("metadata", {}).get("resourceVersion") or 0)))
            verdict.events = [f"{e.get('type', '')} {e.get('reason', '')}: {e.get('message', '')}".strip()
                              for e in collected[-8:]]
        except Exception:  # noqa: BLE001 - details are best effort; the verdict stands without them
            verdict.events = []
        if pod and container:
            previous = failure.reason == "CrashLoopBackOff"
            logs = self.kube.log(self.namespace, pod, container, tail=20, previous=previous)
            if not logs and previous:
                logs = self.kube.log(self.namespace, pod, container, tail=20)
            verdict.logs = logs

    def unready_pod(self, workload: str) -> tuple[str, str]:
        """(pod, container) of the first pod of `workload` with a container that is not ready."""
        for pod in self.current_pods.get(workload, []):
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                if not status.get("ready"):
                    return str(pod["metadata"]["name"]), str(status.get("name", ""))
        return "", ""


def still_waiting(healths: Mapping[str, Health], pending_since: Mapping[str, float], now: float, elapsed: float,
                  timeout: float) -> str:
    """The heartbeat: what is still pending, and for how long, when nothing changed for a while."""
    waits = "; ".join(f"{name} for {int(now - since)} s ({healths[name].summary})"
                      for name, since in pending_since.items() if name in healths)
    return f"still waiting after {int(elapsed)} s of at most {int(timeout)} s: {waits}"
