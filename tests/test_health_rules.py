"""Rollout health, table by table: each case names the kubectl `rollout status` rule it follows
(kubectl/pkg/polymorphichelpers/rollout_status.go: DeploymentStatusViewer, StatefulSetStatusViewer,
DaemonSetStatusViewer), or says where envship decides what kubectl refuses to (OnDelete)."""

from __future__ import annotations

from typing import Any

import pytest

from envship.core.health import FAILED, PENDING, READY, object_health


def statefulset(replicas: int = 3, ready: int = 3, updated: int = 3, generation: int = 2, observed: int = 2,
                current: str = "web-1", update: str = "web-1", strategy: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas}
    if strategy is not None:
        spec["updateStrategy"] = strategy
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "generation": generation},
            "spec": spec, "status": {"observedGeneration": observed, "readyReplicas": ready, "replicas": replicas,
                                     "updatedReplicas": updated, "currentRevision": current,
                                     "updateRevision": update}}


def daemonset(desired: int = 3, updated: int = 3, available: int = 3, generation: int = 2, observed: int = 2,
              strategy: str = "RollingUpdate") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "generation": generation},
            "spec": {"updateStrategy": {"type": strategy}},
            "status": {"observedGeneration": observed, "desiredNumberScheduled": desired,
                       "updatedNumberScheduled": updated, "numberAvailable": available}}


def deployment(replicas: int = 3, updated: int = 3, total: int = 3, available: int = 3, generation: int = 2,
               observed: int = 2, progressing: str = "NewReplicaSetAvailable") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "generation": generation},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total,
                       "availableReplicas": available,
                       "conditions": [{"type": "Progressing", "status": "True", "reason": progressing}]}}


PARTITION_2 = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
PARTITION_0 = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
ON_DELETE = {"type": "OnDelete"}

CASES = {
    # StatefulSetStatusViewer, in its order
    "statefulset: spec update not yet observed (observedGeneration 0)": (statefulset(observed=0), PENDING),
    "statefulset: spec update not yet observed (generation > observedGeneration)":
        (statefulset(generation=3), PENDING),
    "statefulset: waiting for N pods to be ready": (statefulset(ready=2), PENDING),
    "statefulset: partitioned roll out, updatedReplicas < replicas - partition":
        (statefulset(updated=0, update="web-2", strategy=PARTITION_2), PENDING),
    "statefulset: partitioned roll out complete (the partition keeps 2 old pods)":
        (statefulset(updated=1, update="web-2", strategy=PARTITION_2), READY),
    "statefulset: partition 0 (as the API server defaults it), not all updated":
        (statefulset(updated=2, update="web-2", strategy=PARTITION_0), PENDING),
    "statefulset: partition 0, all updated: roll out complete":
        (statefulset(updated=3, current="web-1", update="web-2", strategy=PARTITION_0), READY),
    "statefulset: no rollingUpdate, updateRevision != currentRevision": (statefulset(update="web-2"), PENDING),
    "statefulset: rolling update complete": (statefulset(), READY),
    "statefulset: OnDelete (kubectl refuses): ready pods are all there is to wait for":
        (statefulset(updated=0, update="web-2", strategy=ON_DELETE), READY),
    "statefulset: OnDelete, pods not ready": (statefulset(ready=1, strategy=ON_DELETE), PENDING),
    # DaemonSetStatusViewer
    "daemonset: spec update not yet observed": (daemonset(generation=3), PENDING),
    "daemonset: updatedNumberScheduled < desiredNumberScheduled": (daemonset(updated=2), PENDING),
    "daemonset: numberAvailable < desiredNumberScheduled": (daemonset(available=2), PENDING),
    "daemonset: successfully rolled out": (daemonset(), READY),
    "daemonset: OnDelete (kubectl refuses): all available is ready": (daemonset(updated=0, strategy="OnDelete"),
                                                                       READY),
    "daemonset: OnDelete, not all available": (daemonset(updated=0, available=1, strategy="OnDelete"), PENDING),
    # DeploymentStatusViewer
    "deployment: spec update not yet observed": (deployment(generation=3), PENDING),
    "deployment: exceeded its progress deadline": (deployment(progressing="ProgressDeadlineExceeded"), FAILED),
    "deployment: N out of M new replicas updated": (deployment(updated=2), PENDING),
    "deployment: old replicas pending termination": (deployment(total=4), PENDING),
    "deployment: updated replicas not all available": (deployment(available=2), PENDING),
    "deployment: successfully rolled out": (deployment(), READY),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_rollout_status_rules(case: str) -> None:
    obj, state = CASES[case]
    health = object_health(obj)
    assert health.state == state, f"{case}: {health.summary}"


def test_a_partitioned_statefulset_says_how_many_pods_it_keeps() -> None:
    health = object_health(statefulset(updated=1, update="web-2", strategy=PARTITION_2))
    assert health.summary == "web 3/3 ready (partitioned: 1 updated, 2 kept)"
