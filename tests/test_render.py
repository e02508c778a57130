"""`envship render`: what an environment receives, and every way manifests can be wrong."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from conftest import (
    BASE_CONFIG,
    DEPLOYMENT,
    DIGEST,
    EXAMPLE_DIR,
    IMAGE,
    OTHER_DIGEST,
    SERVICE,
    Project,
    location_of,
    rendered_files,
    run,
)

from envship.core.ownership import ApplySet

OWNER_LABELS = {"app.kubernetes.io/managed-by": "envship", "app.kubernetes.io/instance": "hello"}


# ------------------------------------------------------------------------------------------------
# bad manifests: exit 2, message, file:line:col, hint
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BadManifest:
    files: dict[str, str]          # deploy/<name> -> text
    message: str
    where: tuple[str, str] | None  # (file, marker) the problem points at; None: no location
    hint: str = ""
    args: tuple[str, ...] = ()
    config: str = BASE_CONFIG
    occurrence: int = 1
    also: tuple[str, ...] = ()     # further substrings expected somewhere in stderr
    absent: tuple[str, ...] = ()   # substrings that must not appear in stderr


def deployment_with(value: str) -> str:
    return DEPLOYMENT.replace("https://${ENVSHIP_HOST}", value)


KUSTOMIZATION = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\n"
NO_HOST_CONFIG = BASE_CONFIG.replace("    host: staging.example.com\n", "")

MANIFEST_CASES = {
    "unresolved-variable": BadManifest(
        {"deployment.yaml": deployment_with("${DATABASE_URL}")},
        "unresolved variable ${DATABASE_URL}", ("deploy/deployment.yaml", "${DATABASE_URL}"),
        "define DATABASE_URL under 'env' in envship.yaml"),
    "unresolved-variable-in-second-document": BadManifest(
        {"all.yaml": SERVICE + "---\n" + deployment_with("x-${FEATURE_FLAG}-y")},
        "unresolved variable ${FEATURE_FLAG}", ("deploy/all.yaml", "x-${FEATURE_FLAG}"), "--set FEATURE_FLAG="),
    "secret-used-as-variable": BadManifest(
        {"deployment.yaml": deployment_with("${DB_PASSWORD}")},
        "unresolved variable ${DB_PASSWORD}", ("deploy/deployment.yaml", "${DB_PASSWORD}"),
        "'DB_PASSWORD' is a secret", args=("--secret", "DB_PASSWORD=Sup3r-s3cret-pw"),
        absent=("Sup3r-s3cret-pw",)),
    "host-variable-without-host": BadManifest(
        {"deployment.yaml": DEPLOYMENT},
        "unresolved variable ${ENVSHIP_HOST}", ("deploy/deployment.yaml", "https://${ENVSHIP_HOST}"),
        "environment 'staging' has no 'host'", config=NO_HOST_CONFIG),
    "pr-variable-outside-preview": BadManifest(
        {"deployment.yaml": deployment_with("pr-${ENVSHIP_PR}")},
        "unresolved variable ${ENVSHIP_PR}", ("deploy/deployment.yaml", "pr-${ENVSHIP_PR}"), "known variables"),
    "foreign-namespace": BadManifest(
        {"service.yaml": SERVICE.replace("  name: hello\n", "  name: hello\n  namespace: kube-system\n")},
        "Service/hello names namespace 'kube-system', but environment 'staging' deploys to 'hello-staging'",
        ("deploy/service.yaml", "kube-system"), "remove metadata.namespace"),
    "missing-metadata-name": BadManifest(
        {"service.yaml": SERVICE.replace("  name: hello\n", "  labels: {app: hello}\n")},
        "Service has no metadata.name", ("deploy/service.yaml", "labels: {app"), "fixed name"),
    "generate-name": BadManifest(
        {"job.yaml": "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\nspec: {}\n"},
        "Job has no metadata.name", ("deploy/job.yaml", "generateName"), "generateName"),
    "missing-kind": BadManifest(
        {"service.yaml": SERVICE.replace("kind: Service\n", "")},
        "object has no 'kind'", ("deploy/service.yaml", "apiVersion"), "apiVersion, kind and metadata.name"),
    "missing-api-version": BadManifest(
        {"service.yaml": "# the service\n" + SERVICE.replace("apiVersion: v1\n", "")},
        "object has no 'apiVersion'", ("deploy/service.yaml", "kind: Service"), "apiVersion, kind"),
    "document-is-a-list": BadManifest(
        {"service.yaml": SERVICE + "---\n- name: stray\n- name: list\n"},
        "a manifest document must be a mapping", ("deploy/service.yaml", "- name: stray"), "stray text"),
    "document-is-a-string": BadManifest(
        {"notes.yaml": "these are my notes\n"},
        "a manifest document must be a mapping", ("deploy/notes.yaml", "these"), "stray text"),
    "kustomization": BadManifest(
        {"kustomization.yaml": KUSTOMIZATION, "deployment.yaml": DEPLOYMENT},
        "this is a kustomization, not a Kubernetes object", ("deploy/kustomization.yaml", "apiVersion"),
        "kubectl kustomize"),
    "invalid-yaml": BadManifest(
        {"service.yaml": SERVICE.replace("  selector: {app: hello}\n", "  selector: {app: hello\n")},
        "invalid YAML", ("deploy/service.yaml", ":\n    - port"), "indentation"),
    "invalid-yaml-bad-indent": BadManifest(
        {"service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: hello\n    labels: x\n"},
        "invalid YAML: mapping values are not allowed", ("deploy/service.yaml", ": x"), "indentation"),
    "duplicate-key-in-manifest": BadManifest(
        {"service.yaml": SERVICE.replace("kind: Service\n", "kind: Service\nkind: Service\n")},
        "key 'kind' appears twice", ("deploy/service.yaml", "kind"), "remove one", occurrence=2),
    "duplicate-object-across-files": BadManifest(
        {"a.yaml": SERVICE, "b.yaml": "# copy\n" + SERVICE},
        "Service/hello is defined twice (first defined at deploy/a.yaml:1:1)", ("deploy/b.yaml", "apiVersion"),
        "remove one of the two"),
    "list-item-not-a-mapping": BadManifest(
        {"list.yaml": "apiVersion: v1\nkind: List\nitems:\n  - just-a-string\n"},
        "a list item must be a Kubernetes object", ("deploy/list.yaml", "just-a-string"), "apiVersion, kind"),
    "list-item-without-name": BadManifest(
        {"list.yaml": "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: ConfigMap\n"
                      "    metadata: {labels: {a: b}}\n"},
        "ConfigMap has no metadata.name", ("deploy/list.yaml", "{labels"), "fixed name"),
    "control-character": BadManifest(
        {"service.yaml": SERVICE.replace("name: hello", "name: hel\x07lo")},
        "invalid YAML: character U+0007 is not allowed", ("deploy/service.yaml", "\x07"), "printable"),
    "complex-key": BadManifest(
        {"service.yaml": SERVICE.replace("spec:", "? [a, b]\n: c\nspec:")},
        "a mapping key must be a plain value", ("deploy/service.yaml", "[a, b]"), "plain name"),
    "manifests-path-missing": BadManifest(
        {}, "manifests path 'k8s' does not exist", ("envship.yaml", "k8s"), "relative to the config file",
        config=BASE_CONFIG.replace("manifests: deploy", "manifests: k8s")),
    "manifests-dir-empty": BadManifest(
        {"README.md": "# nothing here\n"}, "no .yaml, .yml or .json files in 'deploy'", ("envship.yaml", "deploy"),
        "put the app's Kubernetes manifests there"),
}


@pytest.mark.parametrize("case", MANIFEST_CASES.values(), ids=MANIFEST_CASES.keys())
def test_bad_manifest(project: Project, case: BadManifest) -> None:
    project.config(case.config)
    for name, text in case.files.items():
        project.manifest(name, text)
    result = project.render(*case.args)

    assert result.code == 2, result.err
    assert result.out == ""
    assert "Traceback" not in result.err
    line, hint = result.problem(case.message)
    if case.where is not None:
        file, marker = case.where
        text = (project.root / file).read_text()
        row, col = location_of(text, marker, case.occurrence)
        assert line.startswith(f"error: {file}:{row}:{col}: "), line
    assert hint.startswith("hint: ") and case.hint in hint, hint
    for text in case.also:
        assert text in result.err
    for text in case.absent:
        assert text not in result.err


def test_manifest_matrix_size() -> None:
    assert len(MANIFEST_CASES) >= 20


def test_every_manifest_problem_reported_at_once(project: Project) -> None:
    project.config()
    project.manifest("a.yaml", deployment_with("${ONE}"))
    project.manifest("b.yaml", SERVICE.replace("  name: hello\n", "  name: hello\n  namespace: other\n"))
    project.manifest("c.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  x: ${TWO}\n")
    result = project.render()
    assert result.code == 2
    for message in ("unresolved variable ${ONE}", "names namespace 'other'", "unresolved variable ${TWO}"):
        result.problem(message)
    assert result.err.count("error: ") == 3


# ------------------------------------------------------------------------------------------------
# the example: staging and production differ only where the config says
# ------------------------------------------------------------------------------------------------

MISSING = object()


def diff(a: Any, b: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted({*a, *b}, key=str) for d in diff(a.get(k, MISSING), b.get(k, MISSING), path + (k,))]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in diff(x, y, path + (i,))]
    return [] if a == b else [(path, a, b)]


def render_example(env: str, *args: str) -> list[dict[str, Any]]:
    result = run(["render", "--config", str(EXAMPLE_DIR / "envship.yaml"), "--env", env, "--image", IMAGE, *args])
    assert result.code == 0, result.err
    return result.objects


def test_example_staging_and_production_differ_only_where_the_config_says() -> None:
    staging = {o["kind"]: o for o in render_example("staging")}
    production = {o["kind"]: o for o in render_example("production")}
    assert sorted(staging) == sorted(production) == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler",
                                                     "Ingress", "Service"]
    differences = {(kind, path): (a, b) for kind in staging for path, a, b in diff(staging[kind], production[kind])}

    applysets = (ApplySet("hello", "staging", "hello-staging").id, ApplySet("hello", "production", "hello").id)
    per_object = {("metadata", "namespace"): ("hello-staging", "hello"),
                  ("metadata", "labels", "envship.dev/environment"): ("staging", "production"),
                  ("metadata", "labels", "applyset.kubernetes.io/part-of"): applysets}
    staging_cm, production_cm = staging["ConfigMap"]["metadata"]["name"], production["ConfigMap"]["metadata"]["name"]
    container = ("spec", "template", "spec", "containers", 0)
    expected = {(kind, path): values for kind in staging for path, values in per_object.items()}
    expected.update({
        ("ConfigMap", ("metadata", "name")): (staging_cm, production_cm),
        ("ConfigMap", ("data", "LOG_LEVEL")): ("debug", "info"),
        ("ConfigMap", ("data", "REPLICAS_HINT")): (MISSING, "3"),
        ("Deployment", container + ("env", 0, "value")): ("https://staging.hello.example.com",
                                                          "https://hello.example.com"),
        ("Deployment", container + ("envFrom", 0, "configMapRef", "name")): (staging_cm, production_cm),
        ("Ingress", ("spec", "rules", 0, "host")): ("staging.hello.example.com", "hello.example.com"),
    })
    assert differences == expected
    assert staging_cm.startswith("hello-env-") and production_cm.startswith("hello-env-")
    # the same digest runs in both
    assert staging["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE


def test_example_preview_for_a_pull_request() -> None:
    objects = render_example("preview", "--pr", "42")
    kinds = [o["kind"] for o in objects]
    assert kinds[0] == "Namespace" and objects[0]["metadata"]["name"] == "hello-pr-42"
    for obj in objects:
        assert obj["metadata"]["labels"]["envship.dev/pr"] == "42"
        assert obj["metadata"]["labels"]["envship.dev/environment"] == "preview"
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "hello-pr-42"
    ingress = next(o for o in objects if o["kind"] == "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "hello-pr-42.example.com"


# ------------------------------------------------------------------------------------------------
# image pinning
# ------------------------------------------------------------------------------------------------

def pod(spec: str, indent: int) -> str:
    pad = " " * indent
    return "".join(pad + line + "\n" for line in spec.strip("\n").split("\n"))


APP_POD = """\
initContainers:
  - {name: migrate, image: "ghcr.io/acme/hello:1.2"}
  - {name: wait, image: "busybox:1.36"}
containers:
  - {name: web, image: ghcr.io/acme/hello}
  - {name: proxy, image: "docker.io/library/nginx:1.25"}
  - {name: worker, image: "ghcr.io/acme/hello-worker:1"}
  - {name: nested, image: "ghcr.io/acme/hello/sub:1"}
ephemeralContainers:
  - {name: debug, image: "ghcr.io/acme/hello:debug"}
"""
OTHER_IMAGES = {"busybox:1.36", "docker.io/library/nginx:1.25", "ghcr.io/acme/hello-worker:1",
                "ghcr.io/acme/hello/sub:1"}

WORKLOADS = {
    "Deployment": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n"
                  + pod(APP_POD, 6),
    "StatefulSet": "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  template:\n    spec:\n"
                   + pod(APP_POD.replace("ghcr.io/acme/hello}", f"'ghcr.io/acme/hello@{OTHER_DIGEST}'}}"), 6),
    "DaemonSet": "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ds}\nspec:\n  template:\n    spec:\n"
                 + pod(APP_POD.replace("ghcr.io/acme/hello}", f"'ghcr.io/acme/hello:2@{OTHER_DIGEST}'}}"), 6),
    "ReplicaSet": "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: rs}\nspec:\n  template:\n    spec:\n"
                  + pod(APP_POD, 6),
    "Job": "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n" + pod(APP_POD, 6),
    "CronJob": "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cj}\nspec:\n  schedule: '@daily'\n"
               "  jobTemplate:\n    spec:\n      template:\n        spec:\n" + pod(APP_POD, 10),
    "Pod": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n" + pod(APP_POD, 2),
    "PodTemplate": "apiVersion: v1\nkind: PodTemplate\nmetadata: {name: pt}\ntemplate:\n  spec:\n" + pod(APP_POD, 4),
    "Rollout": "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec:\n  template:\n"
               "    spec:\n" + pod(APP_POD, 6),
}
POD_SPEC_PATH = {"Pod": ("spec",), "PodTemplate": ("template", "spec"),
                 "CronJob": ("spec", "jobTemplate", "spec", "template", "spec")}


def pod_spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    node = obj
    for key in POD_SPEC_PATH.get(obj["kind"], ("spec", "template", "spec")):
        node = node[key]
    return node


def test_app_images_pinned_in_every_workload_kind_and_container_list(project: Project) -> None:
    project.config()
    project.manifest("workloads.yaml", "---\n".join(WORKLOADS.values()))
    result = project.render()
    assert result.code == 0, result.err
    seen = set()
    for obj in result.objects:
        if obj["kind"] not in WORKLOADS:
            continue
        seen.add(obj["kind"])
        spec = pod_spec_of(obj)
        images = {c["name"]: c["image"] for lst in ("initContainers", "containers", "ephemeralContainers")
                  for c in spec[lst]}
        for name in ("migrate", "web", "debug"):
            assert images[name] == IMAGE, (obj["kind"], name)
        assert {images[n] for n in ("wait", "proxy", "worker", "nested")} == OTHER_IMAGES, obj["kind"]
        web = next(c for c in spec["containers"] if c["name"] == "web")
        assert web["envFrom"] == [{"configMapRef": {"name": result.one("ConfigMap")["metadata"]["name"]}}], obj["kind"]
    assert seen == set(WORKLOADS)


def test_digest_is_written_in_the_configs_spelling_of_the_repository(project: Project) -> None:
    """--image may spell the repository differently (docker.io/library/nginx vs nginx)."""
    project.config(BASE_CONFIG.replace("image: ghcr.io/acme/hello", "image: nginx"))
    project.manifest("d.yaml", """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          template:
            spec:
              containers:
                - {name: a, image: nginx}
                - {name: b, image: "nginx:1.25"}
                - {name: c, image: "docker.io/library/nginx:1.25"}
                - {name: d, image: "index.docker.io/library/nginx"}
                - {name: e, image: "library/nginx:1"}
                - {name: f, image: "docker.io/bitnami/nginx:1"}
                - {name: g, image: "ghcr.io/library/nginx:1"}
                - {name: h, image: "nginx-exporter:1"}
        """)
    result = project.render(image=f"docker.io/library/nginx@{DIGEST}")
    assert result.code == 0, result.err
    images = {c["name"]: c["image"] for c in result.one("Deployment")["spec"]["template"]["spec"]["containers"]}
    pinned = f"nginx@{DIGEST}"
    assert images == {"a": pinned, "b": pinned, "c": pinned, "d": pinned, "e": pinned,
                      "f": "docker.io/bitnami/nginx:1", "g": "ghcr.io/library/nginx:1", "h": "nginx-exporter:1"}


def test_fully_qualified_docker_hub_config_pins_short_spellings(project: Project) -> None:
    project.config(BASE_CONFIG.replace("image: ghcr.io/acme/hello", "image: docker.io/library/nginx"))
    project.manifest("p.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
                               "  containers:\n    - {name: a, image: 'nginx:1'}\n")
    result = project.render(image=f"nginx@{DIGEST}")
    assert result.code == 0, result.err
    assert result.one("Pod")["spec"]["containers"][0]["image"] == f"docker.io/library/nginx@{DIGEST}"


def test_registry_with_port(project: Project) -> None:
    project.config(BASE_CONFIG.replace("image: ghcr.io/acme/hello", "image: localhost:5000/app"))
    project.manifest("p.yaml", """\
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          containers:
            - {name: a, image: "localhost:5000/app:1"}
            - {name: b, image: "localhost:5000/app"}
            - {name: c, image: "localhost:5001/app:1"}
            - {name: d, image: "localhost/app:1"}
            - {name: e, image: "app:1"}
        """)
    result = project.render(image=f"localhost:5000/app@{DIGEST}")
    assert result.code == 0, result.err
    images = [c["image"] for c in result.one("Pod")["spec"]["containers"]]
    pinned = f"localhost:5000/app@{DIGEST}"
    assert images == [pinned, pinned, "localhost:5001/app:1", "localhost/app:1", "app:1"]


def test_image_variable_and_digest_annotation(project: Project) -> None:
    project.config()
    project.manifest("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: info}\n"
                                "data: {image: '${ENVSHIP_IMAGE}', ns: '${ENVSHIP_NAMESPACE}',"
                                " env: '${ENVSHIP_ENVIRONMENT}', host: '${ENVSHIP_HOST}'}\n")
    result = project.render()
    assert result.code == 0, result.err
    info = result.one("ConfigMap", "info")
    assert info["data"] == {"image": IMAGE, "ns": "hello-staging", "env": "staging", "host": "staging.example.com"}
    assert info["metadata"]["annotations"]["envship.dev/digest"] == DIGEST


# ------------------------------------------------------------------------------------------------
# env injection
# ------------------------------------------------------------------------------------------------

def containers(obj: dict[str, Any], lst: str = "containers") -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod_spec_of(obj).get(lst, [])}


def test_env_configmap_and_secret_referenced_by_envfrom(project: Project) -> None:
    project.standard()
    result = project.render("--secret", "DB_PASSWORD=pw-123456")
    assert result.code == 0, result.err
    cm = result.one("ConfigMap")
    secret = result.one("Secret")
    assert cm["metadata"]["name"].startswith("hello-env-") and len(cm["metadata"]["name"]) == len("hello-env-") + 10
    assert secret["metadata"]["name"].startswith("hello-secrets-")
    assert cm["data"] == {"GREETING": "Hello", "LOG_LEVEL": "debug"}
    assert cm["immutable"] is True and secret["immutable"] is True
    assert secret["data"] == {"DB_PASSWORD": "<redacted>"}
    for obj in (cm, secret):
        assert obj["metadata"]["namespace"] == "hello-staging"
        assert OWNER_LABELS.items() <= obj["metadata"]["labels"].items()
    web = containers(result.one("Deployment"))["web"]
    assert web["envFrom"] == [{"configMapRef": {"name": cm["metadata"]["name"]}},
                              {"secretRef": {"name": secret["metadata"]["name"]}}]


def test_no_env_no_configmap(project: Project) -> None:
    project.config(BASE_CONFIG.replace("env:\n  LOG_LEVEL: info\n  GREETING: Hello\n", "")
                   .replace("    env:\n      LOG_LEVEL: debug\n", ""))
    project.manifest("d.yaml", DEPLOYMENT)
    result = project.render()
    assert result.code == 0, result.err
    assert result.of_kind("ConfigMap") == [] and result.of_kind("Secret") == []
    assert "envFrom" not in containers(result.one("Deployment"))["web"]


def test_merge_order_top_level_then_environment_then_set(project: Project) -> None:
    project.config(BASE_CONFIG.replace("  GREETING: Hello\n", "  GREETING: Hello\n  A: top\n  B: top\n  C: top\n")
                   .replace("      LOG_LEVEL: debug\n", "      LOG_LEVEL: debug\n      B: env\n      C: env\n"))
    project.manifest("d.yaml", DEPLOYMENT)
    result = project.render("--set", "C=set", "--set", "D=new=with=equals")
    assert result.code == 0, result.err
    assert result.one("ConfigMap")["data"] == {"A": "top", "B": "env", "C": "set", "D": "new=with=equals",
                                               "GREETING": "Hello", "LOG_LEVEL": "debug"}
    production = project.render(env="production")
    assert production.one("ConfigMap")["data"]["C"] == "top"


def test_variable_values_use_builtins_and_escapes(project: Project) -> None:
    project.config(BASE_CONFIG.replace("  GREETING: Hello\n",
                                       "  GREETING: Hello\n  SELF: https://${ENVSHIP_HOST}/\n  LITERAL: $${NOT_A_VAR}\n"
                                       "  COUNT: 3\n  ENABLED: true\n"))
    project.manifest("d.yaml", DEPLOYMENT)
    result = project.render("--set", "NS=${ENVSHIP_NAMESPACE}")
    assert result.code == 0, result.err
    data = result.one("ConfigMap")["data"]
    assert data["SELF"] == "https://staging.example.com/"
    assert data["LITERAL"] == "${NOT_A_VAR}"
    assert data["NS"] == "hello-staging"
    assert data["COUNT"] == "3" and data["ENABLED"] == "true"


def test_envfrom_not_duplicated_and_existing_entries_kept(project: Project) -> None:
    project.standard()
    first = project.render("--secret", "TOKEN=tok-abcdef")
    assert first.code == 0, first.err
    deployment = first.one("Deployment")
    web = containers(deployment)["web"]
    web["envFrom"].insert(0, {"configMapRef": {"name": "shared-settings"}})
    # feed the rendered Deployment back in as a manifest: rendering again must converge
    (project.root / "deploy" / "deployment.yaml").write_text(yaml.safe_dump(deployment))
    second = project.render("--secret", "TOKEN=tok-abcdef")
    assert second.code == 0, second.err
    again = containers(second.one("Deployment"))["web"]["envFrom"]
    assert again == web["envFrom"]
    assert len(again) == 3 and again[0] == {"configMapRef": {"name": "shared-settings"}}


def test_init_containers_of_app_get_envfrom_sidecars_do_not(project: Project) -> None:
    project.config()
    project.manifest("w.yaml", WORKLOADS["Deployment"])
    result = project.render()
    assert result.code == 0, result.err
    deployment = result.one("Deployment")
    ref = [{"configMapRef": {"name": result.one("ConfigMap")["metadata"]["name"]}}]
    init, main, ephemeral = (containers(deployment, lst) for lst in ("initContainers", "containers",
                                                                      "ephemeralContainers"))
    assert init["migrate"]["envFrom"] == ref and main["web"]["envFrom"] == ref
    for name, container in {**init, **main, **ephemeral}.items():
        if name not in ("migrate", "web"):
            assert "envFrom" not in container, name


def test_hash_changes_with_values_and_is_stable_otherwise(project: Project) -> None:
    project.standard()

    def names(*args: str) -> tuple[str, str, str]:
        result = project.render(*args)
        assert result.code == 0, result.err
        web = containers(result.one("Deployment"))["web"]
        refs = [next(iter(e.values()))["name"] for e in web["envFrom"]]
        cm, secret = result.one("ConfigMap")["metadata"]["name"], result.one("Secret")["metadata"]["name"]
        assert refs == [cm, secret]  # the pods point at the new names, so a change rolls them
        return cm, secret, result.out

    base = names("--secret", "K=v1-secret")
    assert names("--secret", "K=v1-secret") == base
    changed_value = names("--set", "LOG_LEVEL=warn", "--secret", "K=v1-secret")
    assert changed_value[0] != base[0] and changed_value[1] == base[1]
    changed_secret = names("--secret", "K=v2-secret")
    assert changed_secret[0] == base[0] and changed_secret[1] != base[1]


def test_render_is_deterministic(project: Project) -> None:
    project.standard()
    project.manifest("w.yaml", "---\n".join(WORKLOADS.values()))
    first = project.render("--secret", "K=v")
    second = project.render("--secret", "K=v")
    assert first.code == 0 and first.out == second.out
    assert "2023-11-14T22:13:20Z" in first.out  # SOURCE_DATE_EPOCH, not the clock


# ------------------------------------------------------------------------------------------------
# substitution, namespaces, lists
# ------------------------------------------------------------------------------------------------

def test_substitution_and_escapes(project: Project) -> None:
    project.config()
    project.manifest("cm.yaml", """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: subst}
        data:
          escaped: "$${HOME}/bin"
          kube: "$(POD_NAME)"
          mixed: "${LOG_LEVEL}-$${LOG_LEVEL}-${ENVSHIP_ENVIRONMENT}"
          plain: "$HOME and $ alone"
        """)
    result = project.render()
    assert result.code == 0, result.err
    assert result.one("ConfigMap", "subst")["data"] == {
        "escaped": "${HOME}/bin", "kube": "$(POD_NAME)", "mixed": "debug-${LOG_LEVEL}-staging",
        "plain": "$HOME and $ alone"}


def test_cluster_scoped_objects_are_not_namespaced(project: Project) -> None:
    project.config()
    project.manifest("rbac.yaml", """\
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: hello-reader}
        rules: []
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: hello-reader}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: hello-reader}
        subjects: [{kind: ServiceAccount, name: hello, namespace: "${ENVSHIP_NAMESPACE}"}]
        ---
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: hello, namespace: hello-staging}
        """)
    result = project.render()
    assert result.code == 0, result.err
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        obj = result.one(kind)
        assert "namespace" not in obj["metadata"]
        assert OWNER_LABELS.items() <= obj["metadata"]["labels"].items()
    assert result.one("ClusterRoleBinding")["subjects"][0]["namespace"] == "hello-staging"
    # naming the environment's own namespace is fine
    assert result.one("ServiceAccount")["metadata"]["namespace"] == "hello-staging"


def test_list_kind_is_expanded(project: Project) -> None:
    project.config()
    project.manifest("list.yaml", "apiVersion: v1\nkind: List\nitems:\n"
                                  + "".join("  " + line + "\n" for line in ("- " + SERVICE.replace("\n", "\n  "))
                                            .rstrip().split("\n"))
                                  + "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: extra}, data: {a: b}}\n")
    result = project.render()
    assert result.code == 0, result.err
    assert [o["kind"] for o in result.objects if o["kind"] != "ConfigMap" or o["metadata"]["name"] == "extra"] \
        == ["ConfigMap", "Service"]
    assert result.one("Service")["metadata"]["namespace"] == "hello-staging"
    assert result.of_kind("List") == []


def test_manifest_discovery(project: Project) -> None:
    """.yaml, .yml and .json in subdirectories; hidden directories and other files ignored."""
    project.config()
    project.manifest("a/service.yml", SERVICE)
    project.manifest("b/cm.json", '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-json"}}')
    project.manifest(".hidden/bad.yaml", "not: [valid")
    project.manifest("README.md", "# docs")
    project.manifest("notes.txt", "kind: nonsense")
    result = project.render()
    assert result.code == 0, result.err
    assert {(o["kind"], o["metadata"]["name"]) for o in result.objects} >= {("Service", "hello"),
                                                                             ("ConfigMap", "from-json")}


def test_manifests_may_be_a_single_file(project: Project) -> None:
    project.config(BASE_CONFIG.replace("manifests: deploy", "manifests: k8s/all.yaml"))
    project.write("k8s/all.yaml", SERVICE + "---\n" + DEPLOYMENT)
    result = project.render()
    assert result.code == 0, result.err
    assert [o["kind"] for o in result.objects] == ["ConfigMap", "Service", "Deployment"]


def test_apply_order_and_labels(project: Project) -> None:
    project.config()
    project.manifest("mixed.yaml", """\
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: web, labels: {team: a}, annotations: {note: kept}}
        spec: {}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec: {template: {spec: {containers: [{name: web, image: ghcr.io/acme/hello}]}}}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        ---
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: web}
        """)
    environ = {"SOURCE_DATE_EPOCH": "1700000000", "GITHUB_SHA": "abc123", "GITHUB_SERVER_URL": "https://github.com",
               "GITHUB_REPOSITORY": "acme/hello", "GITHUB_RUN_ID": "99", "GITHUB_RUN_ATTEMPT": "2"}
    result = project.render(environ=environ)
    assert result.code == 0, result.err
    assert [o["kind"] for o in result.objects] == ["ConfigMap", "Service", "ServiceAccount", "Deployment", "Ingress"]
    ingress = result.one("Ingress")
    assert ingress["metadata"]["labels"] == {
        "team": "a", **OWNER_LABELS, "envship.dev/environment": "staging",
        "applyset.kubernetes.io/part-of": ApplySet("hello", "staging", "hello-staging").id}
    assert ingress["metadata"]["annotations"] == {
        "note": "kept", "envship.dev/digest": DIGEST, "envship.dev/git-sha": "abc123",
        "envship.dev/run-url": "https://github.com/acme/hello/actions/runs/99/attempts/2",
        "envship.dev/deployed-at": "2023-11-14T22:13:20Z"}


# ------------------------------------------------------------------------------------------------
# previews
# ------------------------------------------------------------------------------------------------

def is_dns_label(text: str) -> bool:
    import re

    return len(text) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", text) is not None


def test_preview_names_are_sanitised_to_dns_labels(project: Project) -> None:
    long_app = "a-rather-long-application-name-for-previews-of-this-app"  # 55 characters
    config = (BASE_CONFIG.replace("app: hello", f"app: {long_app}")
              .replace("    namespace: hello-pr-{pr}\n", "")  # default: <app>-pr-{pr}
              .replace("host: hello-pr-{pr}.example.com", f"host: {long_app}-pr-{{pr}}.example.com"))
    project.config(config)
    project.manifest("d.yaml", DEPLOYMENT)
    project.manifest("i.yaml", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\n"
                               "spec: {rules: [{host: '${ENVSHIP_HOST}'}]}\n")
    namespaces, hosts = set(), set()
    for pr in ("1", "123456789", "123456790"):
        result = project.render("--pr", pr, env="preview")
        assert result.code == 0, result.err
        namespace = result.one("Namespace")["metadata"]["name"]
        host = result.one("Ingress")["spec"]["rules"][0]["host"]
        assert is_dns_label(namespace), namespace
        assert all(is_dns_label(label) for label in host.split(".")), host
        assert host.endswith(".example.com")
        for obj in result.objects:
            if obj["kind"] != "Namespace":
                assert obj["metadata"]["namespace"] == namespace
            assert obj["metadata"]["labels"]["envship.dev/pr"] == pr
        namespaces.add(namespace)
        hosts.add(host)
    assert len(namespaces) == 3 and len(hosts) == 3  # long names stay unique per pull request
    assert f"{long_app}-pr-1" in namespaces


def test_preview_creates_its_namespace_once(project: Project) -> None:
    project.standard()
    result = project.render("--pr", "7", env="preview")
    assert result.code == 0, result.err
    namespace = result.objects[0]
    assert namespace["kind"] == "Namespace" and namespace["metadata"]["name"] == "hello-pr-7"
    assert "namespace" not in namespace["metadata"]
    assert namespace["metadata"]["labels"]["envship.dev/pr"] == "7"
    # a Namespace in the manifests for the environment's own namespace is not doubled
    project.manifest("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ENVSHIP_NAMESPACE}\n"
                                "  labels: {istio-injection: enabled}\n")
    again = project.render("--pr", "7", env="preview")
    assert again.code == 0, again.err
    assert again.one("Namespace")["metadata"]["labels"]["istio-injection"] == "enabled"
    # long-lived environments do not create theirs unless asked
    (project.root / "deploy" / "ns.yaml").unlink()
    assert project.render().of_kind("Namespace") == []


def test_create_namespace_for_a_long_lived_environment(project: Project) -> None:
    project.config(BASE_CONFIG.replace("    namespace: hello-staging\n",
                                       "    namespace: hello-staging\n    create-namespace: true\n"))
    project.manifest("d.yaml", DEPLOYMENT)
    result = project.render()
    assert result.code == 0, result.err
    assert result.objects[0]["kind"] == "Namespace" and result.objects[0]["metadata"]["name"] == "hello-staging"


# ------------------------------------------------------------------------------------------------
# --output DIR
# ------------------------------------------------------------------------------------------------

def test_output_directory(project: Project) -> None:
    project.standard()
    out = project.root / "rendered"
    out.mkdir()
    for name in ("0009-service-old.yaml", "0001-configmap-hello-env-0000000000.yaml"):
        (out / name).write_text("stale: true\n")
    keep = {"README.md": "# rendered manifests\n", "kustomization.yaml": "resources: []\n",
            "0001-notes.txt": "mine\n", ".gitkeep": ""}
    for name, text in keep.items():
        (out / name).write_text(text)

    stream = project.render("--secret", "K=value-one")
    result = project.render("--secret", "K=value-one", "--output", "rendered")
    assert result.code == 0, result.err
    assert result.out == ""
    assert "wrote 4 objects to rendered" in result.err
    files = rendered_files(out)
    written = sorted(n for n in files if n not in keep)
    cm, secret = stream.one("ConfigMap")["metadata"]["name"], stream.one("Secret")["metadata"]["name"]
    assert written == [f"0001-configmap-{cm}.yaml", f"0002-secret-{secret}.yaml", "0003-service-hello.yaml",
                       "0004-deployment-hello.yaml"]
    for name, text in keep.items():
        assert files[name] == text  # other files are left alone
    assert [yaml.safe_load(files[n]) for n in written] == stream.objects
    assert yaml.safe_load(files[written[1]])["data"] == {"K": "<redacted>"}
    assert not list(out.glob(".*.tmp"))

    # a second render with other values replaces the ConfigMap file instead of leaving the old one
    again = project.render("--secret", "K=value-one", "--set", "LOG_LEVEL=warn", "--output", "rendered")
    assert again.code == 0, again.err
    names = sorted(n for n in rendered_files(out) if n not in keep)
    assert len(names) == 4 and f"0001-configmap-{cm}.yaml" not in names
    assert names[0].startswith("0001-configmap-hello-env-")


def test_output_directory_is_created(project: Project) -> None:
    project.standard()
    result = project.render("--output", "a/b/c")
    assert result.code == 0, result.err
    configmap = project.render().one("ConfigMap")["metadata"]["name"]
    assert sorted(rendered_files(project.root / "a/b/c")) == [
        f"0001-configmap-{configmap}.yaml", "0002-service-hello.yaml", "0003-deployment-hello.yaml"]


def test_output_into_a_file_fails_with_exit_1(project: Project) -> None:
    project.standard()
    (project.root / "taken").write_text("a file\n")
    result = project.render("--output", "taken")
    assert result.code == 1
    _, hint = result.problem("cannot write rendered manifests to taken")
    assert hint.startswith("hint: ")
    assert "Traceback" not in result.err


def test_output_is_byte_identical_between_runs(project: Project) -> None:
    project.standard()
    assert project.render("--output", "one").code == 0
    assert project.render("--output", "two").code == 0
    assert rendered_files(project.root / "one") == rendered_files(project.root / "two")


def test_secrets_in_manifests_are_redacted_too(project: Project) -> None:
    project.config()
    project.manifest("secret.yaml", """\
        apiVersion: v1
        kind: Secret
        metadata: {name: tls}
        stringData: {tls.key: plain-key-material}
        data: {ca.crt: Y2EtY2VydA==}
        """)
    result = project.render()
    assert result.code == 0, result.err
    assert result.one("Secret", "tls")["stringData"] == {"tls.key": "<redacted>"}
    assert result.one("Secret", "tls")["data"] == {"ca.crt": "<redacted>"}
    assert "plain-key-material" not in result.out and "Y2EtY2VydA==" not in result.out
    shown = project.render("--show-secrets")
    assert shown.one("Secret", "tls")["stringData"] == {"tls.key": "plain-key-material"}


def test_yaml_merge_keys_in_manifests(project: Project) -> None:
    project.config()
    project.manifest("d.yaml", """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          template:
            spec:
              containers:
                - &app {name: web, image: "ghcr.io/acme/hello:1", args: [serve]}
                - <<: *app
                  name: worker
                  args: [work]
        """)
    result = project.render()
    assert result.code == 0, result.err
    web, worker = result.one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert (web["name"], web["args"], web["image"]) == ("web", ["serve"], IMAGE)
    assert (worker["name"], worker["args"], worker["image"]) == ("worker", ["work"], IMAGE)


def test_manifests_in_the_config_directory(project: Project) -> None:
    """`manifests: .` reads the repository root's YAML, but not envship.yaml itself nor .github/."""
    project.config(BASE_CONFIG.replace("manifests: deploy", "manifests: ."))
    project.write("service.yaml", SERVICE)
    project.write(".github/workflows/deploy.yml", "on: push\njobs: {}\n")
    result = project.render()
    assert result.code == 0, result.err
    assert [o["kind"] for o in result.objects] == ["ConfigMap", "Service"]


def test_manifest_not_utf8(project: Project) -> None:
    project.config()
    (project.root / "deploy").mkdir()
    (project.root / "deploy" / "s.yaml").write_bytes(SERVICE.replace("  name: hello", "  name: hello # caf\xe9")
                                                     .encode("latin-1"))
    result = project.render()
    assert result.code == 2
    line, hint = result.problem("the file is not UTF-8 text (byte 0xe9)")
    assert line.startswith("error: deploy/s.yaml:4:20: ") and hint == "hint: save it as UTF-8"
