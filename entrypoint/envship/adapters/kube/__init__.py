"""The Kubernetes API: the HTTP client (client), informer caches over watches (watch), and how a
cluster is reached (credentials: kubeconfig contexts and GKE clusters)."""

from .client import ApiResource, Connection, Kube, KubeError, WatchExpired

__all__ = ["ApiResource", "Connection", "Kube", "KubeError", "WatchExpired"]
