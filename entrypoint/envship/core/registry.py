"""The OCI distribution protocol, the pure parts: media types, auth challenges, error bodies, which hosts
speak plain HTTP, and where a docker `config.json` keeps a registry's credentials.

References: the OCI distribution spec (`HEAD /v2/<name>/manifests/<reference>`, `Docker-Content-Digest`,
error codes), Docker's token authentication spec (`WWW-Authenticate: Bearer realm=...,service=...,scope=...`)
and Docker's `config.json` format (`auths`, `credHelpers`, `credsStore`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .imageref import DOCKER_HUB_REGISTRY

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_MEDIA_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)
MEDIA_TYPE_NAMES = {
    OCI_INDEX: "OCI image index", OCI_MANIFEST: "OCI image manifest",
    DOCKER_MANIFEST_LIST: "Docker manifest list", DOCKER_MANIFEST: "Docker image manifest v2",
}
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def sha256_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def valid_digest(text: str | None) -> bool:
    return bool(text) and _DIGEST.fullmatch(text or "") is not None


def host_name(host: str) -> str:
    """`host[:port]` without the port (IPv6 literals keep their brackets)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def is_insecure(host: str, insecure_registries: str = "") -> bool:
    """Plain HTTP only for the local machine and the hosts listed in ENVSHIP_INSECURE_REGISTRIES
    (comma-separated `host` or `host:port`)."""
    if host_name(host) in LOCAL_HOSTS:
        return True
    listed = {item.strip() for item in insecure_registries.split(",") if item.strip()}
    return host in listed or host_name(host) in listed


def is_google_registry(host: str) -> bool:
    """Artifact Registry (`REGION-docker.pkg.dev`) and Container Registry (`gcr.io`, `eu.gcr.io`, ...)."""
    name = host_name(host)
    return name.endswith(".pkg.dev") or name == "gcr.io" or name.endswith(".gcr.io")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer", "basic", or "" when the header is missing
    params: dict[str, str] = field(default_factory=dict)


_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,|$)')


def parse_challenge(header: str) -> Challenge:
    """`Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"` -> Challenge.
    Only the first challenge is read (registries send one)."""
    header = header.strip()
    if not header:
        return Challenge("")
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if not match or match.end() == pos:
            break
        value = match.group(2) if match.group(2) is not None else match.group(3) or ""
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = match.end()
    return Challenge(scheme.lower(), params)


def error_codes(body: bytes) -> list[str]:
    """The `code`s of a distribution error body (`{"errors": [{"code": "MANIFEST_UNKNOWN", ...}]}`)."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return []
    return [str(e["code"]) for e in errors if isinstance(e, dict) and e.get("code")]


def tags_in(body: bytes) -> list[str]:
    """The tags of a `GET /v2/<name>/tags/list` answer."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []
    tags = doc.get("tags") if isinstance(doc, dict) else None
    return [str(t) for t in tags] if isinstance(tags, list) else []


# -- docker config.json ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ConfigEntry:
    """What a docker config says about one registry: a credential helper to run, or a user and password."""

    helper: str = ""
    username: str = ""
    password: str = ""

    @property
    def found(self) -> bool:
        return bool(self.helper or self.username or self.password)


class DockerConfigError(ValueError):
    """The config's entry for the registry cannot be read (bad base64, wrong types)."""


def config_key_host(key: str) -> str:
    """`https://index.docker.io/v1/` -> `registry-1.docker.io`; `https://ghcr.io` -> `ghcr.io`."""
    host = re.sub(r"^[a-z]+://", "", key.strip()).split("/", 1)[0].lower()
    return DOCKER_HUB_REGISTRY if host in ("docker.io", "index.docker.io", "registry-1.docker.io") else host


def helper_server(host: str) -> str:
    """The server name a credential helper is asked about (Docker Hub's historical URL, else the host)."""
    return DOCKER_HUB_CONFIG_KEY if host == DOCKER_HUB_REGISTRY else host


def docker_config_entry(config: Mapping[str, Any], host: str) -> ConfigEntry:
    """Docker's order: `credHelpers[host]`, then an `auths` entry with `auth` or `username`/`password`,
    then the default `credsStore`."""
    host = host.lower()
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if config_key_host(key) == host and isinstance(helper, str) and helper:
                return ConfigEntry(helper=helper)
    auths = config.get("auths")
    if isinstance(auths, dict):
        for key, entry in auths.items():
            if config_key_host(key) != host or not isinstance(entry, dict):
                continue
            user, password = entry.get("username"), entry.get("password")
            if isinstance(entry.get("auth"), str) and entry["auth"]:
                try:
                    user, _, password = base64.b64decode(entry["auth"], validate=True).decode("utf-8").partition(":")
                except (binascii.Error, UnicodeDecodeError) as e:
                    raise DockerConfigError(f"auths[{key!r}].auth is not base64 of 'user:password'") from e
            if isinstance(user, str) and isinstance(password, str) and (user or password):
                return ConfigEntry(username=user, password=password)
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        return ConfigEntry(helper=store)
    return ConfigEntry()
