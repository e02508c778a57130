"""Pull request previews as data (pure): what a pull_request event asks for, the sticky comment, and which
previews garbage collection removes. Event content is untrusted (titles and branch names come from
whoever opened the pull request): only numbers, shas, repository names and label names are read, each
checked, and nothing of it reaches a name or a command unsanitised."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..errors import UsageError
from .config import Environment

SHA = re.compile(r"[0-9a-f]{40}")
REPO = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")
DEPLOY_ACTIONS = ("opened", "reopened", "synchronize", "ready_for_review")
TEARDOWN_ACTIONS = ("closed",)
MAX_LABELS = 100


@dataclass(frozen=True)
class PullRequestEvent:
    action: str
    number: int
    head_sha: str
    head_repo: str      # "" when the fork was deleted
    base_repo: str
    labels: tuple[str, ...] = ()
    label: str = ""     # the label a labeled/unlabeled event is about

    @property
    def from_fork(self) -> bool:
        return self.head_repo != self.base_repo


@dataclass(frozen=True)
class Step:
    """What to do for an event: deploy, teardown or skip, and why."""

    what: str
    why: str


def parse_event(data: Any, where: str) -> PullRequestEvent:
    """A pull_request (or pull_request_target) event payload; every field checked."""
    def bad(what: str) -> UsageError:
        return UsageError(f"{where} is not a pull_request event: {what}",
                          "run 'envship preview' on 'on: pull_request' (types opened, synchronize, reopened, "
                          "closed), or pass {--event} a pull_request payload")
    if not isinstance(data, dict) or not isinstance(data.get("pull_request"), dict):
        raise bad("it has no 'pull_request'")
    pr = data["pull_request"]
    action, number = data.get("action"), data.get("number", pr.get("number"))
    if not isinstance(action, str) or not re.fullmatch(r"[a-z_]{1,40}", action):
        raise bad("'action' is missing or malformed")
    if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 10**9:
        raise bad("'number' is missing or not a pull request number")
    head, base = pr.get("head") or {}, pr.get("base") or {}
    sha = head.get("sha") if isinstance(head, dict) else None
    if not isinstance(sha, str) or not SHA.fullmatch(sha):
        raise bad("'pull_request.head.sha' is not a commit sha")
    base_repo = _repo_name((base or {}).get("repo"))
    if not base_repo:
        raise bad("'pull_request.base.repo.full_name' is missing")
    labels = tuple(str(label["name"]) for label in (pr.get("labels") or [])[:MAX_LABELS]
                   if isinstance(label, dict) and isinstance(label.get("name"), str))
    label = data.get("label")
    return PullRequestEvent(action, number, sha, _repo_name((head or {}).get("repo")), base_repo, labels,
                            str(label.get("name", "")) if isinstance(label, dict) else "")


def _repo_name(repo: Any) -> str:
    name = repo.get("full_name") if isinstance(repo, dict) else None
    return name if isinstance(name, str) and REPO.fullmatch(name) else ""


def step_for(event: PullRequestEvent, environment: Environment, allow_forks: bool) -> Step:
    label = environment.require_label
    if event.action in TEARDOWN_ACTIONS:
        return Step("teardown", f"pull request #{event.number} was closed")
    if label and event.action == "unlabeled" and event.label == label:
        return Step("teardown", f"the label '{label}' was removed from pull request #{event.number}")
    wanted = event.action in DEPLOY_ACTIONS or (event.action == "labeled" and bool(label) and event.label == label)
    if not wanted:
        return Step("skip", f"a '{event.action}' event changes no preview")
    if event.from_fork and not allow_forks:
        return Step("skip", f"pull request #{event.number} comes from a fork ({event.head_repo or 'deleted'}): "
                            "forks get no preview, since their code would run with this repository's credentials; "
                            "set allow-forks to change that (only with pull_request, never pull_request_target)")
    if label and label not in event.labels:
        return Step("skip", f"pull request #{event.number} has no '{label}' label (require-label)")
    return Step("deploy", f"pull request #{event.number} {event.action}")


# -- the sticky comment -------------------------------------------------------------------------------
def marker(app: str, environment: str, pr: int) -> str:
    """A hidden line that finds the preview's comment again; only comments envship's own account wrote
    count (a marker anyone can paste proves nothing)."""
    return f"<!-- envship-preview app={app} env={environment} pr={pr} -->"


@dataclass
class CommentState:
    state: str                      # deployed | failed | removed | refused
    url: str = ""
    digest: str = ""
    commit: str = ""
    expires: str = ""
    run_url: str = ""
    note: str = ""


def comment_body(mark: str, app: str, c: CommentState) -> str:
    title = {"deployed": "is live", "failed": "failed to deploy", "removed": "was removed",
             "refused": "was not created"}.get(c.state, c.state)
    rows = [("URL", c.url), ("image digest", f"`{c.digest}`" if c.digest else ""),
            ("commit", f"`{c.commit[:12]}`" if c.commit else ""), ("expires", c.expires),
            ("run", f"[logs]({c.run_url})" if c.run_url else "")]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows if v)
    body = f"{mark}\n### Preview of {app} {title}\n"
    if table:
        body += f"\n| | |\n|---|---|\n{table}\n"
    if c.note:
        body += f"\n{c.note}\n"
    return body


def expiry(now: datetime, ttl: timedelta | None) -> str:
    if ttl is None:
        return ""
    return f"{(now + ttl).strftime('%Y-%m-%d %H:%M')} UTC, if idle (no deploy) until then"


# -- garbage collection --------------------------------------------------------------------------------
@dataclass(frozen=True)
class LivePreview:
    pr: int
    namespace: str
    last_deploy: datetime | None   # the newest release record's time


def gc_reason(preview: LivePreview, pr_state: Mapping[str, Any] | None, ttl: timedelta | None,
              now: datetime) -> str:
    """Why a preview goes ('' when it stays): its pull request is closed (or gone), or it is idle longer
    than ttl (no deploy since)."""
    if pr_state is None:
        return f"pull request #{preview.pr} does not exist"
    if pr_state.get("state") == "closed":
        return f"pull request #{preview.pr} is closed"
    if ttl is not None and preview.last_deploy is not None and now - preview.last_deploy > ttl:
        idle = now - preview.last_deploy
        return f"idle for {idle.days}d{idle.seconds // 3600}h, longer than its ttl"
    return ""
