"""The fake API server's resource registry: which kinds exist, their scope, verbs and subresources,
and the discovery and OpenAPI documents kubectl and client libraries read to find them.

Custom resources registered by a CustomResourceDefinition are added and removed at run time.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "scale", "log"
    verbs: tuple[str, ...] = VERBS
    generation: bool = False  # metadata.generation is kept (and bumped when spec changes)
    builtin: bool = True  # typed list items omit apiVersion/kind like the real server
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, `pods`: how the real server names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """`Deployment.apps`, `Pod`: how validation messages name a kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def storage_key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


def _rt(group: str, version: str, kind: str, plural: str, *, namespaced: bool = True,
        short: tuple[str, ...] = (), all_: bool = False, sub: tuple[str, ...] = (),
        generation: bool = False) -> ResourceType:
    return ResourceType(group, version, kind, plural, kind.lower(), namespaced, short,
                        ("all",) if all_ else (), sub, VERBS, generation)


BUILTIN: tuple[ResourceType, ...] = (
    _rt("", "v1", "Namespace", "namespaces", namespaced=False, short=("ns",), sub=("status",)),
    _rt("", "v1", "Node", "nodes", namespaced=False, short=("no",), sub=("status",)),
    _rt("", "v1", "Pod", "pods", short=("po",), all_=True, sub=("status", "log")),
    _rt("", "v1", "Service", "services", short=("svc",), all_=True, sub=("status",)),
    _rt("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    _rt("", "v1", "Secret", "secrets"),
    _rt("", "v1", "ServiceAccount", "serviceaccounts", short=("sa",)),
    _rt("", "v1", "Event", "events", short=("ev",)),
    _rt("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), sub=("status",)),
    _rt("", "v1", "ResourceQuota", "resourcequotas", short=("quota",), sub=("status",)),
    _rt("", "v1", "LimitRange", "limitranges", short=("limits",)),
    _rt("apps", "v1", "Deployment", "deployments", short=("deploy",), all_=True, sub=("status", "scale"),
        generation=True),
    _rt("apps", "v1", "StatefulSet", "statefulsets", short=("sts",), all_=True, sub=("status", "scale"),
        generation=True),
    _rt("apps", "v1", "DaemonSet", "daemonsets", short=("ds",), all_=True, sub=("status",), generation=True),
    _rt("apps", "v1", "ReplicaSet", "replicasets", short=("rs",), all_=True, sub=("status", "scale"),
        generation=True),
    _rt("batch", "v1", "Job", "jobs", all_=True, sub=("status",), generation=True),
    _rt("batch", "v1", "CronJob", "cronjobs", short=("cj",), all_=True, sub=("status",), generation=True),
    _rt("networking.k8s.io", "v1", "Ingress", "ingresses", short=("ing",), sub=("status",), generation=True),
    _rt("networking.k8s.io", "v1", "IngressClass", "ingressclasses", namespaced=False, generation=True),
    _rt("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short=("netpol",), generation=True),
    _rt("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=("hpa",), all_=True,
        sub=("status",), generation=True),
    _rt("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",), sub=("status",),
        generation=True),
    _rt("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _rt("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _rt("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    _rt("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    _rt("coordination.k8s.io", "v1", "Lease", "leases"),
    _rt("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False,
        short=("crd", "crds"), sub=("status",), generation=True),
)

# Preferred group order in /apis (the real server lists groups by priority; kubectl resolves short
# names and kinds in this order).
_GROUP_ORDER = ("apps", "batch", "networking.k8s.io", "autoscaling", "policy", "rbac.authorization.k8s.io",
                "coordination.k8s.io", "apiextensions.k8s.io")

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


class Registry:
    """Thread-safe set of served resource types."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._types: list[ResourceType] = list(BUILTIN)

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types)

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            for rt in self._types:
                if rt.group == group and rt.version == version and rt.plural == plural:
                    return rt
        return None

    def by_kind(self, group: str, kind: str) -> ResourceType | None:
        with self._lock:
            for rt in self._types:
                if rt.group == group and rt.kind == kind:
                    return rt
        return None

    def by_storage(self, group: str, plural: str) -> ResourceType | None:
        with self._lock:
            for rt in self._types:
                if rt.group == group and rt.plural == plural:
                    return rt
        return None

    def group_versions(self) -> dict[str, list[str]]:
        """group -> served versions (first is preferred), in discovery order."""
        out: dict[str, list[str]] = {}
        with self._lock:
            types = list(self._types)
        for rt in types:
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        order = {g: i for i, g in enumerate(_GROUP_ORDER)}
        return dict(sorted(out.items(), key=lambda kv: (kv[0] != "", order.get(kv[0], len(order)), kv[0])))

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        with self._lock:
            return [rt for rt in self._types if rt.group == group and rt.version == version]

    # -- custom resources ------------------------------------------------------------------------

    def register_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group, plural, kind = spec.get("group", ""), names.get("plural", ""), names.get("kind", "")
        namespaced = spec.get("scope", "Namespaced") == "Namespaced"
        added = []
        for version in spec.get("versions") or []:
            if not version.get("served", True):
                continue
            subs = tuple(s for s in ("status", "scale") if s in (version.get("subresources") or {}))
            added.append(ResourceType(
                group, version.get("name", "v1"), kind, plural, names.get("singular") or kind.lower(), namespaced,
                tuple(names.get("shortNames") or ()), tuple(names.get("categories") or ()), subs, VERBS,
                generation=True, builtin=False))
        with self._lock:
            self._types = [rt for rt in self._types if rt.builtin or (rt.group, rt.plural) != (group, plural)]
            self._types.extend(added)
        return added

    def unregister_crd(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        key = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        with self._lock:
            self._types = [rt for rt in self._types if rt.builtin or (rt.group, rt.plural) != key]

    # -- discovery documents -----------------------------------------------------------------------

    def api_versions(self, server_address: str) -> dict[str, Any]:
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}

    def api_group_list(self) -> dict[str, Any]:
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [self.api_group(g) for g in self.group_versions() if g]}

    def api_group(self, group: str) -> dict[str, Any]:
        versions = self.group_versions().get(group, [])
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries,
                "preferredVersion": entries[0] if entries else {}}

    def resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for rt in self.in_group_version(group, version):
            entry: dict[str, Any] = {
                "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced, "kind": rt.kind,
                "verbs": list(rt.verbs), "storageVersionHash": _hash(rt.group_version + rt.kind)}
            if rt.short_names:
                entry["shortNames"] = list(rt.short_names)
            if rt.categories:
                entry["categories"] = list(rt.categories)
            resources.append(entry)
            for sub in rt.subresources:
                kind, verbs = rt.kind, list(STATUS_VERBS)
                extra: dict[str, Any] = {}
                if sub == "scale":
                    kind, extra = "Scale", {"group": "autoscaling", "version": "v1"}
                elif sub == "log":
                    verbs = ["get"]
                resources.append({"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                                  "kind": kind, "verbs": verbs, **extra})
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}

    def aggregated(self, legacy: bool, api_version: str = "apidiscovery.k8s.io/v2") -> dict[str, Any]:
        """APIGroupDiscoveryList for /api (legacy=True) or /apis."""
        items = []
        for group, versions in self.group_versions().items():
            if (group == "") != legacy:
                continue
            item_versions = []
            for version in versions:
                resources = []
                for rt in self.in_group_version(group, version):
                    entry: dict[str, Any] = {
                        "resource": rt.plural,
                        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
                        "scope": "Namespaced" if rt.namespaced else "Cluster",
                        "singularResource": rt.singular, "verbs": list(rt.verbs)}
                    if rt.short_names:
                        entry["shortNames"] = list(rt.short_names)
                    if rt.categories:
                        entry["categories"] = list(rt.categories)
                    subs = []
                    for sub in rt.subresources:
                        if sub == "scale":
                            kind = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
                        else:
                            kind = {"group": rt.group, "version": rt.version, "kind": rt.kind}
                        subs.append({"subresource": sub, "responseKind": kind,
                                     "verbs": ["get"] if sub == "log" else list(STATUS_VERBS)})
                    if subs:
                        entry["subresources"] = subs
                    resources.append(entry)
                item_versions.append({"version": version, "resources": resources, "freshness": "Current"})
            meta: dict[str, Any] = {"creationTimestamp": None}
            if group:
                meta["name"] = group
            items.append({"metadata": meta, "versions": item_versions})
        return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}

    # -- OpenAPI ----------------------------------------------------------------------------------

    def openapi_v3_index(self) -> dict[str, Any]:
        paths = {}
        for group, versions in self.group_versions().items():
            for version in versions:
                prefix = f"apis/{group}/{version}" if group else f"api/{version}"
                doc = json.dumps(self.openapi_v3_doc(group, version), sort_keys=True)
                paths[prefix] = {"serverRelativeURL": f"/openapi/v3/{prefix}?hash={_hash(doc, 32).upper()}"}
        return {"paths": paths}

    def openapi_v3_doc(self, group: str, version: str) -> dict[str, Any]:
        """A minimal OpenAPI 3 document: one path per resource whose PATCH operation names its
        group/version/kind and lists the `fieldValidation` query parameter, which is what kubectl
        looks for to use server-side field validation. No schemas (kubectl does not need them for
        server-side apply, get, or rollout status)."""
        prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        paths: dict[str, Any] = {}
        params = [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                  for n in ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")]
        for rt in self.in_group_version(group, version):
            ns = "/namespaces/{namespace}" if rt.namespaced else ""
            gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
            op = {"operationId": f"patch{rt.kind}", "parameters": params,
                  "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk,
                  "responses": {"200": {"description": "OK"}}}
            paths[f"{prefix}{ns}/{rt.plural}/{{name}}"] = {
                "get": {"operationId": f"read{rt.kind}", "x-kubernetes-action": "get",
                        "x-kubernetes-group-version-kind": gvk, "responses": {"200": {"description": "OK"}}},
                "patch": op}
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes (envship fake)", "version": "v1.32.0"},
                "paths": paths, "components": {"schemas": {}}}


def _hash(text: str, n: int = 11) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


# The OpenAPI v2 document as protobuf (what client-go asks /openapi/v2 for), in gnostic's
# openapi_v2.Document encoding: swagger, info, and one path per resource whose PATCH operation carries
# the x-kubernetes-group-version-kind extension and the dryRun/fieldManager/force/fieldValidation query
# parameters. kubectl 1.20 reads it to decide whether a kind supports server-side dry-run (`kubectl diff
# --server-side`, `--dry-run=server`); it defines no schemas, so client-side validation finds none and
# skips, as it does for kinds a real server publishes no schema for.
def _field(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def openapi_v2_protobuf(types: list[ResourceType] | None = None) -> bytes:
    info = _field(1, b"Kubernetes (envship fake)") + _field(2, b"v1.32.0")
    paths = b""
    for rt in types or []:
        gvk = f"group: {rt.group!r}\nkind: {rt.kind}\nversion: {rt.version}\n".encode()
        # NamedAny{name, Any{yaml}}
        extension = _field(1, b"x-kubernetes-group-version-kind") + _field(2, _field(2, gvk))
        params = b""
        for name in (b"dryRun", b"fieldManager", b"force", b"fieldValidation"):
            query = _field(2, b"query") + _field(4, name) + _field(6, b"string")  # QueryParameterSubSchema
            # ParametersItem{parameter: Parameter{non_body_parameter: NonBodyParameter{query_parameter_sub_schema}}}
            params += _field(8, _field(1, _field(2, _field(3, query))))
        operation = _field(5, f"patch{rt.kind}".encode()) + params + _field(13, extension)
        prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
        ns = "/namespaces/{namespace}" if rt.namespaced else ""
        name = f"{prefix}{ns}/{rt.plural}/{{name}}".encode()
        # Paths.path: NamedPathItem{name, PathItem{patch}}
        paths += _field(2, _field(1, name) + _field(2, _field(8, operation)))
    return _field(1, b"2.0") + _field(2, info) + _field(8, paths)
