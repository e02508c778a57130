"""The deploy engine against a less kind API server: broken watch streams, lines that are not events,
410 Gone, throttling and server errors, a lost lock, lock expiry judged by this process's clock,
errors while waiting, and rollout rules kubectl has for StatefulSets and DaemonSets.

Faults come from the fake's injected failures (`inject_failure`) and its seeded fault mode
(`set_faults`); a run of many seeds lives in bench/faults.py, a few seeds run here.
"""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import parse_github_output
from fakes.cloudflare_api import FakeCloudflare
from fakes.cloudflare_plugin import fake_cloudflare  # noqa: F401 - the fixture
from fakes.kube_apiserver import FakeKube
from fakes.pytest_plugin import fake_kube  # noqa: F401 - the fixture
from test_deploy import DIGEST_A, DIGEST_B, IMAGE_A, IMAGE_B, NS, REPO_ROOT, Cluster, container_image
from test_deploy import cluster as cluster

from envship.adapters.kube import Connection, Kube, KubeError
from envship.adapters.kube.client import RetryPolicy


def lines_with(err: str, text: str) -> list[str]:
    return [line for line in err.splitlines() if text in line]


# -- watches ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, note", [
    ("cut", ""),
    ("odd-line", "sent a line that is not a watch event"),
    ("410", "the watch's resourceVersion expired (410 Gone): listed again"),
])
def test_disturbed_watches_do_not_fail_a_healthy_rollout(cluster: Cluster, kind: str, note: str) -> None:
    assert cluster.deploy()[0] == 0
    faults = cluster.kube.set_faults(7, rate=0.0, watch_rate=1.0, kinds=(kind,))
    code, _, err = cluster.deploy(image=IMAGE_B)
    assert code == 0, err
    assert faults is not None and faults.counts[kind] > 0   # the fault did happen
    assert "rolling back" not in err and container_image(cluster) == IMAGE_B
    assert "web 2/2 ready" in err
    if note:
        assert len(lines_with(err, note)) >= 1


def test_a_watch_cut_mid_event_resumes_where_it_was(cluster: Cluster) -> None:
    """A stream cut after half an event (no chunk terminator) is re-opened from the last resourceVersion,
    and the events after it still arrive: the rollout is judged healthy at once, not at the timeout."""
    assert cluster.deploy()[0] == 0
    cluster.kube.set_faults(3, rate=0.0, watch_rate=1.0, kinds=("cut",))
    cluster.kube.set_scenario("slow", image=DIGEST_B, ready_after=0.5)
    started = time.monotonic()
    code, _, err = cluster.deploy("--timeout", "60s", image=IMAGE_B)
    assert code == 0, err
    watches = [r for r in cluster.kube.requests if "watch=true" in r.query]
    assert len(watches) > 3   # re-opened after the cuts
    assert time.monotonic() - started < 30   # far from the 60 s timeout it would have waited out


# -- retries ----------------------------------------------------------------------------------------
def test_a_429_on_a_create_is_retried_after_retry_after(cluster: Cluster) -> None:
    cluster.kube.inject_failure(r"/leases$", status=429, count=2, retry_after=1, method="POST")
    code, _, err = cluster.deploy()
    assert code == 0, err
    posts = [r for r in cluster.kube.requests if r.method == "POST" and r.path.endswith("/leases")]
    assert [r.status for r in posts][:3] == [429, 429, 201]
    assert "the API server throttled this run: waited 2.0 s as it asked (Retry-After)" in err


def test_a_5xx_on_a_get_is_retried(cluster: Cluster) -> None:
    cluster.kube.inject_failure(r"/namespaces/hello-staging$", status=503, count=2, retry_after=None, method="GET")
    code, _, err = cluster.deploy()
    assert code == 0, err
    gets = [r.status for r in cluster.kube.requests
            if r.method == "GET" and r.path.endswith("/namespaces/hello-staging")]
    assert gets[:3] == [503, 503, 404]


def test_a_5xx_on_a_create_is_not_retried(cluster: Cluster) -> None:
    """A create that failed with a 500 may have been done: repeating it is not envship's call."""
    cluster.kube.inject_failure(r"/namespaces$", status=500, count=1, method="POST")
    code, _, err = cluster.deploy()
    assert code == 1
    assert "POST /api/v1/namespaces failed: 500 InternalError" in err
    assert len([r for r in cluster.kube.requests if r.method == "POST" and r.path == "/api/v1/namespaces"]) == 1


def test_retries_are_bounded_in_time(fake_kube: FakeKube) -> None:  # noqa: F811 - the fixture
    fake_kube.inject_failure(r"/api/v1/namespaces$", status=429, count=1000, retry_after=1, method="GET")
    kube = Kube(Connection(fake_kube.url, "the fake"), retry=RetryPolicy(max_wait=2.5))
    with pytest.raises(KubeError) as caught:
        kube.request("GET", "/api/v1/namespaces")
    assert caught.value.status == 429 and kube.throttled_seconds == 2.0 and kube.retries == 2


def test_a_dropped_connection_is_retried_only_when_repeating_is_safe(fake_kube: FakeKube) -> None:  # noqa: F811
    fake_kube.set_faults(11, rate=1.0, kinds=("reset",))
    kube = Kube(Connection(fake_kube.url, "the fake"), retry=RetryPolicy(attempts=3, max_wait=1.0))
    with pytest.raises(KubeError) as caught:
        kube.request("GET", "/api/v1/namespaces")       # idempotent: tried three times
    assert caught.value.reason == "Unreachable" and kube.requests_made == 3
    fake_kube.set_faults(None)
    fake_kube.set_faults(11, rate=1.0, kinds=("reset",))
    made = kube.requests_made
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
    # a POST gets no "reset" from the fault mode (no client could retry it safely), so it goes through
    assert kube.request("POST", "/api/v1/namespaces", body=ns) is not None and kube.requests_made == made + 1


# -- errors while waiting go down the failure path ---------------------------------------------------
def test_a_403_while_waiting_rolls_back(cluster: Cluster) -> None:
    assert cluster.deploy()[0] == 0
    cluster.kube.inject_failure(rf"/namespaces/{NS}/pods$", status=403, count=1, method="GET",
                                message='pods is forbidden: User "deployer" cannot list resource "pods"')
    root = cluster.project.root
    code, _, err = cluster.deploy(image=IMAGE_B, extra_environ={**cluster.in_actions,
                                                                "GITHUB_STEP_SUMMARY": str(root / "s.md")})
    assert code == 1
    assert "the rollout could not be watched" in err and "cannot list resource" in err
    assert "get, list and watch pods" in err                                    # the hint
    assert "rolled back to revision 1: healthy" in err and container_image(cluster) == IMAGE_A
    assert "envship deploy: staging failed" in (root / "s.md").read_text()


# -- the lock ---------------------------------------------------------------------------------------
def lease(cluster: Cluster) -> dict[str, Any] | None:
    return cluster.kube.get("leases", NS, "envship-lock-hello-staging")


def test_a_lost_lock_stops_the_deploy_before_prune_and_record(cluster: Cluster) -> None:
    assert cluster.deploy("--set", "LOG_LEVEL=one")[0] == 0
    [old_configmap] = cluster.configmaps()
    cluster.kube.set_scenario("slow", image=DIGEST_B, ready_after=4.0)
    result: dict[str, Any] = {}

    def deploy() -> None:
        result["run"] = cluster.deploy("--set", "LOG_LEVEL=two", image=IMAGE_B)

    worker = threading.Thread(target=deploy)
    worker.start()
    cluster.kube.wait_for(lambda: (lease(cluster) or {}).get("spec", {}).get("holderIdentity"), timeout=15)
    cluster.kube.wait_for(lambda: cluster.get("deployments", "web") and container_image(cluster) == IMAGE_B,
                          timeout=15)
    taken = lease(cluster)
    assert taken is not None
    taken["spec"]["holderIdentity"] = "https://github.com/acme/hello/actions/runs/99#deploy_feedbeef"
    cluster.kube.apply(taken, manager="another-deploy")
    worker.join(timeout=60)
    code, _, err = result["run"]
    assert code == 1
    assert "the deploy lock was lost (the lease was taken by https://github.com/acme/hello/actions/runs/99" in err
    assert "rolling back" not in err
    assert old_configmap in cluster.configmaps()                      # nothing pruned
    assert cluster.kube.get("secrets", NS, "envship.hello.staging.v2") is None   # nothing recorded


@pytest.mark.parametrize("renewed", ["2000-01-01T00:00:00.000000Z", "2999-01-01T00:00:00.000000Z"],
                         ids=["holder-clock-behind", "holder-clock-ahead"])
def test_lock_expiry_is_judged_by_this_process(cluster: Cluster, renewed: str) -> None:
    """A dead holder's lease is taken once this process has seen it unchanged for its duration, whatever
    time the holder wrote: not at once when its clock was behind, not never when it was ahead."""
    cluster.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    cluster.kube.apply({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": "envship-lock-hello-staging", "namespace": NS},
                        "spec": {"holderIdentity": "https://github.com/acme/hello/actions/runs/7#deploy_0badcafe",
                                 "leaseDurationSeconds": 2, "acquireTime": renewed, "renewTime": renewed}})
    code, _, err = cluster.deploy("--lock-timeout", "20s")
    assert code == 0, err
    assert "waiting for the deploy lock: held by https://github.com/acme/hello/actions/runs/7#deploy since" in err


def envship_process(cluster: Cluster, *args: str, environ: dict[str, str]) -> subprocess.Popen[str]:
    import os

    env = {**os.environ, **cluster.environ, **environ, "PYTHONPATH": str(REPO_ROOT / "entrypoint")}
    return subprocess.Popen([sys.executable, "-m", "envship", "deploy", "--env", "staging", "--timeout", "30s",
                             "--skip-image-check", *args], cwd=cluster.project.root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_legs_of_one_job_do_not_share_the_lock(cluster: Cluster) -> None:
    """Matrix legs run with the same run URL and job name: each process is its own holder."""
    run = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/hello", "GITHUB_RUN_ID": "5",
           "GITHUB_JOB": "deploy"}
    cluster.kube.set_scenario("slow", image=DIGEST_A, ready_after=1.0)
    first = envship_process(cluster, "--image", IMAGE_A, environ=run)
    cluster.kube.wait_for(lambda: lease(cluster), timeout=15)
    second = envship_process(cluster, "--image", IMAGE_B, environ=run)
    _, err1 = first.communicate(timeout=60)
    _, err2 = second.communicate(timeout=60)
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    assert "waiting for the deploy lock: held by https://github.com/acme/hello/actions/runs/5#deploy" in err2


def test_failed_renewals_are_retried(cluster: Cluster) -> None:
    """Renewals that fail now and then (a 503, a 429) are retried: the lock is kept."""
    cluster.kube.set_scenario("slow", image=DIGEST_A, ready_after=2.0)
    cluster.kube.inject_failure(r"/leases/envship-lock-hello-staging$", status=503, count=2, retry_after=None,
                                method="PUT")
    code, _, err = cluster.deploy(extra_environ={"ENVSHIP_LEASE_SECONDS": "3"})
    assert code == 0, err
    puts = [r.status for r in cluster.kube.requests if r.method == "PUT" and "leases" in r.path]
    assert 503 in puts and 200 in puts[puts.index(503):]   # failed, then renewed
    assert lease(cluster) is None   # released at the end


# -- StatefulSets and DaemonSets as kubectl judges them ---------------------------------------------
STATEFULSET = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 3
  serviceName: db
  podManagementPolicy: Parallel
  updateStrategy: STRATEGY
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: ghcr.io/acme/hello:latest}]
"""


@pytest.mark.parametrize("strategy, updated_pods", [
    ("{type: RollingUpdate, rollingUpdate: {partition: 2}}", 1),   # pods 0 and 1 stay on the old revision
    ("{type: OnDelete}", 0),                                        # no pod changes until someone deletes it
])
def test_statefulsets_kubectl_has_rules_for_deploy(cluster: Cluster, strategy: str, updated_pods: int) -> None:
    cluster.project.manifest("deployment.yaml", STATEFULSET.replace("STRATEGY", strategy))
    assert cluster.deploy()[0] == 0
    code, _, err = cluster.deploy("--timeout", "30s", image=IMAGE_B)
    assert code == 0, err
    pods = cluster.kube.pods(NS, "app=db")
    assert sum(p["spec"]["containers"][0]["image"] == IMAGE_B for p in pods) == updated_pods
    assert "db 3/3 ready (" in err


def test_the_seeded_fault_mode_leaves_every_outcome_as_it_was(tmp_path: Path) -> None:
    """A few seeds of bench/faults.py: every deploy ends as it would without faults."""
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    import faults

    runs = faults.run_seeds(range(3), tmp_path, out=io.StringIO())
    assert runs and all(r.same for r in runs), [r for r in runs if not r.same]


# -- Ingress addresses: waited for only when a route needs them ---------------------------------------
INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  CLASS
  rules:
    - host: staging.example.com
      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"""
ROUTES = "routes:\n  cloudflare:\n    zone: example.com\n    mode: dns\n    target: ingress\n"


def with_ingress(cluster: Cluster, ingress_class: str | None, routes: bool) -> None:
    from test_deploy import CONFIG

    cluster.project.manifest("ingress.yaml", INGRESS.replace(
        "CLASS", f"ingressClassName: {ingress_class}" if ingress_class else "defaultBackend: {service: {name: web, "
                                                                              "port: {number: 80}}}"))
    cluster.project.config(CONFIG + (ROUTES if routes else ""))


def test_without_a_route_an_ingress_address_is_reported_not_waited_for(cluster: Cluster) -> None:
    with_ingress(cluster, "nginx", routes=False)   # a class this cluster does not have: no address, ever
    code, _, err = cluster.deploy("--timeout", "60s")
    assert code == 0, err
    assert "Ingress/web has no address yet (not waited for: no route needs it)" in err


def cloudflare_environ(cluster: Cluster, cf: FakeCloudflare) -> None:
    cf.add_zone("example.com")
    cluster.environ.update(CLOUDFLARE_API_URL=cf.url, CLOUDFLARE_API_TOKEN=cf.token)


def test_a_route_waits_for_the_ingress_address(cluster: Cluster,
                                               fake_cloudflare: FakeCloudflare) -> None:  # noqa: F811
    cloudflare_environ(cluster, fake_cloudflare)
    with_ingress(cluster, None, routes=True)       # the cluster's default class serves it
    code, _, err = cluster.deploy()
    assert code == 0, err
    assert "Ingress web at 203.0.113.10" in err
    [record] = fake_cloudflare.records("example.com")
    assert (record["type"], record["name"], record["content"]) == ("A", "staging.example.com", "203.0.113.10")


def test_a_route_to_an_ingress_no_class_can_serve_fails_at_once(cluster: Cluster,
                                                                 fake_cloudflare: FakeCloudflare) -> None:  # noqa: F811
    cloudflare_environ(cluster, fake_cloudflare)
    with_ingress(cluster, "nginx", routes=True)
    code, _, err = cluster.deploy("--timeout", "60s")
    assert code == 1
    assert "deploy/ingress.yaml:1:1: Ingress/web can get no address: it names the IngressClass 'nginx', which the " \
           "cluster does not have (it has: fake)" in err
    assert "install an ingress controller" in err
    assert cluster.get("deployments", "web") is None   # refused before anything was applied
    cluster.kube.delete("ingressclasses", None, "fake")
    with_ingress(cluster, None, routes=True)
    code, _, err = cluster.deploy()
    assert code == 1 and "it names no IngressClass and the cluster has no default one (it has none" in err


# -- discovery ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("aggregated", [True, False], ids=["aggregated", "per-group-version"])
def test_discovery(cluster: Cluster, aggregated: bool) -> None:
    """Aggregated discovery (kubectl 1.26+'s): the whole cluster in two requests; servers without it are
    asked per group/version."""
    cluster.kube.aggregated_discovery = aggregated
    code, _, err = cluster.deploy()
    assert code == 0, err
    discovery = [r.path for r in cluster.kube.requests if r.path in ("/api", "/apis") or
                 (r.path.startswith(("/api/v1", "/apis/")) and r.path.count("/") <= 3 and r.method == "GET"
                 and "namespaces" not in r.path)]
    if aggregated:
        assert sorted(discovery) == ["/api", "/apis"]
    else:
        assert {"/api/v1", "/apis/apps/v1", "/apis/coordination.k8s.io/v1"} <= set(discovery)


# -- redeploys that change nothing, and objects that did not change ----------------------------------
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def test_a_redeploy_that_changes_nothing_writes_nothing(cluster: Cluster) -> None:
    run = {"GITHUB_REPOSITORY": "acme/hello", **cluster.in_actions}
    assert cluster.deploy(extra_environ=run)[0] == 0
    cluster.kube.requests.clear()
    later = {**run, "GITHUB_RUN_ID": "77", "GITHUB_SERVER_URL": "https://github.com", "SOURCE_DATE_EPOCH": "1700009999"}
    code, _, err = cluster.deploy(extra_environ=later)   # another run: new run URL, new time, same release
    assert code == 0, err
    assert "nothing to change: revision 1 runs" in err and "nothing was written" in err
    requests = list(cluster.kube.requests)
    assert [r for r in requests if r.method in WRITES] == []
    assert len(requests) <= 12, [f"{r.method} {r.path}" for r in requests]
    outputs = parse_github_output((cluster.project.root / "out.txt").read_text())
    assert outputs["revision"] == "1" and outputs["changes"] == "0"   # the last values written win


def test_drift_in_a_field_envship_sets_is_applied_again(cluster: Cluster) -> None:
    run = {"GITHUB_REPOSITORY": "acme/hello"}
    assert cluster.deploy(extra_environ=run)[0] == 0
    cluster.kube.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
                        "spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, manager="someone-by-hand")
    code, _, err = cluster.deploy(extra_environ=run)
    assert code == 0, err
    assert "Service/web configured" in err and "nothing to change" not in err
    service = cluster.get("services", "web")
    assert service is not None and service["spec"]["ports"][0]["targetPort"] == 8080   # put back
    assert "Deployment/web unchanged" in err   # the rest was not applied again
    patches = [r.path for r in cluster.kube.requests if r.method == "PATCH"]
    assert not any(p.endswith("/deployments/web") for p in patches[-3:])


def test_a_field_dropped_from_the_manifest_is_applied(cluster: Cluster) -> None:
    """The live object still has the field, but the last release set it and this one does not: applying
    removes it (server-side apply drops the fields a manager no longer sets)."""
    from test_deploy import DEPLOYMENT

    run = {"GITHUB_REPOSITORY": "acme/hello"}
    cluster.project.manifest("deployment.yaml", DEPLOYMENT.replace(
        "          ports: [{containerPort: 8080}]\n",
        "          ports: [{containerPort: 8080}]\n          env: [{name: EXTRA, value: 'on'}]\n"))
    assert cluster.deploy(extra_environ=run)[0] == 0
    cluster.project.manifest("deployment.yaml", DEPLOYMENT)
    code, _, err = cluster.deploy(extra_environ=run)
    assert code == 0 and "Deployment/web configured" in err, err
    deployment = cluster.get("deployments", "web")
    assert deployment is not None and "env" not in deployment["spec"]["template"]["spec"]["containers"][0]


def test_a_redeploy_while_another_holds_the_lock_waits_for_it(cluster: Cluster) -> None:
    run = {"GITHUB_REPOSITORY": "acme/hello"}
    assert cluster.deploy(extra_environ=run)[0] == 0
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    cluster.kube.apply({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": "envship-lock-hello-staging", "namespace": NS},
                        "spec": {"holderIdentity": "https://github.com/acme/hello/actions/runs/8#deploy_1",
                                 "leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now}})
    code, _, err = cluster.deploy(extra_environ=run)
    assert code == 0, err
    assert "waiting for the deploy lock" in err and "nothing to change" not in err
