"""The GKE path end to end: Workload Identity Federation credentials (google-auth's external_account
file) -> fake STS -> Container API get_cluster (google-cloud-container's REST transport, pointed at a
fake with ENVSHIP_CONTAINER_API_ENDPOINT) -> the cluster's endpoint and CA -> a TLS fake API server
that accepts only the access tokens the fake STS issued."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import pytest
from conftest import Project
from fakes.google_apis import Cluster, FakeGoogle
from fakes.kube_apiserver import FakeKube

from envship.cli import main

CLUSTER = "projects/acme-prod/locations/us-central1/clusters/main"
IMAGE = "ghcr.io/acme/hello@sha256:" + "c" * 64

CONFIG = f"""\
app: hello
image: ghcr.io/acme/hello
manifests: deploy
environments:
  staging:
    cluster: {CLUSTER}
    namespace: hello-staging
    create-namespace: true
  private:
    cluster: {CLUSTER}
    endpoint: private
    namespace: hello-private
    create-namespace: true
  elsewhere:
    cluster: projects/acme-prod/locations/europe-west1/clusters/missing
    namespace: hello-elsewhere
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: ghcr.io/acme/hello:latest}]
"""


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    fake = FakeGoogle.start(token_lifetime=3600)
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def gke(google: FakeGoogle) -> Iterator[FakeKube]:
    kube = FakeKube.start(tls=True, authenticate=google.state.valid)
    assert kube.ca_file is not None
    google.state.clusters[CLUSTER] = Cluster(endpoint=f"127.0.0.1:{kube.port}",
                                             ca_base64=base64.b64encode(kube.ca_file.read_bytes()).decode())
    try:
        yield kube
    finally:
        kube.stop()


def deploy(project: Project, google: FakeGoogle, env: str = "staging",
           credentials: str | None = None) -> tuple[int, str]:
    environ = {"ENVSHIP_CONTAINER_API_ENDPOINT": google.url, "SOURCE_DATE_EPOCH": "1700000000",
               "GOOGLE_APPLICATION_CREDENTIALS": credentials or str(google.external_account_file(project.root)),
               "HOME": str(project.root)}
    err = io.StringIO()
    code = main(["deploy", "--env", env, "--image", IMAGE, "--timeout", "20s", "--skip-image-check"], environ=environ,
                out=io.StringIO(), err=err)
    return code, err.getvalue()


def test_deploy_to_gke_with_workload_identity_federation(project: Project, google: FakeGoogle,
                                                         gke: FakeKube) -> None:
    project.config(CONFIG)
    project.manifest("deployment.yaml", DEPLOYMENT)
    code, err = deploy(project, google)
    assert code == 0, err
    assert "GKE cluster projects/acme-prod/locations/us-central1/clusters/main" in err
    deployment = gke.get("deployments", "hello-staging", "web")
    assert deployment is not None and deployment["status"]["readyReplicas"] == 1
    assert google.state.cluster_reads == 1 and google.state.exchanges >= 1


def test_expiring_tokens_are_refreshed_during_the_deploy(project: Project, google: FakeGoogle,
                                                         gke: FakeKube) -> None:
    """Tokens that live 1 s (google-auth refreshes tokens this close to expiry before each use) must
    not fail a deploy whose requests span several token lifetimes."""
    google.state.token_lifetime = 1
    gke.set_scenario("slow", image="c" * 64, ready_after=1.5)
    project.config(CONFIG)
    project.manifest("deployment.yaml", DEPLOYMENT)
    code, err = deploy(project, google)
    assert code == 0, err
    assert google.state.exchanges >= 3   # refreshed, not reused after expiry


def test_private_endpoint_missing_is_explained(project: Project, google: FakeGoogle, gke: FakeKube) -> None:
    project.config(CONFIG)
    project.manifest("deployment.yaml", DEPLOYMENT)
    code, err = deploy(project, google, env="private")
    assert code == 1
    assert "has no private endpoint" in err and "endpoint: public" in err


def test_unknown_cluster(project: Project, google: FakeGoogle, gke: FakeKube) -> None:
    project.config(CONFIG)
    project.manifest("deployment.yaml", DEPLOYMENT)
    code, err = deploy(project, google, env="elsewhere")
    assert code == 1
    assert "GKE cluster projects/acme-prod/locations/europe-west1/clusters/missing not found" in err


def test_rejected_federation_token(project: Project, google: FakeGoogle, gke: FakeKube) -> None:
    project.config(CONFIG)
    project.manifest("deployment.yaml", DEPLOYMENT)
    path = google.external_account_file(project.root)
    (project.root / "github-oidc-token").write_text("not-the-token-github-issued")
    code, err = deploy(project, google, credentials=str(path))
    assert code == 1
    assert "Google authentication failed" in err or "refreshing the Google access token failed" in err
    assert "Traceback" not in err and "not-the-token-github-issued" not in err


def test_missing_credentials_file(project: Project, google: FakeGoogle, gke: FakeKube) -> None:
    project.config(CONFIG)
    project.manifest("deployment.yaml", DEPLOYMENT)
    code, err = deploy(project, google, credentials=str(project.root / "gha-creds-missing.json"))
    assert code == 1
    assert "cannot use the Google credentials file" in err and "GOOGLE_APPLICATION_CREDENTIALS" in err


def test_wrong_cluster_ca_is_refused(project: Project, google: FakeGoogle, gke: FakeKube) -> None:
    other = FakeKube.start(tls=True)
    try:
        assert other.ca_file is not None
        google.state.clusters[CLUSTER].ca_base64 = base64.b64encode(other.ca_file.read_bytes()).decode()
    finally:
        other.stop()
    project.config(CONFIG)
    project.manifest("deployment.yaml", DEPLOYMENT)
    code, err = deploy(project, google)
    assert code == 1
    assert "TLS verification failed" in err
