"""Where a registry's credentials come from, first match wins:

1. `ghcr.io`: `GITHUB_TOKEN` (or the action's `github-token` input), user `GITHUB_ACTOR` or `x-access-token`;
2. Artifact Registry (`*.pkg.dev`) and Container Registry (`gcr.io`, `*.gcr.io`): an access token from
   google-auth's application default credentials (what google-github-actions/auth sets up), user
   `oauth2accesstoken`;
3. the docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): `credHelpers`, `auths`,
   `credsStore` (helpers run as `docker-credential-<name> get`);
4. anonymous.

Every secret found is registered with the console's mask before it can be printed anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ...core.registry import ConfigEntry, DockerConfigError, docker_config_entry, helper_server, is_google_registry
from ...errors import OperationError
from ..runtime import read_input

Mask = Callable[[Iterable[str]], None]


@dataclass(frozen=True)
class Credential:
    source: str                 # for messages: "GITHUB_TOKEN", "docker config /root/.docker/config.json", ...
    username: str = ""
    password: str = ""          # a password or an access token; never printed
    notes: tuple[str, ...] = ()  # why earlier sources did not apply, for the unauthorized message

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password)

    def describe(self) -> str:
        if self.anonymous:
            return "no credentials (anonymous)"
        return f"credentials from {self.source}" + (f" (user {self.username})" if self.username else "")


def find_credential(host: str, environ: Mapping[str, str], mask: Mask) -> Credential:
    notes: list[str] = []
    if host.lower() == "ghcr.io":
        token = environ.get("GITHUB_TOKEN") or read_input(environ, "github-token")
        if token:
            mask([token])
            return Credential("GITHUB_TOKEN", environ.get("GITHUB_ACTOR") or "x-access-token", token)
        notes.append("GITHUB_TOKEN is not set")
    if is_google_registry(host):
        token, note = google_access_token(environ)
        if token:
            mask([token])
            return Credential("Google application default credentials", "oauth2accesstoken", token)
        notes.append(note)
    path = docker_config_path(environ)
    entry = read_docker_config(path, host)
    if entry.helper:
        return from_helper(entry.helper, host, path, mask, notes)
    if entry.found:
        mask([entry.password])
        return Credential(f"docker config {path}", entry.username, entry.password)
    notes.append(f"{path} has no entry for {host}" if path.exists() else f"no docker config at {path}")
    return Credential("anonymous", notes=tuple(notes))


def docker_config_path(environ: Mapping[str, str]) -> Path:
    directory = environ.get("DOCKER_CONFIG")
    if directory:
        return Path(directory) / "config.json"
    home = environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".docker" / "config.json"


def read_docker_config(path: Path, host: str) -> ConfigEntry:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ConfigEntry()
    except (OSError, UnicodeDecodeError) as e:
        raise OperationError(f"cannot read the docker config {path}: {e}",
                             "fix its permissions, or point DOCKER_CONFIG at another directory") from e
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise DockerConfigError("it is not a JSON object")
        return docker_config_entry(doc, host)
    except (ValueError, DockerConfigError) as e:
        raise OperationError(f"the docker config {path} is invalid: {e}",
                             f"run 'docker login {host}' again, or fix the file") from e


def from_helper(helper: str, host: str, config: Path, mask: Mask, notes: list[str]) -> Credential:
    program = f"docker-credential-{helper}"
    path = shutil.which(program)
    if not path:
        raise OperationError(
            f"the docker config {config} keeps the credentials for {host} in the credential helper "
            f"'{helper}', but {program} is not on PATH",
            f"install {program}, or log in without a helper (e.g. DOCKER_CONFIG=$(mktemp -d) docker login {host})")
    try:
        proc = subprocess.run([path, "get"], input=helper_server(host), capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise OperationError(f"credential helper {program} failed: {e}", f"try '{program} list'") from e
    if proc.returncode != 0:
        # "credentials not found in native keychain": the helper knows nothing about this registry
        notes.append(f"{program} has no credentials for {host}")
        return Credential("anonymous", notes=tuple(notes))
    try:
        doc = json.loads(proc.stdout)
        username, secret = str(doc.get("Username") or ""), str(doc.get("Secret") or "")
    except (ValueError, AttributeError) as e:
        raise OperationError(f"credential helper {program} printed something that is not its JSON answer",
                             f"check '{program} get' by hand") from e
    mask([secret])
    return Credential(f"credential helper {program}", username, secret)


def google_access_token(environ: Mapping[str, str]) -> tuple[str, str]:
    """(token, "") or ("", why not). A failure to refresh existing credentials is an error, not a note."""
    import google.auth.exceptions
    import google.auth.transport.requests

    from ..google import load_google_credentials

    credentials = load_google_credentials(environ)
    if credentials is None:
        return "", ("no Google application default credentials (use google-github-actions/auth, "
                    "or gcloud auth application-default login)")
    try:
        credentials.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.GoogleAuthError as e:
        raise OperationError(f"Google application default credentials could not get an access token: {e}",
                             "check the credentials google-github-actions/auth (or gcloud) set up") from e
    return str(credentials.token), ""
