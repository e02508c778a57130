"""Ownership: a deploy changes, prunes and reveals only what is its own (ApplySets, KEP-3659).

End to end against the fake API server, with neighbours present: two previews of one app, two
repositories with the same app and environment names, another team's objects in a shared namespace,
a deploy made by the previous envship version. After each deploy, everything that is not the deploy's
own is compared byte for byte (every field, resourceVersion included) with what it was before.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import subprocess
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from fakes.kube_apiserver import FakeKube
from fakes.pytest_plugin import fake_kube, kubectl_binaries, kubectl_env  # noqa: F401 - the fixture

from envship.cli import main
from envship.core import ownership
from envship.core.ownership import PART_OF, ApplySet, Decision, Inventory, applyset_id, decide, sweeping_prune
from envship.core.render import RenderedObject

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
IMAGE_A = f"ghcr.io/acme/hello@{DIGEST_A}"
IMAGE_B = f"ghcr.io/acme/hello@{DIGEST_B}"
DATA = Path(__file__).parent / "data"

CONFIG = """\
app: hello
image: ghcr.io/acme/hello
manifests: deploy
env:
  LOG_LEVEL: info
environments:
  staging:
    context: fake
    namespace: NAMESPACE
    create-namespace: true
  preview:
    preview: true
    context: fake
    namespace: hello-pr-{pr}
    create-namespace: true
"""

MANIFESTS = {
    "deployment.yaml": """\
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
        """,
    "service.yaml": """\
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          selector: {app: web}
          ports: [{port: 80}]
        """,
    "settings.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings}
        data: {mode: fast}
        """,
}


# -- the pure rules ---------------------------------------------------------------------------------
def test_applyset_id_is_computed_as_kubectl_computes_it() -> None:
    # kubectl 1.32 (KUBECTL_APPLYSET=true kubectl apply --applyset=secret/envship.hello.staging -n ns1)
    # labelled its parent with this id; test_kubectl_computes_the_same_applyset_id checks it live.
    assert applyset_id("envship.hello.staging", "ns1") == "applyset-vbxRCmISFKsk7hPuRRTeGGXnWSGtA_Cejw2SnzxeazQ-v1"
    applyset = ApplySet("hello", "staging", "ns1")
    assert applyset.name == "envship.hello.staging" and applyset.id == applyset_id("envship.hello.staging", "ns1")
    assert len(applyset.id) <= 63   # a label value
    assert ApplySet("hello", "preview", "hello-pr-1", 1).id != ApplySet("hello", "preview", "hello-pr-2", 2).id


def live(kind: str, name: str, labels: dict[str, str] | None = None, namespace: str = "ns1",
         api: str = "v1", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(labels or {}), "uid": f"uid-{kind}-{name}"}
    if kind != "Namespace":
        meta["namespace"] = namespace
    return {"apiVersion": api, "kind": kind, "metadata": meta, **extra}


def rendered(kind: str, name: str, source: bool = True, api: str = "v1") -> RenderedObject:
    from envship.errors import Location

    obj = live(kind, name, api=api)
    del obj["metadata"]["uid"]
    return RenderedObject(obj, Location("deploy/x.yaml", 1, 1) if source else None)


APPLYSET = ApplySet("hello", "staging", "ns1")
MEMBER = {PART_OF: APPLYSET.id}
OLD_LABELS = {"app.kubernetes.io/managed-by": "envship", "app.kubernetes.io/instance": "hello",
              "envship.dev/environment": "staging"}


def by_key(*objects: dict[str, Any]) -> dict[ownership.Key, dict[str, Any]]:
    return {ownership.key_of(o): o for o in objects}


def test_decide_applies_its_own_and_refuses_what_belongs_to_others() -> None:
    other_deploy = {PART_OF: ApplySet("hello", "staging", "ns2").id, **OLD_LABELS}
    state = by_key(live("Service", "web", MEMBER), live("ConfigMap", "theirs", {"team": "b"}),
                   live("Secret", "neighbour", other_deploy))
    decision = decide(Inventory(APPLYSET), [rendered("Service", "web"), rendered("ConfigMap", "theirs"),
                                            rendered("Secret", "neighbour")], state, adopt=False)
    assert [o.name for o in decision.apply] == ["web"]
    assert [p.message for p in decision.foreign] == [
        "ConfigMap/theirs in namespace ns1 already exists and belongs to someone else, not to this deploy",
        "Secret/neighbour in namespace ns1 already exists and belongs to another envship deploy (app 'hello', "
        f"environment 'staging', applyset {other_deploy[PART_OF]}), not to this deploy"]
    assert all(p.location is not None for p in decision.foreign)   # file:line of the manifest


def test_adopt_takes_foreign_objects_but_never_another_deploys() -> None:
    other_deploy = {PART_OF: ApplySet("web", "staging", "ns1").id}
    state = by_key(live("ConfigMap", "theirs", {"team": "b"}), live("Secret", "neighbour", other_deploy))
    decision = decide(Inventory(APPLYSET), [rendered("ConfigMap", "theirs"), rendered("Secret", "neighbour")],
                      state, adopt=True)
    assert [o.name for o in decision.apply] == ["theirs"] and decision.adopted == ["ConfigMap/theirs"]
    assert len(decision.foreign) == 1
    assert f"belongs to the ApplySet {other_deploy[PART_OF]}" in decision.foreign[0].message
    assert "never takes an object from another ApplySet" in decision.foreign[0].hint


def test_an_existing_namespace_is_used_as_it_is_unless_adopted() -> None:
    state = by_key(live("Namespace", "ns1", {"team": "b"}))
    generated = rendered("Namespace", "ns1", source=False)   # create-namespace: true
    kept = decide(Inventory(APPLYSET), [generated], state, adopt=False)
    assert kept.apply == [] and kept.foreign == [] and kept.namespace_kept
    assert "namespace ns1 exists and envship did not create it: it is used as it is" in kept.notes[0]
    adopted = decide(Inventory(APPLYSET), [generated], state, adopt=True)
    assert adopted.apply == [generated] and adopted.adopted == ["Namespace/ns1"]
    # a manifest naming an existing namespace is a foreign object like any other
    named = decide(Inventory(APPLYSET), [rendered("Namespace", "ns1")], state, adopt=False)
    assert named.apply == [] and "Namespace/ns1 already exists" in named.foreign[0].message


def test_prune_takes_members_only_and_never_the_namespace_holding_the_deploy() -> None:
    state = by_key(live("Namespace", "ns1", MEMBER), live("ConfigMap", "kept", MEMBER),
                   live("ConfigMap", "gone", MEMBER), live("ConfigMap", "unlabelled-twin", OLD_LABELS),
                   live("ConfigMap", "theirs"), live("Secret", "envship.hello.staging.v1", OLD_LABELS))
    decision = decide(Inventory(APPLYSET), [rendered("ConfigMap", "kept")], state, adopt=False)
    assert [ownership.describe(o) for o in decision.prune] == ["ConfigMap/gone"]
    assert any("namespace ns1 is no longer rendered but holds this deploy" in n for n in decision.notes)


def test_migration_owns_what_the_last_old_record_lists_with_the_old_labels() -> None:
    listed = live("ConfigMap", "hello-env-0123456789", OLD_LABELS)
    unlisted = live("ConfigMap", "hello-env-9876543210", OLD_LABELS)
    relabelled = live("ConfigMap", "listed-but-relabelled", {"team": "b"})
    legacy = frozenset(ownership.key_of(o) for o in (listed, relabelled))
    decision = decide(Inventory(APPLYSET, legacy), [], by_key(listed, unlisted, relabelled), adopt=False)
    assert [o["metadata"]["name"] for o in decision.prune] == ["hello-env-0123456789"]


@pytest.mark.parametrize("managers, owned", [(["envship"], True), (["kubectl-create", "envship"], False),
                                             ([], False)])
def test_migration_owns_a_namespace_only_if_the_old_version_created_it(managers: list[str], owned: bool) -> None:
    namespace = live("Namespace", "ns1", OLD_LABELS)
    namespace["metadata"]["managedFields"] = [{"manager": m, "operation": "Apply"} for m in managers]
    inventory = Inventory(APPLYSET, frozenset({ownership.key_of(namespace)}))
    assert inventory.owns(namespace) is owned


def sweep(members: Iterable[dict[str, Any]], keep: Iterable[str]) -> str | None:
    state = by_key(*members)
    kept = [rendered(o["kind"], o["metadata"]["name"], api=o["apiVersion"]) for o in state.values()
            if o["metadata"]["name"] in keep]
    problem = sweeping_prune(decide(Inventory(APPLYSET), kept, state, adopt=False), "hello", "ns1")
    return problem.message if problem else None


def test_sweeping_prunes_are_recognised() -> None:
    web = live("Deployment", "web", MEMBER, api="apps/v1")
    worker = live("Deployment", "worker", MEMBER, api="apps/v1")
    objects = [web, worker, live("Service", "web", MEMBER), live("ConfigMap", "settings", MEMBER),
               live("ConfigMap", "hello-env-0123456789", MEMBER), live("Secret", "hello-secrets-0123456789", MEMBER),
               live("Namespace", "ns1", MEMBER)]
    every = ["web", "worker", "settings", "hello-env-0123456789", "hello-secrets-0123456789", "ns1"]
    assert sweep(objects, every) is None
    # replaced env ConfigMap and Secret: routine, never counted
    assert sweep(objects, ["web", "worker", "settings", "ns1"]) is None
    assert sweep(objects, ["web", "settings", "hello-env-0123456789", "ns1"]) is None   # 2 of 4: half
    message = sweep(objects, ["settings", "ns1"])
    assert message is not None and message.startswith("it would delete every workload of the app")
    message = sweep(objects, ["worker", "ns1"])
    assert message is not None and message.startswith("it would delete 3 of the app's 4 objects")
    other_namespace = live("Namespace", "shared-infra", MEMBER)
    message = sweep([*objects, other_namespace], every)
    assert message is not None and "Namespace/shared-infra and everything in it" in message


def test_a_decision_is_empty_for_an_empty_cluster() -> None:
    decision = decide(Inventory(APPLYSET), [rendered("ConfigMap", "a")], {}, adopt=False)
    assert decision == Decision(apply=decision.apply, members=[]) and len(decision.apply) == 1


# -- end to end: the fake API server with neighbours ----------------------------------------------
class Repo:
    """A repository checkout (envship.yaml + deploy/) deploying to the shared fake cluster."""

    def __init__(self, root: Path, kube: FakeKube, namespace: str = "hello-staging",
                 repository: str = "acme/hello", config: str = CONFIG) -> None:
        self.root = root
        self.kube = kube
        self.namespace = namespace
        root.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = kube.kubeconfig(root / "kubeconfig")
        self.write("envship.yaml", config.replace("NAMESPACE", namespace))
        for name, text in MANIFESTS.items():
            self.write(f"deploy/{name}", text)
        self.environ = {"KUBECONFIG": str(self.kubeconfig), "SOURCE_DATE_EPOCH": "1700000000",
                        "ENVSHIP_LEASE_SECONDS": "2", "GITHUB_REPOSITORY": repository}

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    def remove(self, relative: str) -> None:
        (self.root / relative).unlink()

    def run(self, command: str, *args: str, env: str = "staging", image: str = IMAGE_A) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        argv = [command, "--config", str(self.root / "envship.yaml"), "--env", env, "--image", image, *args]
        if command != "render":
            argv.append("--skip-image-check")
        if command == "deploy":
            argv += ["--timeout", "20s"]
        code = main(argv, environ=dict(self.environ), out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    def deploy(self, *args: str, **kw: Any) -> tuple[int, str, str]:
        return self.run("deploy", *args, **kw)

    def applyset(self, env: str = "staging", pr: int | None = None) -> ApplySet:
        namespace = f"hello-pr-{pr}" if pr is not None else self.namespace
        return ApplySet("hello", env, namespace, pr)


@pytest.fixture
def repo(tmp_path: Path, fake_kube: FakeKube) -> Repo:  # noqa: F811 - the fixture
    return Repo(tmp_path / "repo", fake_kube)


Snapshot = dict[tuple[str, str, str], dict[str, Any]]


def snapshot(kube: FakeKube) -> Snapshot:
    """Every stored object but Events, exactly as stored."""
    with kube.store.cond:
        return {(f"{storage[0]}/{storage[1]}", obj["metadata"].get("namespace", ""), obj["metadata"]["name"]):
                copy.deepcopy(obj) for storage, obj in kube.store.all_objects() if storage[1] != "events"}


def belongs_to(applysets: Iterable[ApplySet], objects: Snapshot) -> Callable[[dict[str, Any]], bool]:
    """Whether an object is one of these deploys' own: a member, its parent, release records or lock, or
    made by the cluster for one of those (ReplicaSets and Pods of its Deployments)."""
    sets = list(applysets)
    uids = set()
    for obj in objects.values():
        meta = obj["metadata"]
        for a in sets:
            bookkeeping = meta.get("namespace") == a.namespace and (
                meta["name"] == a.name or meta["name"].startswith(f"{a.name}.v")
                or meta["name"] == f"envship-lock-{a.app}-{a.environment}")
            if (meta.get("labels") or {}).get(PART_OF) == a.id or bookkeeping:
                uids.add(meta["uid"])
    changed = True
    while changed:   # objects the cluster made for ours, transitively
        changed = False
        for obj in objects.values():
            meta = obj["metadata"]
            if meta["uid"] not in uids and any(r.get("uid") in uids for r in meta.get("ownerReferences") or []):
                uids.add(meta["uid"])
                changed = True
    return lambda obj: obj["metadata"]["uid"] in uids


def assert_untouched(before: Snapshot, after: Snapshot, *mine: ApplySet) -> None:
    """Everything in `before` that is not one of `mine` is still there, byte for byte."""
    ours = belongs_to(mine, {**before, **after})
    for key, obj in before.items():
        if ours(obj):
            continue
        assert key in after, f"{key} was deleted"
        assert after[key] == obj, f"{key} changed:\n{json.dumps(obj)[:600]}\n{json.dumps(after[key])[:600]}"


def members(kube: FakeKube, applyset: ApplySet) -> set[str]:
    selector = f"{PART_OF}={applyset.id}"
    found = set()
    for resource in ("namespaces", "deployments", "services", "configmaps", "secrets"):
        for obj in kube.list(resource, None, selector):
            found.add(f"{obj['kind']}/{obj['metadata']['name']}")
    return found


def test_first_deploy_creates_an_applyset_kubectl_can_read(repo: Repo) -> None:
    code, _, err = repo.deploy()
    assert code == 0, err
    applyset = repo.applyset()
    parent = repo.kube.get("secrets", repo.namespace, "envship.hello.staging")
    assert parent is not None
    assert parent["metadata"]["labels"]["applyset.kubernetes.io/id"] == applyset.id
    annotations = parent["metadata"]["annotations"]
    assert annotations["applyset.kubernetes.io/tooling"].startswith("envship/")
    assert annotations["applyset.kubernetes.io/contains-group-kinds"] == "ConfigMap,Deployment.apps,Namespace,Service"
    assert annotations["envship.dev/repository"] == "acme/hello"
    [env_configmap] = [c["metadata"]["name"] for c in repo.kube.list("configmaps", repo.namespace)
                       if c["metadata"]["name"].startswith("hello-env-")]
    assert members(repo.kube, applyset) == {"Namespace/hello-staging", "Deployment/web", "Service/web",
                                            "ConfigMap/settings", f"ConfigMap/{env_configmap}"}
    record = repo.kube.get("secrets", repo.namespace, "envship.hello.staging.v1")
    assert record is not None and PART_OF not in record["metadata"]["labels"]   # bookkeeping, never a member


def test_kubectl_sees_the_same_set(repo: Repo, tmp_path: Path) -> None:
    assert repo.deploy()[0] == 0
    applyset = repo.applyset()
    expected = members(repo.kube, applyset)
    kinds = {"namespace": "Namespace", "deployment.apps": "Deployment", "service": "Service",
             "configmap": "ConfigMap", "secret": "Secret"}
    binaries = kubectl_binaries()
    if not binaries:
        pytest.skip("no kubectl here")
    for kubectl in binaries:
        result = run_kubectl([kubectl, "get", "namespaces,deployments,services,configmaps,secrets", "-A",
                              "-l", f"{PART_OF}={applyset.id}", "-o", "name"],
                             kubectl_env(repo.kubeconfig, tmp_path / "home"))
        assert result.returncode == 0, result.stderr
        seen = {f"{kinds[line.split('/')[0]]}/{line.split('/', 1)[1]}" for line in result.stdout.split()}
        assert seen == expected, f"{kubectl}: {result.stdout}"


def run_kubectl(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def kubectl_with_applysets() -> str | None:
    """A kubectl that implements ApplySets (1.27+, behind KUBECTL_APPLYSET=true)."""
    for kubectl in kubectl_binaries():
        version = run_kubectl([kubectl, "version", "--client", "-o", "json"])
        try:
            minor = int("".join(ch for ch in json.loads(version.stdout)["clientVersion"]["minor"] if ch.isdigit()))
        except (ValueError, KeyError):
            continue
        if minor >= 27:
            return kubectl
    return None


def test_kubectl_computes_the_same_applyset_id_and_will_not_prune_envships(repo: Repo, tmp_path: Path) -> None:
    kubectl = kubectl_with_applysets()
    if kubectl is None:
        pytest.skip("no kubectl with ApplySet support (1.27+) here")
    env = {**kubectl_env(repo.kubeconfig, tmp_path / "home"), "KUBECTL_APPLYSET": "true"}
    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\ndata: {a: b}\n")
    repo.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scratch"}})
    made = run_kubectl([kubectl, "apply", "--server-side", "--prune", "--applyset=secret/envship.hello.staging",
                        "-n", "scratch", "-f", str(manifest)], env)
    assert made.returncode == 0, made.stderr
    kubectls_parent = repo.kube.get("secrets", "scratch", "envship.hello.staging")
    assert kubectls_parent is not None
    assert kubectls_parent["metadata"]["labels"]["applyset.kubernetes.io/id"] == applyset_id(
        "envship.hello.staging", "scratch")
    # kubectl refuses to prune through envship's parent: its tooling annotation says envship
    assert repo.deploy()[0] == 0
    before = snapshot(repo.kube)
    refused = run_kubectl([kubectl, "apply", "--server-side", "--prune", "--applyset=secret/envship.hello.staging",
                           "-n", repo.namespace, "-f", str(manifest)], env)
    assert refused.returncode != 0, refused.stderr
    assert 'is managed by tooling "envship" instead of "kubectl"' in refused.stderr
    assert_untouched(before, snapshot(repo.kube))


def test_two_previews_of_one_app_never_touch_each_other(repo: Repo) -> None:
    assert repo.deploy("--pr", "1", env="preview")[0] == 0
    before = snapshot(repo.kube)
    code, _, err = repo.deploy("--pr", "2", env="preview")
    assert code == 0, err
    assert "pruned" not in err.replace("0 pruned", "")
    assert_untouched(before, snapshot(repo.kube), repo.applyset("preview", 2))
    # PR 1 drops its Service: only PR 1's goes
    repo.remove("deploy/service.yaml")
    before = snapshot(repo.kube)
    code, _, err = repo.deploy("--pr", "1", env="preview")
    assert code == 0, err
    assert "Service/web pruned" in err
    assert repo.kube.get("services", "hello-pr-1", "web") is None
    assert repo.kube.get("services", "hello-pr-2", "web") is not None
    assert_untouched(before, snapshot(repo.kube), repo.applyset("preview", 1))


def test_two_repositories_with_the_same_names_in_different_namespaces(tmp_path: Path,
                                                                      fake_kube: FakeKube) -> None:  # noqa: F811
    first = Repo(tmp_path / "a", fake_kube, namespace="team-a-hello", repository="acme/a")
    second = Repo(tmp_path / "b", fake_kube, namespace="team-b-hello", repository="acme/b")
    assert first.deploy()[0] == 0
    before = snapshot(fake_kube)
    code, _, err = second.deploy()
    assert code == 0, err
    assert_untouched(before, snapshot(fake_kube), second.applyset())
    second.remove("deploy/settings.yaml")
    before = snapshot(fake_kube)
    code, _, err = second.deploy()
    assert code == 0, err
    assert "ConfigMap/settings pruned" in err and fake_kube.get("configmaps", "team-a-hello", "settings")
    assert_untouched(before, snapshot(fake_kube), second.applyset())


def test_a_cluster_scoped_object_of_another_deploy_is_refused_before_anything_is_created(
        tmp_path: Path, fake_kube: FakeKube) -> None:  # noqa: F811
    role = """\
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: hello-reader}
        rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
        """
    first = Repo(tmp_path / "a", fake_kube, namespace="team-a-hello", repository="acme/a")
    second = Repo(tmp_path / "b", fake_kube, namespace="team-b-hello", repository="acme/b")
    first.write("deploy/role.yaml", role)
    second.write("deploy/role.yaml", role)
    assert first.deploy()[0] == 0
    before = snapshot(fake_kube)
    code, _, err = second.deploy()
    assert code == 1
    assert "ClusterRole/hello-reader already exists and belongs to another envship deploy" in err
    assert snapshot(fake_kube) == before   # not even the namespace was created


def test_another_repository_deploying_the_same_target_is_refused(tmp_path: Path,
                                                                 fake_kube: FakeKube) -> None:  # noqa: F811
    first = Repo(tmp_path / "a", fake_kube, namespace="shared-hello", repository="acme/a")
    second = Repo(tmp_path / "b", fake_kube, namespace="shared-hello", repository="acme/b")
    second.remove("deploy/settings.yaml")
    assert first.deploy()[0] == 0
    before = snapshot(fake_kube)
    code, _, err = second.deploy()
    assert code == 1
    assert "is deployed from the repository acme/a, not acme/b" in err and "hint: two repositories" in err
    assert_untouched(before, snapshot(fake_kube))


def settled(kube: FakeKube, namespace: str) -> None:
    """Wait until the cluster has filled a new namespace (its default ServiceAccount and root CA ConfigMap),
    so that a snapshot taken next is not overtaken by the controller."""
    kube.wait_for(lambda: kube.get("serviceaccounts", namespace, "default")
                  and kube.get("configmaps", namespace, "kube-root-ca.crt"))


def another_team(kube: FakeKube, namespace: str = "shared") -> None:
    """A namespace made with kubectl and another team's app in it, settled before the test looks."""
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {"team": "b"}}},
                manager="kubectl-create")
    kube.create({"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": {"name": "billing", "namespace": namespace, "labels": {"team": "b"}},
                 "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "billing"}},
                          "template": {"metadata": {"labels": {"app": "billing"}},
                                       "spec": {"containers": [{"name": "b", "image": "ghcr.io/b/billing:1"}]}}}},
                manager="kubectl-create")
    kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "billing", "namespace": namespace},
                 "data": {"rate": "3"}}, manager="kubectl-create")
    kube.wait_for(lambda: (kube.get("deployments", namespace, "billing") or {}).get("status", {})
                  .get("readyReplicas") == 1)
    settled(kube, namespace)


def test_an_existing_namespace_is_used_as_it_is_and_never_deleted(tmp_path: Path,
                                                                  fake_kube: FakeKube) -> None:  # noqa: F811
    another_team(fake_kube)
    repo = Repo(tmp_path / "repo", fake_kube, namespace="shared")
    before = snapshot(fake_kube)
    code, _, err = repo.deploy()
    assert code == 0, err
    assert "note: namespace shared exists and envship did not create it: it is used as it is" in err
    assert_untouched(before, snapshot(fake_kube), repo.applyset())   # the namespace included: not labelled
    parent = fake_kube.get("secrets", "shared", "envship.hello.staging")
    assert parent is not None and "Namespace" not in parent["metadata"]["annotations"][
        "applyset.kubernetes.io/contains-group-kinds"]
    repo.remove("deploy/settings.yaml")
    before = snapshot(fake_kube)
    code, _, err = repo.deploy()
    assert code == 0, err
    assert "ConfigMap/settings pruned" in err
    assert_untouched(before, snapshot(fake_kube), repo.applyset())


def test_adopt_marks_an_existing_namespace_and_nothing_else(tmp_path: Path, fake_kube: FakeKube) -> None:  # noqa: F811
    another_team(fake_kube)
    repo = Repo(tmp_path / "repo", fake_kube, namespace="shared",
                config=CONFIG.replace("    create-namespace: true\n  preview",
                                      "    create-namespace: true\n    adopt: true\n  preview"))
    before = snapshot(fake_kube)
    code, _, err = repo.deploy()
    assert code == 0, err
    assert "Namespace/shared adopted" in err
    namespace = fake_kube.get("namespaces", None, "shared")
    assert namespace is not None and namespace["metadata"]["labels"][PART_OF] == repo.applyset().id
    assert namespace["metadata"]["labels"]["team"] == "b"   # its own labels kept
    del before[("/namespaces", "", "shared")]
    assert_untouched(before, snapshot(fake_kube), repo.applyset())


def test_a_manifest_naming_an_existing_namespace_is_refused(tmp_path: Path, fake_kube: FakeKube) -> None:  # noqa: F811
    another_team(fake_kube, "shared-infra")
    repo = Repo(tmp_path / "repo", fake_kube)
    repo.write("deploy/infra.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shared-infra}\n")
    before = snapshot(fake_kube)
    code, _, err = repo.deploy()
    assert code == 1
    assert "deploy/infra.yaml:1:1: Namespace/shared-infra already exists and belongs to someone else" in err
    assert snapshot(fake_kube) == before   # nothing created, labelled or changed; not even hello-staging


def test_a_foreign_object_stops_the_deploy_before_the_namespace_is_labelled(tmp_path: Path,
                                                                           fake_kube: FakeKube) -> None:  # noqa: F811
    another_team(fake_kube)
    fake_kube.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shared"},
                      "spec": {"ports": [{"port": 80}]}}, manager="kubectl-create")
    repo = Repo(tmp_path / "repo", fake_kube, namespace="shared",
                config=CONFIG.replace("    create-namespace: true\n  preview",
                                      "    create-namespace: true\n    adopt: false\n  preview"))
    before = snapshot(fake_kube)
    code, _, err = repo.deploy()
    assert code == 1 and "Service/web in namespace shared already exists and belongs to someone else" in err
    after = snapshot(fake_kube)
    assert after == before   # the lock came and went; nothing else was written


def test_comment_only_manifests_are_refused_by_every_command(repo: Repo) -> None:
    assert repo.deploy()[0] == 0
    for name in MANIFESTS:
        repo.write(f"deploy/{name}", "# moved to another repository\n---\n# nothing here\n")
    before = snapshot(repo.kube)
    for command in ("render", "plan", "deploy"):
        code, out, err = repo.run(command)
        assert code == 2, (command, err)
        assert "envship.yaml:3:12: the manifests in 'deploy' hold no Kubernetes objects" in err, err
        assert "refuses to deploy nothing" in err and out == ""
    assert snapshot(repo.kube) == before


def test_a_deploy_that_would_prune_most_of_the_app_stops(repo: Repo) -> None:
    assert repo.deploy()[0] == 0
    repo.remove("deploy/deployment.yaml")
    repo.remove("deploy/service.yaml")
    before = snapshot(repo.kube)
    code, out, err = repo.run("plan")
    assert code == 0, err
    assert out.startswith("# DELETE Deployment/web (no longer rendered)\n\n# DELETE Service/web")
    assert "deploy would delete 2 object(s)" in err and "deploy would refuse this" in err
    code, _, err = repo.deploy()
    assert code == 2
    assert "this deploy stops before changing anything: it would delete every workload of the app" in err
    assert "hint: if the manifests path or the manifests are wrong, fix them" in err and "--allow-mass-prune" in err
    assert snapshot(repo.kube) == before
    code, _, err = repo.deploy("--allow-mass-prune")
    assert code == 0, err
    assert repo.kube.get("deployments", repo.namespace, "web") is None


def test_a_value_change_is_no_sweeping_prune(repo: Repo) -> None:
    repo.remove("deploy/service.yaml")
    repo.remove("deploy/settings.yaml")
    assert repo.deploy("--secret", "TOKEN=one")[0] == 0
    code, _, err = repo.deploy("--secret", "TOKEN=two", "--set", "LOG_LEVEL=debug")
    assert code == 0, err   # the env ConfigMap and Secret are replaced, not removed
    assert err.count(" pruned") == 3   # old ConfigMap, old Secret, and the summary line


def legacy_objects() -> list[dict[str, Any]]:
    return list(json.loads((DATA / "legacy-deploy.json").read_text())["objects"])


def load_legacy(kube: FakeKube, extra: Iterable[dict[str, Any]] = ()) -> None:
    """What envship 0.1.0 (before ApplySets) left in the cluster: its objects applied as it applied them."""
    for obj in [*legacy_objects(), *extra]:
        kube.apply(obj, manager="envship")
    kube.wait_for(lambda: (kube.get("deployments", "hello-staging", "web") or {}).get("status", {})
                  .get("readyReplicas") == 2, timeout=20)
    settled(kube, "hello-staging")


OLD_PASSWORD = base64.b64encode(b"legacy-old-password-1").decode()


def cluster_text(kube: FakeKube) -> str:
    """Every stored object as text, with the release records' payload unpacked."""
    from envship.core import plan

    parts = []
    for obj in snapshot(kube).values():
        parts.append(json.dumps(obj))
        if obj.get("type") == "envship.dev/release":
            parts.append(json.dumps(plan.decode_release_record(obj).objects))
    return "\n".join(parts)


def test_a_deploy_made_by_the_previous_version_migrates(repo: Repo) -> None:
    stray = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "hello-env-0000000000", "namespace": "hello-staging", "labels": OLD_LABELS},
             "data": {"LOG_LEVEL": "old"}}
    load_legacy(repo.kube, [stray])
    assert OLD_PASSWORD in cluster_text(repo.kube)   # the old version kept rotated secrets in its records
    legacy = {o["metadata"]["name"] for o in legacy_objects()}
    before = snapshot(repo.kube)
    code, _, err = repo.deploy("--secret", "DB_PASSWORD=rotated-password-3", image=IMAGE_B)
    assert code == 0, err
    after = snapshot(repo.kube)
    applyset = repo.applyset()
    # what the last record listed is now a member; the namespace too (the old version created it)
    assert members(repo.kube, applyset) >= {"Namespace/hello-staging", "Deployment/web", "Service/web"}
    # the old env Secret (listed by the record, no longer rendered) is pruned; the stray ConfigMap the record
    # does not list is not touched
    assert "Secret/hello-secrets-597e3ccde9 pruned" in err
    assert after[("/configmaps", "hello-staging", "hello-env-0000000000")] == before[
        ("/configmaps", "hello-staging", "hello-env-0000000000")]
    assert "removed secret values from 2 release record(s)" in err
    assert OLD_PASSWORD not in cluster_text(repo.kube)
    assert base64.b64encode(b"legacy-new-password-2").decode() not in cluster_text(repo.kube)
    assert legacy - {"hello-secrets-597e3ccde9", "hello-env-ce705679c6"} <= {
        key[2] for key in after}   # nothing else of the old deploy went
    code, _, err = repo.deploy("--secret", "DB_PASSWORD=rotated-password-3", image=IMAGE_B)
    assert code == 0 and "nothing to change: revision 3 runs" in err   # migrated: a second run writes nothing


def test_a_namespace_the_previous_version_only_labelled_is_left_alone(repo: Repo) -> None:
    repo.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "hello-staging"}},
                     manager="kubectl-create")
    repo.kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "team-b", "namespace": "hello-staging"}, "data": {"x": "1"}},
                     manager="kubectl-create")
    load_legacy(repo.kube)
    before = snapshot(repo.kube)
    code, _, err = repo.deploy("--secret", "DB_PASSWORD=rotated-password-3", image=IMAGE_B)
    assert code == 0, err
    assert "namespace hello-staging exists and envship did not create it: it is used as it is" in err
    after = snapshot(repo.kube)
    assert after[("/namespaces", "", "hello-staging")] == before[("/namespaces", "", "hello-staging")]
    assert after[("/configmaps", "hello-staging", "team-b")] == before[("/configmaps", "hello-staging", "team-b")]


def test_rollback_to_a_release_whose_secret_values_are_not_recorded(repo: Repo) -> None:
    assert repo.deploy("--secret", "TOKEN=first-token-value")[0] == 0
    first_secret = next(s["metadata"]["name"] for s in repo.kube.list("secrets", repo.namespace)
                        if s["metadata"]["name"].startswith("hello-secrets-"))
    repo.kube.set_scenario("crashloop", image=DIGEST_B)
    code, _, err = repo.deploy("--secret", "TOKEN=second-token-value", image=IMAGE_B)
    assert code == 1 and "rolled back to revision 1: healthy" in err
    assert "cannot be restored" not in err   # the first release's Secret was still there, unchanged
    deployment = repo.kube.get("deployments", repo.namespace, "web")
    assert deployment is not None
    env_from = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"secretRef": {"name": first_secret}} in env_from
    names = {s["metadata"]["name"] for s in repo.kube.list("secrets", repo.namespace)}
    assert [n for n in names if n.startswith("hello-secrets-")] == [first_secret]   # the failed one pruned
    # after the rotation succeeds, the first value is nowhere in the cluster
    repo.kube.set_scenario("healthy", image=DIGEST_B)
    assert repo.deploy("--secret", "TOKEN=second-token-value", image=IMAGE_B)[0] == 0
    text = cluster_text(repo.kube)
    assert base64.b64encode(b"first-token-value").decode() not in text and "first-token-value" not in text


def test_prune_never_deletes_an_object_replaced_meanwhile(repo: Repo) -> None:
    """Prune deletes by uid (a DeleteOptions precondition): a ConfigMap deleted and created again by
    someone else between envship's look and its delete is theirs, and stays."""
    assert repo.deploy()[0] == 0
    repo.remove("deploy/settings.yaml")
    first = repo.kube.get("configmaps", repo.namespace, "settings")
    assert first is not None
    stale = dict(first, kind="ConfigMap", apiVersion="v1")
    repo.kube.delete("configmaps", repo.namespace, "settings")
    repo.kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "settings", "namespace": repo.namespace}, "data": {"theirs": "1"}})
    from envship.adapters.console import Console
    from envship.adapters.kube import Kube
    from envship.adapters.kube.credentials import connect
    from envship.commands.render import RenderOptions, build_rendering
    from envship.engine.session import Session

    rendering = build_rendering(RenderOptions(str(repo.root / "envship.yaml"), "staging", IMAGE_A), repo.environ)
    err = io.StringIO()
    kube = Kube(connect(rendering.target.environment, repo.environ))
    try:
        removed = Session(kube, rendering, "hello", Console(io.StringIO(), err)).prune([stale])
    finally:
        kube.close()
    assert removed == [] and "ConfigMap/settings was replaced meanwhile by someone else: left alone" in err.getvalue()
    theirs = repo.kube.get("configmaps", repo.namespace, "settings")
    assert theirs is not None and theirs["data"] == {"theirs": "1"}


def test_the_action_names_its_input_for_a_sweeping_prune(repo: Repo) -> None:
    assert repo.deploy()[0] == 0
    repo.remove("deploy/deployment.yaml")
    repo.remove("deploy/service.yaml")
    log = io.StringIO()

    def action(**inputs: str) -> int:
        environ = {**repo.environ, "GITHUB_ACTIONS": "true", "INPUT_COMMAND": "deploy", "INPUT_ENVIRONMENT": "staging",
                   "INPUT_IMAGE": IMAGE_A, "INPUT_CONFIG": str(repo.root / "envship.yaml"),
                   "INPUT_SKIP-IMAGE-CHECK": "true", "INPUT_TIMEOUT": "20s",
                   **{f"INPUT_{k.upper()}": v for k, v in inputs.items()}}
        log.seek(0)
        log.truncate()
        return main(["action"], environ=environ, out=log, err=log)

    assert action() == 2
    assert "::error title=deploy refused::this deploy stops before changing anything" in log.getvalue()
    assert "deploy with input 'allow-mass-prune: true'" in log.getvalue()
    assert action(**{"allow-mass-prune": "yes"}) == 2
    assert "input 'allow-mass-prune' must be true or false" in log.getvalue()
    assert action(**{"allow-mass-prune": "true"}) == 0, log.getvalue()
    assert repo.kube.get("deployments", repo.namespace, "web") is None


def test_plan_says_which_objects_it_would_adopt(repo: Repo) -> None:
    repo.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": repo.namespace}})
    repo.kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings",
                                                                            "namespace": repo.namespace},
                      "data": {"mode": "slow"}}, manager="kubectl-create")
    code, _, err = repo.run("plan")
    assert code == 1 and "ConfigMap/settings in namespace hello-staging already exists and belongs to someone" in err
    repo.write("envship.yaml", CONFIG.replace("NAMESPACE", repo.namespace).replace(
        "    create-namespace: true\n  preview", "    create-namespace: true\n    adopt: true\n  preview"))
    settled(repo.kube, repo.namespace)
    before = snapshot(repo.kube)
    code, out, err = repo.run("plan")
    assert code == 0, err
    assert "# adopt ConfigMap/settings" in out and "# adopt Namespace/hello-staging" in out and "2 to adopt" in err
    assert "note: namespace hello-staging exists and envship did not create it" not in err   # adopt marks it
    assert snapshot(repo.kube) == before   # plan changes nothing


@pytest.mark.parametrize("labels, annotations, says", [
    ({}, {}, "is not envship's ApplySet parent"),
    ({"applyset.kubernetes.io/id": applyset_id("envship.hello.staging", "hello-staging")},
     {"applyset.kubernetes.io/tooling": "kubectl/v1.32.4"}, "is the ApplySet of 'kubectl'"),
])
def test_a_parent_name_taken_by_someone_else_stops_the_deploy(repo: Repo, labels: dict[str, str],
                                                              annotations: dict[str, str], says: str) -> None:
    repo.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": repo.namespace}})
    repo.kube.create({"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "envship.hello.staging", "namespace": repo.namespace, "labels": labels,
        "annotations": annotations}, "data": {"x": "eQ=="}}, manager="kubectl")
    settled(repo.kube, repo.namespace)
    before = snapshot(repo.kube)
    code, _, err = repo.deploy()
    assert code == 1
    assert f"error: Secret/envship.hello.staging in namespace hello-staging {says}" in err
    assert "hint: rename or delete that Secret" in err
    assert snapshot(repo.kube) == before


def test_rollback_says_when_a_secret_of_the_release_cannot_be_restored(repo: Repo) -> None:
    repo.write("deploy/db.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {user: app-one}\n")
    assert repo.deploy()[0] == 0
    repo.write("deploy/db.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {user: app-two}\n")
    repo.kube.set_scenario("crashloop", image=DIGEST_B)
    code, _, err = repo.deploy(image=IMAGE_B)
    assert code == 1 and "rolled back to revision 1: healthy" in err
    assert "warning: rollback: Secret/db changed since that release and cannot be restored (release records keep " \
           "no secret values)" in err


def test_rollback_stops_at_an_object_someone_else_took_meanwhile(repo: Repo) -> None:
    assert repo.deploy()[0] == 0
    settings = repo.kube.get("configmaps", repo.namespace, "settings")
    assert settings is not None
    repo.kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {  # another tool takes it over
        "name": "settings", "namespace": repo.namespace, "labels": {PART_OF: "applyset-someone-else-v1"}}},
        manager="envship")
    repo.remove("deploy/settings.yaml")
    repo.kube.set_scenario("crashloop", image=DIGEST_B)
    code, _, err = repo.deploy(image=IMAGE_B)
    assert code == 1
    assert "error: rollback stopped: ConfigMap/settings in namespace hello-staging already exists and belongs to " \
           "the ApplySet applyset-someone-else-v1" in err
    taken = repo.kube.get("configmaps", repo.namespace, "settings")
    assert taken is not None and taken["metadata"]["labels"][PART_OF] == "applyset-someone-else-v1"
