"""What envship tells GitHub about a deploy (pure): the deployment it creates, the statuses it posts, and
which earlier deployments it retires. adapters/github.py sends them; commands compose."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import __version__

PREVIEW_ENVIRONMENT = "preview/pr-{pr}"    # one GitHub environment per pull request
ACTIVE_STATES = ("success", "in_progress", "queued", "pending")
MAX_DESCRIPTION = 140                       # GitHub's limit for deployment and status descriptions


@dataclass(frozen=True)
class DeploymentRequest:
    """POST /repos/{owner}/{repo}/deployments, as envship fills it."""

    ref: str                       # the git sha the image was built from
    environment: str               # the GitHub environment
    payload: dict[str, Any]
    description: str
    transient: bool                # previews: the environment goes away
    production: bool               # protected environments
    auto_merge: bool = False       # a deploy never merges branches
    required_contexts: tuple[str, ...] = ()   # the build already proved the commit: no status checks


@dataclass(frozen=True)
class Prior:
    """An earlier deployment of the same GitHub environment, with its latest status."""

    id: int
    state: str


@dataclass
class Outcome:
    """What a deploy did, for statuses, outputs and the summary."""

    ok: bool
    revision: int = 0
    changes: int = 0
    rollout_seconds: float = 0.0
    url: str = ""
    message: str = ""


def github_environment(environment: str, pr: int | None) -> str:
    return PREVIEW_ENVIRONMENT.format(pr=pr) if pr is not None else environment


def deployment_request(*, app: str, environment: str, namespace: str, pr: int | None, protected: bool,
                       image: str, digest: str, git_sha: str, run_url: str,
                       promoted_from: Mapping[str, str] | None = None) -> DeploymentRequest:
    """The deployment for one deploy. Its payload is the release (no secret values: envship never has them
    here), so GitHub knows what runs where without asking the cluster."""
    payload: dict[str, Any] = {"envship": __version__, "app": app, "environment": environment,
                               "namespace": namespace, "image": image, "digest": digest, "git_sha": git_sha,
                               "run_url": run_url}
    if pr is not None:
        payload["pr"] = pr
    if promoted_from:
        payload["promoted_from"] = dict(promoted_from)
    what = f"{app} {digest[:19]}" + (f" promoted from {promoted_from['environment']}"
                                     if promoted_from and "environment" in promoted_from else "")
    return DeploymentRequest(ref=git_sha, environment=github_environment(environment, pr), payload=payload,
                             description=f"envship: {what}"[:MAX_DESCRIPTION], transient=pr is not None,
                             production=protected)


def status_description(outcome: Outcome) -> str:
    if outcome.ok:
        text = f"revision {outcome.revision} healthy" + (f", {outcome.changes} change(s)" if outcome.changes else
                                                          ", nothing changed")
    else:
        text = outcome.message or "deploy failed"
    return text[:MAX_DESCRIPTION]


def to_retire(request: DeploymentRequest, ours: int, priors: Sequence[Prior]) -> list[int]:
    """Earlier deployments to mark inactive after a success. GitHub's own auto_inactive covers only
    non-transient, non-production environments and only deployments whose state was success; envship
    retires every earlier active one itself for the others (production, previews)."""
    if not (request.production or request.transient):
        return []
    return [p.id for p in priors if p.id != ours and p.state in ACTIVE_STATES]
