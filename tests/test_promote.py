"""envship promote against the fake Kubernetes API: production receives exactly the digest that runs,
healthy, in staging, or nothing at all."""

from __future__ import annotations

import io
from typing import Any

import pytest
from conftest import Project
from fakes.kube_apiserver import FakeKube
from fakes.pytest_plugin import fake_kube  # noqa: F401 - the fixture
from test_deploy import DEPLOYMENT, DIGEST_A, DIGEST_B, IMAGE_A, IMAGE_B, SERVICE

from envship.cli import main
from envship.core import plan

CONFIG = """\
app: hello
image: ghcr.io/acme/hello
manifests: deploy
environments:
  staging:
    context: fake
    namespace: hello-staging
    create-namespace: true
    env: {LOG_LEVEL: debug}
  production:
    context: fake
    namespace: hello-prod
    create-namespace: true
    protected: true
    promote-from: staging
    env: {LOG_LEVEL: warn}
  qa:
    context: fake
    namespace: hello-qa
    create-namespace: true
"""


class Promoter:
    def __init__(self, project: Project, kube: FakeKube) -> None:
        self.project, self.kube = project, kube
        project.config(CONFIG)
        project.manifest("deployment.yaml", DEPLOYMENT)
        project.manifest("service.yaml", SERVICE)
        self.environ = {"KUBECONFIG": str(kube.kubeconfig(project.root / "kubeconfig")),
                        "SOURCE_DATE_EPOCH": "1700000000", "ENVSHIP_LEASE_SECONDS": "5", "GITHUB_SHA": "f" * 40}

    def run(self, *argv: str, **extra: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), environ={**self.environ, **extra}, out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    def deploy(self, env: str, image: str, *args: str, **extra: str) -> tuple[int, str, str]:
        return self.run("deploy", "--env", env, "--image", image, "--skip-image-check", "--timeout", "20s", *args,
                        **extra)

    def promote(self, *args: str, **extra: str) -> tuple[int, str, str]:
        return self.run("promote", "--from", "staging", "--to", "production", "--skip-image-check",
                        "--timeout", "20s", *args, **extra)

    def image(self, namespace: str) -> str | None:
        deployment = self.kube.get("deployments", namespace, "web")
        return None if deployment is None else str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    def record(self, namespace: str, app_env: str = "production") -> plan.DeployRecord:
        secrets = self.kube.list("secrets", namespace, "envship.dev/record=release")
        latest = max(secrets, key=lambda s: int(s["metadata"]["labels"]["envship.dev/revision"]))
        return plan.decode_release_record(latest)


@pytest.fixture
def promoter(project: Project, fake_kube: FakeKube) -> Promoter:  # noqa: F811 - the fixture
    return Promoter(project, fake_kube)


def test_production_gets_exactly_the_digest_staging_runs(promoter: Promoter) -> None:
    assert promoter.deploy("staging", IMAGE_A, GITHUB_SHA="a" * 40)[0] == 0
    code, _, err = promoter.promote(GITHUB_SHA="b" * 40)    # the dispatching branch moved on meanwhile
    assert code == 0, err
    assert f"promoting {IMAGE_A} (revision 1 of staging, commit {'a' * 12}) to production" in err
    assert promoter.image("hello-prod") == IMAGE_A
    record = promoter.record("hello-prod")
    assert record.digest == DIGEST_A and record.git_sha == "a" * 40     # the commit the digest came from
    assert record.promoted_from == {"environment": "staging", "revision": "1", "digest": DIGEST_A,
                                    "git_sha": "a" * 40}
    deployment = promoter.kube.get("deployments", "hello-prod", "web")
    assert deployment["metadata"]["annotations"]["envship.dev/promoted-from"] == "staging revision 1"
    configmaps = [c for c in promoter.kube.list("configmaps", "hello-prod") if c["metadata"]["name"].startswith(
        "hello-env-")]
    assert [c["data"]["LOG_LEVEL"] for c in configmaps] == ["warn"]      # the target's own values


def test_expect_digest_must_match_what_runs(promoter: Promoter) -> None:
    assert promoter.deploy("staging", IMAGE_A)[0] == 0
    code, _, err = promoter.promote("--expect-digest", DIGEST_B)
    assert code == 2 and f"not promoting: the source runs {DIGEST_A}, not the expected {DIGEST_B}" in err
    assert promoter.kube.get("namespaces", None, "hello-prod") is None
    code, _, err = promoter.promote("--expect-digest", "sha256:abc")
    assert code == 2 and "--expect-digest must be sha256: and 64 hexadecimal digits" in err
    assert promoter.promote("--expect-digest", DIGEST_A)[0] == 0


def test_an_unhealthy_source_is_refused(promoter: Promoter) -> None:
    assert promoter.deploy("staging", IMAGE_A)[0] == 0
    promoter.kube.set_scenario("neverready", namespace="hello-staging")
    promoter.kube.wait_for(lambda: not promoter.kube.get("deployments", "hello-staging", "web")["status"].get(
        "readyReplicas"), timeout=10)
    code, _, err = promoter.promote()
    assert code == 2, err
    assert "'staging' is not a sound source for 'production': Deployment/web is not healthy" in err
    assert promoter.kube.get("namespaces", None, "hello-prod") is None


def test_a_source_changed_outside_envship_is_refused(promoter: Promoter) -> None:
    assert promoter.deploy("staging", IMAGE_A)[0] == 0
    live: dict[str, Any] = promoter.kube.get("deployments", "hello-staging", "web")
    container = {"name": "app", "image": IMAGE_B}
    promoter.kube.apply({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "web", "namespace": "hello-staging"},
                         "spec": {"selector": live["spec"]["selector"], "template": {
                             "metadata": {"labels": live["spec"]["template"]["metadata"]["labels"]},
                             "spec": {"containers": [container]}}}}, manager="kubectl-set")
    code, _, err = promoter.promote()
    assert code == 2, err
    assert f"Deployment/web runs {IMAGE_B}, not the recorded {IMAGE_A} (changed outside envship)" in err


def test_only_the_targets_promote_from_feeds_it(promoter: Promoter) -> None:
    assert promoter.deploy("qa", IMAGE_A)[0] == 0
    code, _, err = promoter.run("promote", "--from", "qa", "--to", "production", "--skip-image-check")
    assert code == 2 and "'production' takes promotions only from 'staging' (its promote-from), not from 'qa'" in err
    code, _, err = promoter.promote()
    assert code == 2 and "'staging' has no release recorded in namespace hello-staging: nothing to promote" in err
    code, _, err = promoter.run("promote", "--from", "qa", "--to", "qa")
    assert code == 2 and "cannot promote 'qa' to itself" in err
    assert promoter.run("promote", "--from", "qa", "--to", "staging", "--skip-image-check")[0] == 0  # no promote-from
    assert promoter.image("hello-staging") == IMAGE_A


def test_the_action_promotes_with_the_targets_secrets(promoter: Promoter) -> None:
    assert promoter.deploy("staging", IMAGE_A)[0] == 0
    inputs = {"COMMAND": "promote", "FROM": "staging", "ENVIRONMENT": "production", "EXPECT-DIGEST": DIGEST_A,
              "SECRETS": "API_KEY=prod-key-5e1f9", "ENV": "", "CONFIG": "envship.yaml", "SKIP-IMAGE-CHECK": "true",
              "TIMEOUT": "20s", "ROLLBACK": "true", "LOCK-TIMEOUT": "1m", "CRASHLOOP-RESTARTS": "1",
              "ALLOW-MASS-PRUNE": "false"}
    code, out, err = promoter.run("action", GITHUB_ACTIONS="true", **{f"INPUT_{k}": v for k, v in inputs.items()})
    assert code == 0, out + err
    assert promoter.image("hello-prod") == IMAGE_A
    log = [line for line in (out + err).splitlines() if not line.startswith("::add-mask::")]
    assert not any("prod-key-5e1f9" in line for line in log)
    inputs["FROM"] = "qa"
    code, out, err = promoter.run("action", GITHUB_ACTIONS="true", **{f"INPUT_{k}": v for k, v in inputs.items()})
    assert code == 2 and "takes promotions only from 'staging'" in out + err


def test_status_shows_what_runs_where(promoter: Promoter) -> None:
    import json

    assert promoter.deploy("staging", IMAGE_A, GITHUB_SHA="a" * 40)[0] == 0
    assert promoter.promote()[0] == 0
    code, out, err = promoter.run("status")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["environment", "namespace", "revision"]
    by_env = {r.split()[0]: r for r in rows}
    assert "healthy" in by_env["staging"] and DIGEST_A[:19] in by_env["staging"]
    assert "staging r1" in by_env["production"] and "a" * 12 in by_env["production"]
    assert "no release" in by_env["qa"]
    code, out, _ = promoter.run("status", "--env", "production", "--output", "json")
    [row] = json.loads(out)["environments"]
    assert (row["digest"], row["commit"], row["health"], row["promoted_from"]) == (
        DIGEST_A, "a" * 40, "healthy", "staging r1")
    promoter.kube.set_scenario("neverready", namespace="hello-staging")
    promoter.kube.wait_for(lambda: not promoter.kube.get("deployments", "hello-staging", "web")["status"].get(
        "readyReplicas"), timeout=10)
    code, out, _ = promoter.run("status", "--env", "staging", "--output", "json")
    assert json.loads(out)["environments"][0]["health"].startswith("unhealthy: Deployment/web is not healthy")
    code, _, err = promoter.run("status", "--output", "yaml")
    assert code == 2 and "--output must be table or json" in err
