"""The process environment and the clock: where a run is (GitHub run URL, commit) and when."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from ..errors import UsageError

MAX_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second an RFC 3339 year can hold


def container_path(path: str, environ: Mapping[str, str]) -> str:
    """A runner path as this process sees it. Steps before a container action export host paths
    (google-github-actions/auth's GOOGLE_APPLICATION_CREDENTIALS, get-gke-credentials' KUBECONFIG) for
    files they wrote into the workspace, which the container sees under GITHUB_WORKSPACE instead."""
    workspace = environ.get("GITHUB_WORKSPACE", "")
    if not path or os.path.exists(path) or not workspace:
        return path
    moved = os.path.join(workspace, os.path.basename(path))
    return moved if os.path.exists(moved) else path


def read_input(environ: Mapping[str, str], name: str, default: str = "") -> str:
    """An action input as the runner passes it: INPUT_<NAME>, upper-cased, hyphens kept."""
    return environ.get("INPUT_" + name.replace(" ", "_").upper(), default).strip()


def run_url(environ: Mapping[str, str], attempt: bool = True) -> str:
    """The workflow run's URL; with `attempt`, of this attempt (a re-run has its own)."""
    server, repo, run_id = (environ.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if not (server and repo and run_id):
        return ""
    url = f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}"
    number = environ.get("GITHUB_RUN_ATTEMPT", "") if attempt else ""
    return f"{url}/attempts/{number}" if number else url


def git_sha(environ: Mapping[str, str]) -> str:
    return environ.get("GITHUB_SHA", "")


def release_time(environ: Mapping[str, str]) -> str:
    """Now, or SOURCE_DATE_EPOCH when set (reproducible renders, as reproducible-builds.org defines)."""
    epoch_text = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch_text:
        try:
            epoch = int(epoch_text)
        except ValueError as e:
            raise UsageError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, not {epoch_text!r}",
                             "set it to e.g. $(git log -1 --format=%ct), or unset it to use the current time") from e
        if not 0 <= epoch <= MAX_EPOCH:
            raise UsageError(f"SOURCE_DATE_EPOCH {epoch_text} is not a time between 1970 and 9999",
                             "set it to e.g. $(git log -1 --format=%ct), or unset it to use the current time")
    else:
        epoch = int(time.time())
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
