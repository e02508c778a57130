"""Workloads and their pods (pure): which pods belong to a workload's current revision, by the rules
Kubernetes' own controllers use (ownerReferences, the Deployment controller's template match, the
StatefulSet's update revision)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def controlled_by(obj: Mapping[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


def template_matches(rs: Mapping[str, Any], deployment: Mapping[str, Any]) -> bool:
    """The deployment controller's EqualIgnoreHash: the same pod template but for pod-template-hash."""
    def strip(template: Any) -> Any:
        template = dict(template or {})
        meta = dict(template.get("metadata") or {})
        labels = dict(meta.get("labels") or {})
        labels.pop("pod-template-hash", None)
        meta["labels"] = labels
        template["metadata"] = meta
        return template

    return bool(strip((rs.get("spec") or {}).get("template")) == strip((deployment.get("spec") or {}).get("template")))


def current_pods(live: Mapping[str, Any], pods: Sequence[dict[str, Any]],
                 replicasets: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The pods of `live`'s current revision: a Deployment's through its ReplicaSets of the current
    template, a StatefulSet's at its update revision, a DaemonSet's and a Job's by owner."""
    uid = str((live.get("metadata") or {}).get("uid", ""))
    kind = live.get("kind")
    if kind == "Deployment":
        owners = {str(rs["metadata"].get("uid")) for rs in replicasets
                  if controlled_by(rs, uid) and template_matches(rs, live)}
        return [p for p in pods if any(controlled_by(p, o) for o in owners)]
    if kind == "StatefulSet":
        revision = (live.get("status") or {}).get("updateRevision")
        return [p for p in pods if controlled_by(p, uid) and (
            not revision or (p["metadata"].get("labels") or {}).get("controller-revision-hash") == revision)]
    if kind in ("DaemonSet", "Job"):
        return [p for p in pods if controlled_by(p, uid)]
    return []
