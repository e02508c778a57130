"""envship deploy and plan end to end against the fake Kubernetes API server (tests/fakes/).

Each test writes a project, points a kubeconfig at the fake, runs envship in-process (or as a
process where killing or concurrency matters) and checks what a user would see: the exit code,
the messages, and the objects the cluster ends up with.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, parse_github_output
from fakes.kube_apiserver import FakeKube
from fakes.pytest_plugin import fake_kube  # noqa: F401 - the fixture
from registry_fixture import Registry

from envship.cli import main

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
IMAGE_A = f"ghcr.io/acme/hello@{DIGEST_A}"
IMAGE_B = f"ghcr.io/acme/hello@{DIGEST_B}"
NS = "hello-staging"
REPO_ROOT = Path(__file__).resolve().parents[1]

CONFIG = """\
app: hello
image: ghcr.io/acme/hello
manifests: deploy
env:
  LOG_LEVEL: info
environments:
  staging:
    context: fake
    namespace: hello-staging
    host: staging.example.com
    create-namespace: true
  production:
    context: fake
    namespace: hello
    protected: true
    create-namespace: true
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  progressDeadlineSeconds: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/hello:latest
          ports: [{containerPort: 8080}]
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


class Cluster:
    """The project, the fake and a kubeconfig for it; runs envship commands."""

    def __init__(self, project: Project, kube: FakeKube) -> None:
        self.project = project
        self.kube = kube
        self.kubeconfig = kube.kubeconfig(project.root / "kubeconfig")
        project.config(CONFIG)
        project.manifest("deployment.yaml", DEPLOYMENT)
        project.manifest("service.yaml", SERVICE)
        self.environ = {"KUBECONFIG": str(self.kubeconfig), "SOURCE_DATE_EPOCH": "1700000000",
                        "ENVSHIP_LEASE_SECONDS": "2", "GITHUB_OUTPUT": str(project.root / "out.txt")}
        self.in_actions = {"GITHUB_ACTIONS": "true"}  # outputs are written only in GitHub Actions

    def run(self, command: str, *args: str, env: str = "staging", image: str = IMAGE_A,
            extra_environ: dict[str, str] | None = None, check_image: bool = False) -> tuple[int, str, str]:
        """Images of ghcr.io/acme/hello exist nowhere: the registry check is skipped unless a test
        uses the local registry (check_image=True)."""
        out, err = io.StringIO(), io.StringIO()
        argv = [command, "--env", env, "--image", image, *args, *([] if check_image else ["--skip-image-check"])]
        code = main(argv, environ={**self.environ, **(extra_environ or {})}, out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    def deploy(self, *args: str, **kw: Any) -> tuple[int, str, str]:
        return self.run("deploy", "--timeout", "20s", *args, **kw)

    def get(self, resource: str, name: str, namespace: str = NS) -> dict[str, Any] | None:
        return self.kube.get(resource, namespace, name)

    def configmaps(self, namespace: str = NS) -> list[str]:
        return sorted(o["metadata"]["name"] for o in self.kube.list("configmaps", namespace)
                      if o["metadata"]["name"].startswith("hello-env-"))


@pytest.fixture
def cluster(project: Project, fake_kube: FakeKube) -> Cluster:  # noqa: F811 - the fixture
    return Cluster(project, fake_kube)


def container_image(cluster: Cluster) -> str:
    deployment = cluster.get("deployments", "web")
    assert deployment is not None
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def test_first_deploy_creates_everything_and_waits_until_ready(cluster: Cluster) -> None:
    code, _, err = cluster.deploy(extra_environ=cluster.in_actions)
    assert code == 0, err
    assert "web 2/2 ready" in err
    assert "revision 1: 4 created" in err            # Namespace, ConfigMap, Service, Deployment
    deployment = cluster.get("deployments", "web")
    assert deployment is not None and deployment["status"]["readyReplicas"] == 2
    assert container_image(cluster) == IMAGE_A
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "envship" and labels["envship.dev/environment"] == "staging"
    outputs = parse_github_output((cluster.project.root / "out.txt").read_text())
    assert outputs["revision"] == "1" and outputs["namespace"] == NS and outputs["image"] == IMAGE_A
    assert outputs["changes"] == "4"   # the name README and action.yml declare


def test_redeploy_of_the_same_release_changes_nothing(cluster: Cluster) -> None:
    assert cluster.deploy()[0] == 0
    before = cluster.get("deployments", "web")
    replicasets = {o["metadata"]["name"] for o in cluster.kube.list("replicasets", NS)}
    pods = {o["metadata"]["uid"] for o in cluster.kube.pods(NS)}
    code, _, err = cluster.deploy(extra_environ={"SOURCE_DATE_EPOCH": "1700009999",
                                                 "GITHUB_RUN_ID": "2", "GITHUB_SERVER_URL": "https://github.com",
                                                 "GITHUB_REPOSITORY": "acme/hello"})
    assert code == 0, err
    assert "0 created, 0 configured, 4 unchanged, 0 pruned" in err
    after = cluster.get("deployments", "web")
    assert before and after and after["metadata"]["generation"] == before["metadata"]["generation"]
    assert {o["metadata"]["name"] for o in cluster.kube.list("replicasets", NS)} == replicasets
    assert {o["metadata"]["uid"] for o in cluster.kube.pods(NS)} == pods   # nothing restarted


def test_image_change_rolls_out_a_new_replicaset(cluster: Cluster) -> None:
    assert cluster.deploy()[0] == 0
    code, _, err = cluster.deploy(image=IMAGE_B)
    assert code == 0, err
    assert container_image(cluster) == IMAGE_B
    pods = cluster.kube.pods(NS)
    assert pods and all(p["spec"]["containers"][0]["image"] == IMAGE_B for p in pods)


def test_env_value_change_rolls_pods_and_prunes_the_old_configmap(cluster: Cluster) -> None:
    assert cluster.deploy()[0] == 0
    [old] = cluster.configmaps()
    old_pods = {p["metadata"]["uid"] for p in cluster.kube.pods(NS)}
    code, _, err = cluster.deploy("--set", "LOG_LEVEL=debug")
    assert code == 0, err
    [new] = cluster.configmaps()
    assert new != old and f"ConfigMap/{old}" in err   # reported as pruned
    cm = cluster.get("configmaps", new)
    assert cm is not None and cm["data"]["LOG_LEVEL"] == "debug"
    assert not old_pods & {p["metadata"]["uid"] for p in cluster.kube.pods(NS)}  # every pod replaced


@pytest.mark.parametrize("scenario, reason, detail", [
    ("crashloop", "CrashLoopBackOff", "last log lines"),
    ("pullfail", "ErrImagePull|ImagePullBackOff", "Failed to pull image"),
    ("missingkey", "CreateContainerConfigError", "couldn't find key"),
    ("unschedulable", "Unschedulable", "Insufficient cpu"),
    ("neverready", "ProgressDeadlineExceeded", "Readiness probe failed"),
])
def test_failed_rollouts_are_reported_fast_with_the_reason(cluster: Cluster, scenario: str, reason: str,
                                                           detail: str) -> None:
    cluster.kube.set_scenario(scenario, image=DIGEST_B)
    started = time.monotonic()
    code, _, err = cluster.deploy("--no-rollback", image=IMAGE_B)
    elapsed = time.monotonic() - started
    assert code == 1
    assert any(r in err for r in reason.split("|")) and detail in err, err
    assert "Deployment/web is not healthy" in err
    assert elapsed < 8, f"verdict took {elapsed:.1f} s"   # seconds, not the default 10 minute timeout
    assert "rollback disabled" in err


def test_missing_secret_key_from_the_injected_secret(cluster: Cluster) -> None:
    """A manifest reading a key the environment's secrets do not provide fails with the key named."""
    cluster.project.manifest("deployment.yaml", DEPLOYMENT.replace(
        "          ports: [{containerPort: 8080}]\n",
        "          ports: [{containerPort: 8080}]\n          env:\n            - name: DB\n"
        "              valueFrom: {secretKeyRef: {name: db, key: password}}\n"))
    cluster.project.manifest("secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n"
                                            "stringData: {user: app}\n")
    code, _, err = cluster.deploy("--no-rollback")
    assert code == 1
    assert "CreateContainerConfigError" in err and "password" in err


def test_failed_rollout_rolls_back_to_the_last_healthy_release(cluster: Cluster) -> None:
    assert cluster.deploy()[0] == 0
    cluster.kube.set_scenario("crashloop", image=DIGEST_B)
    code, _, err = cluster.deploy(image=IMAGE_B)
    assert code == 1
    assert "CrashLoopBackOff" in err
    assert "rolled back to revision 1: healthy" in err
    assert container_image(cluster) == IMAGE_A
    deployment = cluster.get("deployments", "web")
    assert deployment is not None and deployment["status"].get("readyReplicas") == 2


def test_protected_environment_rolls_back_even_with_no_rollback(cluster: Cluster) -> None:
    assert cluster.deploy(env="production")[0] == 0
    cluster.kube.set_scenario("pullfail", image=DIGEST_B)
    code, _, err = cluster.deploy("--no-rollback", env="production", image=IMAGE_B)
    assert code == 1 and "rolled back to revision 1" in err
    deployment = cluster.get("deployments", "web", namespace="hello")
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_A


def test_foreign_object_is_refused_and_nothing_is_applied(cluster: Cluster) -> None:
    cluster.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    cluster.kube.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
                        "spec": {"ports": [{"port": 80}]}}, manager="kubectl")
    code, _, err = cluster.deploy()
    assert code == 1
    assert "Service/web in namespace hello-staging already exists and belongs to someone else" in err
    assert "adopt: true" in err
    assert cluster.get("deployments", "web") is None and cluster.configmaps() == []


def test_adopt_takes_over_a_foreign_object(cluster: Cluster) -> None:
    cluster.project.config(CONFIG.replace("    create-namespace: true\n  production",
                                          "    create-namespace: true\n    adopt: true\n  production"))
    cluster.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    cluster.kube.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
                        "spec": {"ports": [{"port": 80}]}}, manager="kubectl")
    code, _, err = cluster.deploy()
    assert code == 0, err
    service = cluster.get("services", "web")
    assert service is not None and service["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "envship"


def test_plan_shows_changes_without_making_them(cluster: Cluster) -> None:
    assert cluster.deploy()[0] == 0
    version = cluster.get("deployments", "web")["metadata"]["resourceVersion"]  # type: ignore[index]
    code, out, err = cluster.run("plan", "--set", "LOG_LEVEL=debug", "--secret", "TOKEN=plan-secret-value",
                                 extra_environ=cluster.in_actions)
    assert code == 0, err
    assert "# update Deployment/web" in out and "# create ConfigMap/hello-env-" in out
    assert "# create Secret/hello-secrets-" in out and "<redacted>" in out
    assert "# DELETE ConfigMap/hello-env-" in out
    assert "plan-secret-value" not in out + err.replace("::add-mask::plan-secret-value", "")
    assert "2 to create, 1 to update, 1 to delete" in err
    outputs = parse_github_output((cluster.project.root / "out.txt").read_text())
    assert outputs["changes"] == "4"
    assert cluster.get("deployments", "web")["metadata"]["resourceVersion"] == version  # type: ignore[index]
    assert len(cluster.configmaps()) == 1


def test_plan_with_no_changes(cluster: Cluster) -> None:
    assert cluster.deploy()[0] == 0
    code, out, err = cluster.run("plan")
    assert code == 0 and out == ""
    assert "0 to create, 0 to update, 0 to delete, 4 unchanged" in err


def test_missing_namespace_without_create_namespace(cluster: Cluster) -> None:
    cluster.project.config(CONFIG.replace("    host: staging.example.com\n    create-namespace: true\n",
                                          "    host: staging.example.com\n"))
    code, _, err = cluster.deploy()
    assert code == 1
    assert "namespace hello-staging does not exist" in err and "create-namespace: true" in err


def test_unknown_kubeconfig_context(cluster: Cluster) -> None:
    cluster.project.config(CONFIG.replace("context: fake\n    namespace: hello-staging",
                                          "context: kind-dev\n    namespace: hello-staging"))
    code, _, err = cluster.deploy()
    assert code == 2
    assert "kubeconfig has no context 'kind-dev' (known: fake)" in err


def test_unreachable_cluster(cluster: Cluster) -> None:
    cluster.kube.stop()
    code, _, err = cluster.deploy()
    assert code == 1
    assert "cannot reach the Kubernetes API of kubeconfig context 'fake'" in err
    assert "Traceback" not in err


def test_rejected_token(cluster: Cluster) -> None:
    text = cluster.kubeconfig.read_text().replace(cluster.kube.token, "expired-token")
    cluster.kubeconfig.write_text(text)
    code, _, err = cluster.deploy()
    assert code == 1
    assert "401" in err and "re-authenticate" in err
    assert "expired-token" not in err


def test_throttling_is_retried(cluster: Cluster) -> None:
    cluster.kube.inject_failure(r"/deployments/web$", status=429, count=2, retry_after=0.1, method="PATCH")
    code, _, err = cluster.deploy()
    assert code == 0, err


def test_invalid_object_is_reported_with_what_was_applied(cluster: Cluster) -> None:
    cluster.project.manifest("deployment.yaml", DEPLOYMENT.replace("labels: {app: web}\n    spec:",
                                                                   "labels: {app: other}\n    spec:"))
    code, _, err = cluster.deploy()
    assert code == 1
    assert "applying Deployment/web failed: " in err and "422" in err
    assert "applied before the failure:" in err and "ConfigMap/hello-env-" in err
    # the server's details.causes[].field (spec.template.metadata.labels) points at the manifest's line
    from conftest import location_of

    line, column = location_of(DEPLOYMENT.replace("labels: {app: web}\n    spec:", "labels: {app: other}\n    spec:"),
                               "{app: other}")
    assert f"error: deploy/deployment.yaml:{line}:{column}: applying Deployment/web failed" in err, err


def envship_process(cluster: Cluster, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **cluster.environ, "PYTHONPATH": str(REPO_ROOT / "entrypoint")}
    return subprocess.Popen([sys.executable, "-m", "envship", "deploy", "--env", "staging", "--timeout", "30s",
                             "--skip-image-check", *args], cwd=cluster.project.root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_concurrent_deploys_are_serialised_by_the_lease(cluster: Cluster) -> None:
    cluster.kube.set_scenario("slow", image=DIGEST_A, ready_after=1.0)
    first = envship_process(cluster, "--image", IMAGE_A)
    cluster.kube.wait_for(lambda: cluster.kube.get("leases", NS, "envship-lock-hello-staging"), timeout=15)
    second = envship_process(cluster, "--image", IMAGE_B)
    _, err1 = first.communicate(timeout=60)
    _, err2 = second.communicate(timeout=60)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "waiting for the deploy lock: held by" in err2
    assert container_image(cluster) == IMAGE_B   # the second one ran after the first


def test_lock_timeout(cluster: Cluster) -> None:
    cluster.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    cluster.kube.apply({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": "envship-lock-hello-staging", "namespace": NS},
                        "spec": {"holderIdentity": "https://github.com/acme/hello/actions/runs/7#deploy",
                                 "leaseDurationSeconds": 600, "acquireTime": now, "renewTime": now}})
    code, _, err = cluster.deploy("--lock-timeout", "1s")
    assert code == 1
    assert "another deploy holds the lock" in err and "actions/runs/7" in err and "--lock-timeout" in err


@pytest.mark.parametrize("moment", ["mid-apply", "mid-wait"])
def test_killed_deploy_converges_when_run_again(cluster: Cluster, moment: str) -> None:
    if moment == "mid-apply":   # slow requests: killed after the ConfigMap tier, before the workloads
        cluster.kube.latency_s = 0.15
        reached = lambda: cluster.configmaps() and cluster.get("deployments", "web") is None  # noqa: E731
    else:                       # killed while waiting for pods that take 30 s
        cluster.kube.set_scenario("slow", image=DIGEST_A, ready_after=30.0)
        reached = lambda: cluster.get("deployments", "web")  # noqa: E731
    victim = envship_process(cluster, "--image", IMAGE_A)
    cluster.kube.wait_for(reached, timeout=20, interval=0.005)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=10)
    cluster.kube.latency_s = 0.0
    cluster.kube.set_scenario("healthy", image=DIGEST_A)
    code, _, err = cluster.deploy()
    assert code == 0, err
    assert container_image(cluster) == IMAGE_A
    assert len(cluster.configmaps()) == 1
    assert cluster.kube.get("leases", NS, "envship-lock-hello-staging") is None   # released


def test_deploy_with_progress_in_parallel_threads_does_not_leak_watch_threads(cluster: Cluster) -> None:
    before = threading.active_count()
    assert cluster.deploy()[0] == 0
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before


# -- the registry check before the cluster is touched (Debian's docker-registry on 127.0.0.1) --------
pytest_plugins = ["registry_fixture"]  # the registry fixture


def registry_project(cluster: Cluster, registry: Registry) -> str:
    repo = f"{registry.host}/acme/hello"
    cluster.project.config(CONFIG.replace("image: ghcr.io/acme/hello", f"image: {repo}"))
    cluster.project.manifest("deployment.yaml", DEPLOYMENT.replace("ghcr.io/acme/hello:latest", f"{repo}:latest"))
    return repo


def test_deploy_refuses_a_digest_the_registry_does_not_have(cluster: Cluster, registry: Registry) -> None:
    repo = registry_project(cluster, registry)
    registry.upload_image("acme/hello", "v1")
    code, _, err = cluster.deploy(image=f"{repo}@sha256:{'9' * 64}", check_image=True)
    assert code == 2, err
    assert "sha256:" + "9" * 64 in err and "does not exist in the registry" in err
    assert cluster.kube.get("namespaces", None, NS) is None   # nothing touched in the cluster


def test_deploy_resolves_a_tag_and_records_both(cluster: Cluster, registry: Registry) -> None:
    repo = registry_project(cluster, registry)
    digest = registry.upload_image("acme/hello", "v2")
    code, _, err = cluster.deploy(image=f"{repo}:v2", check_image=True)
    assert code == 0, err
    deployment = cluster.get("deployments", "web")
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"{repo}@{digest}"
    annotations = deployment["metadata"]["annotations"]
    assert annotations["envship.dev/digest"] == digest and annotations["envship.dev/image-tag"] == "v2"


def test_protected_environment_refuses_a_tag_without_allow_tag(cluster: Cluster, registry: Registry) -> None:
    repo = registry_project(cluster, registry)
    digest = registry.upload_image("acme/hello", "v3")
    code, _, err = cluster.deploy(env="production", image=f"{repo}:v3", check_image=True)
    assert code == 2 and "--allow-tag" in err
    assert cluster.kube.get("namespaces", None, "hello") is None
    code, _, err = cluster.deploy("--allow-tag", env="production", image=f"{repo}:v3", check_image=True)
    assert code == 0, err
    deployment = cluster.get("deployments", "web", namespace="hello")
    assert deployment is not None and deployment["metadata"]["annotations"]["envship.dev/digest"] == digest


def test_deploy_through_the_action_with_runner_paths(cluster: Cluster) -> None:
    """In a container action the workspace is /github/workspace, while earlier steps exported host paths
    (get-gke-credentials' KUBECONFIG): envship finds the file in the workspace by its name."""
    root = cluster.project.root
    environ = {
        "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(root), "GITHUB_OUTPUT": str(root / "out.txt"),
        "GITHUB_STEP_SUMMARY": str(root / "summary.md"), "SOURCE_DATE_EPOCH": "1700000000",
        "KUBECONFIG": f"/home/runner/work/hello/hello/{cluster.kubeconfig.name}",
        "INPUT_COMMAND": "deploy", "INPUT_ENVIRONMENT": "staging", "INPUT_IMAGE": IMAGE_A,
        "INPUT_CONFIG": "envship.yaml", "INPUT_SECRETS": "DB_PASSWORD=action-secret-value-1",
        "INPUT_TIMEOUT": "20s", "INPUT_ROLLBACK": "true", "INPUT_SKIP-IMAGE-CHECK": "true",
    }
    log = io.StringIO()
    code = main(["action"], environ=environ, out=log, err=log)
    text = log.getvalue()
    assert code == 0, text
    assert text.splitlines()[0] == "::add-mask::action-secret-value-1"
    assert "action-secret-value-1" not in "\n".join(text.splitlines()[1:])
    outputs = parse_github_output((root / "out.txt").read_text())
    assert outputs["revision"] == "1" and outputs["namespace"] == NS
    assert "envship deploy: staging healthy" in (root / "summary.md").read_text()
    secret = [s for s in cluster.kube.list("secrets", NS) if s["metadata"]["name"].startswith("hello-secrets-")]
    assert len(secret) == 1


def test_failed_deploy_annotates_and_summarises(cluster: Cluster) -> None:
    cluster.kube.set_scenario("crashloop", image=DIGEST_B)
    root = cluster.project.root
    code, out, err = cluster.deploy("--no-rollback", image=IMAGE_B,
                                    extra_environ={**cluster.in_actions, "GITHUB_STEP_SUMMARY": str(root / "s.md")})
    assert code == 1
    assert "::error title=rollout failed::Deployment/web is not healthy" in err and out == ""
    summary = (root / "s.md").read_text()
    assert "envship deploy: staging failed" in summary and "CrashLoopBackOff" in summary


def test_redeploy_keeps_the_replica_count_an_autoscaler_chose(cluster: Cluster) -> None:
    cluster.project.manifest("deployment.yaml", DEPLOYMENT)   # replicas: 2 in the manifest
    cluster.project.manifest("hpa.yaml", "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
                             "metadata: {name: web}\nspec:\n"
                             "  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n"
                             "  minReplicas: 2\n  maxReplicas: 8\n")
    assert cluster.deploy()[0] == 0
    # the HPA controller scales up under load (through the scale subresource, its own field manager)
    cluster.kube.apply({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "web", "namespace": NS}, "spec": {"replicas": 5}},
                       manager="kube-controller-manager")
    code, _, err = cluster.deploy()
    assert code == 0, err
    deployment = cluster.get("deployments", "web")
    assert deployment is not None and deployment["spec"]["replicas"] == 5


MIGRATION_JOB = """\
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: ghcr.io/acme/hello:latest, args: [migrate]}]
"""


def test_a_job_running_the_new_image_is_replaced(cluster: Cluster) -> None:
    """A Job's pod template is immutable: a migration Job pinned to the new digest is replaced."""
    cluster.project.manifest("job.yaml", MIGRATION_JOB)
    assert cluster.deploy()[0] == 0
    first = cluster.get("jobs", "migrate")
    code, _, err = cluster.deploy(image=IMAGE_B)
    assert code == 0, err
    assert "Job/migrate replaced" in err and "migrate complete" in err
    job = cluster.get("jobs", "migrate")
    assert first is not None and job is not None and job["metadata"]["uid"] != first["metadata"]["uid"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_B


def test_the_bundled_example_deploys_to_a_local_cluster(project: Project, fake_kube: FakeKube) -> None:  # noqa: F811
    """The README's local walk-through: the example's `local` environment (context kind-envship)."""
    import shutil

    shutil.copytree(REPO_ROOT / "workflows-examples" / "hello", project.root / "hello")
    kubeconfig = fake_kube.kubeconfig(project.root / "kubeconfig", context="kind-envship")
    out, err = io.StringIO(), io.StringIO()
    code = main(["deploy", "--config", "hello/envship.yaml", "--env", "local", "--image", IMAGE_A,
                 "--skip-image-check", "--timeout", "20s"],
                environ={"KUBECONFIG": str(kubeconfig)}, out=out, err=err)
    assert code == 0, err.getvalue()
    assert "hello 1/1 ready" in err.getvalue()   # the HPA (not simulated by the fake) scales it to 2 later
    assert "note: Deployment/hello: spec.replicas left to HorizontalPodAutoscaler/hello" in err.getvalue()
    ingress = fake_kube.get("ingresses", "hello-local", "hello")
    assert ingress is not None and ingress["spec"]["rules"][0]["host"] == "local.hello.example.com"


def test_cancelled_deploy_releases_its_lock(cluster: Cluster) -> None:
    """A cancelled job's SIGTERM unwinds the deploy: the lock is released at once, not after expiry."""
    cluster.kube.set_scenario("slow", image=DIGEST_A, ready_after=30.0)
    process = envship_process(cluster, "--image", IMAGE_A)
    lease = "envship-lock-hello-staging"
    cluster.kube.wait_for(lambda: cluster.get("deployments", "web"), timeout=20, interval=0.01)
    assert cluster.kube.get("leases", NS, lease) is not None
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    assert "interrupted; every envship command can be re-run and converges" in err
    assert cluster.kube.get("leases", NS, lease) is None


def test_plan_shows_a_job_replacement(cluster: Cluster) -> None:
    cluster.project.manifest("job.yaml", MIGRATION_JOB)
    assert cluster.deploy()[0] == 0
    code, out, err = cluster.run("plan", image=IMAGE_B)
    assert code == 0, err
    assert "# replace Job/migrate" in out and "1 to replace (immutable Job template)" in err
    job = cluster.get("jobs", "migrate")
    assert job is not None and job["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_A  # untouched


def test_bad_lease_duration_is_refused_before_anything_changes(cluster: Cluster) -> None:
    code, _, err = cluster.deploy(extra_environ={"ENVSHIP_LEASE_SECONDS": "30s"})
    assert code == 2
    assert "ENVSHIP_LEASE_SECONDS must be a whole number of seconds, not '30s'" in err and "hint:" in err
    assert cluster.kube.get("namespaces", None, NS) is None
