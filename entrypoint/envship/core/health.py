"""Rollout health (pure): objects as the API server reports them -> progressing, ready or failed.

The readiness rules are kubectl's `rollout status` rules; the fast-fail rules look at the workload's
current pods, so a crash loop or a pull failure is reported within seconds instead of after the
progress deadline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PENDING, READY, FAILED = "progressing", "ready", "failed"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
# Waiting reasons that never resolve by themselves; CrashLoopBackOff is judged by restart count.
FATAL_WAITING = ("ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError", "InvalidImageName",
                 "CreateContainerError", "ErrImageNeverPull", "RunContainerError")


@dataclass(frozen=True)
class Failure:
    reason: str
    message: str
    pod: str = ""
    container: str = ""


@dataclass(frozen=True)
class Health:
    state: str                     # PENDING, READY or FAILED
    summary: str                   # "web 2/3 ready", shown as live progress
    failure: Failure | None = None

    @property
    def done(self) -> bool:
        return self.state != PENDING


@dataclass(frozen=True)
class HealthRules:
    # CrashLoopBackOff with at least this many restarts fails the rollout. 1: at the first back-off, since
    # the kubelet waits 10 s before the second restart, 20 s before the third.
    crashloop_restarts: int = 1


NO_WAIT_ANNOTATION = "envship.dev/wait"


def needs_wait(obj: Mapping[str, Any], addresses: bool = True) -> bool:
    """Whether envship waits for this object after applying it: workloads always; Ingresses and Services
    of type LoadBalancer only when `addresses` (something, a route, needs the address they publish). The
    annotation `envship.dev/wait: "false"` opts an object out (a Job left to run on its own)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if str(annotations.get(NO_WAIT_ANNOTATION, "")).lower() == "false":
        return False
    return obj.get("kind") in WORKLOAD_KINDS or (addresses and publishes_address(obj))


GATEWAY_GROUP = "gateway.networking.k8s.io"


def is_gateway(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Gateway" and str(obj.get("apiVersion", "")).startswith(GATEWAY_GROUP + "/")


def publishes_address(obj: Mapping[str, Any]) -> bool:
    """An Ingress, a Gateway (Gateway API), or a Service of type LoadBalancer: an object whose controller
    publishes an address."""
    kind = obj.get("kind")
    return kind == "Ingress" or is_gateway(obj) or \
        (kind == "Service" and (obj.get("spec") or {}).get("type") == "LoadBalancer")


def address_of(obj: Mapping[str, Any]) -> str:
    """The address an Ingress, Gateway or LoadBalancer Service published (IPs and hostnames, comma-separated):
    status.loadBalancer.ingress, or a Gateway's status.addresses (types IPAddress and Hostname)."""
    status = obj.get("status") or {}
    if is_gateway(obj):
        values = [str(a.get("value")) for a in status.get("addresses") or []
                  if a.get("value") and a.get("type", "IPAddress") in ("IPAddress", "Hostname")]
        return ", ".join(values)
    ingress = ((status.get("loadBalancer") or {}).get("ingress")) or []
    return ", ".join(str(i.get("ip") or i.get("hostname")) for i in ingress if i.get("ip") or i.get("hostname"))


DEFAULT_INGRESS_CLASS = "ingressclass.kubernetes.io/is-default-class"


def ingress_class_problem(ingress: Mapping[str, Any], classes: Sequence[Mapping[str, Any]]) -> str:
    """Why no IngressClass can serve this Ingress ('' when one can): the class it names does not exist, or
    it names none and none is the default. The old annotation kubernetes.io/ingress.class is taken as is."""
    meta = ingress.get("metadata") or {}
    if (meta.get("annotations") or {}).get("kubernetes.io/ingress.class"):
        return ""
    names = {str((c.get("metadata") or {}).get("name")) for c in classes}
    wanted = (ingress.get("spec") or {}).get("ingressClassName")
    if wanted:
        return "" if wanted in names else f"it names the IngressClass '{wanted}', which the cluster does not have " \
                                          f"(it has: {', '.join(sorted(names)) or 'none'})"
    defaults = [c for c in classes if ((c.get("metadata") or {}).get("annotations") or {}).get(
        DEFAULT_INGRESS_CLASS) == "true"]
    if defaults:
        return ""
    return "it names no IngressClass and the cluster has no default one" + (
        f" (it has: {', '.join(sorted(names))})" if names else " (it has none: no ingress controller is installed)")


def object_health(obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]] = (),
                  rules: HealthRules = HealthRules(), addresses: bool = True) -> Health:
    """Health of one applied object, given the pods of its current revision (workloads only)."""
    name = obj.get("metadata", {}).get("name", "?")
    judge = {"Deployment": _deployment, "StatefulSet": _statefulset, "DaemonSet": _daemonset, "Job": _job,
             "Service": _load_balanced, "Ingress": _load_balanced,
             "Gateway": _load_balanced}.get(str(obj.get("kind")))
    if judge is None or not needs_wait(obj, addresses):
        return Health(READY, f"{name} applied")
    health = judge(obj, name)
    if health.state == PENDING:
        failure = first_pod_failure(pods, rules)
        if failure is not None:
            return Health(FAILED, health.summary, failure)
    return health


def _load_balanced(obj: Mapping[str, Any], name: str) -> Health:
    address = address_of(obj)
    if address:
        return Health(READY, f"{obj.get('kind')} {name} at {address}")
    return Health(PENDING, f"{obj.get('kind')} {name} waiting for an address")


def _observed(obj: Mapping[str, Any]) -> bool:
    status = obj.get("status") or {}
    return int(status.get("observedGeneration", 0)) >= int(obj.get("metadata", {}).get("generation", 0))


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def _deployment(obj: Mapping[str, Any], name: str) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    available = int(status.get("availableReplicas", 0))
    total = int(status.get("replicas", 0))
    summary = f"{name} {min(available, updated)}/{want} ready"
    if not _observed(obj):
        return Health(PENDING, f"{name} waiting for the controller")
    progressing = _condition(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health(FAILED, summary, Failure("ProgressDeadlineExceeded", str(progressing.get("message", ""))))
    if updated < want:
        return Health(PENDING, f"{summary} ({updated}/{want} updated)")
    if total > updated:
        return Health(PENDING, f"{summary} ({total - updated} old replicas terminating)")
    if available < updated:
        return Health(PENDING, summary)
    return Health(READY, summary)


def _statefulset(obj: Mapping[str, Any], name: str) -> Health:
    """kubectl's StatefulSetStatusViewer (kubectl rollout status), in its order; for OnDelete, which kubectl
    refuses to judge, ready once the controller has seen the spec and the pods are ready: the pods take the
    new template only when someone deletes them, so there is nothing more to wait for."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0))
    updated = int(status.get("updatedReplicas", 0))
    summary = f"{name} {ready}/{want} ready"
    if int(status.get("observedGeneration", 0)) == 0 or not _observed(obj):
        return Health(PENDING, f"{name} waiting for the controller")
    if ready < want:
        return Health(PENDING, summary)
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return Health(READY, f"{summary} (OnDelete: pods take the new template when deleted)")
    partition = (strategy.get("rollingUpdate") or {}).get("partition")
    if partition is not None:
        due = want - int(partition)
        if updated < due:
            return Health(PENDING, f"{summary} (partitioned: {updated}/{due} updated)")
        return Health(READY, f"{summary} (partitioned: {updated} updated, {int(partition)} kept)")
    if status.get("updateRevision") != status.get("currentRevision"):
        return Health(PENDING, f"{summary} ({updated}/{want} at revision {status.get('updateRevision')})")
    return Health(READY, summary)


def _daemonset(obj: Mapping[str, Any], name: str) -> Health:
    """kubectl's DaemonSetStatusViewer; for OnDelete (which kubectl refuses to judge) ready once every
    scheduled pod is available: pods take the new template only when deleted."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = int(status.get("desiredNumberScheduled", 0))
    updated = int(status.get("updatedNumberScheduled", 0))
    available = int(status.get("numberAvailable", 0))
    summary = f"{name} {available}/{want} ready"
    if not _observed(obj):
        return Health(PENDING, f"{name} waiting for the controller")
    if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
        if available < want:
            return Health(PENDING, summary)
        return Health(READY, f"{summary} (OnDelete: pods take the new template when deleted)")
    if updated < want:
        return Health(PENDING, f"{summary} ({updated}/{want} updated)")
    if available < want:
        return Health(PENDING, summary)
    return Health(READY, summary)


def _job(obj: Mapping[str, Any], name: str) -> Health:
    status = obj.get("status") or {}
    failed = _condition(obj, "Failed")
    if failed and failed.get("status") == "True":
        return Health(FAILED, f"{name} failed", Failure(str(failed.get("reason", "JobFailed")),
                                                         str(failed.get("message", "the job failed"))))
    complete = _condition(obj, "Complete")
    if complete and complete.get("status") == "True":
        return Health(READY, f"{name} complete")
    completions = int((obj.get("spec") or {}).get("completions", 1) or 1)
    return Health(PENDING, f"{name} {int(status.get('succeeded', 0))}/{completions} complete")


def first_pod_failure(pods: Iterable[Mapping[str, Any]], rules: HealthRules = HealthRules()) -> Failure | None:
    for pod in pods:
        failure = pod_failure(pod, rules)
        if failure is not None:
            return failure
    return None


def pod_failure(pod: Mapping[str, Any], rules: HealthRules = HealthRules()) -> Failure | None:
    """A reason this pod will not become ready by itself, or None."""
    name = pod.get("metadata", {}).get("name", "?")
    status = pod.get("status") or {}
    statuses = list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason", "")
        if reason in FATAL_WAITING:
            return Failure(reason, str(waiting.get("message", "")), name, str(cs.get("name", "")))
        if reason == "CrashLoopBackOff" and int(cs.get("restartCount", 0)) >= rules.crashloop_restarts:
            last = (cs.get("lastState") or {}).get("terminated") or {}
            detail = f"exit code {last.get('exitCode')}" if last else str(waiting.get("message", ""))
            message = f"restarted {cs.get('restartCount')} times, last {detail}".strip()
            return Failure(reason, message, name, str(cs.get("name", "")))
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" \
                and cond.get("reason") == "Unschedulable":
            return Failure("Unschedulable", str(cond.get("message", "")), name)
    return None
