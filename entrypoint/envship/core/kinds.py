"""What envship knows about Kubernetes kinds without asking a server: scope, apply tier, pod specs."""

from __future__ import annotations

import base64
import binascii
from typing import Any

# Built-in and common cluster-scoped kinds. Unknown kinds (custom resources) are treated as namespaced;
# the deploy engine confirms scope with discovery before applying.
CLUSTER_SCOPED = frozenset({
    "APIService", "CertificateSigningRequest", "ClusterIssuer", "ClusterRole", "ClusterRoleBinding",
    "ComponentStatus", "CSIDriver", "CSINode", "CustomResourceDefinition", "FlowSchema", "GatewayClass",
    "IngressClass", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration", "Namespace", "Node", "PersistentVolume", "PriorityClass",
    "PriorityLevelConfiguration", "RuntimeClass", "StorageClass", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration", "VolumeAttachment",
    "VolumeSnapshotClass", "VolumeSnapshotContent",
})

# Apply order: what others depend on first. Objects of one tier can be applied in parallel. Services go
# with the configuration, before the workloads: the kubelet gives a pod the environment variables of the
# Services that exist when it starts.
_TIERS: dict[str, int] = {
    "Namespace": 0, "CustomResourceDefinition": 0,
    "ServiceAccount": 1, "Role": 1, "ClusterRole": 1, "RoleBinding": 1, "ClusterRoleBinding": 1,
    "ConfigMap": 1, "Secret": 1, "PersistentVolumeClaim": 1, "PersistentVolume": 1, "StorageClass": 1,
    "PriorityClass": 1, "LimitRange": 1, "ResourceQuota": 1, "NetworkPolicy": 1,
    "Service": 1,
    "Deployment": 3, "StatefulSet": 3, "DaemonSet": 3, "ReplicaSet": 3, "ReplicationController": 3,
    "Job": 3, "CronJob": 3, "Pod": 3, "PodTemplate": 3,
}
LAST_TIER = 4  # Ingress, Gateway routes, HPAs, PDBs and custom resources

# Where a kind keeps its pod spec(s).
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_TEMPLATE_PATH = ("spec", "template", "spec")  # Deployment, StatefulSet, DaemonSet, Job, ReplicaSet, ...
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def is_namespaced(kind: str) -> bool:
    return kind not in CLUSTER_SCOPED


def tier(kind: str) -> int:
    return _TIERS.get(kind, LAST_TIER)


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec inside `obj`, or None. Custom workloads with spec.template.spec (Argo Rollouts,
    Knative, ...) are recognised by shape."""
    path = _POD_SPEC_PATHS.get(obj.get("kind", ""), _TEMPLATE_PATH)
    node: Any = obj
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    if isinstance(node, dict) and any(isinstance(node.get(k), list) for k in CONTAINER_LISTS):
        return node
    return None


MAX_DATA_BYTES = 1024 * 1024  # Kubernetes' MaxSecretSize, also the limit of a ConfigMap's data


def data_size(obj: dict[str, Any]) -> int | None:
    """Bytes a ConfigMap or Secret holds as the API server counts them (keys plus values; Secret and
    binaryData values decoded from base64), or None for other kinds."""
    kind = obj.get("kind")
    if kind not in ("ConfigMap", "Secret"):
        return None
    plain = ("data",) if kind == "ConfigMap" else ("stringData",)
    encoded = ("binaryData",) if kind == "ConfigMap" else ("data",)
    total = 0
    for field_name in plain + encoded:
        values = obj.get(field_name)
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            text = str(value) if value is not None else ""
            total += len(str(key)) + (_decoded_length(text) if field_name in encoded else len(text.encode()))
    return total


def _decoded_length(text: str) -> int:
    try:
        return len(base64.b64decode(text, validate=False))
    except (binascii.Error, ValueError):
        return len(text)  # the server will reject it; its size still counts
