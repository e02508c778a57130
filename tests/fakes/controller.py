"""The fake controller: what kube-controller-manager, the scheduler and the kubelets would do, just
enough for rollouts to succeed, stall or fail the way envship and `kubectl rollout status` observe them.

A daemon thread reconciles every `Timing.tick` seconds and whenever the store changes:
- Deployments -> ReplicaSets (one per pod template, named <deployment>-<template hash>, revision
  annotations, rolling update: the new ReplicaSet is scaled to spec.replicas at once and old ones down
  as new pods become ready; Recreate scales old ones to 0 first), status (observedGeneration,
  replicas, updated/ready/available/unavailableReplicas) and conditions exactly as kubectl reads them:
  Progressing (NewReplicaSetCreated, ReplicaSetUpdated, NewReplicaSetAvailable,
  ProgressDeadlineExceeded after spec.progressDeadlineSeconds without progress) and Available.
- ReplicaSets -> Pods (<rs>-<5 random characters>, template labels, ownerReferences).
- StatefulSets -> Pods <name>-<ordinal> in order (OrderedReady) or at once (Parallel), rolling updates
  from the highest ordinal, currentRevision/updateRevision, PVCs for volumeClaimTemplates.
- DaemonSets -> one Pod per Node, rolling updates with maxUnavailable 1.
- Jobs -> Pods run to completion (Complete), or fail until backoffLimit (Failed, BackoffLimitExceeded);
  activeDeadlineSeconds; ttlSecondsAfterFinished.
- Pods: scheduling (nodeName, PodScheduled), container states per scenario (see kube_apiserver.py's
  docstring), conditions, restart counts, log lines, and Events.
- Services of type LoadBalancer and Ingresses get an address; PVCs become Bound; namespaces get a
  `default` ServiceAccount and `kube-root-ca.crt`, and terminating ones are emptied and removed;
  objects whose owners are gone are garbage-collected.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from .objects import canonical, jcopy, meta, now_iso, random_suffix, safe_hash, selector_matches
from .resources import ResourceType
from .store import Store

SCENARIO_ANNOTATION = "fake.envship.dev/scenario"
READY_AFTER_ANNOTATION = "fake.envship.dev/ready-after"
RUN_FOR_ANNOTATION = "fake.envship.dev/run-for"
LOG_ANNOTATION = "fake.envship.dev/log"  # lines every container of the pod prints after starting (the app's own)
FAKE_INGRESS_CONTROLLER = "envship.dev/fake-ingress-controller"
DEFAULT_CLASS = "ingressclass.kubernetes.io/is-default-class"

SCENARIOS = ("healthy", "slow", "crashloop", "pullfail", "missingkey", "unschedulable", "neverready")
_ALIASES = {"crash-loop": "crashloop", "crashloopbackoff": "crashloop", "pull-fail": "pullfail",
            "imagepullbackoff": "pullfail", "errimagepull": "pullfail", "image-pull-failure": "pullfail",
            "missing-key": "missingkey", "missing-secret-key": "missingkey",
            "createcontainerconfigerror": "missingkey", "never-ready": "neverready", "ready": "healthy"}
# Image keywords, checked in this order against the image reference without its digest.
_IMAGE_KEYWORDS = (("crashloop", "crashloop"), ("crash-loop", "crashloop"), ("pullfail", "pullfail"),
                   ("pull-fail", "pullfail"), ("unschedulable", "unschedulable"), ("neverready", "neverready"),
                   ("never-ready", "neverready"), ("missingkey", "missingkey"), ("missing-key", "missingkey"),
                   ("slow", "slow"))

_IMAGE_REF = re.compile(
    r"^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
    r"(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$")


@dataclass
class Timing:
    """Seconds (and counts) that shape the simulation; tests use the small defaults."""

    tick: float = 0.05                  # reconcile at least this often
    start_delay: float = 0.05           # scheduled -> container running
    ready_delay: float = 0.15           # running -> Ready (healthy)
    slow_delay: float = 2.0             # running -> Ready (slow, unless the ready-after annotation says)
    crash_interval: float = 0.2         # crashloop: one restart per interval
    pull_backoff: float = 0.3           # pullfail: ErrImagePull <-> ImagePullBackOff
    probe_period: float = 0.5           # neverready: one Unhealthy event per period
    job_run_for: float = 0.3            # a Job pod's run time (annotation fake.envship.dev/run-for)
    init_run_for: float = 0.05          # an init container's run time
    lb_delay: float = 0.2               # LoadBalancer Service / Ingress address
    namespace_delete_delay: float = 0.2  # Terminating -> content deleted -> namespace gone
    node_count: int = 3
    lb_ip: str = "203.0.113.10"


@dataclass
class Rule:
    scenario: str
    image: str | None = None
    name: str | None = None
    namespace: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ContainerSim:
    name: str
    image: str
    init: bool
    scenario: str
    params: dict[str, Any]
    start_at: float | None = None  # monotonic time the container started (config resolved)
    runs: int = 0                  # container instances started so far (for logs)
    restarts: int = 0              # restartCount so far (kept when a crash-looping container recovers)
    done_at: float | None = None   # init/job container finished
    output: list[str] = field(default_factory=list)  # what the app prints (annotation fake.envship.dev/log)


@dataclass
class PodSim:
    uid: str
    namespace: str
    name: str
    mono0: float
    wall0: float
    containers: list[ContainerSim]
    scheduled_at: float | None = None
    ip: str = ""
    node: str = ""
    settled: bool = False            # the last computed status will not change with time alone
    settled_rv: str | None = None    # ... as computed for this resourceVersion of the pod
    rules_version: int = -1

    def iso(self, mono: float) -> str:
        return now_iso(self.wall0 + (mono - self.mono0))


def normalize_scenario(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in SCENARIOS else "healthy"


def parse_duration(text: Any, default: float) -> float:
    if text is None:
        return default
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m)?\s*", str(text))
    if not m:
        return default
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "ms" else value * 60 if m.group(2) == "m" else value


def template_hash(template: dict[str, Any]) -> str:
    return safe_hash(canonical(template), 10)


class Controller:
    def __init__(self, store: Store, timing: Timing) -> None:
        self.store = store
        self.timing = timing
        self.rules: list[Rule] = []
        self.errors: list[str] = []
        self._pods: dict[str, PodSim] = {}
        self._progress: dict[str, tuple[Any, float]] = {}  # deployment uid -> (progress signature, time)
        self._first_seen: dict[str, float] = {}  # uid -> monotonic time (LB services, terminating namespaces)
        self._event_names: dict[tuple[str, str, str], str] = {}
        self._next_ip = 10
        self._next_node = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._rt: dict[str, ResourceType] = {}
        self._signatures: dict[str, tuple[Any, ...]] = {}  # uid -> inputs of its last settled reconcile
        self._rules_version = 0

    # -- lifecycle ------------------------------------------------------------------------------------

    def rt(self, kind: str) -> ResourceType:
        if kind not in self._rt:
            group = {"Deployment": "apps", "ReplicaSet": "apps", "StatefulSet": "apps", "DaemonSet": "apps",
                     "Job": "batch", "CronJob": "batch", "Ingress": "networking.k8s.io",
                     "IngressClass": "networking.k8s.io"}.get(kind, "")
            found = self.store.registry.by_kind(group, kind)
            assert found is not None, kind
            self._rt[kind] = found
        return self._rt[kind]

    def bootstrap(self) -> None:
        """The objects a fresh cluster has: system namespaces and nodes."""
        with self.store.cond:
            for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
                self.store.put(self.rt("Namespace"), {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": ns}})
            for i in range(1, self.timing.node_count + 1):
                name = f"fake-node-{i}"
                self.store.put(self.rt("Node"), {
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                          "kubernetes.io/arch": "amd64"}},
                    "spec": {"podCIDR": f"10.244.{i}.0/24"},
                    "status": {"capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
                               "allocatable": {"cpu": "1930m", "memory": "6Gi", "pods": "110"},
                               "addresses": [{"type": "InternalIP", "address": f"10.0.0.{i + 1}"},
                                             {"type": "Hostname", "address": name}],
                               "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                               "message": "kubelet is posting ready status"}],
                               "nodeInfo": {"kubeletVersion": "v1.32.0-envship-fake", "osImage": "fake",
                                            "containerRuntimeVersion": "containerd://1.7.0",
                                            "architecture": "amd64", "operatingSystem": "linux"}}})
            # the ingress controller a cluster usually has (ingress-nginx, GKE's gce): its default class
            self.store.put(self.rt("IngressClass"), {
                "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": {"name": "fake", "annotations": {DEFAULT_CLASS: "true"}},
                "spec": {"controller": FAKE_INGRESS_CONTROLLER}})
            self._ensure_namespace_defaults()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-kube-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self.store.cond:
            self.store.cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def add_rule(self, scenario: str, *, image: str | None = None, name: str | None = None,
                 namespace: str | None = None, **params: Any) -> None:
        with self.store.cond:
            self.rules.insert(0, Rule(normalize_scenario(scenario), image, name, namespace, params))
            self._rules_version += 1
            self.store.cond.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self.store.cond:
                self.store.cond.wait(self.timing.tick)
                if self._stop.is_set() or self.store.stopping:
                    return
                try:
                    self.reconcile()
                except Exception:  # noqa: BLE001 - keep the fake alive; tests check .errors
                    self.errors.append(traceback.format_exc())
            time.sleep(0.005)  # let requests in between passes

    # -- the pass -------------------------------------------------------------------------------------

    def reconcile(self) -> None:
        now = time.monotonic()
        self._namespaces(now)
        self._ensure_namespace_defaults()
        self._garbage_collect()
        live = self._live_namespaces()
        self._each("Deployment", "ReplicaSet", live, now)
        self._each("ReplicaSet", "Pod", live, now)
        self._each("StatefulSet", "Pod", live, now)
        self._each("DaemonSet", "Pod", live, now)
        self._each("Job", "Pod", live, now)
        seen = set()
        for pod in self._items("Pod"):
            seen.add(meta(pod)["uid"])
            if meta(pod).get("namespace") in live:
                self._pod(pod, now)
        for uid in list(self._pods):
            if uid not in seen:
                del self._pods[uid]
        # second round: pod readiness reaches ReplicaSets and Deployments in the same pass
        self._each("ReplicaSet", "Pod", live, now)
        self._each("Deployment", "ReplicaSet", live, now)
        for svc in self._items("Service"):
            self._load_balancer(svc, now, self.rt("Service"))
        for ing in self._items("Ingress"):
            self._load_balancer(ing, now, self.rt("Ingress"))
        for pvc in self._items("PersistentVolumeClaim"):
            self._pvc(pvc)
        if len(self._signatures) > 4 * (len(seen) + 100):
            self._signatures = {k: v for k, v in self._signatures.items() if self.store.by_uid(k) is not None}

    def _each(self, kind: str, dependent_kind: str, live: set[str], now: float) -> None:
        """Reconcile every object of `kind`, skipping those whose own resourceVersion and their
        dependents' have not changed since a pass that wrote nothing and left them settled (no
        time-based work pending)."""
        rt = self.rt(kind)
        handler = {"Deployment": self._deployment, "ReplicaSet": self._replicaset, "StatefulSet": self._statefulset,
                   "DaemonSet": self._daemonset, "Job": self._job}[kind]
        for obj in self._items(kind):
            m = meta(obj)
            if m.get("namespace") not in live:
                continue
            uid = m["uid"]
            if self._signatures.get(uid) == self._signature(obj, dependent_kind):
                continue
            before = self.store.rv
            handler(obj, now)
            fresh = self.store.lookup(rt, m.get("namespace", ""), m["name"])
            if self.store.rv == before and fresh is not None and self._settled(kind, fresh):
                # a pass that changed nothing: until its inputs change, the next one would not either
                self._signatures[uid] = self._signature(fresh, dependent_kind)
            else:
                self._signatures.pop(uid, None)

    def _signature(self, obj: dict[str, Any], dependent_kind: str) -> tuple[Any, ...]:
        deps = tuple((meta(d)["uid"], meta(d).get("resourceVersion"))
                     for d in self._owned(dependent_kind, obj))
        extra: tuple[Any, ...] = ()
        if obj.get("kind") == "DaemonSet":
            extra = tuple(meta(n).get("resourceVersion") for n in self._items("Node"))
        return (meta(obj).get("resourceVersion"), self._rules_version, deps, extra)

    @staticmethod
    def _settled(kind: str, obj: dict[str, Any]) -> bool:
        """Nothing will change for this object until it or its dependents change."""
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if kind == "Deployment":
            prog = _find(status.get("conditions"), "Progressing") or {}
            return bool(spec.get("paused")) or prog.get("reason") in ("NewReplicaSetAvailable",
                                                                      "ProgressDeadlineExceeded")
        if kind == "Job":
            finished = any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                           for c in status.get("conditions") or [])
            if finished:
                return spec.get("ttlSecondsAfterFinished") is None
            return spec.get("activeDeadlineSeconds") is None
        return True

    def _items(self, kind: str, ns: str | None = None) -> list[dict[str, Any]]:
        return self.store.items(self.rt(kind).storage_key, ns)

    def _live_namespaces(self) -> set[str]:
        return {meta(n)["name"] for n in self._items("Namespace") if not meta(n).get("deletionTimestamp")}

    def _owned(self, kind: str, owner: dict[str, Any]) -> list[dict[str, Any]]:
        return self.store.dependents(meta(owner)["uid"], self.rt(kind).storage_key)

    @staticmethod
    def _owner_ref(owner: dict[str, Any], kind: str, api_version: str) -> dict[str, Any]:
        return {"apiVersion": api_version, "kind": kind, "name": meta(owner)["name"], "uid": meta(owner)["uid"],
                "controller": True, "blockOwnerDeletion": True}

    # -- namespaces and garbage collection ---------------------------------------------------------------

    def _ensure_namespace_defaults(self) -> None:
        for ns in self._items("Namespace"):
            m = meta(ns)
            if m.get("deletionTimestamp"):
                continue
            name = m["name"]
            if self.store.lookup(self.rt("ServiceAccount"), name, "default") is None:
                self.store.put(self.rt("ServiceAccount"), {"apiVersion": "v1", "kind": "ServiceAccount",
                                                           "metadata": {"name": "default", "namespace": name}})
            if self.store.lookup(self.rt("ConfigMap"), name, "kube-root-ca.crt") is None:
                self.store.put(self.rt("ConfigMap"), {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "kube-root-ca.crt", "namespace": name,
                                 "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be "
                                                 "used to verify the kube-apiserver when using internal endpoints "
                                                 "such as the internal service IP or kubernetes.default.svc. No "
                                                 "other usage is guaranteed across distributions of Kubernetes "
                                                 "clusters."}},
                    "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n"}})

    def _namespaces(self, now: float) -> None:
        for ns in self._items("Namespace"):
            m = meta(ns)
            if not m.get("deletionTimestamp"):
                continue
            since = self._first_seen.setdefault(m["uid"], now)
            if now - since < self.timing.namespace_delete_delay:
                continue
            name = m["name"]
            for storage, obj in list(self.store.all_objects()):
                if meta(obj).get("namespace") == name:
                    rt = self.store.registry.by_storage(*storage)
                    if rt is not None and rt.namespaced:
                        self.store.remove(rt, obj)
            self.store.remove(self.rt("Namespace"), ns)
            self._first_seen.pop(m["uid"], None)

    def _garbage_collect(self) -> None:
        for rt, obj in self.store.orphans():
            gone = self.store.remove(rt, obj)
            self.store.cascade(meta(gone)["uid"])

    # -- events -------------------------------------------------------------------------------------------

    def event(self, involved: dict[str, Any], reason: str, message: str, *, type_: str = "Normal",
              component: str = "kubelet", host: str = "", field_path: str = "", count: int | None = None,
              once: bool = False) -> None:
        """Record an Event, deduplicated by object, reason and message like the real event recorder:
        another occurrence increments `count`. `count=N` sets the count (for conditions that repeat,
        such as restarts); `once=True` records it only the first time (callers that run every pass)."""
        m = meta(involved)
        ns = m.get("namespace") or "default"
        key = (m.get("uid", ""), reason, message)
        rt = self.rt("Event")
        name = self._event_names.get(key)
        existing = self.store.lookup(rt, ns, name) if name else None
        if existing is not None:
            if once or (count is not None and existing.get("count", 1) >= count):
                return
            new = jcopy(existing)
            new["count"] = count if count is not None else existing.get("count", 1) + 1
            new["lastTimestamp"] = now_iso()
            self.store.put(rt, new)
            return
        if name is not None and (once or count is not None):
            return  # already recorded (and since deleted with its namespace)
        name = f"{m['name']}.{hashlib.sha256(repr(key).encode()).hexdigest()[:16]}"
        self._event_names[key] = name
        ts = now_iso()
        involved_ref = {"kind": involved.get("kind"), "namespace": m.get("namespace"), "name": m["name"],
                        "uid": m.get("uid"), "apiVersion": involved.get("apiVersion"),
                        "resourceVersion": m.get("resourceVersion")}
        if field_path:
            involved_ref["fieldPath"] = field_path
        source = {"component": component}
        if host:
            source["host"] = host
        self.store.put(rt, {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
            "involvedObject": {k: v for k, v in involved_ref.items() if v is not None},
            "reason": reason, "message": message, "source": source, "firstTimestamp": ts, "lastTimestamp": ts,
            "count": count or 1, "type": type_, "eventTime": None, "reportingComponent": component,
            "reportingInstance": host or component})

    # -- Deployments --------------------------------------------------------------------------------------

    def _deployment(self, d: dict[str, Any], now: float) -> None:
        m = meta(d)
        if m.get("deletionTimestamp"):
            return
        spec = d.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        h = template_hash(template)
        owned = self._owned("ReplicaSet", d)
        rs_rt = self.rt("ReplicaSet")
        revision = max([int((meta(r).get("annotations") or {}).get("deployment.kubernetes.io/revision", "0") or 0)
                        for r in owned] or [0])
        new_rs = next((r for r in owned if (meta(r).get("labels") or {}).get("pod-template-hash") == h), None)
        created = False
        if new_rs is None and not spec.get("paused"):
            labels = dict((template.get("metadata") or {}).get("labels") or {}, **{"pod-template-hash": h})
            rs_template = jcopy(template)
            rs_template.setdefault("metadata", {})["labels"] = labels
            selector = jcopy(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})["pod-template-hash"] = h
            initial = replicas if (spec.get("strategy") or {}).get("type") != "Recreate" or not any(
                (r.get("spec") or {}).get("replicas", 0) or (r.get("status") or {}).get("replicas", 0)
                for r in owned) else 0
            new_rs = self.store.put(rs_rt, {
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": f"{m['name']}-{h}", "namespace": m["namespace"], "labels": labels,
                             "annotations": {"deployment.kubernetes.io/desired-replicas": str(replicas),
                                             "deployment.kubernetes.io/max-replicas": str(replicas + 1),
                                             "deployment.kubernetes.io/revision": str(revision + 1)},
                             "ownerReferences": [self._owner_ref(d, "Deployment", "apps/v1")]},
                "spec": {"replicas": initial, "selector": selector, "template": rs_template}})
            revision += 1
            created = True
            if initial:
                self.event(d, "ScalingReplicaSet", f"Scaled up replica set {meta(new_rs)['name']} from 0 to "
                           f"{initial}", component="deployment-controller")
            owned = self._owned("ReplicaSet", d)
        elif new_rs is not None:
            rev = int((meta(new_rs).get("annotations") or {}).get("deployment.kubernetes.io/revision", "0") or 0)
            if rev < revision:  # a rollback to an old template: that ReplicaSet becomes the newest revision
                r = jcopy(new_rs)
                meta(r).setdefault("annotations", {})["deployment.kubernetes.io/revision"] = str(revision + 1)
                new_rs = self.store.put(rs_rt, r)
                revision += 1
        if new_rs is not None and not spec.get("paused"):
            self._scale_deployment(d, new_rs, owned, replicas)
            owned = self._owned("ReplicaSet", d)
            new_rs = next((r for r in owned if meta(r)["uid"] == meta(new_rs)["uid"]), new_rs)
        # revision annotation on the Deployment
        ann = m.get("annotations") or {}
        if revision and ann.get("deployment.kubernetes.io/revision") != str(revision):
            nd = jcopy(d)
            meta(nd).setdefault("annotations", {})["deployment.kubernetes.io/revision"] = str(revision)
            d = self.store.put(self.rt("Deployment"), nd)
        self._deployment_status(d, new_rs, owned, replicas, now, created)

    def _scale_deployment(self, d: dict[str, Any], new_rs: dict[str, Any], owned: list[dict[str, Any]],
                          replicas: int) -> None:
        spec = d.get("spec") or {}
        rs_rt = self.rt("ReplicaSet")
        old = [r for r in owned if meta(r)["uid"] != meta(new_rs)["uid"]]
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        new_ready = (new_rs.get("status") or {}).get("availableReplicas", 0)

        def scale(rs: dict[str, Any], to: int) -> None:
            current = (rs.get("spec") or {}).get("replicas", 0)
            if current == to:
                return
            r = jcopy(rs)
            r.setdefault("spec", {})["replicas"] = to
            ann = meta(r).setdefault("annotations", {})
            ann["deployment.kubernetes.io/desired-replicas"] = str(replicas)
            self.store.put(rs_rt, r)
            verb = "up" if to > current else "down"
            self.event(d, "ScalingReplicaSet", f"Scaled {verb} replica set {meta(rs)['name']} from {current} to {to}",
                       component="deployment-controller")

        if recreate:
            for r in old:
                scale(r, 0)
            old_pods = sum(len(self._owned("Pod", r)) for r in old)
            if old_pods == 0:
                scale(new_rs, replicas)
            return
        scale(new_rs, replicas)
        allowed_old = max(0, replicas - new_ready)
        # oldest revisions go first
        for r in sorted(old, key=lambda r: int((meta(r).get("annotations") or {}).get(
                "deployment.kubernetes.io/revision", "0") or 0)):
            current = (r.get("spec") or {}).get("replicas", 0)
            keep = min(current, allowed_old)
            allowed_old -= keep
            scale(r, keep)

    def _deployment_status(self, d: dict[str, Any], new_rs: dict[str, Any] | None, owned: list[dict[str, Any]],
                           replicas: int, now: float, created: bool) -> None:
        m = meta(d)
        spec = d.get("spec") or {}
        st = lambda r: r.get("status") or {}  # noqa: E731
        total = sum(st(r).get("replicas", 0) for r in owned)
        updated = st(new_rs).get("replicas", 0) if new_rs is not None else 0
        ready = sum(st(r).get("readyReplicas", 0) for r in owned)
        available = sum(st(r).get("availableReplicas", 0) for r in owned)
        spec_total = sum((r.get("spec") or {}).get("replicas", 0) for r in owned)
        old_status = d.get("status") or {}
        status: dict[str, Any] = {"observedGeneration": m.get("generation", 1)}
        if total:
            status["replicas"] = total
        if updated:
            status["updatedReplicas"] = updated
        if ready:
            status["readyReplicas"] = ready
        if available:
            status["availableReplicas"] = available
        unavailable = max(0, max(spec_total, replicas) - available)
        if unavailable:
            status["unavailableReplicas"] = unavailable
        max_unavailable = _resolve(((spec.get("strategy") or {}).get("rollingUpdate") or {}).get(
            "maxUnavailable", "25%"), replicas, round_up=False)
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            max_unavailable = replicas
        old_conds = {c["type"]: c for c in old_status.get("conditions") or []}
        ts = now_iso()
        is_available = available >= replicas - max_unavailable
        conds = [_condition(old_conds.get("Available"), "Available", is_available,
                            "MinimumReplicasAvailable" if is_available else "MinimumReplicasUnavailable",
                            "Deployment has minimum availability." if is_available
                            else "Deployment does not have minimum availability.", ts)]
        name = meta(new_rs)["name"] if new_rs is not None else ""
        complete = new_rs is not None and updated == replicas and available >= replicas and total == replicas \
            and (new_rs.get("spec") or {}).get("replicas", 0) == replicas
        signature = (name, updated, ready, available, total)
        prev = self._progress.get(m["uid"])
        if prev is None or prev[0] != signature:
            self._progress[m["uid"]] = (signature, now)
            progressed = prev is not None
        else:
            progressed = False
        since = self._progress[m["uid"]][1]
        deadline = spec.get("progressDeadlineSeconds")
        old_prog = old_conds.get("Progressing")
        if spec.get("paused"):
            prog = _condition(old_prog, "Progressing", None, "DeploymentPaused", "Deployment is paused", ts)
        elif complete:
            prog = _condition(old_prog, "Progressing", True, "NewReplicaSetAvailable",
                              f'ReplicaSet "{name}" has successfully progressed.', ts)
        elif created:
            prog = _condition(old_prog, "Progressing", True, "NewReplicaSetCreated",
                              f'Created new replica set "{name}"', ts)
        elif deadline is not None and now - since > float(deadline):
            prog = _condition(old_prog, "Progressing", False, "ProgressDeadlineExceeded",
                              f'ReplicaSet "{name}" has timed out progressing.', ts)
        elif old_prog is not None and not progressed and old_prog.get("status") == "True" \
                and old_prog.get("reason") in ("NewReplicaSetCreated", "ReplicaSetUpdated") \
                and f'"{name}"' in old_prog.get("message", ""):
            prog = old_prog
        else:
            prog = _condition(old_prog, "Progressing", True, "ReplicaSetUpdated",
                              f'ReplicaSet "{name}" is progressing.', ts)
        if prog.get("reason") == "ProgressDeadlineExceeded" and old_prog is not None \
                and old_prog.get("reason") != "ProgressDeadlineExceeded":
            self.event(d, "ProgressDeadlineExceeded", prog["message"], type_="Warning",
                       component="deployment-controller")
        conds.append(prog)
        status["conditions"] = conds
        if status != old_status:
            self.store.set_status(self.rt("Deployment"), d, status)

    # -- ReplicaSets --------------------------------------------------------------------------------------

    def _replicaset(self, rs: dict[str, Any], now: float = 0.0) -> None:
        m = meta(rs)
        if m.get("deletionTimestamp"):
            return
        spec = rs.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        pods = [p for p in self._owned("Pod", rs) if not meta(p).get("deletionTimestamp")]
        template = spec.get("template") or {}
        pod_rt = self.rt("Pod")
        if len(pods) < desired:
            for _ in range(desired - len(pods)):
                name = f"{m['name']}-{random_suffix()}"
                pod = self._new_pod(template, name, m["namespace"], self._owner_ref(rs, "ReplicaSet", "apps/v1"))
                self.store.put(pod_rt, pod)
                self.event(rs, "SuccessfulCreate", f"Created pod: {name}", component="replicaset-controller")
        elif len(pods) > desired:
            def rank(p: dict[str, Any]) -> tuple[int, str]:
                return (1 if _pod_ready(p) else 0, meta(p).get("creationTimestamp", ""))

            for p in sorted(pods, key=rank)[:len(pods) - desired]:
                self.store.remove(pod_rt, p)
                self.event(rs, "SuccessfulDelete", f"Deleted pod: {meta(p)['name']}",
                           component="replicaset-controller")
        pods = [p for p in self._owned("Pod", rs) if not meta(p).get("deletionTimestamp")]
        ready = sum(1 for p in pods if _pod_ready(p))
        status: dict[str, Any] = {"replicas": len(pods), "observedGeneration": m.get("generation", 1)}
        if pods:
            status["fullyLabeledReplicas"] = len(pods)
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        if status != (rs.get("status") or {}):
            self.store.set_status(self.rt("ReplicaSet"), rs, status)

    def _new_pod(self, template: dict[str, Any], name: str, ns: str, owner: dict[str, Any],
                 extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
        tm = template.get("metadata") or {}
        labels = dict(tm.get("labels") or {}, **(extra_labels or {}))
        metadata: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels, "ownerReferences": [owner]}
        if tm.get("annotations"):
            metadata["annotations"] = dict(tm["annotations"])
        if owner["kind"] in ("ReplicaSet", "DaemonSet", "Job"):
            metadata["generateName"] = name.rsplit("-", 1)[0] + "-"
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
                "spec": jcopy(template.get("spec") or {}), "status": {"phase": "Pending"}}

    # -- StatefulSets -------------------------------------------------------------------------------------

    def _statefulset(self, sts: dict[str, Any], now: float = 0.0) -> None:
        m = meta(sts)
        if m.get("deletionTimestamp"):
            return
        spec = sts.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        update_rev = f"{m['name']}-{template_hash(template)}"
        pod_rt = self.rt("Pod")
        pods: dict[int, dict[str, Any]] = {}
        for p in self._owned("Pod", sts):
            suffix = meta(p)["name"].rsplit("-", 1)[-1]
            if suffix.isdigit():
                pods[int(suffix)] = p
        parallel = spec.get("podManagementPolicy") == "Parallel"
        old_status = sts.get("status") or {}
        current_rev = old_status.get("currentRevision") or update_rev
        # PVCs for volumeClaimTemplates
        for i in range(replicas):
            for tpl in spec.get("volumeClaimTemplates") or []:
                pvc_name = f"{(tpl.get('metadata') or {}).get('name')}-{m['name']}-{i}"
                if self.store.lookup(self.rt("PersistentVolumeClaim"), m["namespace"], pvc_name) is None:
                    self.store.put(self.rt("PersistentVolumeClaim"), {
                        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": pvc_name, "namespace": m["namespace"],
                                     "labels": dict((template.get("metadata") or {}).get("labels") or {})},
                        "spec": jcopy(tpl.get("spec") or {})})
        changed = False
        for i in range(replicas):
            if i in pods:
                continue
            if not parallel and not all(_pod_ready(pods[j]) for j in range(i) if j in pods):
                break
            name = f"{m['name']}-{i}"
            pod = self._new_pod(template, name, m["namespace"], self._owner_ref(sts, "StatefulSet", "apps/v1"),
                                {"controller-revision-hash": update_rev, "statefulset.kubernetes.io/pod-name": name,
                                 "apps.kubernetes.io/pod-index": str(i)})
            pod["spec"]["hostname"] = name
            if spec.get("serviceName"):
                pod["spec"]["subdomain"] = spec["serviceName"]
            pods[i] = self.store.put(pod_rt, pod)
            self.event(sts, "SuccessfulCreate", f"create Pod {name} in StatefulSet {m['name']} successful",
                       component="statefulset-controller")
            changed = True
            if not parallel:
                break
        for i in sorted((i for i in pods if i >= replicas), reverse=True):
            self.store.remove(pod_rt, pods.pop(i))
            self.event(sts, "SuccessfulDelete", f"delete Pod {m['name']}-{i} in StatefulSet {m['name']} successful",
                       component="statefulset-controller")
            changed = True
            if not parallel:
                break
        strategy = spec.get("updateStrategy") or {}
        partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0) or 0)
        if not changed and strategy.get("type", "RollingUpdate") == "RollingUpdate" and len(pods) == replicas \
                and all(_pod_ready(p) for p in pods.values()):
            for i in sorted(pods, reverse=True):
                if i < partition:
                    break
                if (meta(pods[i]).get("labels") or {}).get("controller-revision-hash") != update_rev:
                    self.store.remove(pod_rt, pods.pop(i))
                    break
        live = list(pods.values())
        ready = sum(1 for p in live if _pod_ready(p))
        revs = [(meta(p).get("labels") or {}).get("controller-revision-hash") for p in live]
        updated = sum(1 for r in revs if r == update_rev)
        if updated == replicas and ready == replicas and len(live) == replicas:
            current_rev = update_rev
        status: dict[str, Any] = {"observedGeneration": m.get("generation", 1), "replicas": len(live),
                                  "currentRevision": current_rev, "updateRevision": update_rev, "collisionCount": 0}
        current = sum(1 for r in revs if r == current_rev)
        if current:
            status["currentReplicas"] = current
        if updated:
            status["updatedReplicas"] = updated
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        if status != old_status:
            self.store.set_status(self.rt("StatefulSet"), sts, status)

    # -- DaemonSets ---------------------------------------------------------------------------------------

    def _daemonset(self, ds: dict[str, Any], now: float = 0.0) -> None:
        m = meta(ds)
        if m.get("deletionTimestamp"):
            return
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        rev = template_hash(template)
        nodes = [meta(n)["name"] for n in self._items("Node")
                 if not (n.get("spec") or {}).get("unschedulable")
                 and all((meta(n).get("labels") or {}).get(k) == v
                         for k, v in ((template.get("spec") or {}).get("nodeSelector") or {}).items())]
        pod_rt = self.rt("Pod")
        by_node: dict[str, dict[str, Any]] = {}
        for p in self._owned("Pod", ds):
            node = (p.get("spec") or {}).get("nodeName", "")
            if node in nodes and node not in by_node:
                by_node[node] = p
            else:
                self.store.remove(pod_rt, p)
        for node in nodes:
            if node not in by_node:
                name = f"{m['name']}-{random_suffix()}"
                pod = self._new_pod(template, name, m["namespace"], self._owner_ref(ds, "DaemonSet", "apps/v1"),
                                    {"controller-revision-hash": rev,
                                     "pod-template-generation": str(m.get("generation", 1))})
                pod["spec"]["nodeName"] = node
                by_node[node] = self.store.put(pod_rt, pod)
                self.event(ds, "SuccessfulCreate", f"Created pod: {name}", component="daemonset-controller")
        unavailable = sum(1 for p in by_node.values() if not _pod_ready(p))
        max_unavailable = _resolve(((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get(
            "maxUnavailable", 1), len(nodes), round_up=True) or 1
        if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
            for node, p in sorted(by_node.items()):
                if unavailable >= max_unavailable:
                    break
                if (meta(p).get("labels") or {}).get("controller-revision-hash") != rev:
                    self.store.remove(pod_rt, p)
                    del by_node[node]
                    unavailable += 1
        pods = list(by_node.values())
        ready = sum(1 for p in pods if _pod_ready(p))
        updated = sum(1 for p in pods if (meta(p).get("labels") or {}).get("controller-revision-hash") == rev)
        status: dict[str, Any] = {"currentNumberScheduled": len(pods), "desiredNumberScheduled": len(nodes),
                                  "numberMisscheduled": 0, "numberReady": ready,
                                  "observedGeneration": m.get("generation", 1)}
        if ready:
            status["numberAvailable"] = ready
        if len(nodes) - ready:
            status["numberUnavailable"] = len(nodes) - ready
        if updated:
            status["updatedNumberScheduled"] = updated
        if status != (ds.get("status") or {}):
            self.store.set_status(self.rt("DaemonSet"), ds, status)

    # -- Jobs -----------------------------------------------------------------------------------------------

    def _job(self, job: dict[str, Any], now: float) -> None:
        m = meta(job)
        if m.get("deletionTimestamp"):
            return
        spec = job.get("spec") or {}
        old_status = job.get("status") or {}
        conds = old_status.get("conditions") or []
        finished = next((c for c in conds if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"),
                        None)
        if finished is not None:
            ttl = spec.get("ttlSecondsAfterFinished")
            if ttl is not None:
                since = self._first_seen.setdefault(m["uid"], now)
                if now - since >= float(ttl):
                    gone = self.store.remove(self.rt("Job"), job)
                    self.store.cascade(meta(gone)["uid"])
            return
        if spec.get("suspend"):
            return
        pod_rt = self.rt("Pod")
        pods = self._owned("Pod", job)
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        succeeded = phases.count("Succeeded")
        failed = phases.count("Failed")
        active = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        restart_policy = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
        if restart_policy == "OnFailure":
            failed += sum(c.get("restartCount", 0) for p in active
                          for c in (p.get("status") or {}).get("containerStatuses") or [])
        completions = int(spec.get("completions", 1) or 1)
        parallelism = int(spec.get("parallelism", 1) or 0)
        backoff = int(spec.get("backoffLimit", 6))
        start_time = old_status.get("startTime") or now_iso()
        self._first_seen.setdefault(m["uid"] + "/start", now)
        deadline = spec.get("activeDeadlineSeconds")
        ts = now_iso()
        status: dict[str, Any] = {"startTime": start_time}
        new_conds: list[dict[str, Any]] = []
        if succeeded >= completions:
            new_conds = [{"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                          "message": "Reached expected number of succeeded pods", "lastProbeTime": ts,
                          "lastTransitionTime": ts},
                         {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                          "message": "Reached expected number of succeeded pods", "lastProbeTime": ts,
                          "lastTransitionTime": ts}]
            status["completionTime"] = ts
            self.event(job, "Completed", "Job completed", component="job-controller")
        elif failed > backoff or (deadline is not None
                                  and now - self._first_seen[m["uid"] + "/start"] > float(deadline)):
            reason, message = ("BackoffLimitExceeded", "Job has reached the specified backoff limit") \
                if failed > backoff else ("DeadlineExceeded", "Job was active longer than specified deadline")
            new_conds = [{"type": "FailureTarget", "status": "True", "reason": reason, "message": message,
                          "lastProbeTime": ts, "lastTransitionTime": ts},
                         {"type": "Failed", "status": "True", "reason": reason, "message": message,
                          "lastProbeTime": ts, "lastTransitionTime": ts}]
            for p in active:
                self.store.remove(pod_rt, p)
            active = []
            self.event(job, reason, message, type_="Warning", component="job-controller")
        else:
            want = min(parallelism, completions - succeeded)
            for _ in range(max(0, want - len(active))):
                name = f"{m['name']}-{random_suffix()}"
                template = spec.get("template") or {}
                pod = self._new_pod(template, name, m["namespace"], self._owner_ref(job, "Job", "batch/v1"))
                active.append(self.store.put(pod_rt, pod))
                self.event(job, "SuccessfulCreate", f"Created pod: {name}", component="job-controller")
        if active:
            status["active"] = len(active)
        status["ready"] = sum(1 for p in active if _pod_ready(p))
        if succeeded:
            status["succeeded"] = succeeded
        if failed:
            status["failed"] = failed
        status["terminating"] = 0
        status["uncountedTerminatedPods"] = {}
        if new_conds:
            status["conditions"] = new_conds
        elif conds:
            status["conditions"] = conds
        if status != old_status:
            self.store.set_status(self.rt("Job"), job, status)

    # -- Services, Ingresses, PVCs --------------------------------------------------------------------------

    def _served_ingress(self, ingress: dict[str, Any]) -> bool:
        """Whether the fake's ingress controller serves this Ingress: its class (spec.ingressClassName, or the
        old annotation) is an IngressClass of the fake's controller, or it names none and one is the default."""
        classes = {meta(c)["name"]: c for c in self._items("IngressClass")}
        name = (ingress.get("spec") or {}).get("ingressClassName") or \
            (meta(ingress).get("annotations") or {}).get("kubernetes.io/ingress.class")
        if name:
            served = classes.get(name)
            return served is not None and (served.get("spec") or {}).get("controller") == FAKE_INGRESS_CONTROLLER
        return any((meta(c).get("annotations") or {}).get(DEFAULT_CLASS) == "true"
                   and (c.get("spec") or {}).get("controller") == FAKE_INGRESS_CONTROLLER for c in classes.values())

    def _load_balancer(self, obj: dict[str, Any], now: float, rt: ResourceType) -> None:
        m = meta(obj)
        wants = (rt.kind == "Ingress" and self._served_ingress(obj)) or \
            (obj.get("spec") or {}).get("type") == "LoadBalancer"
        status = obj.get("status") or {}
        has = bool((status.get("loadBalancer") or {}).get("ingress"))
        if wants and not has:
            since = self._first_seen.setdefault(m["uid"], now)
            if now - since >= self.timing.lb_delay:
                entry: dict[str, Any] = {"ip": self.timing.lb_ip}
                if rt.kind == "Service":
                    entry["ipMode"] = "VIP"
                self.store.set_status(rt, obj, dict(status, loadBalancer={"ingress": [entry]}))
                if rt.kind == "Service":
                    self.event(obj, "EnsuredLoadBalancer", "Ensured load balancer", component="service-controller")
        elif not wants and has:
            self.store.set_status(rt, obj, dict(status, loadBalancer={}))

    def _pvc(self, pvc: dict[str, Any]) -> None:
        status = pvc.get("status") or {}
        if status.get("phase") == "Bound":
            return
        spec = pvc.get("spec") or {}
        capacity = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        self.store.set_status(self.rt("PersistentVolumeClaim"), pvc, {
            "phase": "Bound", "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "capacity": {"storage": capacity}})

    # -- Pods ---------------------------------------------------------------------------------------------------

    def _scenario_for(self, pod: dict[str, Any], container: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        m = meta(pod)
        image = str(container.get("image", ""))
        for rule in self.rules:
            if rule.image is not None and rule.image not in image:
                continue
            if rule.name is not None and not m["name"].startswith(rule.name):
                continue
            if rule.namespace is not None and rule.namespace != m.get("namespace"):
                continue
            return rule.scenario, dict(rule.params)
        annotations = m.get("annotations") or {}
        params: dict[str, Any] = {}
        if READY_AFTER_ANNOTATION in annotations:
            params["ready_after"] = parse_duration(annotations[READY_AFTER_ANNOTATION], self.timing.slow_delay)
        if RUN_FOR_ANNOTATION in annotations:
            params["run_for"] = parse_duration(annotations[RUN_FOR_ANNOTATION], self.timing.job_run_for)
        value = annotations.get(SCENARIO_ANNOTATION)
        if value:
            if "=" in value:
                per = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
                if container.get("name") in per:
                    return normalize_scenario(per[container["name"]]), params
            else:
                return normalize_scenario(value), params
        ref = image.split("@", 1)[0].lower()
        for word, scenario in _IMAGE_KEYWORDS:
            if word in ref:
                return scenario, params
        return "healthy", params

    def _sim(self, pod: dict[str, Any], now: float) -> PodSim:
        uid = meta(pod)["uid"]
        sim = self._pods.get(uid)
        if sim is not None:
            # scenarios are re-evaluated every pass: set_scenario() also steers pods that already exist
            specs = {c.get("name"): c for key in ("initContainers", "containers")
                     for c in (pod.get("spec") or {}).get(key) or []}
            for c in sim.containers:
                c.scenario, c.params = self._scenario_for(pod, specs.get(c.name) or {"image": c.image})
        if sim is None:
            spec = pod.get("spec") or {}
            containers = []
            printed = str((meta(pod).get("annotations") or {}).get(LOG_ANNOTATION, "")).splitlines()
            for key, init in (("initContainers", True), ("containers", False)):
                for c in spec.get(key) or []:
                    scenario, params = self._scenario_for(pod, c)
                    containers.append(ContainerSim(c.get("name", ""), str(c.get("image", "")), init, scenario, params,
                                                   output=printed))
            sim = PodSim(uid, meta(pod).get("namespace", ""), meta(pod)["name"], now, time.time(), containers)
            self._pods[uid] = sim
        return sim

    def _pod(self, pod: dict[str, Any], now: float) -> None:
        m = meta(pod)
        if m.get("deletionTimestamp"):
            return
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        existing = self._pods.get(m["uid"])
        if existing is not None and existing.settled_rv == m.get("resourceVersion") \
                and existing.rules_version == self._rules_version:
            return
        sim = self._sim(pod, now)
        sim.settled_rv = None
        sim.rules_version = self._rules_version
        spec = pod.get("spec") or {}
        pod_rt = self.rt("Pod")
        unschedulable = any(c.scenario == "unschedulable" for c in sim.containers)
        node = spec.get("nodeName", "")
        if unschedulable and not node:
            nodes = self.timing.node_count
            message = f"0/{nodes} nodes are available: {nodes} Insufficient cpu."
            new_status = {"phase": "Pending", "qosClass": status.get("qosClass", "BestEffort"), "conditions": [
                _condition(_find(status.get("conditions"), "PodScheduled"), "PodScheduled", False, "Unschedulable",
                           message, sim.iso(sim.mono0), probe=True)]}
            if new_status != status:
                self.store.set_status(pod_rt, pod, new_status)
            count = 1 + int((now - sim.mono0) / max(self.timing.probe_period, 0.1))
            self.event(pod, "FailedScheduling", message + " preemption: 0/" + str(nodes) + " nodes are available: "
                       + str(nodes) + " No preemption victims found for incoming pod.", type_="Warning",
                       component="default-scheduler", count=count)
            return
        if sim.scheduled_at is None:
            sim.scheduled_at = now
            self._next_ip += 1
            sim.ip = f"10.244.{(self._next_ip // 250) % 250}.{self._next_ip % 250 + 1}"
            if not node:
                nodes = [meta(n)["name"] for n in self._items("Node")] or ["fake-node-1"]
                node = nodes[self._next_node % len(nodes)]
                self._next_node += 1
                bound = jcopy(pod)
                bound.setdefault("spec", {})["nodeName"] = node
                pod = self.store.put(pod_rt, bound)
                self.event(pod, "Scheduled", f"Successfully assigned {m['namespace']}/{m['name']} to {node}",
                           component="default-scheduler")
            sim.node = node
        new_status = self._pod_status(pod, sim, now)
        if new_status != status:
            pod = self.store.set_status(pod_rt, pod, new_status)
        if sim.settled:
            sim.settled_rv = meta(pod).get("resourceVersion")

    def _config_problem(self, pod: dict[str, Any], container: dict[str, Any]) -> str | None:
        """Why the kubelet cannot build this container's environment (CreateContainerConfigError)."""
        ns = meta(pod).get("namespace", "")
        for env in container.get("env") or []:
            source = (env or {}).get("valueFrom") or {}
            for ref_key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                ref = source.get(ref_key)
                if not ref or ref.get("optional"):
                    continue
                obj = self.store.lookup(self.rt(kind), ns, ref.get("name", ""))
                if obj is None:
                    return f'{kind.lower()} "{ref.get("name", "")}" not found'
                keys = set(obj.get("data") or {}) | set(obj.get("binaryData") or {})
                if ref.get("key") not in keys:
                    return f"couldn't find key {ref.get('key')} in {kind} {ns}/{ref.get('name')}"
        for source in container.get("envFrom") or []:
            for ref_key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                ref = (source or {}).get(ref_key)
                if ref and not ref.get("optional") and \
                        self.store.lookup(self.rt(kind), ns, ref.get("name", "")) is None:
                    return f'{kind.lower()} "{ref.get("name", "")}" not found'
        return None

    def _mount_problem(self, pod: dict[str, Any]) -> str | None:
        ns = meta(pod).get("namespace", "")
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            for key, kind, name_key in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName"),
                                        ("persistentVolumeClaim", "PersistentVolumeClaim", "claimName")):
                src = vol.get(key)
                if not src or src.get("optional"):
                    continue
                if self.store.lookup(self.rt(kind), ns, src.get(name_key, "")) is None:
                    what = {"ConfigMap": "configmap", "Secret": "secret",
                            "PersistentVolumeClaim": "persistentvolumeclaim"}[kind]
                    return f'MountVolume.SetUp failed for volume "{vol.get("name")}" : {what} "{src.get(name_key)}" ' \
                           "not found"
        return None

    def _pod_status(self, pod: dict[str, Any], sim: PodSim, now: float) -> dict[str, Any]:
        spec = pod.get("spec") or {}
        old = pod.get("status") or {}
        t = self.timing
        restart_policy = spec.get("restartPolicy", "Always")
        specs = {c.get("name"): c for key in ("initContainers", "containers") for c in spec.get(key) or []}
        assert sim.scheduled_at is not None
        mount_problem = self._mount_problem(pod)
        if mount_problem:
            self.event(pod, "FailedMount", mount_problem, type_="Warning", host=sim.node,
                       count=1 + int((now - sim.scheduled_at) / 2.0))
        statuses: dict[str, dict[str, Any]] = {}
        prev_done = sim.scheduled_at + t.start_delay
        init_ok = True
        phase_failed = False
        all_done = True
        for c in sim.containers:
            cspec = specs.get(c.name) or {}
            base = {"name": c.name, "image": c.image, "imageID": "", "ready": False, "restartCount": 0,
                    "started": False, "lastState": {}}
            if c.init is False and not init_ok:
                statuses[c.name] = dict(base, state={"waiting": {"reason": "PodInitializing"}})
                all_done = False
                continue
            if mount_problem:
                statuses[c.name] = dict(base, state={"waiting": {"reason": "ContainerCreating"}})
                all_done = False
                init_ok = False if c.init else init_ok
                continue
            field_path = f"spec.{'initContainers' if c.init else 'containers'}{{{c.name}}}"
            if now < prev_done:
                statuses[c.name] = dict(base, state={"waiting": {"reason": "ContainerCreating" if not c.init
                                                                 else "PodInitializing"}})
                all_done = False
                init_ok = False if c.init else init_ok
                continue
            if not _IMAGE_REF.match(c.image):
                msg = f'Failed to apply default image tag "{c.image}": couldn\'t parse image name "{c.image}": ' \
                      "invalid reference format"
                statuses[c.name] = dict(base, state={"waiting": {"reason": "InvalidImageName", "message": msg}})
                self.event(pod, "InspectFailed", msg, type_="Warning", host=sim.node, field_path=field_path,
                           once=True)
                self.event(pod, "Failed", "Error: InvalidImageName", type_="Warning", host=sim.node,
                           field_path=field_path, once=True)
                all_done = False
                init_ok = False if c.init else init_ok
                continue
            if c.scenario == "pullfail":
                cycle = int((now - prev_done) / max(t.pull_backoff, 0.01))
                ref = _full_ref(c.image)
                pull_msg = (f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": '
                            f"{ref}: not found")
                if cycle % 2 == 0:
                    state = {"waiting": {"reason": "ErrImagePull", "message": f"rpc error: code = NotFound desc = "
                                                                               f"{pull_msg}"}}
                else:
                    state = {"waiting": {"reason": "ImagePullBackOff",
                                         "message": f'Back-off pulling image "{c.image}"'}}
                statuses[c.name] = dict(base, state=state)
                n = cycle // 2 + 1
                self.event(pod, "Pulling", f'Pulling image "{c.image}"', host=sim.node, field_path=field_path, count=n)
                self.event(pod, "Failed", f'Failed to pull image "{c.image}": rpc error: code = NotFound desc = '
                           f"{pull_msg}", type_="Warning", host=sim.node, field_path=field_path, count=n)
                self.event(pod, "Failed", "Error: ErrImagePull", type_="Warning", host=sim.node,
                           field_path=field_path, count=n)
                if cycle >= 1:
                    self.event(pod, "BackOff", f'Back-off pulling image "{c.image}"', host=sim.node,
                               field_path=field_path, count=(cycle + 1) // 2)
                    self.event(pod, "Failed", "Error: ImagePullBackOff", type_="Warning", host=sim.node,
                               field_path=field_path, count=(cycle + 1) // 2)
                all_done = False
                init_ok = False if c.init else init_ok
                continue
            problem = self._config_problem(pod, cspec) if c.start_at is None else None
            if problem is None and c.scenario == "missingkey" and c.start_at is None:
                problem = self._scenario_missing_key(pod, cspec, c)
            if problem is not None:
                statuses[c.name] = dict(base, state={"waiting": {"reason": "CreateContainerConfigError",
                                                                 "message": problem}})
                self.event(pod, "Pulled", f'Container image "{c.image}" already present on machine', host=sim.node,
                           field_path=field_path, once=True)
                self.event(pod, "Failed", f"Error: {problem}", type_="Warning", host=sim.node, field_path=field_path,
                           count=1 + int((now - prev_done) / 1.0))
                all_done = False
                init_ok = False if c.init else init_ok
                continue
            if c.start_at is None:
                c.start_at = max(now, prev_done)
                c.runs = 1
                self.event(pod, "Pulling", f'Pulling image "{c.image}"', host=sim.node, field_path=field_path)
                self.event(pod, "Pulled", f'Successfully pulled image "{c.image}" in 12ms (12ms including waiting)',
                           host=sim.node, field_path=field_path)
                self.event(pod, "Created", f"Created container: {c.name}", host=sim.node, field_path=field_path)
                self.event(pod, "Started", f"Started container {c.name}", host=sim.node, field_path=field_path)
            elapsed = now - c.start_at
            started_iso = sim.iso(c.start_at)
            cid = "containerd://" + hashlib.sha256(f"{sim.uid}/{c.name}/{c.runs}".encode()).hexdigest()
            image_id = _image_id(c.image)
            base.update(imageID=image_id, containerID=cid)
            runs_once = c.init or restart_policy != "Always"
            if c.scenario == "crashloop":
                if restart_policy == "Never" or (c.init and restart_policy == "Never"):
                    if elapsed >= t.crash_interval:
                        statuses[c.name] = dict(base, state={"terminated": {
                            "exitCode": 1, "reason": "Error", "startedAt": started_iso,
                            "finishedAt": sim.iso(c.start_at + t.crash_interval), "containerID": cid}})
                        phase_failed = True
                    else:
                        statuses[c.name] = dict(base, started=True, state={"running": {"startedAt": started_iso}})
                    all_done = False
                    init_ok = False if c.init else init_ok
                    continue
                restarts = max(c.restarts, int(elapsed / max(t.crash_interval, 0.01)))
                c.restarts = restarts
                c.runs = restarts + 1
                if restarts == 0:
                    statuses[c.name] = dict(base, started=True, state={"running": {"startedAt": started_iso}})
                else:
                    last_start = c.start_at + (restarts - 1) * t.crash_interval
                    statuses[c.name] = dict(
                        base, restartCount=restarts,
                        state={"waiting": {"reason": "CrashLoopBackOff", "message":
                                           f"back-off {min(10 * 2 ** (restarts - 1), 300)}s restarting failed "
                                           f"container={c.name} pod={sim.name}_{sim.namespace}({sim.uid})"}},
                        lastState={"terminated": {"exitCode": 1, "reason": "Error", "startedAt": sim.iso(last_start),
                                                  "finishedAt": sim.iso(last_start + t.crash_interval * 0.5),
                                                  "containerID": cid}})
                    self.event(pod, "BackOff", f"Back-off restarting failed container {c.name} in pod "
                               f"{sim.name}_{sim.namespace}({sim.uid})", type_="Warning", host=sim.node,
                               field_path=field_path, count=restarts)
                all_done = False
                init_ok = False if c.init else init_ok
                continue
            if runs_once and c.scenario in ("healthy", "slow"):
                run_for = t.init_run_for if c.init else float(c.params.get("run_for", t.job_run_for))
                if elapsed >= run_for:
                    c.done_at = c.start_at + run_for
                    statuses[c.name] = dict(base, state={"terminated": {
                        "exitCode": 0, "reason": "Completed", "startedAt": started_iso,
                        "finishedAt": sim.iso(c.done_at), "containerID": cid}})
                    if c.init:
                        prev_done = max(prev_done, c.done_at)
                    continue
                statuses[c.name] = dict(base, started=True, ready=not c.init and elapsed >= t.ready_delay,
                                        state={"running": {"startedAt": started_iso}})
                all_done = False
                init_ok = False if c.init else init_ok
                continue
            # long-running containers: healthy, slow, neverready
            if c.scenario == "neverready":
                ready_after = float("inf")
                self.event(pod, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503",
                           type_="Warning", host=sim.node, field_path=field_path,
                           count=1 + int(elapsed / max(t.probe_period, 0.01)))
            elif c.scenario == "slow":
                ready_after = float(c.params.get("ready_after", t.slow_delay))
            else:
                ready_after = float(c.params.get("ready_after", t.ready_delay))
            statuses[c.name] = dict(base, started=True, ready=elapsed >= ready_after, restartCount=c.restarts,
                                    state={"running": {"startedAt": started_iso}})
            all_done = False
            if c.init:
                init_ok = False
        # settled: only a change to the pod (or a new scenario rule) can change this status now
        sim.settled = not mount_problem and all(
            ("terminated" in statuses[c.name]["state"]) if c.init else
            (statuses[c.name].get("ready") is True and c.scenario in ("healthy", "slow")
             and restart_policy == "Always")
            for c in sim.containers)
        # phase and conditions
        main = [statuses[c.name] for c in sim.containers if not c.init]
        inits = [statuses[c.name] for c in sim.containers if c.init]
        ts_sched = sim.iso(sim.scheduled_at)
        main_ready = bool(main) and all(s.get("ready") for s in main)
        if phase_failed:
            phase = "Failed"
        elif all_done and main and all("terminated" in s["state"] for s in main):
            phase = "Succeeded" if all(s["state"]["terminated"]["exitCode"] == 0 for s in main) else "Failed"
        elif any("running" in s["state"] or s.get("restartCount") for s in main):
            phase = "Running"
        else:
            phase = "Pending"
        old_conds = old.get("conditions") or []
        unready = [s["name"] for s in main if not s.get("ready")]
        ready_msg = f"containers with unready status: [{' '.join(unready)}]" if unready else ""
        done = phase in ("Succeeded", "Failed")
        conditions = [
            _condition(_find(old_conds, "PodReadyToStartContainers"), "PodReadyToStartContainers", not done,
                       "", "", ts_sched),
            _condition(_find(old_conds, "Initialized"), "Initialized", init_ok,
                       "" if init_ok else "ContainersNotInitialized",
                       "" if init_ok else "containers with incomplete status: [" + " ".join(
                           c.name for c in sim.containers if c.init and "terminated" not in statuses[c.name]["state"])
                       + "]", ts_sched),
            _condition(_find(old_conds, "Ready"), "Ready", main_ready,
                       "PodCompleted" if done else ("" if main_ready else "ContainersNotReady"),
                       "" if main_ready or done else ready_msg, ts_sched),
            _condition(_find(old_conds, "ContainersReady"), "ContainersReady", main_ready,
                       "PodCompleted" if done else ("" if main_ready else "ContainersNotReady"),
                       "" if main_ready or done else ready_msg, ts_sched),
            _condition(_find(old_conds, "PodScheduled"), "PodScheduled", True, "", "", ts_sched),
        ]
        node_ip = "10.0.0." + str(int(sim.node.rsplit("-", 1)[-1]) + 1 if sim.node.rsplit("-", 1)[-1].isdigit() else 2)
        status: dict[str, Any] = {"phase": phase, "conditions": conditions, "hostIP": node_ip,
                                  "hostIPs": [{"ip": node_ip}], "podIP": sim.ip, "podIPs": [{"ip": sim.ip}],
                                  "startTime": ts_sched, "qosClass": old.get("qosClass", "BestEffort")}
        if inits:
            status["initContainerStatuses"] = inits
        status["containerStatuses"] = main
        return status

    def _scenario_missing_key(self, pod: dict[str, Any], cspec: dict[str, Any], c: ContainerSim) -> str:
        ns = meta(pod).get("namespace", "")
        secret = c.params.get("missing_secret")
        key = c.params.get("missing_key")
        if not secret:
            for env in cspec.get("env") or []:
                ref = ((env or {}).get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    secret, key = ref.get("name"), key or f"{ref.get('key')}-missing"
                    break
        if not secret:
            for source in cspec.get("envFrom") or []:
                ref = (source or {}).get("secretRef")
                if ref:
                    secret = ref.get("name")
                    break
        return f"couldn't find key {key or 'API_KEY'} in Secret {ns}/{secret or 'app-secrets'}"

    # -- logs -------------------------------------------------------------------------------------------------

    def log_lines(self, ns: str, pod: str, container: str | None, previous: bool) -> list[str] | None:
        """Log lines of the container's current (or previous) instance; None if it never started."""
        with self.store.cond:
            sim = next((s for s in self._pods.values() if s.namespace == ns and s.name == pod), None)
            if sim is None:
                return None
            c = next((c for c in sim.containers if container in (None, c.name)), None)
            if c is None or c.start_at is None:
                return None
            runs = c.runs
            if previous:
                if runs < 2:
                    return None
                runs -= 1
            return self._lines(c, runs)

    @staticmethod
    def _lines(c: ContainerSim, run: int) -> list[str]:
        lines = [f"fake: starting {c.image} (container {c.name}, attempt {run})", *c.output]
        if c.scenario == "crashloop":
            lines += ["fake: loading configuration", "panic: fake crash-loop scenario: exiting with code 1",
                      "goroutine 1 [running]:", "main.main()", "\t/app/main.go:42 +0x1d"]
        elif c.init or c.params.get("run_for") is not None:
            lines += ["fake: working", "fake: done"]
        else:
            lines += [f"fake: {c.name} listening on :8080"]
            if c.scenario == "neverready":
                lines += ["fake: GET /healthz 503 (dependency unavailable)"]
        return lines

    def waiting_reason(self, ns: str, pod: str, container: str) -> str | None:
        with self.store.cond:
            obj = self.store.lookup(self.rt("Pod"), ns, pod)
            if obj is None:
                return None
            status = obj.get("status") or {}
            for s in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
                if s.get("name") == container:
                    waiting = (s.get("state") or {}).get("waiting") or {}
                    reason = waiting.get("reason")
                    return {"ErrImagePull": "trying and failing to pull image",
                            "ImagePullBackOff": "trying and failing to pull image",
                            "InvalidImageName": "image name is invalid"}.get(reason or "", reason)
            return None


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------

def _pod_ready(pod: dict[str, Any]) -> bool:
    cond = _find((pod.get("status") or {}).get("conditions"), "Ready")
    return bool(cond and cond.get("status") == "True")


def _find(conds: Any, type_: str) -> dict[str, Any] | None:
    for c in conds or []:
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return None


def _condition(old: dict[str, Any] | None, type_: str, value: bool | None, reason: str, message: str, ts: str,
               *, probe: bool = False) -> dict[str, Any]:
    status = "Unknown" if value is None else "True" if value else "False"
    if old is not None and old.get("status") == status and old.get("reason", "") == reason \
            and old.get("message", "") == message:
        return old
    cond: dict[str, Any] = {"type": type_, "status": status}
    if type_ in ("Available", "Progressing"):
        cond["lastUpdateTime"] = ts
    if probe:
        cond["lastProbeTime"] = None
    cond["lastTransitionTime"] = old["lastTransitionTime"] if old is not None and old.get("status") == status \
        and old.get("lastTransitionTime") else ts
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _resolve(value: Any, total: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        pct = float(value[:-1]) * total / 100
        return int(-(-pct // 1)) if round_up else int(pct)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _full_ref(image: str) -> str:
    ref = image
    first = ref.split("/", 1)[0]
    if "/" not in ref or ("." not in first and ":" not in first and first != "localhost"):
        ref = "docker.io/" + (ref if "/" in ref else "library/" + ref)
    last = ref.rsplit("/", 1)[-1]
    if "@" not in ref and ":" not in last:
        ref += ":latest"
    return ref


def _image_id(image: str) -> str:
    ref = _full_ref(image)
    if "@" in ref:
        return ref
    repo = ref.rsplit(":", 1)[0]
    return f"{repo}@sha256:{hashlib.sha256(ref.encode()).hexdigest()}"


__all__ = ["SCENARIOS", "Controller", "Timing", "selector_matches"]
