"""Cluster credentials: a kubeconfig context (kubeconfig.py), or a GKE cluster through the Container API.

GKE: google-auth's default credentials (a service account key, gcloud's user credentials, or the
`external_account` file that Workload Identity Federation writes in GitHub Actions) -> Container API
`get_cluster` (REST transport; `ENVSHIP_CONTAINER_API_ENDPOINT` points it elsewhere) -> endpoint and CA.
The bearer token is taken from the credentials on every request and refreshed when it nears expiry,
so a rollout wait longer than the token's lifetime keeps working.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from ...core.config import Environment
from ...errors import OperationError
from ..google import GoogleToken, google_credentials
from . import kubeconfig
from .client import Connection

ENDPOINT_KINDS = ("public", "private", "dns")


def connect(environment: Environment, environ: Mapping[str, str]) -> Connection:
    if environment.context is not None:
        return kubeconfig.from_kubeconfig(environment.context, environ)
    assert environment.cluster is not None
    return from_gke(environment.cluster, environment.endpoint, environ)


# -- GKE ------------------------------------------------------------------------------------------
def from_gke(cluster: str, endpoint: str, environ: Mapping[str, str]) -> Connection:
    credentials = google_credentials(environ)
    info = get_cluster(cluster, credentials, environ)
    host, ca = cluster_endpoint(info, endpoint, cluster)
    description = f"GKE cluster {cluster}"
    verify: bool | str = kubeconfig.private_file(base64.b64decode(ca), "gke-ca.crt") if ca else True
    return Connection(f"https://{host}", description, GoogleToken(credentials), verify)


def get_cluster(name: str, credentials: Any, environ: Mapping[str, str]) -> Any:
    from google.api_core import exceptions as gexc
    from google.api_core.client_options import ClientOptions
    from google.auth.exceptions import GoogleAuthError
    from google.cloud import container_v1

    endpoint = environ.get("ENVSHIP_CONTAINER_API_ENDPOINT") or None
    client = container_v1.ClusterManagerClient(
        credentials=credentials, transport="rest", client_options=ClientOptions(api_endpoint=endpoint))
    try:
        return client.get_cluster(name=name, timeout=30)
    except gexc.NotFound as e:
        raise OperationError(f"GKE cluster {name} not found", "check 'cluster:' in envship.yaml") from e
    except (gexc.PermissionDenied, gexc.Unauthenticated) as e:
        raise OperationError(f"not allowed to read GKE cluster {name}: {e.message}",
                             "grant the deploying identity roles/container.clusterViewer (or developer)") from e
    except GoogleAuthError as e:
        raise OperationError(f"Google authentication failed: {e}",
                             "check the Workload Identity Federation setup or the credentials file") from e
    except gexc.GoogleAPIError as e:
        raise OperationError(f"cannot read GKE cluster {name}: {e}", "re-run; check the Container API status") from e


def cluster_endpoint(info: Any, kind: str, name: str) -> tuple[str, str]:
    """(host, base64 CA or '') for the chosen endpoint: the public IP, the private IP, or the DNS name
    (whose certificate is publicly trusted, so no CA is pinned)."""
    ca = info.master_auth.cluster_ca_certificate
    if kind == "private":
        host = info.private_cluster_config.private_endpoint
        if not host:
            raise OperationError(f"GKE cluster {name} has no private endpoint", "use 'endpoint: public' or 'dns'")
        return host, ca
    if kind == "dns":
        host = info.control_plane_endpoints_config.dns_endpoint_config.endpoint
        if not host:
            raise OperationError(f"GKE cluster {name} has no DNS endpoint",
                                 "enable it (gcloud container clusters update --enable-dns-access)")
        return host, ""
    if not info.endpoint:
        raise OperationError(f"GKE cluster {name} has no public endpoint", "use 'endpoint: private' or 'dns'")
    return info.endpoint, ca


