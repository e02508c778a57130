"""GitHub webhook payloads for tests (what GitHub Actions writes to GITHUB_EVENT_PATH), each checked against
the webhook's request body schema in GitHub's official webhooks description cut in
/work/shared/specs/github-webhooks.json before it is returned, so a payload a test feeds envship is one
GitHub could send.

    event = pull_request_event("opened", 42, "a" * 40, labels=("preview",))
    path = write_event(tmp_path, event)        # GITHUB_EVENT_PATH=path, GITHUB_EVENT_NAME=pull_request

Builders: pull_request_event (actions opened, reopened, synchronize, closed, labeled, unlabeled),
push_event, workflow_dispatch_event; validate_event(name, payload) checks any payload against the
webhook `name` ("pull-request-opened", "push", "workflow-dispatch", ...) and raises AssertionError listing
the violations. Objects (repository, users, pull request, labels) are the ones the fake GitHub API
renders (tests.fakes.github_api), on api.github.com / github.com URLs, with the same ids: a payload's
repository.id and pull_request.id are what the fake answers for the same repository and number.

The webhooks description is OpenAPI 3.1 (`type: [..., "null"]` instead of `nullable`), so it is validated
with openapi-schema-validator's OAS31Validator over the whole document (the REST description, 3.0, with
OAS30Validator).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .github_api import (
    GITHUB_API,
    GITHUB_WEB,
    Spec,
    fake_sha,
    label_object,
    pull_request_object,
    repository_object,
    user_object,
)

WEBHOOKS_PATH = Path("/work/shared/specs/github-webhooks.json")
PULL_REQUEST_ACTIONS = ("opened", "reopened", "synchronize", "closed", "labeled", "unlabeled")
_SPEC: Spec | None = None


def _spec() -> Spec:
    global _SPEC  # noqa: PLW0603 - one parsed description per process
    if _SPEC is None:
        _SPEC = Spec(WEBHOOKS_PATH)
    return _SPEC


def validate_event(name: str, payload: dict[str, Any]) -> None:
    """Raise AssertionError listing how `payload` violates the webhook `name`'s request body schema."""
    spec = _spec()
    if name not in spec.doc["webhooks"]:
        raise AssertionError(f"no webhook {name!r} in {WEBHOOKS_PATH.name}: {sorted(spec.doc['webhooks'])}")
    problems = spec.errors(f"/webhooks/{name}/post/requestBody/content/application~1json/schema", payload)
    if problems:
        raise AssertionError(f"the {name} payload violates the webhooks description:\n" + "\n".join(problems))


def write_event(tmp_path: Path, payload: dict[str, Any], name: str = "event.json") -> Path:
    """Write the payload where GITHUB_EVENT_PATH can point; returns the path."""
    path = Path(tmp_path) / name
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def _repository(repo: str, private: bool = False) -> dict[str, Any]:
    return repository_object(repo, api=GITHUB_API, web=GITHUB_WEB, private=private)


def pull_request_event(action: str, number: int, head_sha: str, *, repo: str = "acme/hello",
                       head_repo: str | None = None, head_ref: str = "feature", base_ref: str = "main",
                       title: str = "Add a feature", labels: Iterable[str] = (), label: str | None = None,
                       merged: bool = False, user: str = "octocat", before: str | None = None,
                       sender: str | None = None) -> dict[str, Any]:
    """A pull_request event. `head_repo` other than `repo` makes the pull come from a fork. For "labeled"
    and "unlabeled", `label` names the label (added to / absent from `labels`); "synchronize" carries
    `before` (default: a sha derived from head_sha) and `after` = head_sha; "closed" is merged when
    `merged`."""
    if action not in PULL_REQUEST_ACTIONS:
        raise ValueError(f"action is one of {PULL_REQUEST_ACTIONS}")
    names = list(labels)
    if action in ("labeled", "unlabeled"):
        if label is None:
            raise ValueError(f"a {action} event names its label")
        if action == "labeled" and label not in names:
            names.append(label)
        if action == "unlabeled":
            names = [n for n in names if n != label]
    state = "closed" if action == "closed" else "open"
    closed_at = "2024-05-01T12:00:00Z" if state == "closed" else None
    pull = pull_request_object(repo, number, head_sha, head_ref=head_ref, head_repo=head_repo, base_ref=base_ref,
                               state=state, labels=names, title=title, user=user, merged=merged and state == "closed",
                               closed_at=closed_at, updated_at=closed_at or "2024-05-01T11:00:00Z")
    payload: dict[str, Any] = {"action": action, "number": number, "pull_request": pull,
                               "repository": _repository(repo), "sender": user_object(sender or user)}
    if action in ("labeled", "unlabeled"):
        payload["label"] = label_object(repo, str(label))
    if action == "synchronize":
        payload["before"] = before or fake_sha(f"before {head_sha}")
        payload["after"] = head_sha
    validate_event(f"pull-request-{action}", payload)
    return payload


def push_event(ref: str, after: str, *, repo: str = "acme/hello", before: str | None = None,
               pusher: str = "octocat", message: str = "Update", created: bool = False,
               deleted: bool = False) -> dict[str, Any]:
    """A push event of one commit `after` to `ref` ("refs/heads/main", "refs/tags/v1"); deleted=True: a
    deleted ref (after all zeros, no commits)."""
    zero = "0" * 40
    before = before or (zero if created else fake_sha(f"before {after}"))
    if deleted:
        after = zero
    repository = _repository(repo)
    commit = {"id": after, "tree_id": fake_sha(f"tree {after}"), "distinct": True, "message": message,
              "timestamp": "2024-05-01T10:00:00Z", "url": f"{GITHUB_WEB}/{repo}/commit/{after}",
              "author": {"name": pusher, "email": f"{pusher}@users.noreply.github.com", "username": pusher},
              "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
              "added": [], "removed": [], "modified": ["README.md"]}
    payload = {"ref": ref, "before": before, "after": after, "created": created, "deleted": deleted,
               "forced": False, "base_ref": None,
               "compare": f"{GITHUB_WEB}/{repo}/compare/{before[:12]}...{after[:12]}",
               "commits": [] if deleted else [commit], "head_commit": None if deleted else commit,
               "repository": repository, "pusher": {"name": pusher, "email": f"{pusher}@users.noreply.github.com"},
               "sender": user_object(pusher)}
    validate_event("push", payload)
    return payload


def workflow_dispatch_event(inputs: dict[str, Any] | None, ref: str = "refs/heads/main", *, repo: str = "acme/hello",
                            workflow: str = ".github/workflows/deploy.yml", sender: str = "octocat") -> dict[str, Any]:
    """A workflow_dispatch event (inputs as the workflow received them; None when it declares none)."""
    payload = {"inputs": inputs, "ref": ref, "repository": _repository(repo), "sender": user_object(sender),
               "workflow": workflow}
    validate_event("workflow-dispatch", payload)
    return payload
