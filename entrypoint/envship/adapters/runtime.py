"""The process environment and the clock: where a run is (GitHub run URL, commit) and when."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

from ..errors import UsageError


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
    else:
        epoch = int(time.time())
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
