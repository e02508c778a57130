"""A kubeconfig context as a Connection: the files read (KUBECONFIG, else ~/.kube/config), validated and
resolved by core/kubeconfig.py, then what requests needs: a CA bundle and client certificate files, a
bearer token (static, from tokenFile, or from an exec credential plugin).

Inline certificates are written only after they validated, into one private folder per process that is
removed when the process ends, so a bad kubeconfig leaves nothing behind. Exec plugins run as client-go
runs them: KUBERNETES_EXEC_INFO in their environment, the kubeconfig's env on top, and their
ExecCredential may hold a token (cached until its expirationTimestamp) or a client certificate.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ...core import kubeconfig as rules
from ...core.yamlsrc import YamlSyntaxError, parse_documents
from ...errors import Location, OperationError, UsageError
from ..runtime import container_path
from .client import Connection

MAX_KUBECONFIG_BYTES = 4 * 1024 * 1024


class _PrivateFolder:
    """One folder per process for credential files, made on first use and removed when the process ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.path: str | None = None

    def get(self) -> str:
        with self.lock:
            if self.path is None:
                self.path = tempfile.mkdtemp(prefix="envship-")   # mode 0700
                atexit.register(shutil.rmtree, self.path, True)
            return self.path


_PRIVATE = _PrivateFolder()


def kubeconfig_paths(environ: Mapping[str, str]) -> list[Path]:
    value = environ.get("KUBECONFIG", "")
    if value:
        return [Path(container_path(p, environ)) for p in value.split(os.pathsep) if p]
    return [Path(environ.get("HOME", str(Path.home()))) / ".kube" / "config"]


def load(environ: Mapping[str, str]) -> rules.Kubeconfig:
    docs = []
    for path in kubeconfig_paths(environ):
        try:
            if path.stat().st_size > MAX_KUBECONFIG_BYTES:
                raise UsageError(f"the kubeconfig is larger than {MAX_KUBECONFIG_BYTES // 2**20} MiB", "point "
                                 "KUBECONFIG at the cluster's kubeconfig", Location(str(path)))
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read the kubeconfig: {e}", "fix or remove the file", Location(str(path))) from e
        try:
            parsed = parse_documents(text, str(path))
        except YamlSyntaxError as e:
            problem = e.problems[0]
            raise UsageError(f"the kubeconfig is not valid YAML: {problem.message}", problem.hint,
                             problem.location) from e
        for doc in parsed[:1]:
            docs.append((doc, str(path.parent)))
    if not docs:
        raise UsageError(f"no kubeconfig found (looked at {', '.join(map(str, kubeconfig_paths(environ)))})",
                         "set KUBECONFIG, or use 'cluster:' for a GKE cluster in envship.yaml")
    return rules.merge(docs)


def from_kubeconfig(context: str, environ: Mapping[str, str]) -> Connection:
    resolved = rules.resolve(load(environ), context)
    description = f"kubeconfig context '{context}'"
    verify: bool | str = True
    if resolved.insecure:
        verify = False
    elif resolved.ca_data:
        verify = private_file(resolved.ca_data, "ca.crt")
    elif resolved.ca_file:
        verify = existing(resolved.ca_file, "certificate-authority", context)
    cert = None
    if resolved.cert_data or resolved.cert_file:
        cert = (private_file(resolved.cert_data, "client.crt") if resolved.cert_data
                else existing(str(resolved.cert_file), "client-certificate", context),
                private_file(resolved.key_data, "client.key") if resolved.key_data
                else existing(str(resolved.key_file), "client-key", context))
    token = resolved.token
    if resolved.token_file and not token:
        token = read_token_file(existing(resolved.token_file, "tokenFile", context), context)
    if resolved.exec is not None:
        plugin = ExecCredentials(resolved.exec, resolved, environ, description)
        certificate = plugin.certificate()
        if certificate is not None:
            cert = certificate
        return Connection(resolved.server, description, plugin.token, verify, cert)
    return Connection(resolved.server, description, lambda: token, verify, cert, (token,) if token else ())


def existing(path: str, field: str, context: str) -> str:
    if not os.path.isfile(path):
        raise UsageError(f"the {field} file {path} of kubeconfig context '{context}' does not exist",
                         "fix the path in the kubeconfig (relative paths are relative to the kubeconfig's folder)")
    return path


def read_token_file(path: str, context: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read the tokenFile {path} of kubeconfig context '{context}': {e}",
                         "fix the path or the file's permissions") from e


def private_file(data: bytes | None, name: str) -> str:
    """`data` in a file only this user can read, in this process's private folder (removed at exit)."""
    handle, path = tempfile.mkstemp(prefix="", suffix=f"-{name}", dir=_PRIVATE.get())
    with os.fdopen(handle, "wb") as f:
        f.write(data or b"")
    return path


class ExecCredentials:
    """A kubeconfig `exec` credential plugin (gke-gcloud-auth-plugin, aws eks get-token, kubelogin...)."""

    def __init__(self, plugin: rules.ExecPlugin, resolved: rules.Resolved, environ: Mapping[str, str],
                 description: str) -> None:
        self.plugin = plugin
        self.resolved = resolved
        self.environ = environ
        self.description = description
        self.lock = threading.Lock()
        self._token: str | None = None
        self._cert: tuple[str, str] | None = None
        self.expiry = 0.0

    def certificate(self) -> tuple[str, str] | None:
        """The client certificate the plugin returns, if it returns one (asked once, at connect)."""
        with self.lock:
            self._refresh()
            return self._cert

    def token(self) -> str | None:
        with self.lock:
            if self._cert is None and (self._token is None or time.time() >= self.expiry - 60):
                self._refresh()
            return self._token

    def _refresh(self) -> None:
        info = json.dumps(rules.exec_info(self.plugin, self.resolved))
        env = {**self.environ, "KUBERNETES_EXEC_INFO": info, **dict(self.plugin.env)}
        command = [self.plugin.command, *self.plugin.args]
        hint = self.plugin.install_hint or "run the plugin by hand to see why"
        try:
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False,
                                    stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as e:
            raise OperationError(f"the credential plugin {command[0]} of {self.description} cannot run: "
                                 f"{type(e).__name__}", hint) from e
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or [""])[-1][:200]
            raise OperationError(f"the credential plugin {command[0]} of {self.description} failed (exit "
                                 f"{result.returncode}){': ' + last if last else ''}", hint)
        status = self._status(result.stdout, command[0])
        self._token = status.get("token") or None
        if status.get("clientCertificateData"):
            self._cert = (private_file(str(status["clientCertificateData"]).encode(), "exec.crt"),
                          private_file(str(status["clientKeyData"]).encode(), "exec.key"))
        stamp = status.get("expirationTimestamp")
        self.expiry = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp() if stamp else 1e18

    def _status(self, stdout: str, program: str) -> dict[str, Any]:
        try:
            credential = json.loads(stdout)
        except ValueError as e:
            raise OperationError(f"the credential plugin {program} of {self.description} printed no ExecCredential "
                                 "JSON", "run the plugin by hand to see what it prints") from e
        status = credential.get("status") if isinstance(credential, dict) else None
        if not isinstance(status, dict) or not (status.get("token") or (
                status.get("clientCertificateData") and status.get("clientKeyData"))):
            raise OperationError(f"the credential plugin {program} of {self.description} returned neither a token "
                                 "nor a client certificate and key", "run the plugin by hand to see what it prints")
        return status
