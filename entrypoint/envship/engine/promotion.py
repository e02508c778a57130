"""Read what runs in a promotion's source environment: its last recorded release and the live workloads,
ReplicaSets and pods to check it against (core/promotion.py judges)."""

from __future__ import annotations

from ..adapters.kube import Kube, KubeError
from ..core import plan
from ..core.ownership import ApplySet
from ..core.promotion import SourceState
from ..errors import OperationError


def read_source(kube: Kube, app: str, environment: str, namespace: str) -> SourceState | None:
    """The source's state, or None when it has no release recorded. Reads: the records, one GET per
    workload of the release, one list of ReplicaSets and one of pods."""
    applyset = ApplySet(app, environment, namespace)
    secrets = kube.resource("v1", "Secret")
    items, _ = kube.list(secrets, namespace, plan.record_selector(applyset))
    if not items:
        return None
    latest = max(items, key=lambda i: int((i["metadata"].get("labels") or {}).get("envship.dev/revision", "0")))
    try:
        record = plan.decode_release_record(latest)
    except (ValueError, TypeError, KeyError) as e:
        raise OperationError(f"the release record {latest['metadata']['name']} in {namespace} is unreadable "
                             f"({type(e).__name__})", f"deploy '{environment}' again, then promote") from e
    state = SourceState(record)
    for obj in record.objects:
        kind, name = str(obj.get("kind")), str((obj.get("metadata") or {}).get("name"))
        if kind in ("Deployment", "StatefulSet", "DaemonSet"):
            try:
                state.live[f"{kind}/{name}"] = kube.get(kube.resource(str(obj["apiVersion"]), kind), namespace, name)
            except KubeError as e:
                if e.status != 404:   # a kind the cluster no longer serves: the workload is gone
                    raise
    state.replicasets, _ = kube.list(kube.resource("apps/v1", "ReplicaSet"), namespace)
    state.pods, _ = kube.list(kube.resource("v1", "Pod"), namespace)
    return state



