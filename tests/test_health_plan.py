"""Pure deploy logic: rollout health verdicts, diffs, release records (ownership: test_ownership.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from envship.core import health, plan
from envship.core.health import FAILED, PENDING, READY, HealthRules


def deployment(generation: int = 2, observed: int = 2, replicas: int = 3, updated: int = 3, available: int = 3,
               total: int = 3, progressing: str = "NewReplicaSetAvailable") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "generation": generation, "uid": "d-1"},
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
                   "availableReplicas": available,
                   "conditions": [{"type": "Progressing", "status": "True", "reason": progressing,
                                   "message": 'ReplicaSet "web-5d8f" has timed out progressing.'}]},
    }


def pod(waiting: str = "", restarts: int = 0, unschedulable: bool = False, init: bool = False) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Pending" if waiting or unschedulable else "Running"}
    container = {"name": "app", "restartCount": restarts,
                 "state": {"waiting": {"reason": waiting, "message": f"{waiting} detail"}} if waiting
                 else {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1}} if restarts else {}}
    status["initContainerStatuses" if init else "containerStatuses"] = [container]
    if unschedulable:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                 "message": "0/3 nodes are available: 3 Insufficient cpu."}]
    return {"metadata": {"name": "web-5d8f-abcde"}, "status": status}


@pytest.mark.parametrize("obj, state, summary", [
    (deployment(), READY, "web 3/3 ready"),
    (deployment(observed=1), PENDING, "web waiting for the controller"),
    (deployment(updated=1, available=1), PENDING, "web 1/3 ready (1/3 updated)"),
    (deployment(total=4), PENDING, "web 3/3 ready (1 old replicas terminating)"),
    (deployment(available=2), PENDING, "web 2/3 ready"),
    (deployment(available=1, progressing="ProgressDeadlineExceeded"), FAILED, "web 1/3 ready"),
], ids=["ready", "not-observed", "updating", "old-replicas", "not-available", "deadline"])
def test_deployment_health_follows_kubectl_rollout_status(obj: dict[str, Any], state: str, summary: str) -> None:
    result = health.object_health(obj)
    assert (result.state, result.summary) == (state, summary)


@pytest.mark.parametrize("the_pod, reason", [
    (pod("ImagePullBackOff"), "ImagePullBackOff"),
    (pod("ErrImagePull"), "ErrImagePull"),
    (pod("CreateContainerConfigError"), "CreateContainerConfigError"),
    (pod("InvalidImageName"), "InvalidImageName"),
    (pod("CrashLoopBackOff", restarts=2), "CrashLoopBackOff"),
    (pod("CrashLoopBackOff", restarts=3, init=True), "CrashLoopBackOff"),
    (pod(unschedulable=True), "Unschedulable"),
])
def test_pod_problems_fail_a_pending_rollout_fast(the_pod: dict[str, Any], reason: str) -> None:
    result = health.object_health(deployment(available=0, updated=3), [the_pod])
    assert result.state == FAILED
    assert result.failure is not None and result.failure.reason == reason
    assert result.failure.pod == "web-5d8f-abcde"


def test_crash_loop_below_the_restart_threshold_is_still_progressing() -> None:
    pending = deployment(available=0)
    assert health.object_health(pending, [pod("CrashLoopBackOff", restarts=0)]).state == PENDING
    assert health.object_health(pending, [pod("CrashLoopBackOff", restarts=1)]).state == FAILED
    lenient = HealthRules(crashloop_restarts=5)
    assert health.object_health(pending, [pod("CrashLoopBackOff", restarts=4)], lenient).state == PENDING
    assert health.object_health(pending, [pod("CrashLoopBackOff", restarts=5)], lenient).state == FAILED


def test_a_ready_workload_is_not_failed_by_a_stray_pod() -> None:
    assert health.object_health(deployment(), [pod("CrashLoopBackOff", restarts=9)]).state == READY


def test_statefulset_daemonset_job_and_load_balancers() -> None:
    sts = {"kind": "StatefulSet", "metadata": {"name": "db", "generation": 1},
           "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 2,
                                               "currentRevision": "db-1", "updateRevision": "db-2"}}
    assert health.object_health(sts).state == PENDING
    sts["status"]["currentRevision"] = "db-2"
    assert health.object_health(sts).state == READY
    ds = {"kind": "DaemonSet", "metadata": {"name": "agent", "generation": 1},
          "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3,
                     "numberAvailable": 2}}
    assert health.object_health(ds).summary == "agent 2/3 ready"
    job = {"kind": "Job", "metadata": {"name": "migrate"}, "spec": {},
           "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                      "message": "Job has reached the specified backoff limit"}]}}
    verdict = health.object_health(job)
    assert verdict.state == FAILED and verdict.failure and verdict.failure.reason == "BackoffLimitExceeded"
    lb = {"kind": "Service", "metadata": {"name": "web"}, "spec": {"type": "LoadBalancer"}, "status": {}}
    assert health.object_health(lb).state == PENDING
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}
    assert health.object_health(lb).summary == "Service web at 203.0.113.10"
    assert not health.needs_wait({"kind": "Service", "spec": {"type": "ClusterIP"}})
    assert health.needs_wait({"kind": "Ingress", "metadata": {"name": "web"}})
    assert not health.needs_wait({"kind": "Ingress", "metadata": {"annotations": {"envship.dev/wait": "false"}}})
    assert not health.needs_wait({"kind": "ConfigMap"})


LABELS = {"app.kubernetes.io/managed-by": "envship", "app.kubernetes.io/instance": "hello",
          "envship.dev/environment": "staging"}


def cm(name: str, labels: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "hello-staging", "labels": dict(labels or {})}, **extra}


def test_diff_hides_bookkeeping_release_annotations_and_secret_values() -> None:
    live = cm("x", LABELS, data={"A": "1"})
    live["metadata"].update(resourceVersion="41", uid="u", managedFields=[{"manager": "envship"}],
                            annotations={"envship.dev/run-url": "https://github.com/a/b/actions/runs/1"})
    same = cm("x", LABELS, data={"A": "1"})
    same["metadata"]["annotations"] = {"envship.dev/run-url": "https://github.com/a/b/actions/runs/2"}
    assert plan.diff(live, same, "ConfigMap/x") == ""
    assert not plan.changed(live, same)
    changed = cm("x", LABELS, data={"A": "2"})
    text = plan.diff(live, changed, "ConfigMap/x")
    assert "-  A: '1'" in text and "+  A: '2'" in text
    secret_live = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"K": "b2xk"}}
    secret_new = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"K": "bmV3"}}
    assert plan.diff(secret_live, secret_new, "Secret/s") == ""   # values never shown...
    assert plan.changed(secret_live, secret_new)                   # ...but the change is still known


def test_release_record_round_trips_without_secret_values() -> None:
    from envship.core.ownership import ApplySet

    applyset = ApplySet("hello", "staging", "hello-staging")
    salt = plan.record_salt(applyset)
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "hello-secrets-1", "namespace": "hello-staging"},
              "data": {"TOKEN": "c2VjcmV0LXZhbHVl"}}
    record = plan.DeployRecord(3, "ghcr.io/acme/hello@sha256:" + "a" * 64, "sha256:" + "a" * 64, "abc",
                                "https://github.com/acme/hello/actions/runs/1", "2026-11-26T08:00:00Z",
                                [cm("hello-env-1", LABELS, data={"A": "1"}), plan.without_secret_values(secret, salt)],
                                applyset.id)
    stored = plan.release_record_object(record, applyset)
    assert stored["metadata"]["name"] == "envship.hello.staging.v3"
    assert stored["metadata"]["labels"][plan.RECORD_LABEL] == "release"
    decoded = plan.decode_release_record(stored)
    assert decoded == record and not decoded.holds_secret_values()
    kept = decoded.objects[1]
    assert "data" not in kept and plan.values_left_out(kept)
    assert kept["metadata"]["annotations"][plan.VALUES_HASH] == plan.values_fingerprint(secret, salt)
    assert "c2VjcmV0LXZhbHVl" not in json.dumps(stored) and "secret-value" not in json.dumps(decoded.objects)
    string_data = {**secret, "stringData": {"TOKEN": "secret-value"}}
    del string_data["data"]
    # stringData counts as the server stores it: base64 under data
    assert plan.values_fingerprint(string_data, salt) == plan.values_fingerprint(secret, salt)
