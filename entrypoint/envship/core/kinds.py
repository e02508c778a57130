"""What envship knows about Kubernetes kinds without asking a server: scope, apply tier, pod specs."""

from __future__ import annotations

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

# Apply order: what others depend on first. Objects of one tier can be applied in parallel.
_TIERS: dict[str, int] = {
    "Namespace": 0, "CustomResourceDefinition": 0,
    "ServiceAccount": 1, "Role": 1, "ClusterRole": 1, "RoleBinding": 1, "ClusterRoleBinding": 1,
    "ConfigMap": 1, "Secret": 1, "PersistentVolumeClaim": 1, "PersistentVolume": 1, "StorageClass": 1,
    "PriorityClass": 1, "LimitRange": 1, "ResourceQuota": 1, "NetworkPolicy": 1,
    "Service": 2,
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
