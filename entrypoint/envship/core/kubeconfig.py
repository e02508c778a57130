"""kubeconfig files (pure): merge, validate and resolve one context, as client-go's clientcmd does.

Files merge in KUBECONFIG order, the first to define a cluster, user or context name winning (kubectl's
rule). Resolving a context checks what client-go's validation checks (a server URL, one way to give the
CA, a key with a client certificate, an exec plugin's command and apiVersion) and reports each mistake
with the file, line and field. `auth-provider` users (the removed in-tree gcp/azure/oidc plugins) are
refused with the exec plugin that replaces them. Reading files and running plugins is the adapter's.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import Location, UsageError
from .yamlsrc import Path, YamlDoc

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
SECTIONS = ("clusters", "contexts", "users")


@dataclass(frozen=True)
class Entry:
    """One named cluster, context or user, and where it was written."""

    name: str
    body: Mapping[str, Any]
    doc: YamlDoc
    path: Path        # of the entry's body (`clusters`, i, `cluster`)
    base: str         # the file's folder: relative paths in it are relative to it

    def at(self, key: str | None = None) -> Location:
        return self.doc.at(self.path + ((key,) if key else ()), key=bool(key))


@dataclass
class Kubeconfig:
    files: list[str] = field(default_factory=list)
    clusters: dict[str, Entry] = field(default_factory=dict)
    contexts: dict[str, Entry] = field(default_factory=dict)
    users: dict[str, Entry] = field(default_factory=dict)


def merge(docs: Sequence[tuple[YamlDoc, str]]) -> Kubeconfig:
    """Merge parsed files (each with its folder); the first definition of a name wins."""
    merged = Kubeconfig()
    for doc, base in docs:
        merged.files.append(doc.file)
        root = doc.value
        if root is None:
            continue
        if not isinstance(root, dict):
            raise UsageError(f"the kubeconfig must be a mapping (apiVersion, clusters, contexts, users), not "
                             f"{type(root).__name__}", "regenerate it (kind export kubeconfig, gcloud container "
                             "clusters get-credentials)", Location(doc.file, doc.line, 1))
        for section in SECTIONS:
            entries = root.get(section) or []
            if not isinstance(entries, list):
                raise UsageError(f"'{section}' must be a list of named entries", "regenerate the kubeconfig",
                                 doc.at((section,)))
            inner = section[:-1]
            table: dict[str, Entry] = getattr(merged, section)
            for index, entry in enumerate(entries):
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    raise UsageError(f"an entry of '{section}' has no name", "give every entry a 'name'",
                                     doc.at((section, index)))
                body = entry.get(inner) or {}
                if not isinstance(body, dict):
                    raise UsageError(f"{inner} '{entry['name']}': '{inner}' must be a mapping",
                                     "regenerate the kubeconfig", doc.at((section, index, inner)))
                table.setdefault(entry["name"], Entry(entry["name"], body, doc, (section, index, inner), base))
    return merged


@dataclass(frozen=True)
class ExecPlugin:
    command: str
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    api_version: str
    install_hint: str
    provide_cluster_info: bool


@dataclass(frozen=True)
class Resolved:
    """What connecting through one context takes."""

    context: str
    server: str
    insecure: bool = False
    ca_data: bytes | None = None       # PEM
    ca_file: str | None = None
    token: str | None = None
    token_file: str | None = None
    cert_data: bytes | None = None
    cert_file: str | None = None
    key_data: bytes | None = None
    key_file: str | None = None
    exec: ExecPlugin | None = None
    ca_data_text: str = ""             # as written, for an exec plugin's cluster info


def resolve(config: Kubeconfig, name: str) -> Resolved:
    if name not in config.contexts:
        known = ", ".join(config.contexts) or "none"
        raise UsageError(f"kubeconfig has no context '{name}' (known: {known})",
                         "fix 'context:' in envship.yaml or add the context (e.g. kind export kubeconfig)")
    context = config.contexts[name]
    cluster = _named(config.clusters, context, "cluster", required=True)
    user = _named(config.users, context, "user", required=False)
    assert cluster is not None
    resolved = _cluster(cluster, name)
    return _user(user, resolved) if user is not None else resolved


def _named(table: Mapping[str, Entry], context: Entry, what: str, required: bool) -> Entry | None:
    ref = context.body.get(what)
    if ref is None or ref == "":
        if required:
            raise UsageError(f"context '{context.name}' names no {what}", f"add '{what}:' to the context",
                             context.at())
        return None
    if ref not in table:
        raise UsageError(f"context '{context.name}' names {what} '{ref}', which is not defined",
                         f"add the {what} or fix the context", context.at(what))
    return table[str(ref)]


def _cluster(entry: Entry, context: str) -> Resolved:
    c = entry.body
    server = c.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise UsageError(f"cluster '{entry.name}' has no server URL" if not server else
                         f"cluster '{entry.name}': server {server!r} is not an http(s) URL",
                         "set 'server: https://HOST[:PORT]'", entry.at("server") if server else entry.at())
    insecure = c.get("insecure-skip-tls-verify") is True
    ca_data_text = str(c.get("certificate-authority-data") or "")
    ca_data = _pem(entry, "certificate-authority-data", "CERTIFICATE") if ca_data_text else None
    ca_file = _path(entry, "certificate-authority")
    if insecure and (ca_data or ca_file):
        raise UsageError(f"cluster '{entry.name}' sets insecure-skip-tls-verify and a certificate authority",
                         "keep one: the CA (recommended) or insecure-skip-tls-verify",
                         entry.at("insecure-skip-tls-verify"))
    return Resolved(context, server.rstrip("/"), insecure, ca_data, None if ca_data else ca_file,
                    ca_data_text=ca_data_text)


def _user(entry: Entry, resolved: Resolved) -> Resolved:
    u = entry.body
    if "auth-provider" in u:
        provider = str((u.get("auth-provider") or {}).get("name", ""))
        hint = {"gcp": "install gke-gcloud-auth-plugin and run 'gcloud container clusters get-credentials' again "
                       "(or use 'cluster:' in envship.yaml: envship talks to GKE itself)",
                "azure": "use kubelogin (az aks get-credentials, then kubelogin convert-kubeconfig)",
                "oidc": "use an exec plugin such as kubelogin (int128/kubelogin)"}.get(
            provider, "use the exec credential plugin that replaces it")
        raise UsageError(f"user '{entry.name}' uses auth-provider '{provider}', which Kubernetes clients removed in "
                         "1.26", hint, entry.at("auth-provider"))
    for data_key, file_key in (("client-certificate-data", "client-certificate"), ("client-key-data", "client-key")):
        if u.get(data_key) and u.get(file_key):
            raise UsageError(f"user '{entry.name}' sets both {data_key} and {file_key}", "keep one of them",
                             entry.at(file_key))
    cert_data = _pem(entry, "client-certificate-data", "CERTIFICATE") if u.get("client-certificate-data") else None
    key_data = _pem(entry, "client-key-data", "PRIVATE KEY") if u.get("client-key-data") else None
    cert_file, key_file = _path(entry, "client-certificate"), _path(entry, "client-key")
    has_cert, has_key = bool(cert_data or cert_file), bool(key_data or key_file)
    if has_cert != has_key:
        missing = "client-key(-data)" if has_cert else "client-certificate(-data)"
        raise UsageError(f"user '{entry.name}' has a client {'certificate' if has_cert else 'key'} but no {missing}",
                         "a client certificate needs its key, and the key its certificate", entry.at())
    token = u.get("token")
    if token is not None and not isinstance(token, str):
        raise UsageError(f"user '{entry.name}': token must be a string", "quote it", entry.at("token"))
    plugin = _exec(entry) if "exec" in u else None
    return Resolved(resolved.context, resolved.server, resolved.insecure, resolved.ca_data, resolved.ca_file,
                    token or None, _path(entry, "tokenFile"), cert_data, cert_file, key_data, key_file, plugin,
                    resolved.ca_data_text)


def _exec(entry: Entry) -> ExecPlugin:
    spec = entry.body.get("exec")
    where = entry.path + ("exec",)
    if not isinstance(spec, dict) or not isinstance(spec.get("command"), str) or not spec.get("command"):
        raise UsageError(f"user '{entry.name}': exec needs a command", "set exec.command (the plugin's program)",
                         entry.doc.at(where))
    api_version = spec.get("apiVersion")
    if api_version not in EXEC_API_VERSIONS:
        raise UsageError(f"user '{entry.name}': exec.apiVersion {api_version!r} is not one of "
                         f"{', '.join(EXEC_API_VERSIONS)}", "set the apiVersion the plugin's documentation gives",
                         entry.doc.at(where + ("apiVersion",)))
    if spec.get("interactiveMode") == "Always":
        raise UsageError(f"user '{entry.name}': the exec plugin needs a terminal (interactiveMode: Always)",
                         "deploys run without one: use a plugin or mode that works unattended",
                         entry.doc.at(where + ("interactiveMode",)))
    env = []
    for index, item in enumerate(spec.get("env") or []):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or "value" not in item:
            raise UsageError(f"user '{entry.name}': each exec.env entry needs a name and a value",
                             "write {name: VAR, value: text}", entry.doc.at(where + ("env", index)))
        env.append((item["name"], str(item["value"])))
    args = spec.get("args") or []
    if not isinstance(args, list):
        raise UsageError(f"user '{entry.name}': exec.args must be a list", "write args: [a, b]",
                         entry.doc.at(where + ("args",)))
    return ExecPlugin(spec["command"], tuple(str(a) for a in args), tuple(env), str(api_version),
                      str(spec.get("installHint") or ""), spec.get("provideClusterInfo") is True)


def _pem(entry: Entry, key: str, kind: str) -> bytes:
    """base64 data that must decode to PEM of `kind` (a CERTIFICATE, a PRIVATE KEY of any type)."""
    text = entry.body.get(key)
    try:
        data = base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if b"-----BEGIN " not in data or kind.encode() not in data:
        raise UsageError(f"{key} of '{entry.name}' is not base64 of a PEM {kind.lower()}",
                         "regenerate the kubeconfig, or fix the value (base64 -w0 < file.pem)", entry.at(key))
    return data


def _path(entry: Entry, key: str) -> str | None:
    value = entry.body.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise UsageError(f"{key} of '{entry.name}' must be a file path", "write the path as text", entry.at(key))
    return value if value.startswith("/") else f"{entry.base}/{value}"


def exec_info(plugin: ExecPlugin, resolved: Resolved) -> dict[str, Any]:
    """KUBERNETES_EXEC_INFO for the plugin, as client-go builds it (cluster info only when asked for)."""
    spec: dict[str, Any] = {"interactive": False}
    if plugin.provide_cluster_info:
        cluster: dict[str, Any] = {"server": resolved.server}
        if resolved.ca_data_text:
            cluster["certificate-authority-data"] = resolved.ca_data_text
        if resolved.insecure:
            cluster["insecure-skip-tls-verify"] = True
        spec["cluster"] = cluster
    return {"apiVersion": plugin.api_version, "kind": "ExecCredential", "spec": spec}
