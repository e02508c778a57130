"""The fake Kubernetes API server (tests/fakes): the behaviour envship's deploy engine and the
kubectl benchmark rely on, checked over real HTTP, and with real kubectl binaries."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from fakes import FakeKube
from fakes.pytest_plugin import fake_kube, kubectl_binaries, kubectl_env  # noqa: F401 - fake_kube is a fixture

REPO_ROOT = Path(__file__).resolve().parents[1]
APPLY = "application/apply-patch+yaml"


class Api:
    """A thin HTTP client, as envship's adapter will be one."""

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube
        self.session = requests.Session()
        self.session.headers.update(kube.auth_headers)
        if kube.ca_file is not None:
            self.session.verify = str(kube.ca_file)

    def call(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
             headers: dict[str, str] | None = None, **params: Any) -> requests.Response:
        data = None if body is None else body if isinstance(body, str | bytes) else json.dumps(body)
        hdrs = {"Content-Type": content_type, **(headers or {})}
        return self.session.request(method, self.kube.url + path, data=data, params=params, headers=hdrs,
                                    timeout=30)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.call("GET", path, **params)

    def apply(self, path: str, obj: dict[str, Any], manager: str = "envship", force: bool = False,
              **params: Any) -> requests.Response:
        return self.call("PATCH", path, obj, content_type=APPLY, fieldManager=manager,
                         force="true" if force else "false", **params)

    def watch(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """All events of a watch until the server ends it."""
        response = self.session.get(self.kube.url + path, params={"watch": "1", **params}, stream=True, timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers.get("Transfer-Encoding") == "chunked"
        return [json.loads(line) for line in response.iter_lines(chunk_size=None) if line]


@pytest.fixture
def api(fake_kube: FakeKube) -> Api:  # noqa: F811 - the fixture imported above
    return Api(fake_kube)


DEPLOY_PATH = "/apis/apps/v1/namespaces/default/deployments"


def deployment(name: str = "web", image: str = "ghcr.io/acme/web:1", replicas: int = 1,
               env: list[dict[str, Any]] | None = None, annotations: dict[str, str] | None = None,
               **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "web", "image": image}
    if env is not None:
        container["env"] = env
    template: dict[str, Any] = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}
    if annotations:
        template["metadata"]["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template, **spec}}


def configmap(name: str, data: dict[str, str], ns: str = "default", **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data,
            **extra}


def wait_status(kube: FakeKube, kind: str, name: str, predicate: Any, ns: str = "default",
                timeout: float = 8.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = kube.get(kind, ns, name)
        if obj is None:
            return None
        obj.setdefault("status", {})
        return obj if predicate(obj) else None

    return kube.wait_for(check, timeout)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def pod_of(kube: FakeKube, labels: str, predicate: Any, timeout: float = 8.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        return next((p for p in kube.pods("default", labels) if predicate(p)), None)

    return kube.wait_for(check, timeout)


def container_status(pod: dict[str, Any], name: str = "web") -> dict[str, Any]:
    return next((c for c in (pod.get("status") or {}).get("containerStatuses") or [] if c["name"] == name), {})


def waiting_reason(pod: dict[str, Any], name: str = "web") -> str:
    return str(((container_status(pod, name).get("state") or {}).get("waiting") or {}).get("reason", ""))


# ------------------------------------------------------------------------------------------------
# discovery
# ------------------------------------------------------------------------------------------------

def test_legacy_discovery_has_the_shapes_clients_parse(api: Api) -> None:
    versions = api.get("/api").json()
    assert versions["kind"] == "APIVersions" and versions["versions"] == ["v1"]
    groups = api.get("/apis").json()
    assert groups["kind"] == "APIGroupList"
    names = [g["name"] for g in groups["groups"]]
    assert {"apps", "batch", "networking.k8s.io", "rbac.authorization.k8s.io", "coordination.k8s.io",
            "apiextensions.k8s.io", "policy", "autoscaling"} <= set(names)
    apps = next(g for g in groups["groups"] if g["name"] == "apps")
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}

    core = api.get("/api/v1").json()
    assert core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["namespaces"]["namespaced"] is False and by_name["pods"]["namespaced"] is True
    assert by_name["pods"]["kind"] == "Pod" and by_name["pods"]["singularName"] == "pod"
    assert "po" in by_name["pods"]["shortNames"] and "watch" in by_name["pods"]["verbs"]
    assert by_name["pods/log"]["verbs"] == ["get"] and by_name["pods/status"]["kind"] == "Pod"
    deploys = {r["name"]: r for r in api.get("/apis/apps/v1").json()["resources"]}
    assert deploys["deployments"]["shortNames"] == ["deploy"]
    assert deploys["deployments/status"]["verbs"] == ["get", "patch", "update"]
    assert deploys["deployments/scale"]["kind"] == "Scale"
    assert api.get("/apis/apps").json()["kind"] == "APIGroup"
    assert api.get("/apis/nope.example.com/v1").status_code == 404
    assert api.get("/version").json()["major"] == "1"


def test_aggregated_discovery_when_asked(api: Api) -> None:
    accept = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
    r = api.call("GET", "/apis", headers={"Accept": accept})
    assert r.headers["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    doc = r.json()
    assert doc["kind"] == "APIGroupDiscoveryList" and doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    apps = next(i for i in doc["items"] if i["metadata"]["name"] == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["scope"] == "Namespaced" and deploy["responseKind"]["kind"] == "Deployment"
    assert {s["subresource"] for s in deploy["subresources"]} == {"status", "scale"}
    core = api.call("GET", "/api", headers={"Accept": accept}).json()
    assert core["items"][0]["versions"][0]["version"] == "v1"


def test_openapi_documents_declare_field_validation(api: Api) -> None:
    index = api.get("/openapi/v3").json()
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    doc = api.call("GET", url.split("?")[0]).json()
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    protobuf = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    v2 = api.call("GET", "/openapi/v2", headers={"Accept": protobuf})
    assert v2.status_code == 200 and v2.content.startswith(b"\x0a\x032.0")


def test_crd_registers_its_kind(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "subresources": {"status": {}}, "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    assert api.apply("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com", crd).status_code \
        == 201
    assert condition(fake_kube.get("crd", None, "widgets.example.com"), "Established")["status"] == "True"
    resources = {r["name"]: r for r in api.get("/apis/example.com/v1").json()["resources"]}
    assert resources["widgets"]["kind"] == "Widget" and "widgets/status" in resources
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}}
    created = api.apply("/apis/example.com/v1/namespaces/default/widgets/w", widget)
    assert created.status_code == 201 and created.json()["metadata"]["generation"] == 1
    listed = api.get("/apis/example.com/v1/namespaces/default/widgets").json()
    assert listed["items"][0]["kind"] == "Widget"  # custom resources keep apiVersion/kind in lists
    assert api.call("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com").ok
    assert api.get("/apis/example.com/v1").status_code == 404


# ------------------------------------------------------------------------------------------------
# CRUD, errors, validation
# ------------------------------------------------------------------------------------------------

def test_create_get_list_replace_delete(api: Api) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    created = api.call("POST", path, configmap("a", {"k": "v"}))
    assert created.status_code == 201
    meta = created.json()["metadata"]
    assert meta["uid"] and meta["resourceVersion"].isdigit() and meta["creationTimestamp"].endswith("Z")
    assert "generation" not in meta
    assert meta["managedFields"][0]["manager"] == "python-requests"  # from the User-Agent
    again = api.call("POST", path, configmap("a", {"k": "v"}))
    assert again.status_code == 409 and again.json()["reason"] == "AlreadyExists"
    assert again.json()["message"] == 'configmaps "a" already exists'

    listing = api.get(path).json()
    assert listing["kind"] == "ConfigMapList" and int(listing["metadata"]["resourceVersion"]) >= int(
        meta["resourceVersion"])
    item = next(i for i in listing["items"] if i["metadata"]["name"] == "a")
    assert "kind" not in item and "apiVersion" not in item  # as the real server lists built-in kinds

    stale = dict(created.json(), data={"k": "w"})
    first = api.call("PUT", f"{path}/a", stale)
    assert first.status_code == 200 and first.json()["metadata"]["resourceVersion"] != meta["resourceVersion"]
    conflict = api.call("PUT", f"{path}/a", dict(stale, data={"k": "x"}))
    assert conflict.status_code == 409 and conflict.json()["reason"] == "Conflict"
    assert "the object has been modified" in conflict.json()["message"]

    deleted = api.call("DELETE", f"{path}/a")
    assert deleted.status_code == 200 and deleted.json()["status"] == "Success"
    missing = api.get(f"{path}/a")
    assert missing.status_code == 404
    assert missing.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": 'configmaps "a" not found', "reason": "NotFound",
                              "details": {"name": "a", "kind": "configmaps"}, "code": 404}
    gone = api.get("/apis/apps/v1/namespaces/default/deployments/nope").json()
    assert gone["message"] == 'deployments.apps "nope" not found' and gone["details"]["group"] == "apps"


def test_generate_name_pagination_and_deletecollection(api: Api) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    for i in range(5):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-", "labels": {"i": str(i)}}}
        assert api.call("POST", path, body).json()["metadata"]["name"].startswith("gen-")
    names, params = [], {"limit": 2, "labelSelector": "i"}
    while True:
        page = api.get(path, **params).json()
        names += [i["metadata"]["name"] for i in page["items"]]
        if not page["metadata"].get("continue"):
            break
        assert page["metadata"]["remainingItemCount"] > 0
        params["continue"] = page["metadata"]["continue"]
    assert len(names) == 5 and len(set(names)) == 5
    removed = api.call("DELETE", path, labelSelector="i in (1,2)").json()
    assert removed["kind"] == "ConfigMapList" and len(removed["items"]) == 2
    assert len(api.get(path, labelSelector="i").json()["items"]) == 3


def test_validation_errors_look_like_the_real_server(api: Api) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    bad = api.call("POST", path, configmap("Bad_Name", {}))
    assert bad.status_code == 422
    body = bad.json()
    assert body["reason"] == "Invalid" and body["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name')
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert body["details"]["causes"][0]["reason"] == "FieldValueInvalid"

    no_ns = api.call("POST", "/api/v1/namespaces/nowhere/configmaps", configmap("a", {}, ns="nowhere"))
    assert no_ns.status_code == 404 and no_ns.json()["message"] == 'namespaces "nowhere" not found'
    mismatch = api.call("POST", path, configmap("a", {}, ns="other"))
    assert mismatch.status_code == 400 and "does not match the namespace" in mismatch.json()["message"]

    wrong_labels = deployment()
    wrong_labels["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    invalid = api.apply(f"{DEPLOY_PATH}/web", wrong_labels)
    assert invalid.status_code == 422
    assert invalid.json()["details"]["causes"][0]["message"].endswith("`selector` does not match template `labels`")
    assert api.get(f"{DEPLOY_PATH}/web").status_code == 404

    assert api.apply(f"{DEPLOY_PATH}/web", deployment()).status_code == 201
    moved = deployment()
    moved["spec"]["selector"]["matchLabels"]["tier"] = "x"
    moved["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    immutable = api.apply(f"{DEPLOY_PATH}/web", moved, force=True)
    assert immutable.status_code == 422 and "field is immutable" in immutable.json()["message"]

    frozen = configmap("frozen", {"k": "v"}, immutable=True)
    assert api.apply(f"{path}/frozen", frozen).status_code == 201
    changed = api.apply(f"{path}/frozen", dict(frozen, data={"k": "w"}))
    assert changed.status_code == 422
    assert changed.json()["details"]["causes"][0]["message"] == "Forbidden: field is immutable when `immutable` is set"

    no_manager = api.call("PATCH", f"{path}/frozen", frozen, content_type=APPLY)
    assert no_manager.status_code == 422 and "fieldManager: Required value" in no_manager.json()["message"]
    unknown = api.call("PATCH", f"{path}/frozen", frozen, content_type="text/plain")
    assert unknown.status_code == 415


def test_auth_wrong_token_and_tls(tmp_path: Path) -> None:
    with FakeKube.start() as kube:
        assert requests.get(kube.url + "/api", headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 401
        # kubectl sends no credentials over plain http, so anonymous requests are let in there
        assert requests.get(kube.url + "/api", timeout=5).status_code == 200
    with FakeKube.start(tls=True) as kube:
        assert kube.url.startswith("https://") and kube.ca_file is not None
        denied = requests.get(kube.url + "/api/v1/namespaces", verify=str(kube.ca_file), timeout=5)
        assert denied.status_code == 401 and denied.json()["reason"] == "Unauthorized"
        ok = requests.get(kube.url + "/api/v1/namespaces", verify=str(kube.ca_file), headers=kube.auth_headers,
                          timeout=5)
        assert ok.status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(kube.url + "/version", timeout=5)  # not trusted without the fake's CA
        config = kube.kubeconfig(tmp_path / "kc").read_text()
        assert "certificate-authority-data" in config and "insecure-skip-tls-verify" not in config


def test_injected_failures(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    fake_kube.inject_failure("/configmaps", status=429, count=2, retry_after=2)
    for _ in range(2):
        r = api.get("/api/v1/namespaces/default/configmaps")
        assert r.status_code == 429 and r.headers["Retry-After"] == "2"
        assert r.json()["reason"] == "TooManyRequests" and r.json()["details"] == {"retryAfterSeconds": 2}
    assert api.get("/api/v1/namespaces/default/configmaps").status_code == 200
    fake_kube.inject_failure(r"/deployments/web$", status=500, method="PATCH")
    assert api.apply(f"{DEPLOY_PATH}/web", deployment()).status_code == 500
    assert api.apply(f"{DEPLOY_PATH}/web", deployment()).status_code == 201
    assert fake_kube.requests.count("PATCH", f"{DEPLOY_PATH}/web") == 2


# ------------------------------------------------------------------------------------------------
# server-side apply
# ------------------------------------------------------------------------------------------------

def test_apply_creates_then_noop_keeps_resource_version(api: Api) -> None:
    created = api.apply(f"{DEPLOY_PATH}/web", deployment())
    assert created.status_code == 201
    obj = created.json()
    assert obj["metadata"]["generation"] == 1
    entry = obj["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == ("envship", "Apply", "FieldsV1")
    containers = entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers['k:{"name":"web"}'] == {".": {}, "f:image": {}, "f:name": {}}
    assert obj["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted, not owned by the applier
    assert "f:strategy" not in entry["fieldsV1"]["f:spec"]

    time.sleep(0.3)  # the controller writes status in between: that is not a spec change
    current = api.get(f"{DEPLOY_PATH}/web").json()
    same = api.apply(f"{DEPLOY_PATH}/web", deployment())
    assert same.status_code == 200
    assert same.json()["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
    assert same.json()["metadata"]["generation"] == 1

    changed = api.apply(f"{DEPLOY_PATH}/web", deployment(image="ghcr.io/acme/web:2"))
    assert changed.json()["metadata"]["generation"] == 2
    assert int(changed.json()["metadata"]["resourceVersion"]) > int(current["metadata"]["resourceVersion"])
    labelled = deployment(image="ghcr.io/acme/web:2")
    labelled["metadata"]["labels"] = {"envship.dev/environment": "staging"}
    assert api.apply(f"{DEPLOY_PATH}/web", labelled).json()["metadata"]["generation"] == 2  # metadata only


def test_apply_merges_lists_by_key_and_removes_what_the_manager_dropped(api: Api) -> None:
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    api.apply(f"{DEPLOY_PATH}/web", deployment(env=env))
    # another manager adds a variable and a sidecar: merged by name, not replacing the list
    other = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
             "spec": {"template": {"spec": {"containers": [
                 {"name": "web", "env": [{"name": "C", "value": "3"}]},
                 {"name": "proxy", "image": "envoy:1", "ports": [{"containerPort": 9901}]}]}}}}
    assert api.apply(f"{DEPLOY_PATH}/web", other, manager="platform").status_code == 200
    merged = api.get(f"{DEPLOY_PATH}/web").json()["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in merged] == ["web", "proxy"]
    assert [e["name"] for e in merged[0]["env"]] == ["A", "B", "C"]
    assert merged[1]["ports"] == [{"containerPort": 9901, "protocol": "TCP"}]

    # envship drops B: removed; C (owned by the other manager) stays
    api.apply(f"{DEPLOY_PATH}/web", deployment(env=[{"name": "A", "value": "1"}]))
    web = api.get(f"{DEPLOY_PATH}/web").json()["spec"]["template"]["spec"]["containers"][0]
    assert [e["name"] for e in web["env"]] == ["A", "C"]
    # envFrom is atomic: replaced as a whole
    with_from = deployment(env=[{"name": "A", "value": "1"}])
    with_from["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "env-1"}}]
    api.apply(f"{DEPLOY_PATH}/web", with_from)
    with_from["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "env-2"}}]
    api.apply(f"{DEPLOY_PATH}/web", with_from)
    web = api.get(f"{DEPLOY_PATH}/web").json()["spec"]["template"]["spec"]["containers"][0]
    assert web["envFrom"] == [{"configMapRef": {"name": "env-2"}}]
    # a label envship no longer applies is removed too
    labelled = deployment()
    labelled["metadata"]["labels"] = {"a": "1", "b": "2"}
    api.apply(f"{DEPLOY_PATH}/web", labelled)
    labelled["metadata"]["labels"] = {"a": "1"}
    api.apply(f"{DEPLOY_PATH}/web", labelled)
    assert api.get(f"{DEPLOY_PATH}/web").json()["metadata"]["labels"] == {"a": "1"}


def test_apply_conflicts_and_force(api: Api) -> None:
    api.apply(f"{DEPLOY_PATH}/web", deployment(replicas=2))
    clash = api.apply(f"{DEPLOY_PATH}/web", deployment(replicas=5, image="ghcr.io/acme/web:9"), manager="intruder")
    assert clash.status_code == 409
    body = clash.json()
    assert body["reason"] == "Conflict" and body["message"].startswith("Apply failed with 2 conflicts: ")
    fields = {c["field"] for c in body["details"]["causes"]}
    assert fields == {".spec.replicas", '.spec.template.spec.containers[name="web"].image'}
    assert all(c["reason"] == "FieldManagerConflict" and 'conflict with "envship"' in c["message"]
               for c in body["details"]["causes"])
    # same values are shared, not conflicting
    assert api.apply(f"{DEPLOY_PATH}/web", deployment(replicas=2), manager="intruder").status_code == 200
    forced = api.apply(f"{DEPLOY_PATH}/web", deployment(replicas=5), manager="intruder", force=True)
    assert forced.status_code == 200 and forced.json()["spec"]["replicas"] == 5
    managers = {e["manager"]: e for e in forced.json()["metadata"]["managedFields"]}
    assert "f:replicas" not in managers["envship"]["fieldsV1"]["f:spec"]
    # an update (kubectl scale, an HPA) takes ownership too; applying over it conflicts
    scaled = api.call("PATCH", f"{DEPLOY_PATH}/web", {"spec": {"replicas": 3}},
                      content_type="application/merge-patch+json", fieldManager="kubectl-scale")
    assert scaled.status_code == 200
    again = api.apply(f"{DEPLOY_PATH}/web", deployment(replicas=5), manager="intruder")
    assert again.status_code == 409 and 'conflict with "kubectl-scale"' in again.json()["message"]


def test_dry_run_leaves_no_trace(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    rv = api.get("/api/v1/namespaces").json()["metadata"]["resourceVersion"]
    dry = api.apply(f"{DEPLOY_PATH}/web", deployment(), dryRun="All")
    assert dry.status_code == 201 and dry.json()["metadata"]["uid"]
    assert api.get(f"{DEPLOY_PATH}/web").status_code == 404
    created = api.call("POST", "/api/v1/namespaces/default/configmaps", configmap("c", {"a": "1"}), dryRun="All")
    assert created.status_code == 201 and api.get("/api/v1/namespaces/default/configmaps/c").status_code == 404
    assert api.get("/api/v1/namespaces").json()["metadata"]["resourceVersion"] == rv

    api.apply(f"{DEPLOY_PATH}/web", deployment())
    time.sleep(0.3)
    before = api.get(f"{DEPLOY_PATH}/web").json()
    preview = api.apply(f"{DEPLOY_PATH}/web", deployment(image="ghcr.io/acme/web:2"), dryRun="All")
    assert preview.json()["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/web:2"
    assert preview.json()["metadata"]["generation"] == 2
    assert api.call("DELETE", f"{DEPLOY_PATH}/web", dryRun="All").status_code == 200
    after = api.get(f"{DEPLOY_PATH}/web").json()
    assert after["spec"] == before["spec"] and after["metadata"]["generation"] == 1
    assert api.call("POST", "/api/v1/namespaces/default/configmaps", configmap("c", {}), dryRun="Some").status_code \
        == 422


def test_patch_types_and_status_subresource(api: Api) -> None:
    api.apply(f"{DEPLOY_PATH}/web", deployment(env=[{"name": "A", "value": "1"}]))
    restart = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}}
    r = api.call("PATCH", f"{DEPLOY_PATH}/web", restart, content_type="application/strategic-merge-patch+json")
    assert r.status_code == 200 and r.json()["metadata"]["generation"] == 2
    smp = {"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}]}}}}
    r = api.call("PATCH", f"{DEPLOY_PATH}/web", smp, content_type="application/strategic-merge-patch+json")
    assert [e["name"] for e in r.json()["spec"]["template"]["spec"]["containers"][0]["env"]] == ["A", "B"]
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 2}, {"op": "test", "path": "/spec/replicas",
                                                                     "value": 2}]
    assert api.call("PATCH", f"{DEPLOY_PATH}/web", ops, content_type="application/json-patch+json").json()[
        "spec"]["replicas"] == 2
    bad = api.call("PATCH", f"{DEPLOY_PATH}/web", [{"op": "remove", "path": "/spec/nope"}],
                   content_type="application/json-patch+json")
    assert bad.status_code == 422

    # /status writes only status, the main resource ignores status (an HPA: no controller writes it here)
    hpa_path = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web"
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 1, "maxReplicas": 3}}
    obj = api.apply(hpa_path, hpa).json()
    obj["status"] = {"currentReplicas": 2, "desiredReplicas": 2}
    obj["spec"]["maxReplicas"] = 7
    status_put = api.call("PUT", f"{hpa_path}/status", obj).json()
    assert status_put["status"] == {"currentReplicas": 2, "desiredReplicas": 2}
    assert status_put["spec"]["maxReplicas"] == 3 and status_put["metadata"]["generation"] == 1
    stale = api.call("PUT", hpa_path, obj)
    assert stale.status_code == 409  # obj's resourceVersion is from before the status write
    main_put = dict(status_put, status={"currentReplicas": 9})
    main_put["spec"] = dict(status_put["spec"], maxReplicas=5)
    updated = api.call("PUT", hpa_path, main_put).json()
    assert updated["status"]["currentReplicas"] == 2 and updated["metadata"]["generation"] == 2
    patched = api.call("PATCH", f"{hpa_path}/status", {"status": {"desiredReplicas": 3}},
                       content_type="application/merge-patch+json").json()
    assert patched["status"] == {"currentReplicas": 2, "desiredReplicas": 3} and patched["metadata"]["generation"] == 2


# ------------------------------------------------------------------------------------------------
# watch and selectors
# ------------------------------------------------------------------------------------------------

def test_watch_replays_from_resource_version_and_times_out(api: Api) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    start = api.get(path).json()["metadata"]["resourceVersion"]
    api.call("POST", path, configmap("a", {"k": "1"}))
    api.apply(f"{path}/a", configmap("a", {"k": "2"}), force=True)
    api.call("DELETE", f"{path}/a")
    t0 = time.monotonic()
    events = api.watch(path, resourceVersion=start, timeoutSeconds=1)
    assert 0.9 < time.monotonic() - t0 < 5
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events
            if e["object"]["metadata"]["name"] == "a"] == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert events[1]["object"]["kind"] == "ConfigMap" and events[1]["object"]["data"] == {"k": "2"}
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs)

    # without a resourceVersion: synthetic ADDED events for what exists; as Tables for kubectl get -w
    table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    response = api.session.get(api.kube.url + path, params={"watch": "1", "timeoutSeconds": "1"}, stream=True,
                               headers={"Accept": table}, timeout=30)
    initial = [json.loads(line) for line in response.iter_lines(chunk_size=None) if line]
    assert [e["type"] for e in initial] == ["ADDED"]
    assert initial[0]["object"]["kind"] == "Table"
    assert initial[0]["object"]["rows"][0]["cells"][0] == "kube-root-ca.crt"
    assert [c["name"] for c in initial[0]["object"]["columnDefinitions"]] == ["Name", "Age"]


def test_watch_bookmarks_selectors_and_expiry() -> None:
    with FakeKube.start(bookmark_interval=0.2, history_size=5) as kube:
        api = Api(kube)
        path = "/api/v1/namespaces/default/configmaps"
        rv = api.get(path).json()["metadata"]["resourceVersion"]
        import threading

        def writes() -> None:
            time.sleep(0.3)
            api.call("POST", path, {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "x", "labels": {"app": "web"}}})
            api.apply(f"{path}/x", {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "x", "labels": {"app": "other"}}}, manager="python-requests",
                      force=True)

        threading.Thread(target=writes, daemon=True).start()
        events = api.watch(path, resourceVersion=rv, timeoutSeconds=1, allowWatchBookmarks="true",
                           labelSelector="app=web")
        kinds = [e["type"] for e in events]
        assert "BOOKMARK" in kinds
        bookmark = next(e for e in events if e["type"] == "BOOKMARK")
        bookmark_rv = bookmark["object"]["metadata"]["resourceVersion"]
        assert bookmark["object"] == {"kind": "ConfigMap", "apiVersion": "v1",
                                      "metadata": {"resourceVersion": bookmark_rv}}
        # entering the selection is ADDED, leaving it is DELETED
        assert [e["type"] for e in events if e["type"] != "BOOKMARK"] == ["ADDED", "DELETED"]
        for i in range(8):
            api.call("POST", path, configmap(f"n{i}", {}))
        expired = api.watch(path, resourceVersion=rv, timeoutSeconds=1)
        assert expired == [{"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                                        "status": "Failure", "message": expired[0]["object"]["message"],
                                                        "reason": "Expired", "code": 410}}]
        assert expired[0]["object"]["message"].startswith("too old resource version")


def test_label_and_field_selectors(api: Api) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    for name, labels in (("a", {"app": "web", "tier": "fe"}), ("b", {"app": "web", "tier": "be", "canary": "1"}),
                         ("c", {"app": "db"}), ("d", {})):
        api.call("POST", path, {"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": name, "labels": labels}})

    def names(selector: str, **params: Any) -> list[str]:
        r = api.get(path, labelSelector=selector, **params)
        assert r.status_code == 200, r.text
        return sorted(i["metadata"]["name"] for i in r.json()["items"] if i["metadata"]["name"] in "abcd")

    assert names("app=web") == ["a", "b"]
    assert names("app==web,tier!=be") == ["a"]
    assert names("app in (web,db),!canary") == ["a", "c"]
    assert names("tier notin (fe)") == ["b", "c", "d"]
    assert names("canary") == ["b"]
    assert names("", fieldSelector="metadata.name=c") == ["c"]
    assert names("", fieldSelector="metadata.name!=c") == ["a", "b", "d"]
    assert api.get(path, labelSelector="a b c").status_code == 400
    assert api.get(path, fieldSelector="spec.nope=1").status_code == 400


# ------------------------------------------------------------------------------------------------
# namespaces and deletion
# ------------------------------------------------------------------------------------------------

def test_namespace_terminates_then_disappears_with_its_content(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "preview-1"}}
    assert api.apply("/api/v1/namespaces/preview-1", ns).status_code == 201
    fake_kube.wait_for(lambda: fake_kube.get("serviceaccounts", "preview-1", "default"))
    cm_path = "/api/v1/namespaces/preview-1/configmaps"
    api.call("POST", cm_path, configmap("c", {}, ns="preview-1"))
    deleted = api.call("DELETE", "/api/v1/namespaces/preview-1")
    assert deleted.status_code == 200
    assert deleted.json()["status"]["phase"] == "Terminating" and deleted.json()["metadata"]["deletionTimestamp"]
    refused = api.call("POST", cm_path, configmap("d", {}, ns="preview-1"))
    if refused.status_code != 404:  # the namespace may already be gone
        assert refused.status_code == 403 and "because it is being terminated" in refused.json()["message"]
    again = api.call("DELETE", "/api/v1/namespaces/preview-1")
    assert again.status_code in (404, 409)
    fake_kube.wait_for(lambda: fake_kube.get("namespaces", None, "preview-1") is None, timeout=5)
    assert fake_kube.get("configmaps", "preview-1", "c") is None
    assert api.call("DELETE", "/api/v1/namespaces/default").status_code == 403


def test_deleting_a_deployment_removes_its_replicasets_and_pods(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    api.apply(f"{DEPLOY_PATH}/web", deployment(replicas=2))
    fake_kube.wait_for(lambda: len(fake_kube.pods("default", "app=web")) == 2)
    assert api.call("DELETE", f"{DEPLOY_PATH}/web", propagationPolicy="Background").status_code == 200
    assert fake_kube.list("replicasets", "default") == [] and fake_kube.pods("default", "app=web") == []


# ------------------------------------------------------------------------------------------------
# the controller's scenarios
# ------------------------------------------------------------------------------------------------

def test_healthy_rollout_then_update_and_rollback(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    api.apply(f"{DEPLOY_PATH}/web", deployment(replicas=2))
    done = wait_status(fake_kube, "deployment", "web",
                       lambda d: condition(d, "Progressing").get("reason") == "NewReplicaSetAvailable")
    st = done["status"]
    assert (st["observedGeneration"], st["replicas"], st["updatedReplicas"], st["readyReplicas"],
            st["availableReplicas"]) == (1, 2, 2, 2, 2)
    assert condition(done, "Available")["status"] == "True"
    first_rs = fake_kube.list("replicasets", "default")[0]
    pod = fake_kube.pods("default", "app=web")[0]
    assert pod["metadata"]["labels"]["pod-template-hash"] == first_rs["metadata"]["labels"]["pod-template-hash"]
    assert pod["metadata"]["ownerReferences"][0]["uid"] == first_rs["metadata"]["uid"]
    assert pod["spec"]["nodeName"].startswith("fake-node-") and container_status(pod)["ready"] is True
    reasons = {e["reason"] for e in fake_kube.events("default")}
    assert {"ScalingReplicaSet", "SuccessfulCreate", "Scheduled", "Pulled", "Created", "Started"} <= reasons

    api.apply(f"{DEPLOY_PATH}/web", deployment(replicas=2, image="ghcr.io/acme/web:2"))
    wait_status(fake_kube, "deployment", "web", lambda d: d["status"].get("observedGeneration") == 2 and condition(
        d, "Progressing").get("reason") == "NewReplicaSetAvailable" and d["status"].get("replicas") == 2)
    sets = {r["metadata"]["name"]: r for r in fake_kube.list("replicasets", "default")}
    assert len(sets) == 2 and sets[first_rs["metadata"]["name"]]["spec"]["replicas"] == 0
    assert all(p["spec"]["containers"][0]["image"].endswith(":2") for p in fake_kube.pods("default", "app=web"))
    # applying the first template again reuses its ReplicaSet as the newest revision
    api.apply(f"{DEPLOY_PATH}/web", deployment(replicas=2))
    back = wait_status(fake_kube, "deployment", "web", lambda d: d["status"].get("observedGeneration") == 3
                       and condition(d, "Progressing").get("reason") == "NewReplicaSetAvailable"
                       and d["status"].get("replicas") == 2)
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert len(fake_kube.list("replicasets", "default")) == 2
    scaled_up = [e for e in fake_kube.events("default", involved="web", reason="ScalingReplicaSet")
                 if e["message"] == f"Scaled up replica set {first_rs['metadata']['name']} from 0 to 2"]
    assert len(scaled_up) == 1 and scaled_up[0]["count"] == 2  # the same event again counts up


def test_recreate_strategy_stops_old_pods_first(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    api.apply(f"{DEPLOY_PATH}/web", deployment(replicas=2, strategy={"type": "Recreate"}))
    wait_status(fake_kube, "deployment", "web", lambda d: d["status"].get("availableReplicas") == 2)
    api.apply(f"{DEPLOY_PATH}/web", deployment(replicas=2, image="ghcr.io/acme/web:2", strategy={"type": "Recreate"}))
    images: set[tuple[str, ...]] = set()

    def rolled() -> bool:
        images.add(tuple(sorted(p["spec"]["containers"][0]["image"] for p in fake_kube.pods("default", "app=web"))))
        d = fake_kube.get("deployment", "default", "web")
        return bool(d and d["status"].get("observedGeneration") == 2 and d["status"].get("availableReplicas") == 2
                    and d["status"].get("updatedReplicas") == 2 and d["status"].get("replicas") == 2)

    fake_kube.wait_for(rolled, timeout=8, interval=0.005)
    assert not any(len(set(group)) > 1 for group in images)  # never old and new pods together


def test_slow_scenario_by_annotation(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    api.apply(f"{DEPLOY_PATH}/web", deployment(annotations={"fake.envship.dev/scenario": "slow",
                                                              "fake.envship.dev/ready-after": "800ms"}))
    pod = pod_of(fake_kube, "app=web", lambda p: container_status(p).get("started"))
    assert container_status(pod)["ready"] is False
    t0 = time.monotonic()
    wait_status(fake_kube, "deployment", "web", lambda d: d["status"].get("readyReplicas") == 1)
    assert 0.3 < time.monotonic() - t0 < 3


def test_crashloop_backs_off_logs_and_exceeds_the_progress_deadline(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    api.apply(f"{DEPLOY_PATH}/web", deployment(image="ghcr.io/acme/crashloop@sha256:" + "a" * 64,
                                               progressDeadlineSeconds=1))
    pod = pod_of(fake_kube, "app=web", lambda p: container_status(p).get("restartCount", 0) >= 2)
    cs = container_status(pod)
    assert waiting_reason(pod) == "CrashLoopBackOff" and cs["lastState"]["terminated"]["exitCode"] == 1
    assert pod["status"]["phase"] == "Running" and cs["ready"] is False
    name = pod["metadata"]["name"]
    log = api.get(f"/api/v1/namespaces/default/pods/{name}/log", container="web", tailLines=2)
    assert log.status_code == 200 and log.headers["Content-Type"].startswith("text/plain")
    assert log.text.splitlines() == ["main.main()", "\t/app/main.go:42 +0x1d"]
    full = api.get(f"/api/v1/namespaces/default/pods/{name}/log").text
    assert "panic: fake crash-loop scenario: exiting with code 1" in full
    assert "attempt" in api.get(f"/api/v1/namespaces/default/pods/{name}/log", previous="true").text
    assert fake_kube.events("default", involved=name, reason="BackOff")[0]["type"] == "Warning"
    failed = wait_status(fake_kube, "deployment", "web",
                         lambda d: condition(d, "Progressing").get("reason") == "ProgressDeadlineExceeded")
    assert condition(failed, "Progressing")["status"] == "False"
    assert condition(failed, "Progressing")["message"].endswith("has timed out progressing.")


def test_image_pull_failure(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    api.apply(f"{DEPLOY_PATH}/web", deployment(image="ghcr.io/acme/web:pullfail"))
    pod = pod_of(fake_kube, "app=web", lambda p: waiting_reason(p) == "ErrImagePull")
    assert "not found" in container_status(pod)["state"]["waiting"]["message"]
    pod_of(fake_kube, "app=web", lambda p: waiting_reason(p) == "ImagePullBackOff")
    failed = fake_kube.events("default", involved=pod["metadata"]["name"], reason="Failed")
    assert any(e["message"].startswith('Failed to pull image "ghcr.io/acme/web:pullfail"') for e in failed)
    log = api.get(f"/api/v1/namespaces/default/pods/{pod['metadata']['name']}/log")
    assert log.status_code == 400 and "is waiting to start" in log.json()["message"]


def test_missing_secret_key_blocks_until_it_exists(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "app-secrets", "key": "TOKEN"}}}]
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-secrets"},
              "stringData": {"OTHER": "x"}}
    api.apply("/api/v1/namespaces/default/secrets/app-secrets", secret)
    api.apply(f"{DEPLOY_PATH}/web", deployment(env=env))
    pod = pod_of(fake_kube, "app=web", lambda p: waiting_reason(p) == "CreateContainerConfigError")
    assert container_status(pod)["state"]["waiting"]["message"] == \
        "couldn't find key TOKEN in Secret default/app-secrets"
    assert fake_kube.get("secret", "default", "app-secrets")["data"] == {"OTHER": "eA=="}  # stringData -> data
    secret["stringData"]["TOKEN"] = "t"
    api.apply("/api/v1/namespaces/default/secrets/app-secrets", secret)
    wait_status(fake_kube, "deployment", "web", lambda d: d["status"].get("availableReplicas") == 1)


def test_env_from_a_missing_configmap_and_the_missingkey_scenario(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    missing = deployment("a")
    missing["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "a-env-1"}}]
    api.apply(f"{DEPLOY_PATH}/a", missing)
    pod = pod_of(fake_kube, "app=a", lambda p: waiting_reason(p) == "CreateContainerConfigError")
    assert container_status(pod)["state"]["waiting"]["message"] == 'configmap "a-env-1" not found'
    api.apply(f"{DEPLOY_PATH}/b", deployment("b", image="registry.example:5000/acme/missingkey:1"))
    pod = pod_of(fake_kube, "app=b", lambda p: waiting_reason(p) == "CreateContainerConfigError")
    assert container_status(pod)["state"]["waiting"]["message"].startswith("couldn't find key ")


def test_unschedulable_and_never_ready(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    api.apply(f"{DEPLOY_PATH}/a", deployment("a", annotations={"fake.envship.dev/scenario": "unschedulable"}))
    fake_kube.set_scenario("neverready", image="acme/probe")
    api.apply(f"{DEPLOY_PATH}/b", deployment("b", image="ghcr.io/acme/probe:1"))
    pod = pod_of(fake_kube, "app=a", lambda p: condition(p, "PodScheduled").get("reason") == "Unschedulable")
    assert pod["status"]["phase"] == "Pending" and "nodeName" not in pod["spec"]
    assert condition(pod, "PodScheduled")["message"] == "0/3 nodes are available: 3 Insufficient cpu."
    assert fake_kube.events("default", involved=pod["metadata"]["name"], reason="FailedScheduling")
    pod = pod_of(fake_kube, "app=b", lambda p: fake_kube.events("default", involved=p["metadata"]["name"],
                                                                reason="Unhealthy"))
    assert pod["status"]["phase"] == "Running" and container_status(pod)["ready"] is False
    event = fake_kube.events("default", involved=pod["metadata"]["name"], reason="Unhealthy")[0]
    assert event["message"] == "Readiness probe failed: HTTP probe failed with statuscode: 503"
    assert event["type"] == "Warning" and event["involvedObject"]["kind"] == "Pod"


def test_invalid_image_name(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    api.apply(f"{DEPLOY_PATH}/web", deployment(image="ghcr.io/Acme/Web:1"))
    pod_of(fake_kube, "app=web", lambda p: waiting_reason(p) == "InvalidImageName")


def test_statefulset_daemonset_job(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    template = {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "pg:16"}]}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
           "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                    "template": template}}
    api.apply("/apis/apps/v1/namespaces/default/statefulsets/db", sts)
    done = wait_status(fake_kube, "statefulset", "db", lambda s: s["status"].get("readyReplicas") == 2)
    assert done["status"]["currentRevision"] == done["status"]["updateRevision"]
    assert sorted(p["metadata"]["name"] for p in fake_kube.pods("default", "app=db")) == ["db-0", "db-1"]
    template["spec"]["containers"][0]["image"] = "pg:17"
    api.apply("/apis/apps/v1/namespaces/default/statefulsets/db", sts)
    rolled = wait_status(fake_kube, "statefulset", "db", lambda s: s["status"].get("observedGeneration") == 2
                         and s["status"].get("updatedReplicas") == 2 and s["status"].get("readyReplicas") == 2
                         and s["status"]["currentRevision"] == s["status"]["updateRevision"])
    assert rolled["status"]["updateRevision"] != done["status"]["updateRevision"]
    assert all(p["spec"]["containers"][0]["image"] == "pg:17" for p in fake_kube.pods("default", "app=db"))

    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": {"metadata": {"labels": {"app": "agent"}},
                                "spec": {"containers": [{"name": "a", "image": "agent:1"}]}}}}
    api.apply("/apis/apps/v1/namespaces/default/daemonsets/agent", ds)
    st = wait_status(fake_kube, "daemonset", "agent", lambda d: d["status"].get("numberAvailable") == 3)["status"]
    assert (st["desiredNumberScheduled"], st["updatedNumberScheduled"]) == (3, 3)

    def job(name: str, image: str) -> dict[str, Any]:
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                "spec": {"backoffLimit": 1, "template": {"spec": {"restartPolicy": "Never",
                                                                  "containers": [{"name": "m", "image": image}]}}}}

    api.apply("/apis/batch/v1/namespaces/default/jobs/migrate", job("migrate", "acme/migrate:1"))
    api.apply("/apis/batch/v1/namespaces/default/jobs/broken", job("broken", "acme/crashloop:1"))
    ok = wait_status(fake_kube, "job", "migrate", lambda j: condition(j, "Complete").get("status") == "True")
    assert ok["status"]["succeeded"] == 1 and ok["status"]["completionTime"]
    assert ok["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "migrate"
    bad = wait_status(fake_kube, "job", "broken", lambda j: condition(j, "Failed").get("status") == "True")
    assert condition(bad, "Failed")["reason"] == "BackoffLimitExceeded" and bad["status"]["failed"] == 2
    no_restart = job("x", "a:1")
    no_restart["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert api.apply("/apis/batch/v1/namespaces/default/jobs/x", no_restart).status_code == 422


def test_load_balancer_service_and_ingress_get_an_address(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]}}
    created = api.apply("/api/v1/namespaces/default/services/web", svc).json()
    assert created["spec"]["clusterIP"].startswith("10.96.") and created["spec"]["ports"][0]["nodePort"] >= 30000
    assert created["spec"]["ports"][0]["targetPort"] == 80
    ing = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
           "spec": {"rules": [{"host": "a.example.com"}]}}
    api.apply("/apis/networking.k8s.io/v1/namespaces/default/ingresses/web", ing)
    for kind in ("service", "ingress"):
        lb = wait_status(fake_kube, kind, "web", lambda o: (o.get("status") or {}).get("loadBalancer", {}).get(
            "ingress"))
        assert lb["status"]["loadBalancer"]["ingress"][0]["ip"] == "203.0.113.10"
    again = api.apply("/api/v1/namespaces/default/services/web", svc).json()
    assert again["spec"]["clusterIP"] == created["spec"]["clusterIP"]


def test_logs_need_a_container_name_for_multi_container_pods(api: Api, fake_kube: FakeKube) -> None:  # noqa: F811
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}
    assert api.apply("/api/v1/namespaces/default/pods/p", pod).status_code == 201
    wait_status(fake_kube, "pod", "p", lambda p: condition(p, "Ready").get("status") == "True")
    r = api.get("/api/v1/namespaces/default/pods/p/log")
    assert r.status_code == 400 and r.json()["message"] == \
        "a container name must be specified for pod p, choose one of: [a b]"
    assert api.get("/api/v1/namespaces/default/pods/p/log", container="b").text.endswith("listening on :8080\n")
    assert api.get("/api/v1/namespaces/default/pods/p/log", container="c").status_code == 400
    assert api.get("/api/v1/namespaces/default/pods/p/log", container="b", previous="true").status_code == 400


# ------------------------------------------------------------------------------------------------
# kubectl against the fake
# ------------------------------------------------------------------------------------------------

KUBECTLS = kubectl_binaries()

MANIFESTS = {
    "configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata: {name: web-env}
data: {LOG_LEVEL: info}
""",
    "service.yaml": """\
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
""",
    "deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  progressDeadlineSeconds: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: IMAGE
        envFrom: [{configMapRef: {name: web-env}}]
""",
}


@pytest.mark.skipif(not KUBECTLS, reason="no kubectl binary found")
@pytest.mark.parametrize("kubectl", KUBECTLS)
def test_kubectl_applies_and_reads_rollout_status(kubectl: str, fake_kube: FakeKube, tmp_path: Path) -> None:  # noqa: F811
    env = kubectl_env(fake_kube.kubeconfig(tmp_path / "kubeconfig"), tmp_path / "home")

    def run(*args: str, timeout: float = 40) -> subprocess.CompletedProcess[str]:
        return subprocess.run([kubectl, "--request-timeout=20s", *args], env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def write(directory: Path, image: str) -> Path:
        directory.mkdir()
        for name, text in MANIFESTS.items():
            (directory / name).write_text(text.replace("IMAGE", image))
        return directory

    applied = run("apply", "--server-side", "-f", str(write(tmp_path / "ok", "ghcr.io/acme/web:1")))
    assert applied.returncode == 0, applied.stderr
    assert "deployment.apps/web serverside-applied" in applied.stdout
    status = run("rollout", "status", "deployment/web", "--timeout=20s")
    assert status.returncode == 0, status.stderr
    assert 'deployment "web" successfully rolled out' in status.stdout
    got = run("get", "deploy", "web", "-o", "json")
    assert got.returncode == 0, got.stderr
    live = json.loads(got.stdout)
    assert live["status"]["availableReplicas"] == 2
    stored = fake_kube.get("deployment", "default", "web")
    assert ("kubectl", "Apply") in {(e["manager"], e["operation"]) for e in stored["metadata"]["managedFields"]}
    table = run("get", "pods")
    assert table.returncode == 0 and "Running" in table.stdout, table.stderr
    unchanged = run("diff", "--server-side", "-f", str(tmp_path / "ok"))  # a dry-run apply that changes nothing
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr

    changed = run("diff", "--server-side", "-f", str(write(tmp_path / "bad", "ghcr.io/acme/crashloop:2")))
    assert changed.returncode == 1 and "+        image: ghcr.io/acme/crashloop:2" in changed.stdout, changed.stderr
    crashing = run("apply", "--server-side", "-f", str(tmp_path / "bad"))
    assert crashing.returncode == 0, crashing.stderr
    t0 = time.monotonic()
    failed = run("rollout", "status", "deployment/web", "--timeout=20s")
    assert failed.returncode != 0
    assert 'deployment "web" exceeded its progress deadline' in failed.stderr
    assert time.monotonic() - t0 < 15
    crashing_pod = next(p["metadata"]["name"] for p in fake_kube.pods("default", "app=web")
                        if "crashloop" in p["spec"]["containers"][0]["image"])
    logs = run("logs", crashing_pod, "--tail=4")
    assert logs.returncode == 0 and "panic: fake crash-loop scenario" in logs.stdout, logs.stderr
    assert run("delete", "deployment", "web").returncode == 0
    assert fake_kube.get("deployment", "default", "web") is None


@pytest.mark.skipif(not KUBECTLS, reason="no kubectl binary found")
@pytest.mark.parametrize("kubectl", KUBECTLS)
def test_kubectl_over_tls_verifies_the_ca_and_sends_the_token(kubectl: str, tmp_path: Path) -> None:
    with FakeKube.start(tls=True) as kube:
        env = kubectl_env(kube.kubeconfig(tmp_path / "kubeconfig"), tmp_path / "home")
        ok = subprocess.run([kubectl, "--request-timeout=10s", "get", "namespaces", "-o", "name"], env=env,
                            capture_output=True, text=True, timeout=30, check=False)
        assert ok.returncode == 0 and "namespace/default" in ok.stdout, ok.stderr
        assert not [r for r in kube.requests if r.status == 401]
        kube.kubeconfig(tmp_path / "kubeconfig")  # same CA, now with a wrong token
        (tmp_path / "kubeconfig").write_text((tmp_path / "kubeconfig").read_text().replace(kube.token or "", "nope"))
        denied = subprocess.run([kubectl, "--request-timeout=10s", "get", "namespaces"], env=env,
                                capture_output=True, text=True, timeout=30, check=False)
        assert denied.returncode != 0 and "Unauthorized" in denied.stderr + denied.stdout


# ------------------------------------------------------------------------------------------------
# the script
# ------------------------------------------------------------------------------------------------

def test_script_prints_its_url_and_exits_after_max_seconds(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.kube_apiserver", "--latency-ms", "20",
                             "--max-seconds", "2", "--kubeconfig", str(kubeconfig)], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        t0 = time.monotonic()
        assert requests.get(url + "/version", timeout=5).json()["gitVersion"].startswith("v1.32")
        assert time.monotonic() - t0 >= 0.02  # the configured latency
        assert url in kubeconfig.read_text()
        counts = requests.get(url + "/_fake/requests", timeout=5).json()
        assert counts["byMethodPath"] == {"GET /version": 1}
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
