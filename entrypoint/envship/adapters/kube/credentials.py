"""Cluster credentials: a kubeconfig context, or a GKE cluster through the Container API.

GKE: google-auth's default credentials (a service account key, gcloud's user credentials, or the
`external_account` file that Workload Identity Federation writes in GitHub Actions) -> Container API
`get_cluster` (REST transport; `ENVSHIP_CONTAINER_API_ENDPOINT` points it elsewhere) -> endpoint and CA.
The bearer token is taken from the credentials on every request and refreshed when it nears expiry,
so a rollout wait longer than the token's lifetime keeps working.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...core.config import Environment
from ...errors import OperationError, UsageError
from ..google import GoogleToken, google_credentials
from ..runtime import container_path
from .client import Connection

ENDPOINT_KINDS = ("public", "private", "dns")


def connect(environment: Environment, environ: Mapping[str, str]) -> Connection:
    if environment.context is not None:
        return from_kubeconfig(environment.context, environ)
    assert environment.cluster is not None
    return from_gke(environment.cluster, environment.endpoint, environ)


# -- kubeconfig ---------------------------------------------------------------------------------
def kubeconfig_paths(environ: Mapping[str, str]) -> list[Path]:
    value = environ.get("KUBECONFIG", "")
    if value:
        return [Path(container_path(p, environ)) for p in value.split(os.pathsep) if p]
    return [Path(environ.get("HOME", str(Path.home()))) / ".kube" / "config"]


def load_kubeconfig(environ: Mapping[str, str]) -> dict[str, Any]:
    """Merge the KUBECONFIG files the way kubectl does: the first file to define a name wins."""
    import yaml

    merged: dict[str, Any] = {"clusters": [], "contexts": [], "users": []}
    seen: dict[str, set[str]] = {k: set() for k in merged}
    found = False
    for path in kubeconfig_paths(environ):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            continue
        except (OSError, yaml.YAMLError) as e:
            raise OperationError(f"cannot read kubeconfig {path}: {e}", "fix or remove the file") from e
        found = True
        base = path.parent
        for section in merged:
            for entry in data.get(section) or []:
                if entry.get("name") not in seen[section]:
                    seen[section].add(entry.get("name"))
                    entry["_base"] = str(base)
                    merged[section].append(entry)
    if not found:
        raise UsageError(f"no kubeconfig found (looked at {', '.join(map(str, kubeconfig_paths(environ)))})",
                         "set KUBECONFIG, or use 'cluster:' for a GKE cluster in envship.yaml")
    return merged


def from_kubeconfig(context_name: str, environ: Mapping[str, str]) -> Connection:
    config = load_kubeconfig(environ)
    contexts = {c["name"]: c.get("context") or {} for c in config["contexts"]}
    if context_name not in contexts:
        known = ", ".join(contexts) or "none"
        raise UsageError(f"kubeconfig has no context '{context_name}' (known: {known})",
                         "fix 'context:' in envship.yaml or add the context (e.g. kind export kubeconfig)")
    context = contexts[context_name]
    cluster = _named(config["clusters"], context.get("cluster"), "cluster", context_name)
    user = _named(config["users"], context.get("user"), "user", context_name) if context.get("user") else {}
    c, u = cluster.get("cluster") or {}, user.get("user") or {}
    base = Path(cluster.get("_base", "."))
    verify: bool | str = True
    if c.get("insecure-skip-tls-verify"):
        verify = False
    elif c.get("certificate-authority-data"):
        verify = _data_file(c["certificate-authority-data"], "ca")
    elif c.get("certificate-authority"):
        verify = str(base / c["certificate-authority"])
    cert = None
    if u.get("client-certificate-data") or u.get("client-certificate"):
        cert = (_data_file(u["client-certificate-data"], "crt") if u.get("client-certificate-data")
                else str(base / u["client-certificate"]),
                _data_file(u["client-key-data"], "key") if u.get("client-key-data")
                else str(base / u.get("client-key", "")))
    token = _static_token(u, base)
    description = f"kubeconfig context '{context_name}'"
    if "exec" in u:
        provider = _ExecToken(u["exec"], environ, description)
        return Connection(c["server"], description, provider, verify, cert)
    return Connection(c["server"], description, lambda: token, verify, cert, (token,) if token else ())


def _named(entries: list[dict[str, Any]], name: Any, what: str, context: str) -> dict[str, Any]:
    for entry in entries:
        if entry.get("name") == name:
            return entry
    raise UsageError(f"kubeconfig context '{context}' names {what} '{name}', which is not defined",
                     "repair the kubeconfig")


def _static_token(user: Mapping[str, Any], base: Path) -> str | None:
    if user.get("token"):
        return str(user["token"])
    if user.get("tokenFile"):
        return (base / str(user["tokenFile"])).read_text(encoding="utf-8").strip()
    return None


def _data_file(data: str, suffix: str) -> str:
    """requests wants files for CA and client certificates; kubeconfig may inline them as base64."""
    handle = tempfile.NamedTemporaryFile(prefix="envship-", suffix=f".{suffix}", delete=False)
    with handle:
        handle.write(base64.b64decode(data))
    os.chmod(handle.name, 0o600)
    atexit.register(_remove, handle.name)
    return handle.name


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class _ExecToken:
    """A kubeconfig `exec` credential plugin (gke-gcloud-auth-plugin, aws, ...), cached until expiry."""

    def __init__(self, spec: Mapping[str, Any], environ: Mapping[str, str], description: str) -> None:
        self.spec = spec
        self.environ = environ
        self.description = description
        self.lock = threading.Lock()
        self.token: str | None = None
        self.expiry: float = 0.0

    def __call__(self) -> str | None:
        import time
        from datetime import datetime

        with self.lock:
            if self.token and time.time() < self.expiry - 60:
                return str(self.token) if self.token else None
            env = {**self.environ, **{e["name"]: e["value"] for e in self.spec.get("env") or []}}
            command = [self.spec["command"], *(self.spec.get("args") or [])]
            try:
                result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=True)
                status = json.loads(result.stdout).get("status") or {}
            except (OSError, subprocess.SubprocessError, ValueError) as e:
                raise OperationError(f"the credential plugin {command[0]} of {self.description} failed: "
                                     f"{type(e).__name__}", self.spec.get("installHint") or
                                     "run the plugin by hand to see why") from e
            self.token = status.get("token")
            stamp = status.get("expirationTimestamp")
            self.expiry = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else 1e18
            return self.token


# -- GKE ------------------------------------------------------------------------------------------
def from_gke(cluster: str, endpoint: str, environ: Mapping[str, str]) -> Connection:
    credentials = google_credentials(environ)
    info = get_cluster(cluster, credentials, environ)
    host, ca = cluster_endpoint(info, endpoint, cluster)
    description = f"GKE cluster {cluster}"
    verify: bool | str = _data_file(ca, "ca") if ca else True
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


