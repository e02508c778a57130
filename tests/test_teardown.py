"""envship teardown against the fake Kubernetes API and the fake Cloudflare API, with neighbours: another
preview, another team's object in a namespace envship did not create, foreign DNS records."""

from __future__ import annotations

import io

import pytest
from conftest import Project
from fakes.cloudflare_api import FakeCloudflare
from fakes.cloudflare_plugin import fake_cloudflare  # noqa: F401 - the fixture
from fakes.kube_apiserver import FakeKube
from fakes.pytest_plugin import fake_kube  # noqa: F401 - the fixture
from test_deploy import DEPLOYMENT, IMAGE_A, SERVICE

from envship.cli import main

CONFIG = """\
app: hello
image: ghcr.io/acme/hello
manifests: deploy
environments:
  shared:
    context: fake
    namespace: team-space
    host: shared.example.com
  production:
    context: fake
    namespace: hello
    protected: true
    create-namespace: true
  preview:
    preview: true
    context: fake
    namespace: hello-pr-{pr}
    host: hello-pr-{pr}.example.com
routes:
  cloudflare:
    zone: example.com
    target: 203.0.113.7
"""


class Env:
    def __init__(self, project: Project, kube: FakeKube, cf: FakeCloudflare) -> None:
        self.kube, self.cf = kube, cf
        cf.add_zone("example.com")
        project.config(CONFIG)
        project.manifest("deployment.yaml", DEPLOYMENT)
        project.manifest("service.yaml", SERVICE)
        self.environ = {"KUBECONFIG": str(kube.kubeconfig(project.root / "kubeconfig")),
                        "SOURCE_DATE_EPOCH": "1700000000", "ENVSHIP_LEASE_SECONDS": "5",
                        "CLOUDFLARE_API_URL": cf.url, "CLOUDFLARE_API_TOKEN": cf.token,
                        "GITHUB_REPOSITORY": "acme/hello"}

    def run(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), environ=self.environ, out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    def deploy(self, env: str, *args: str) -> None:
        code, _, err = self.run("deploy", "--env", env, "--image", IMAGE_A, "--skip-image-check", "--timeout", "20s",
                                *args)
        assert code == 0, err

    def hosts(self) -> list[str]:
        return sorted(r["name"] for r in self.cf.records("example.com"))


@pytest.fixture
def env(project: Project, fake_kube: FakeKube, fake_cloudflare: FakeCloudflare) -> Env:  # noqa: F811
    return Env(project, fake_kube, fake_cloudflare)


def test_a_preview_goes_entirely_and_its_neighbour_stays(env: Env) -> None:
    env.deploy("preview", "--pr", "1")
    env.deploy("preview", "--pr", "2")
    env.cf.add_record("example.com", "A", "docs.example.com", "198.51.100.3")
    code, _, err = env.run("teardown", "--env", "preview", "--pr", "1")
    assert code == 0, err
    assert "tore down preview (hello-pr-1): 4 object(s) deleted, namespace deleted, route removed" in err
    namespace = env.kube.get("namespaces", None, "hello-pr-1")
    assert namespace is None or namespace["status"]["phase"] == "Terminating"
    assert env.kube.get("deployments", "hello-pr-2", "web") is not None
    assert env.hosts() == ["docs.example.com", "hello-pr-2.example.com"]
    env.kube.wait_for(lambda: env.kube.get("namespaces", None, "hello-pr-1") is None, timeout=20)
    code, _, err = env.run("teardown", "--env", "preview", "--pr", "1")     # again: nothing left, exit 0
    assert code == 0 and "nothing to tear down" in err, err


def test_in_a_namespace_envship_did_not_create_only_its_objects_go(env: Env) -> None:
    env.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-space"}})
    env.kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "other-team", "namespace": "team-space"}, "data": {"k": "v"}})
    env.deploy("shared")
    code, _, err = env.run("teardown", "--env", "shared")
    assert code == 0, err
    assert "namespace team-space kept: envship did not create it" in err
    assert env.kube.get("namespaces", None, "team-space") is not None
    assert env.kube.get("configmaps", "team-space", "other-team") is not None
    assert env.kube.get("deployments", "team-space", "web") is None
    leftovers = [s["metadata"]["name"] for s in env.kube.list("secrets", "team-space")]
    assert leftovers == [], leftovers          # records and the applyset's parent went too
    assert env.hosts() == []


def test_protected_environments_are_never_torn_down(env: Env) -> None:
    env.deploy("production")
    code, _, err = env.run("teardown", "--env", "production")
    assert code == 2 and "environment 'production' is protected" in err
    assert env.kube.get("deployments", "hello", "web") is not None
