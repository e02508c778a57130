"""Render (pure): environment-agnostic manifests + environment + release -> the exact objects to apply.

Order of work for each object: substitute variables, set the namespace, pin the app's images, inject
the env ConfigMap/Secret, stamp ownership labels and release annotations. Problems in all documents
are collected and raised together.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import Location, ManifestError, Problem, UsageError
from . import kinds
from .config import CloudflareRoutes, Config, Environment
from .imageref import ImageRef, ImageRefError, parse_image_ref
from .naming import content_hash, expand_placeholders, sanitize_host, sanitize_label, secret_content_hash
from .ownership import PART_OF, ApplySet
from .substitute import substitute_text, substitute_tree
from .yamlsrc import Path, YamlDoc

ANNOTATION_PREFIX = "envship.dev/"
REDACTED = "<redacted>"


@dataclass(frozen=True)
class Release:
    """What is being deployed: one pinned image and where it came from."""

    image: str          # REPO@sha256:D
    digest: str         # sha256:D
    git_sha: str = ""
    run_url: str = ""
    time: str = ""      # RFC 3339, UTC
    image_tag: str = ""  # the tag --image named, when it was resolved to the digest through the registry
    promoted_from: Mapping[str, str] = field(default_factory=dict)  # environment, revision, git_sha, run_url

    def annotations(self) -> dict[str, str]:
        origin = self.promoted_from
        values = {"digest": self.digest, "image-tag": self.image_tag, "git-sha": self.git_sha,
                  "run-url": self.run_url, "deployed-at": self.time,
                  "promoted-from": f"{origin['environment']} revision {origin.get('revision', '?')}" if origin else ""}
        return {ANNOTATION_PREFIX + k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Target:
    """An environment made concrete: placeholders expanded and names sanitised."""

    environment: Environment
    namespace: str
    host: str | None
    pr: int | None

    @property
    def name(self) -> str:
        return self.environment.name

    def applyset(self, app: str) -> ApplySet:
        return ApplySet(app, self.name, self.namespace, self.pr)


@dataclass
class RenderedObject:
    obj: dict[str, Any]
    source: Location | None = None  # None for objects envship generates
    doc: YamlDoc | None = field(default=None, repr=False, compare=False)   # where it was written
    base: Path = field(default=(), repr=False, compare=False)             # its path in `doc` (List items)

    def locate(self, field_path: str) -> Location | None:
        """Where the manifest wrote a field the API server names (`spec.template.spec.containers[0].image`,
        `data[key]`): its line, or the nearest enclosing one; the object's own place without a document."""
        if self.doc is None:
            return self.source
        return self.doc.at(self.base + field_path_of(field_path))

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.obj.get("metadata", {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        namespace = self.obj.get("metadata", {}).get("namespace")
        return str(namespace) if namespace else None

    @property
    def key(self) -> tuple[str, str, str, str]:
        group = str(self.obj.get("apiVersion", "")).rpartition("/")[0]
        return (group, self.kind, self.namespace or "", self.name)

    def describe(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass
class Rendering:
    target: Target
    release: Release
    app: str = ""
    objects: list[RenderedObject] = field(default_factory=list)
    env_configmap: str | None = None
    env_secret: str | None = None
    notes: list[str] = field(default_factory=list)  # what render changed beyond the documented rules
    needs_address: bool = False  # a route points the host at the address the cluster's Ingress publishes
    route: CloudflareRoutes | None = None  # the host's Cloudflare route, when this environment has one

    @property
    def url(self) -> str:
        """The environment's URL, `https://HOST`, or empty without a host."""
        return f"https://{self.target.host}" if self.target.host else ""

    def outputs(self) -> dict[str, str]:
        """The step outputs every command that renders sets."""
        return {"image": self.release.image, "digest": self.release.digest, "environment": self.target.name,
                "namespace": self.target.namespace, "url": self.url}


@dataclass(frozen=True)
class Inputs:
    """Everything render needs besides the manifests."""

    config: Config
    environment: Environment
    release: Release
    pr: int | None = None
    values: Mapping[str, str] = field(default_factory=dict)   # --set
    secrets: Mapping[str, str] = field(default_factory=dict)  # --secret


def field_path_of(text: str) -> Path:
    """An API server field path (`spec.containers[0].image`, `metadata.labels[app]`) as a path into the
    object; whatever does not parse ends the path there (the enclosing field is named instead)."""
    path: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[[^\]]*\]", text.strip()):
        if part.startswith("["):
            inner = part[1:-1]
            path.append(int(inner) if inner.isdigit() else inner)
        else:
            path.append(part)
    return tuple(path)


def resolve_target(environment: Environment, pr: int | None) -> Target:
    if environment.preview and pr is None:
        raise UsageError(f"environment '{environment.name}' is a preview environment and needs a pull request number",
                         "set {--pr} to the pull request number (the action reads it from the pull_request event)")
    if not environment.preview and pr is not None:
        raise UsageError(f"{{--pr}} is only for preview environments; '{environment.name}' is not one",
                         "drop {--pr}, or choose the preview environment")
    if pr is not None and pr < 1:
        raise UsageError(f"{{--pr}} must be a positive pull request number, not {pr}")
    values = {"pr": str(pr)} if pr is not None else {}
    namespace = sanitize_label(expand_placeholders(environment.namespace, values))
    host = sanitize_host(expand_placeholders(environment.host, values)) if environment.host else None
    return Target(environment, namespace, host, pr)


def release_image_ref(config: Config, image: str) -> ImageRef:
    """Check `--image` (a digest, or a tag to resolve) against the config's repository; return it parsed."""
    try:
        ref = parse_image_ref(image)
    except ImageRefError as e:
        raise UsageError(f"{{--image}}: {e}", "pass REPO@sha256:DIGEST as printed by the build job") from e
    app_repo = parse_image_ref(config.image)
    if ref.canonical != app_repo.canonical:
        raise UsageError(
            f"{{--image}} {image} is not from the app's repository {config.image}",
            f"pass {config.image}@sha256:..., or change 'image' in {config.file}",
        )
    if not ref.digest and not ref.tag:
        raise UsageError(
            f"{{--image}} {image} has neither a digest nor a tag",
            f"pass {config.image}@sha256:... as printed by the build job",
        )
    return ref


def variables_for(inputs: Inputs, target: Target) -> dict[str, str]:
    """Top-level env < environment env < --set, with ENVSHIP_* builtins substituted into the values."""
    builtins = builtin_variables(target, inputs.release)
    merged = {**inputs.config.env, **inputs.environment.env, **inputs.values}
    problems: list[Problem] = []
    resolved: dict[str, str] = {}
    for key, value in merged.items():
        def missing(name: str, key: str = key) -> None:
            hint = (f"environment '{target.name}' has no 'host'" if name == "ENVSHIP_HOST"
                    else f"only {', '.join(sorted(builtins))} can be used inside variable values")
            problems.append(Problem(f"variable '{key}' refers to ${{{name}}}, which is not set", None, hint))
        resolved[key] = substitute_text(value, builtins, missing)
    if problems:
        raise ManifestError(problems)
    return resolved


def builtin_variables(target: Target, release: Release) -> dict[str, str]:
    values = {
        "ENVSHIP_NAMESPACE": target.namespace,
        "ENVSHIP_ENVIRONMENT": target.name,
        "ENVSHIP_IMAGE": release.image,
    }
    if target.host:
        values["ENVSHIP_HOST"] = target.host
    if target.pr is not None:
        values["ENVSHIP_PR"] = str(target.pr)
    return values


def render(docs: Iterable[YamlDoc], inputs: Inputs, target: Target) -> Rendering:
    """The objects to apply for `target`, in apply order. Raises ManifestError with every problem."""
    env_values = variables_for(inputs, target)
    variables = {**env_values, **builtin_variables(target, inputs.release)}
    renderer = _Renderer(inputs, target, variables)
    rendering = Rendering(target, inputs.release, inputs.config.app)
    routes = inputs.config.cloudflare
    if routes is not None and target.environment.routes and target.host:
        rendering.route = routes
    rendering.needs_address = bool(rendering.route and routes and routes.mode == "dns" and routes.target == "ingress")
    rendering.env_configmap, rendering.env_secret = renderer.env_refs(env_values, inputs.secrets)
    objects = [obj for doc in docs for obj in renderer.objects_of(doc)]
    if not objects and not renderer.problems:
        config = inputs.config
        raise ManifestError([Problem(
            f"the manifests in '{config.manifests}' hold no Kubernetes objects (only comments or empty documents)",
            config.manifests_location,
            "add the app's manifests there; envship refuses to deploy nothing, which would remove the running app")])
    objects.extend(renderer.generated(env_values, inputs.secrets, objects))
    renderer.check_data_sizes(objects)
    renderer.check_duplicates(objects)
    if renderer.problems:
        raise ManifestError(renderer.problems)
    rendering.notes = leave_replicas_to_autoscalers(objects)
    rendering.objects = sorted(objects, key=lambda o: (kinds.tier(o.kind), o.kind, o.namespace or "", o.name))
    return rendering


def leave_replicas_to_autoscalers(objects: list[RenderedObject]) -> list[str]:
    """Drop spec.replicas from workloads that a rendered HorizontalPodAutoscaler scales. envship applies
    its fields with force, so a replica count in the manifest would reset the HPA's choice on every
    deploy (a scale-down under load); without it the HPA alone owns the field."""
    targets = {}
    for hpa in objects:
        if hpa.kind == "HorizontalPodAutoscaler":
            ref = (hpa.obj.get("spec") or {}).get("scaleTargetRef") or {}
            targets[(str(ref.get("kind")), str(ref.get("name")), hpa.namespace)] = hpa.describe()
    notes = []
    for obj in objects:
        scaler = targets.get((obj.kind, obj.name, obj.namespace))
        spec = obj.obj.get("spec")
        if scaler and isinstance(spec, dict) and "replicas" in spec:
            del spec["replicas"]
            notes.append(f"{obj.describe()}: spec.replicas left to {scaler}")
    return notes


def redact_secrets(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of `obj` safe to print: Secret values replaced by <redacted>, keys kept."""
    if obj.get("kind") != "Secret":
        return obj
    copy = dict(obj)
    for field_name in ("data", "stringData"):
        if isinstance(obj.get(field_name), dict):
            copy[field_name] = {k: REDACTED for k in obj[field_name]}
    return copy


class _Renderer:
    def __init__(self, inputs: Inputs, target: Target, variables: Mapping[str, str]) -> None:
        self.inputs = inputs
        self.target = target
        self.variables = variables
        self.app_repo = parse_image_ref(inputs.config.image).canonical
        self.problems: list[Problem] = []
        self.configmap: str | None = None
        self.secret: str | None = None

    # -- names and labels -----------------------------------------------------------------------
    def env_refs(self, values: Mapping[str, str], secrets: Mapping[str, str]) -> tuple[str | None, str | None]:
        app = self.inputs.config.app
        self.configmap = f"{app}-env-{content_hash(values)}" if values else None
        salt = f"envship:{app}:{self.target.name}:{self.target.namespace}"
        self.secret = f"{app}-secrets-{secret_content_hash(secrets, salt)}" if secrets else None
        return self.configmap, self.secret

    def labels(self) -> dict[str, str]:
        """The applyset membership (what envship decides by) and the labels people select by."""
        applyset = self.target.applyset(self.inputs.config.app)
        return {**applyset.human_labels(), PART_OF: applyset.id}

    # -- per document ---------------------------------------------------------------------------
    def objects_of(self, doc: YamlDoc) -> list[RenderedObject]:
        value = doc.value
        if not isinstance(value, dict):
            self.problem(doc, (), "a manifest document must be a mapping (a Kubernetes object)",
                         "remove stray text or list markers at the top level of this document")
            return []
        if value.get("kind") == "Kustomization" or str(value.get("apiVersion", "")).startswith("kustomize.config"):
            self.problem(doc, (), "this is a kustomization, not a Kubernetes object",
                         "envship reads plain manifests: run 'kubectl kustomize' into the manifests directory")
            return []
        if str(value.get("kind", "")).endswith("List") and isinstance(value.get("items"), list):
            return [o for i, item in enumerate(value["items"]) if (o := self.object(doc, item, ("items", i)))]
        obj = self.object(doc, value, ())
        return [obj] if obj else []

    def object(self, doc: YamlDoc, value: Any, base: Path) -> RenderedObject | None:
        if not self.valid_shape(doc, value, base):
            return None
        obj, unresolved = substitute_tree(value, self.variables, base, doc.plain_refs)
        for miss in unresolved:
            self.unresolved(doc, miss.path, miss.name)
        if unresolved:
            return None
        rendered = RenderedObject(obj, doc.at(base), doc, base)
        if not self.place_in_namespace(doc, obj, base):
            return None
        spec = kinds.pod_spec(obj)
        if spec is not None:
            self.pin_images(spec)
            self.inject_env(spec)
        self.stamp(obj)
        return rendered

    def valid_shape(self, doc: YamlDoc, value: Any, base: Path) -> bool:
        if not isinstance(value, dict):
            self.problem(doc, base, "a list item must be a Kubernetes object (a mapping)",
                         "give each item of 'items' apiVersion, kind and metadata.name")
            return False
        ok = True
        for key in ("apiVersion", "kind"):
            if not isinstance(value.get(key), str) or not value.get(key):
                self.problem(doc, base, f"object has no '{key}'",
                             "every object needs apiVersion, kind and metadata.name")
                ok = False
        meta = value.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("name"):
            self.problem(doc, base + ("metadata",) if isinstance(meta, dict) else base,
                         f"{value.get('kind', 'object')} has no metadata.name",
                         "give every object a fixed name; envship does not support generateName")
            ok = False
        return ok

    def unresolved(self, doc: YamlDoc, path: Path, name: str) -> None:
        if name in self.inputs.secrets:
            hint = (f"'{name}' is a secret; secrets are never written into manifests. Read it in the "
                    f"container through the injected Secret (envFrom), e.g. as the environment variable {name}")
        elif name == "ENVSHIP_HOST":
            hint = f"environment '{self.target.name}' has no 'host'; add one in {self.inputs.config.file}"
        else:
            known = ", ".join(sorted(self.variables)) or "none"
            hint = (f"define {name} under 'env' in {self.inputs.config.file} (or pass {{--set}} {name}=...), "
                    f"or write $${{{name}}} for a literal; known variables: {known}")
        self.problem(doc, path, f"unresolved variable ${{{name}}}", hint)

    def place_in_namespace(self, doc: YamlDoc, obj: dict[str, Any], base: Path) -> bool:
        if not kinds.is_namespaced(obj["kind"]):
            return True
        meta = obj["metadata"]
        given = meta.get("namespace")
        if given not in (None, "", self.target.namespace):
            self.problem(doc, base + ("metadata", "namespace"),
                         f"{obj['kind']}/{meta['name']} names namespace '{given}', but environment "
                         f"'{self.target.name}' deploys to '{self.target.namespace}'",
                         "remove metadata.namespace (envship sets it) or write ${ENVSHIP_NAMESPACE}")
            return False
        # name, then namespace, then the rest: how kubectl prints objects, easiest to read in a diff
        obj["metadata"] = {"name": meta["name"], "namespace": self.target.namespace, **meta}
        return True

    def pin_images(self, spec: dict[str, Any]) -> None:
        for container in self.containers(spec, kinds.CONTAINER_LISTS):
            image = container.get("image")
            if isinstance(image, str) and self.is_app_image(image):
                container["image"] = self.inputs.release.image

    def is_app_image(self, image: str) -> bool:
        try:
            return parse_image_ref(image).canonical == self.app_repo
        except ImageRefError:
            return False

    def inject_env(self, spec: dict[str, Any]) -> None:
        refs = [("configMapRef", self.configmap), ("secretRef", self.secret)]
        for container in self.containers(spec, ("initContainers", "containers")):
            if container.get("image") != self.inputs.release.image:
                continue
            env_from = list(container.get("envFrom") or [])
            for ref_kind, name in refs:
                if name and not any(isinstance(e, dict) and (e.get(ref_kind) or {}).get("name") == name
                                    for e in env_from):
                    env_from.append({ref_kind: {"name": name}})
            if env_from:
                container["envFrom"] = env_from

    @staticmethod
    def containers(spec: dict[str, Any], lists: tuple[str, ...]) -> Iterable[dict[str, Any]]:
        for list_name in lists:
            for container in spec.get(list_name) or []:
                if isinstance(container, dict):
                    yield container

    def stamp(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        meta["labels"] = {**(meta.get("labels") or {}), **self.labels()}
        meta["annotations"] = {**(meta.get("annotations") or {}), **self.inputs.release.annotations()}

    # -- generated objects ----------------------------------------------------------------------
    def generated(self, values: Mapping[str, str], secrets: Mapping[str, str],
                  rendered: list[RenderedObject]) -> list[RenderedObject]:
        out: list[dict[str, Any]] = []
        namespace = self.target.namespace
        has_namespace = any(o.kind == "Namespace" and o.name == namespace for o in rendered)
        if self.target.environment.create_namespace and not has_namespace:
            out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        if self.configmap:
            out.append({"apiVersion": "v1", "kind": "ConfigMap", "immutable": True,
                        "metadata": {"name": self.configmap, "namespace": namespace},
                        "data": dict(sorted(values.items()))})
        if self.secret:
            data = {k: base64.b64encode(v.encode()).decode() for k, v in sorted(secrets.items())}
            out.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "immutable": True,
                        "metadata": {"name": self.secret, "namespace": namespace}, "data": data})
        if self.target.environment.preview:
            out += preview_limits(namespace, {o.kind for o in rendered})
        for obj in out:
            self.stamp(obj)
        return [RenderedObject(obj) for obj in out]

    def check_data_sizes(self, objects: list[RenderedObject]) -> None:
        """ConfigMaps and Secrets hold at most 1 MiB (keys and values, Secret values decoded): the API
        server's rule (validation.ValidateConfigMap / ValidateSecret, MaxSecretSize); found here, not as a 422
        halfway through a deploy."""
        for obj in objects:
            size = kinds.data_size(obj.obj)
            if size is None or size <= kinds.MAX_DATA_BYTES:
                continue
            if obj.source is not None:
                hint = "mount large files from a volume or an image instead of a ConfigMap or Secret"
            elif obj.kind == "Secret":
                hint = "the {--secret} values together exceed it: keep large files out of secrets"
            else:
                hint = "the environment's variables (env, {--set}) together exceed it: keep large values out of env"
            self.problems.append(Problem(
                f"{obj.describe()} holds {size:,} bytes of data; Kubernetes stores at most "
                f"{kinds.MAX_DATA_BYTES:,} bytes in a {obj.kind}", obj.source, hint))

    def check_duplicates(self, objects: list[RenderedObject]) -> None:
        seen: dict[tuple[str, str, str, str], RenderedObject] = {}
        for obj in objects:
            first = seen.setdefault(obj.key, obj)
            if first is not obj:
                where = f"first defined at {first.source}" if first.source else "envship generates it"
                self.problems.append(Problem(f"{obj.describe()} is defined twice ({where})", obj.source,
                                             "remove one of the two definitions"))

    def problem(self, doc: YamlDoc, path: Path, message: str, hint: str = "") -> None:
        self.problems.append(Problem(message, doc.at(path), hint))


PREVIEW_QUOTA = {"pods": "20", "requests.cpu": "2", "requests.memory": "4Gi", "limits.cpu": "4",
                 "limits.memory": "8Gi", "services.loadbalancers": "0", "persistentvolumeclaims": "5"}
PREVIEW_CONTAINER_DEFAULTS = {"default": {"cpu": "500m", "memory": "512Mi"},
                              "defaultRequest": {"cpu": "50m", "memory": "64Mi"}}


def preview_limits(namespace: str, rendered_kinds: set[str]) -> list[dict[str, Any]]:
    """A preview runs pull request code: its namespace gets a ResourceQuota and container defaults (a
    LimitRange), unless the manifests bring their own. With a quota on cpu and memory, every container
    needs requests and limits; the LimitRange fills them in for containers that set none."""
    found: list[dict[str, Any]] = []
    if "ResourceQuota" not in rendered_kinds:
        found.append({"apiVersion": "v1", "kind": "ResourceQuota",
                      "metadata": {"name": "envship-preview", "namespace": namespace},
                      "spec": {"hard": dict(PREVIEW_QUOTA)}})
    if "LimitRange" not in rendered_kinds:
        found.append({"apiVersion": "v1", "kind": "LimitRange",
                      "metadata": {"name": "envship-preview", "namespace": namespace},
                      "spec": {"limits": [{"type": "Container", **PREVIEW_CONTAINER_DEFAULTS}]}})
    return found
