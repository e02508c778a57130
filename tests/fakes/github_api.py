"""A fake GitHub REST API for tests and benchmarks: a real HTTP/1.1 server on 127.0.0.1 that behaves like
api.github.com (or a GitHub Enterprise Server under /api/v3) for what a deploy tool uses (deployments and
their statuses, environments, pull request comments and labels, pulls, the repository, the rate limit), and
that checks every request it receives, and every success answer it gives, against GitHub's official OpenAPI
description cut in /work/shared/specs/github-rest.json.

Start it from Python::

    with FakeGitHub.start() as gh:                           # port 0: an ephemeral port; prefix="/api/v3": GHES
        gh.add_repo("acme/hello")                            # default branch "main"
        g = github.Github(base_url=gh.url, auth=github.Auth.Token(gh.token), retry=None)
        g.get_repo("acme/hello").create_deployment("main", environment="staging", auto_merge=False)
        gh.count("POST", r"/deployments$")                   # every request is logged (Request records)

or as a script (manual runs, benchmarks)::

    python -m tests.fakes.github_api --port 0 --repo acme/hello --latency-ms 20 --max-seconds 600 [--prefix /api/v3]

which prints the URL (the GITHUB_API_URL) on the first line of stdout and the token on the second, and
exits after --max-seconds (default 600), on SIGTERM or on Ctrl-C.

What it serves (paths under the prefix: "" like api.github.com, "/api/v3" like GHES)
- GET /rate_limit: {resources: {core, search, graphql, code_search, integration_manifest}, rate}; it does not
  count against the limit (as on github.com).
- GET /repos/{owner}/{repo}: the spec's full-repository, for repositories added with add_repo (owner and
  name are case-insensitive, as on GitHub); unknown ones 404 {"message": "Not Found"}.
- Deployments: list (filters environment, ref, sha, task; newest first; paginated), create, get, delete.
  Ids are increasing integers shared by all repositories. `ref` resolves to a sha: any 40-hex string is
  taken as a sha, a branch name must be known (add_repo registers the default branch at a generated sha,
  add_branch others), anything else is 422 "No ref found for: X". `payload` is stored as an object (a
  JSON string is parsed). `environment` defaults to "production", `production_environment` to
  environment == "production", `transient_environment` to false, `task` to "deploy". Creating a
  deployment creates the environment when missing (GitHub does).
- `auto_merge` (default true): GitHub merges the default branch into the ref when the ref is behind it.
  The fake has no commit graph, so with auto_merge true any ref other than the default branch (by name
  or its head sha) answers 409 "Conflict merging main into X." Clients should send auto_merge false.
  `required_contexts` is accepted and not checked (the fake has no commit statuses).
- Deployment statuses: list (newest first, paginated) and create. States error, failure, inactive,
  in_progress, queued, pending, success. `log_url` sets `target_url` too (and `target_url` alone sets
  `log_url`); unset URLs are "". `environment` defaults to the previous status's, else the deployment's;
  a status naming another environment moves the deployment there (`original_environment` keeps the
  first) and creates that environment when missing.
- auto_inactive (default true), GitHub's documented rule: a new `success` status adds an `inactive` status
  to every PRIOR deployment (smaller id) of the same repository whose environment is the same as the
  status's, that is neither transient_environment nor production_environment, and whose latest status is
  `success`. Production and transient deployments are never marked inactive by it; neither are ones whose
  latest status is in_progress, queued, pending, failure or error.
- DELETE of a deployment: only when its latest status is `inactive` or it is the only deployment of its
  environment in the repository (204); otherwise 422 "We cannot delete an active deployment unless it is
  the only deployment in a given environment." Its statuses go with it.
- Environments: list {total_count, environments} (creation order, paginated), get (404 Not Found), PUT
  create-or-update (wait_timer, prevent_self_review, reviewers, deployment_branch_policy; 422 when
  protected_branches and custom_branch_policies are equal, unconfirmed message), DELETE (204; 404 when
  unknown). Names may contain "/" (URL-encoded in the path as %2F, as clients must send them).
- Issue comments (on pull requests added with add_pull; other numbers 404): list in creation order
  (paginated, `since`), create, PATCH body, DELETE 204. The author is the token's user (`login`, default
  "github-actions[bot]", type "Bot"); add_comment seeds comments by others. DELETE of a label on the pull
  answers its remaining labels (404 "Label does not exist" for one it does not have).
- Pulls: list (state open/closed/all, head "owner:ref", base, sort created/updated, direction; paginated)
  and get, rendered as the spec's pull-request-simple / pull-request with head and base repository
  objects; a head repository other than the base one is a fork.

Authentication and permissions
- `Authorization: token X` or `Bearer X` with the fake's token; anything else, or none, is 401
  {"message": "Bad credentials"}.
- The token's permissions are `permissions` (default ALL_PERMISSIONS); write implies read. Each operation
  needs one of (deployments:read|write for deployments and statuses, administration:write to PUT or
  DELETE an environment, metadata:read to read the repository and environments, issues or pull-requests
  read/write for comments and labels, pull-requests:read for pulls). A missing one is 403 {"message":
  "Resource not accessible by integration"} with `x-accepted-github-permissions` (e.g.
  "issues=write; pull_requests=write").

Headers on every answer: x-ratelimit-limit (5000), -remaining, -used, -reset (an hour after start, epoch
seconds), -resource ("core"), x-github-request-id, x-github-media-type, x-github-api-version-selected.
Every authenticated request that reaches the API (not GET /rate_limit, not injected failures) uses one;
`rate_limit_remaining` is settable. At 0: 403 "API rate limit exceeded for installation ID N. ..." with
x-ratelimit-remaining 0 (PyGithub's default GithubRetry then sleeps until the reset: pass retry=None or
max_rate_limit_wait in tests).

Pagination: `per_page` (default 30, at most 100), `page` (default 1); a Link header with rel="prev",
"next", "last", "first" (that order, as GitHub writes it), absolute URLs on the fake's URL keeping the
request's other query parameters, only when there is more than one page.

Spec checks: path parameters, query parameters (coerced by their schema type; unknown ones are
violations) and JSON bodies are validated with openapi-schema-validator (OAS 3.0 with `nullable`, formats
checked). A violation is recorded in `errors` and answered like GitHub: 404 Not Found for an unknown path
or method or a path parameter of the wrong type, 400 "Problems parsing JSON" for a body that is not JSON,
422 "Invalid request.\\n\\n..." (one line per problem: '"ref" wasn't supplied.', "For 'properties/task', 5
is not a string.") otherwise. Success answers are validated against the operation's response schema and
error answers against the one the operation declares for that status (else basic-error); a mismatch is a
bug in the fake and is recorded in `errors` too.

Faults: `inject_failure(path, status=..., count=..., method=..., retry_after=...)` fails the next matching
requests: 403/429 as a secondary rate limit ("You have exceeded a secondary rate limit. ..."), with
`retry-after` when retry_after is given (without it PyGithub's GithubRetry waits 60 s), 5xx with GitHub's
JSON bodies. `set_faults(seed, rate, kinds=("5xx", "secondary"))` switches on seeded faults (FaultMode).
`down = True` answers every request 503 (GitHub down). Injected answers are not spec-checked.

Known differences from github.com
- Anonymous requests are 401 here; github.com serves public repositories to them (60 requests an hour).
- One token, one user, one flat permission set for every repository; no OAuth scopes, no SSO, no
  installation-to-repository mapping; private repositories are as visible as public ones.
- No commit graph: refs are names known to the fake or 40-hex shas; auto_merge is all-or-409 (above);
  required_contexts is not checked against commit statuses.
- Listing environments needs actions:read or metadata on github.com depending on the token kind; here
  metadata:read. Environment names are case-sensitive here (case-insensitive on GitHub). Deleting an
  environment keeps its deployments.
- Error messages marked unconfirmed in comments are plausible texts, not quoted from live answers.
- Pagination pages over the current state, not a snapshot; no conditional requests (ETag/304), no
  media types other than JSON, no GraphQL, no webhooks (see github_events for payloads).
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import random
import re
import secrets
import signal
import string
import sys
import threading
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from openapi_schema_validator import OAS30Validator, OAS31Validator, oas30_format_checker, oas31_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

from .http import FakeHandler, FakeHTTPServer, RequestLog

SPEC_PATH = Path("/work/shared/specs/github-rest.json")
ALL_PERMISSIONS = frozenset({"contents:read", "deployments:write", "pull-requests:write", "issues:write",
                             "administration:write", "metadata:read"})
DEFAULT_LOGIN = "github-actions[bot]"
GITHUB_API = "https://api.github.com"
GITHUB_WEB = "https://github.com"
DOCS = "https://docs.github.com/rest"
STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
RATE_LIMIT = 5000
_SHA = re.compile(r"[0-9a-f]{40}")
_AUTH = re.compile(r"(?i)(token|bearer)\s+(\S+)")
_KNOWN_IDS = {"github-actions[bot]": 41898282, "octocat": 583231, "dependabot[bot]": 49699333}

# Each operation needs one of these (write implies read).
_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "rate-limit/get": (),
    "repos/get": ("metadata:read",),
    "repos/list-deployments": ("deployments:read",),
    "repos/get-deployment": ("deployments:read",),
    "repos/list-deployment-statuses": ("deployments:read",),
    "repos/create-deployment": ("deployments:write",),
    "repos/delete-deployment": ("deployments:write",),
    "repos/create-deployment-status": ("deployments:write",),
    "repos/get-all-environments": ("metadata:read",),
    "repos/get-environment": ("metadata:read",),
    "repos/create-or-update-environment": ("administration:write",),
    "repos/delete-an-environment": ("administration:write",),
    "issues/list-comments": ("issues:read", "pull-requests:read"),
    "issues/create-comment": ("issues:write", "pull-requests:write"),
    "issues/update-comment": ("issues:write", "pull-requests:write"),
    "issues/delete-comment": ("issues:write", "pull-requests:write"),
    "issues/remove-label": ("issues:write", "pull-requests:write"),
    "pulls/list": ("pull-requests:read",),
    "pulls/get": ("pull-requests:read",),
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _copy(obj: Any) -> Any:
    return copy.deepcopy(obj)


def _stable_id(text: str, base: int = 10_000_000) -> int:
    return base + zlib.crc32(text.lower().encode()) % 900_000_000


def _node_id(kind: str, number: int) -> str:
    return kind + "_kwDO" + base64.b64encode(number.to_bytes(8, "big")).decode().rstrip("=")


def fake_sha(text: str) -> str:
    """A stable 40-hex sha for a name (the generated head of a branch)."""
    return hashlib.sha1(text.encode()).hexdigest()


# ------------------------------------------------------------------------------------------------
# GitHub objects (shared with github_events, which renders them on api.github.com / github.com)
# ------------------------------------------------------------------------------------------------

def user_id(login: str) -> int:
    return _KNOWN_IDS.get(login, _stable_id(login, 1_000_000))


def user_object(login: str, *, api: str = GITHUB_API, web: str = GITHUB_WEB, kind: str | None = None) -> dict[str, Any]:
    """The spec's simple-user: type "Bot" for a login ending in [bot], else `kind` (default "User")."""
    uid = user_id(login)
    bot = login.endswith("[bot]")
    u = f"{api}/users/{quote(login)}"
    return {
        "login": login, "id": uid, "node_id": _node_id("BOT" if bot else "U", uid),
        "avatar_url": f"https://avatars.githubusercontent.com/{'in/15368' if bot else f'u/{uid}'}?v=4",
        "gravatar_id": "", "url": u,
        "html_url": f"{web}/apps/{login.removesuffix('[bot]')}" if bot else f"{web}/{login}",
        "followers_url": f"{u}/followers", "following_url": f"{u}/following{{/other_user}}",
        "gists_url": f"{u}/gists{{/gist_id}}", "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{u}/subscriptions", "organizations_url": f"{u}/orgs", "repos_url": f"{u}/repos",
        "events_url": f"{u}/events{{/privacy}}", "received_events_url": f"{u}/received_events",
        "type": "Bot" if bot else (kind or "User"), "user_view_type": "public", "site_admin": False,
    }


def repository_object(full_name: str, *, api: str = GITHUB_API, web: str = GITHUB_WEB, default_branch: str = "main",
                      private: bool = False, fork: bool = False, created_at: str = "2024-01-02T03:04:05Z",
                      pushed_at: str | None = None, owner_type: str = "Organization") -> dict[str, Any]:
    """The spec's repository (also valid as a webhook's repository object); owner an organization."""
    owner, name = full_name.split("/", 1)
    rid = _stable_id(full_name, 100_000_000)
    u = f"{api}/repos/{full_name}"
    host = urlsplit(web).netloc
    return {
        "id": rid, "node_id": _node_id("R", rid), "name": name, "full_name": full_name, "private": private,
        "owner": user_object(owner, api=api, web=web, kind=owner_type), "html_url": f"{web}/{full_name}",
        "description": None, "fork": fork, "url": u, "forks_url": f"{u}/forks",
        "keys_url": f"{u}/keys{{/key_id}}", "collaborators_url": f"{u}/collaborators{{/collaborator}}",
        "teams_url": f"{u}/teams", "hooks_url": f"{u}/hooks", "issue_events_url": f"{u}/issues/events{{/number}}",
        "events_url": f"{u}/events", "assignees_url": f"{u}/assignees{{/user}}",
        "branches_url": f"{u}/branches{{/branch}}", "tags_url": f"{u}/tags",
        "blobs_url": f"{u}/git/blobs{{/sha}}", "git_tags_url": f"{u}/git/tags{{/sha}}",
        "git_refs_url": f"{u}/git/refs{{/sha}}", "trees_url": f"{u}/git/trees{{/sha}}",
        "statuses_url": f"{u}/statuses/{{sha}}", "languages_url": f"{u}/languages",
        "stargazers_url": f"{u}/stargazers", "contributors_url": f"{u}/contributors",
        "subscribers_url": f"{u}/subscribers", "subscription_url": f"{u}/subscription",
        "commits_url": f"{u}/commits{{/sha}}", "git_commits_url": f"{u}/git/commits{{/sha}}",
        "comments_url": f"{u}/comments{{/number}}", "issue_comment_url": f"{u}/issues/comments{{/number}}",
        "contents_url": f"{u}/contents/{{+path}}", "compare_url": f"{u}/compare/{{base}}...{{head}}",
        "merges_url": f"{u}/merges", "archive_url": f"{u}/{{archive_format}}{{/ref}}",
        "downloads_url": f"{u}/downloads", "issues_url": f"{u}/issues{{/number}}",
        "pulls_url": f"{u}/pulls{{/number}}", "milestones_url": f"{u}/milestones{{/number}}",
        "notifications_url": f"{u}/notifications{{?since,all,participating}}",
        "labels_url": f"{u}/labels{{/name}}", "releases_url": f"{u}/releases{{/id}}",
        "deployments_url": f"{u}/deployments", "created_at": created_at, "updated_at": created_at,
        "pushed_at": pushed_at or created_at, "git_url": f"git://{host}/{full_name}.git",
        "ssh_url": f"git@{host}:{full_name}.git", "clone_url": f"{web}/{full_name}.git",
        "svn_url": f"{web}/{full_name}", "homepage": None, "size": 108, "stargazers_count": 0,
        "watchers_count": 0, "language": "Python", "has_issues": True, "has_projects": True,
        "has_downloads": True, "has_wiki": True, "has_pages": False, "has_discussions": False,
        "forks_count": 0, "mirror_url": None, "archived": False, "disabled": False, "open_issues_count": 0,
        "license": None, "allow_forking": True, "is_template": False, "web_commit_signoff_required": False,
        "topics": [], "visibility": "private" if private else "public", "forks": 0, "open_issues": 0,
        "watchers": 0, "default_branch": default_branch,
    }


def label_object(full_name: str, name: str, *, api: str = GITHUB_API) -> dict[str, Any]:
    lid = _stable_id(f"{full_name}#{name}", 1_000_000_000)
    return {"id": lid, "node_id": _node_id("LA", lid), "url": f"{api}/repos/{full_name}/labels/{quote(name)}",
            "name": name, "color": fake_sha(name)[:6], "default": False, "description": None}


def pull_request_object(full_name: str, number: int, head_sha: str, *, api: str = GITHUB_API,
                        web: str = GITHUB_WEB, head_ref: str = "feature", head_repo: str | None = None,
                        base_ref: str = "main", base_sha: str | None = None, state: str = "open",
                        labels: Iterable[str] = (), title: str = "Add a feature", user: str = "octocat",
                        merged: bool = False, created_at: str = "2024-05-01T10:00:00Z",
                        updated_at: str | None = None, closed_at: str | None = None,
                        default_branch: str = "main", private: bool = False, body: str | None = None,
                        draft: bool = False) -> dict[str, Any]:
    """The spec's pull-request (a superset of pull-request-simple, and valid in webhook payloads)."""
    head_repo = head_repo or full_name
    fork = head_repo.lower() != full_name.lower()
    pid = _stable_id(f"{full_name}#{number}", 2_000_000_000)
    u = f"{api}/repos/{full_name}/pulls/{number}"
    issue = f"{api}/repos/{full_name}/issues/{number}"
    html = f"{web}/{full_name}/pull/{number}"
    statuses = f"{api}/repos/{full_name}/statuses/{head_sha}"
    if state == "closed" and closed_at is None:
        closed_at = updated_at or created_at
    merged_at = closed_at if merged else None
    head_owner = head_repo.split("/", 1)[0]
    base_owner = full_name.split("/", 1)[0]
    return {
        "url": u, "id": pid, "node_id": _node_id("PR", pid), "html_url": html, "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch", "issue_url": issue, "commits_url": f"{u}/commits",
        "review_comments_url": f"{u}/comments",
        "review_comment_url": f"{api}/repos/{full_name}/pulls/comments{{/number}}",
        "comments_url": f"{issue}/comments", "statuses_url": statuses, "number": number, "state": state,
        "locked": False, "title": title, "user": user_object(user, api=api, web=web), "body": body,
        "labels": [label_object(full_name, name, api=api) for name in labels], "milestone": None,
        "active_lock_reason": None, "created_at": created_at, "updated_at": updated_at or closed_at or created_at,
        "closed_at": closed_at, "merged_at": merged_at,
        "merge_commit_sha": fake_sha(f"merge {full_name}#{number} {head_sha}") if merged or state == "open" else None,
        "assignee": None, "assignees": [], "requested_reviewers": [], "requested_teams": [],
        "head": {"label": f"{head_owner}:{head_ref}", "ref": head_ref, "sha": head_sha,
                 "user": user_object(head_owner, api=api, web=web, kind="Organization"),
                 "repo": repository_object(head_repo, api=api, web=web, fork=fork, private=private)},
        "base": {"label": f"{base_owner}:{base_ref}", "ref": base_ref,
                 "sha": base_sha or fake_sha(f"{full_name}@{base_ref}"),
                 "user": user_object(base_owner, api=api, web=web, kind="Organization"),
                 "repo": repository_object(full_name, api=api, web=web, default_branch=default_branch,
                                           private=private)},
        "_links": {"self": {"href": u}, "html": {"href": html}, "issue": {"href": issue},
                   "comments": {"href": f"{issue}/comments"}, "review_comments": {"href": f"{u}/comments"},
                   "review_comment": {"href": f"{api}/repos/{full_name}/pulls/comments{{/number}}"},
                   "commits": {"href": f"{u}/commits"}, "statuses": {"href": statuses}},
        "author_association": "CONTRIBUTOR" if fork else "MEMBER", "auto_merge": None, "draft": draft,
        "merged": merged, "mergeable": True if state == "open" else None,
        "rebaseable": True if state == "open" else None, "mergeable_state": "clean" if state == "open" else "unknown",
        "merged_by": user_object(user, api=api, web=web) if merged else None, "comments": 0, "review_comments": 0,
        "maintainer_can_modify": fork, "commits": 1,
        "additions": 10, "deletions": 2, "changed_files": 1,
    }


# ------------------------------------------------------------------------------------------------
# OpenAPI descriptions
# ------------------------------------------------------------------------------------------------

@dataclass
class _Operation:
    method: str
    template: str
    regex: re.Pattern[str]
    pointer: str
    op: dict[str, Any]
    literal_segments: int

    @property
    def operation_id(self) -> str:
        return str(self.op["operationId"])

    @property
    def docs(self) -> str:
        return str(self.op.get("externalDocs", {}).get("url") or DOCS)


def _pointer_escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class Spec:
    """An OpenAPI description with validators for its schemas by JSON pointer (so `#/components/...`
    references resolve against the whole document): OAS30Validator for 3.0 documents (`nullable`),
    OAS31Validator for 3.1 ones (the webhooks description uses `type: [..., "null"]`)."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        doc = json.loads(path.read_text(encoding="utf-8"))
        self.doc = doc
        self.v31 = str(doc.get("openapi", "3.0")).startswith("3.1")
        self.urn = "urn:" + path.stem
        spec = DRAFT202012 if self.v31 else DRAFT4
        resource = Resource.from_contents(doc, default_specification=spec)
        self.registry: Registry[Any] = Registry().with_resource(self.urn, resource)
        self._validators: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.operations: list[_Operation] = []
        for template, item in (doc.get("paths") or {}).items():
            regex = re.compile("^" + re.sub(r"\\\{([a-z_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")
            literal = sum(1 for part in template.split("/") if part and not part.startswith("{"))
            for method, op in item.items():
                if method in ("get", "put", "post", "patch", "delete"):
                    pointer = f"/paths/{_pointer_escape(template)}/{method}"
                    self.operations.append(_Operation(method.upper(), template, regex, pointer, op, literal))
        self.operations.sort(key=lambda o: -o.literal_segments)

    def match(self, method: str, path: str) -> tuple[_Operation | None, dict[str, str], bool]:
        """(operation, path parameters decoded, whether any operation has this path). The path is matched
        still encoded, so an environment name's %2F stays inside its segment."""
        path_known = False
        for op in self.operations:
            m = op.regex.match(path)
            if m:
                path_known = True
                if op.method == method:
                    return op, {k: unquote(v) for k, v in m.groupdict().items()}, True
        return None, {}, path_known

    def validator(self, pointer: str) -> Any:
        with self._lock:
            v = self._validators.get(pointer)
            if v is None:
                if self.v31:
                    cls, checker = OAS31Validator, oas31_format_checker
                else:
                    cls, checker = OAS30Validator, oas30_format_checker
                v = cls({"$ref": f"{self.urn}#{pointer}"}, registry=self.registry, format_checker=checker)
                self._validators[pointer] = v
            return v

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.doc
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
        return schema

    def raw_errors(self, pointer: str, instance: Any) -> list[Any]:
        return [leaf for error in self.validator(pointer).iter_errors(instance) for leaf in _leaves(error)]

    def errors(self, pointer: str, instance: Any) -> list[str]:
        found = []
        for leaf in self.raw_errors(pointer, instance):
            where = "/".join(str(p) for p in leaf.absolute_path)
            found.append(leaf.message + (f" (at {where})" if where else ""))
        return list(dict.fromkeys(found))

    def parameters(self, op: _Operation) -> list[tuple[str, dict[str, Any], str]]:
        out = []
        for i, declared in enumerate(op.op.get("parameters") or []):
            param, pointer = declared, f"{op.pointer}/parameters/{i}/schema"
            if "$ref" in declared:
                param = self.resolve({"$ref": declared["$ref"]})
                pointer = declared["$ref"].lstrip("#") + "/schema"
            out.append((param["name"], param, pointer))
        return out

    def response_pointer(self, op: _Operation, status: int) -> str | None:
        """The JSON pointer of the operation's application/json schema for `status`, if it declares one."""
        response = (op.op.get("responses") or {}).get(str(status))
        if response is None:
            return None
        pointer = f"{op.pointer}/responses/{status}"
        if "$ref" in response:
            pointer = response["$ref"].lstrip("#")
            response = self.resolve(response)
        if "schema" not in (response.get("content") or {}).get("application/json", {}):
            return None
        return pointer + "/content/application~1json/schema"


def _leaves(error: Any) -> list[Any]:
    if not error.context:
        return [error]
    return [leaf for sub in error.context for leaf in _leaves(sub)]


_SPEC: Spec | None = None
_SPEC_LOCK = threading.Lock()


def load_spec() -> Spec:
    global _SPEC  # noqa: PLW0603 - one parsed description per process; validators are cached on it
    with _SPEC_LOCK:
        if _SPEC is None:
            _SPEC = Spec()
            # Live API: labels without a description carry "description": null in pull lists too; the
            # pull-request-simple schema types it a plain string (the label and pull-request schemas allow null).
            labels = _SPEC.doc["components"]["schemas"]["pull-request-simple"]["properties"]["labels"]
            labels["items"]["properties"]["description"]["nullable"] = True
        return _SPEC


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    if kind in ("number", "integer"):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    return value


def _describe(error: Any) -> str:
    """A schema violation worded like GitHub's 422 "Invalid request." lines."""
    where = "/".join(f"properties/{p}" if isinstance(p, str) else f"items/{p}" for p in error.absolute_path)
    if error.validator == "required":
        missing = re.match(r"'([^']+)'", error.message)
        return f'"{missing.group(1) if missing else error.message}" wasn\'t supplied.'
    if error.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", error.message)
        return " ".join(f'"{e}" is not a permitted key.' for e in extra) or error.message
    if error.validator == "type":
        return f"For '{where or 'body'}', {json.dumps(error.instance)} is not {_article(error.validator_value)}."
    return f"For '{where or 'body'}', {error.message}."


def _article(kind: Any) -> str:
    kind = str(kind)
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


# ------------------------------------------------------------------------------------------------
# answers, errors, faults
# ------------------------------------------------------------------------------------------------




class GhError(Exception):
    """An API error answer: status, message, documentation_url (+ `errors` for validation failures)."""

    def __init__(self, status: int, message: str, *, docs: str = DOCS, headers: dict[str, str] | None = None,
                 errors: list[Any] | None = None) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.docs = docs
        self.headers = headers or {}
        self.errors = errors

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "documentation_url": self.docs, "status": str(self.status)}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


@dataclass
class _Reply:
    status: int
    payload: Any  # JSON-able, or None for no body
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Failure:
    status: int
    remaining: int
    path: re.Pattern[str]
    method: str | None
    retry_after: float | None
    message: str | None


_SECONDARY = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you "
              "reach out to GitHub Support for help, please include the request ID {rid}.")
_SECONDARY_DOCS = ("https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api"
                   "#about-secondary-rate-limits")
_5XX = {500: "Server Error", 502: "Server Error", 503: "Service Unavailable",
        504: "We couldn't respond to your request in time. Sorry about that. Please try resubmitting your "
             "request and contact us if the problem persists."}


def _secondary(status: int, retry_after: str | None, message: str | None = None) -> _Reply:
    rid = _request_id()
    body = {"message": message or _SECONDARY.format(rid=rid), "documentation_url": _SECONDARY_DOCS}
    headers = {"x-github-request-id": rid}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return _Reply(status, body, headers)


def _server_error(status: int, message: str | None = None, retry_after: str | None = None) -> _Reply:
    body = {"message": message or _5XX.get(status, "Server Error"), "documentation_url": DOCS}
    return _Reply(status, body, {"retry-after": retry_after} if retry_after is not None else {})


def _request_id() -> str:
    return ":".join(secrets.token_hex(n).upper() for n in (2, 3, 4, 4, 4))


class FaultMode:
    """Seeded faults as GitHub produces them: a share `rate` of requests fails, with a secondary rate limit
    (403 or 429 with retry-after "0" or "1") on any request, or a 500/502/503 only on GET and DELETE (a write
    that failed with a 5xx cannot be told apart from one that succeeded, so clients should not retry those
    blindly). The same seed gives the same choices in the same order; `counts` says what was injected."""

    def __init__(self, seed: int, rate: float, kinds: tuple[str, ...]) -> None:
        self.seed = seed
        self.rate = rate
        self.kinds = tuple(kinds)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def for_request(self, method: str) -> _Reply | None:
        with self.lock:
            if self.rng.random() >= self.rate:
                return None
            choices = [k for k in self.kinds if k == "secondary" or (k == "5xx" and method in ("GET", "DELETE"))]
            if not choices:
                return None
            kind = self.rng.choice(choices)
            self.counts[kind] += 1
            if kind == "secondary":
                status = self.rng.choice((403, 429))
                return _secondary(status, "1" if self.rng.random() < 0.2 else "0")
            return _server_error(self.rng.choice((500, 502, 503)))


# ------------------------------------------------------------------------------------------------
# HTTP plumbing
# ------------------------------------------------------------------------------------------------

class _Handler(FakeHandler):
    server_version = "github.com"
    timeout = 120

    def version_string(self) -> str:
        return self.server_version

    def send(self, reply: _Reply) -> None:
        body = b"" if reply.payload is None else json.dumps(reply.payload).encode()
        self.send_response(reply.status)
        if reply.payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


# ------------------------------------------------------------------------------------------------
# the fake
# ------------------------------------------------------------------------------------------------

class FakeGitHub(RequestLog):
    """The fake API. Use `FakeGitHub.start(...)`; `stop()` (or leaving the `with` block) shuts it down."""

    def __init__(self, *, latency_ms: float = 0.0, token: str | None = None, login: str = DEFAULT_LOGIN,
                 permissions: Iterable[str] = ALL_PERMISSIONS, prefix: str = "", host: str = "127.0.0.1",
                 port: int = 0) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError("prefix is '' or like '/api/v3'")
        self.spec = load_spec()
        self.latency_ms = latency_ms
        self.prefix = prefix
        self.token = token or "ghs_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))
        self.login = login
        self.installation_id = 50_000_000 + secrets.randbelow(1_000_000)
        self.permissions: set[str] = set(permissions)
        self.rate_limit_limit = RATE_LIMIT
        self.rate_limit_remaining = RATE_LIMIT
        self.rate_limit_reset = int(time.time()) + 3600
        self.down = False
        RequestLog.__init__(self)
        self.errors: list[str] = []
        self.faults: FaultMode | None = None
        self._lock = threading.RLock()
        self._failures: list[_Failure] = []
        self._repos: dict[str, dict[str, Any]] = {}
        self._deployments: dict[int, dict[str, Any]] = {}
        self._environments: dict[tuple[str, str], dict[str, Any]] = {}
        self._comments: dict[int, dict[str, Any]] = {}
        self._pulls: dict[tuple[str, int], dict[str, Any]] = {}
        self._next_deployment = 1
        self._next_status = 1
        self._next_comment = 1_000_001
        self._next_environment = 300_000_001
        self._httpd = FakeHTTPServer((host, port), self, _Handler)
        self.host, self.port = str(self._httpd.server_address[0]), int(self._httpd.server_address[1])
        self.url = f"http://{self.host}:{self.port}{prefix}"
        # github.com's pages are on github.com; a GHES's on its own host
        self.web_url = GITHUB_WEB if not prefix else f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fake-github-api", daemon=True)
        self._stopped = False

    @classmethod
    def start(cls, latency_ms: float = 0.0, **kwargs: Any) -> FakeGitHub:
        """Start serving. Keyword arguments: prefix ("" like api.github.com, "/api/v3" like GHES), token
        (random by default), login (the token's user), permissions (default ALL_PERMISSIONS), host, port."""
        fake = cls(latency_ms=latency_ms, **kwargs)
        fake._thread.start()
        return fake

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._httpd.stop(self._thread)

    def __enter__(self) -> FakeGitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state for tests ------------------------------------------------------------------------------

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}", "Accept": "application/vnd.github+json"}

    def env(self, repo: str = "acme/hello") -> dict[str, str]:
        """The environment variables GitHub Actions sets that point a client at this fake."""
        return {"GITHUB_API_URL": self.url, "GITHUB_SERVER_URL": self.web_url, "GITHUB_TOKEN": self.token,
                "GITHUB_REPOSITORY": repo}

    def add_repo(self, full_name: str, default_branch: str = "main", private: bool = False) -> dict[str, Any]:
        """A repository whose default branch points at a generated sha (fake_sha("owner/name@branch")).
        Adding one that exists updates its default branch and visibility. Returns the stored repository."""
        if full_name.count("/") != 1:
            raise ValueError("a repository is 'owner/name'")
        with self._lock:
            repo = self._repos.get(full_name.lower())
            if repo is None:
                repo = {"full_name": full_name, "branches": {}, "created_at": _now()}
                self._repos[full_name.lower()] = repo
            repo["default_branch"] = default_branch
            repo["private"] = private
            repo["branches"].setdefault(default_branch, fake_sha(f"{full_name}@{default_branch}"))
            return repo

    def add_branch(self, repo: str, name: str, sha: str) -> None:
        """Make the branch `name` point at `sha` (a ref create_deployment then resolves)."""
        if not _SHA.fullmatch(sha):
            raise ValueError("sha is 40 lower-case hex digits")
        with self._lock:
            self._repo_by_name(repo)["branches"][name] = sha

    def add_pull(self, repo: str, number: int, head_sha: str, head_ref: str = "feature",
                 head_repo: str | None = None, base_ref: str = "main", state: str = "open",
                 labels: Iterable[str] = (), title: str = "Add a feature", user: str = "octocat",
                 merged: bool = False, closed_at: str | None = None, updated_at: str | None = None,
                 draft: bool = False) -> dict[str, Any]:
        """A pull request (head_repo other than repo: from a fork). Returns the stored pull (a dict the
        fake renders from; changing it changes the answers)."""
        if state not in ("open", "closed"):
            raise ValueError("state is 'open' or 'closed'")
        with self._lock:
            r = self._repo_by_name(repo)
            now = _now()
            pull = {"repo": r["full_name"], "number": number, "head_sha": head_sha, "head_ref": head_ref,
                    "head_repo": head_repo or r["full_name"], "base_ref": base_ref, "state": state,
                    "labels": list(labels), "title": title, "user": user, "merged": merged,
                    "created_at": now, "updated_at": updated_at or now,
                    "closed_at": closed_at or (now if state == "closed" else None), "draft": draft}
            self._pulls[(r["full_name"].lower(), number)] = pull
            return pull

    def close_pull(self, repo: str, number: int, merged: bool = False) -> None:
        with self._lock:
            pull = self._pull(self._repo_by_name(repo), number)
            now = _now()
            pull.update(state="closed", closed_at=now, updated_at=now, merged=merged)

    def add_comment(self, repo: str, number: int, body: str, login: str = "someone") -> dict[str, Any]:
        """A comment on pull `number` by `login` (someone else than the token's user). Returns it rendered."""
        with self._lock:
            r = self._repo_by_name(repo)
            self._pull(r, number)
            return self._render_comment(self._new_comment(r, number, body, login))

    def deployments(self, repo: str, environment: str | None = None) -> list[dict[str, Any]]:
        """The repository's deployments as the API renders them, oldest first, each with `statuses` (oldest
        first, rendered)."""
        with self._lock:
            r = self._repo_by_name(repo)
            out = []
            for d in self._deployments.values():
                if d["repo"] == r["full_name"] and (environment is None or d["environment"] == environment):
                    rendered = self._render_deployment(d)
                    rendered["statuses"] = [self._render_status(d, s) for s in d["statuses"]]
                    out.append(rendered)
            return out

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            r = self._repo_by_name(repo)
            return [self._render_comment(c) for c in self._comments.values()
                    if c["repo"] == r["full_name"] and c["number"] == number]

    def environments(self, repo: str) -> list[dict[str, Any]]:
        with self._lock:
            r = self._repo_by_name(repo)
            return [self._render_environment(e) for (k, _), e in self._environments.items()
                    if k == r["full_name"].lower()]

    def pull(self, repo: str, number: int) -> dict[str, Any]:
        """The pull as GET /pulls/{number} renders it."""
        with self._lock:
            r = self._repo_by_name(repo)
            return self._render_pull(r, self._pull(r, number))

    def inject_failure(self, path: str = "", *, status: int = 502, count: int = 1, method: str | None = None,
                       retry_after: float | None = None, message: str | None = None) -> None:
        """The next `count` requests whose path (without the prefix) matches the regular expression `path`
        (and `method`) fail with `status`: 403/429 as a secondary rate limit, 5xx with GitHub's JSON error
        bodies, others with {"message": message}. `retry-after` (whole seconds) when retry_after is given."""
        with self._lock:
            self._failures.append(_Failure(status, count, re.compile(path), method.upper() if method else None,
                                           retry_after, message))

    def set_faults(self, seed: int | None, rate: float = 0.1,
                   kinds: tuple[str, ...] = ("5xx", "secondary")) -> FaultMode | None:
        """Seeded faults on (see FaultMode), or off with seed None; returns the FaultMode (its `counts`)."""
        self.faults = None if seed is None else FaultMode(seed, rate, kinds)
        return self.faults

    # -- request handling -----------------------------------------------------------------------------

    def _handle(self, h: _Handler, method: str) -> None:
        url = urlsplit(h.path)
        raw_path = url.path
        if self.prefix and raw_path.startswith(self.prefix + "/"):
            path = raw_path[len(self.prefix):]
        else:
            path = raw_path
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            raw_body = h.read_body()
        except (OSError, ValueError):
            h.close_connection = True
            return
        record = self._log_request(method, path, query, raw_body)
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000.0)
        try:
            reply = self._injected(method, path)
            if reply is not None:
                record.injected = True
            else:
                reply = self._dispatch(h, method, raw_path, path, url.query, raw_body, record.body)
        except Exception as e:  # noqa: BLE001 - a fake must answer 500 like a server, and record why
            self.errors.append(f"{method} {h.path}: {traceback.format_exc()}")
            reply = _Reply(500, GhError(500, f"internal error in the fake: {e}").payload())
        record.status = reply.status
        headers = self._common_headers()
        headers.update(reply.headers)
        reply.headers = headers
        if not record.injected:
            self._run_hooks(method, path)
        try:
            h.send(reply)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            h.close_connection = True

    def _common_headers(self) -> dict[str, str]:
        with self._lock:
            remaining = max(0, self.rate_limit_remaining)
            return {"x-github-api-version-selected": "2022-11-28", "x-github-media-type": "github.v3; format=json",
                    "x-github-request-id": _request_id(), "x-ratelimit-limit": str(self.rate_limit_limit),
                    "x-ratelimit-remaining": str(remaining), "x-ratelimit-reset": str(self.rate_limit_reset),
                    "x-ratelimit-used": str(max(0, self.rate_limit_limit - remaining)),
                    "x-ratelimit-resource": "core"}

    def _injected(self, method: str, path: str) -> _Reply | None:
        if self.down:
            return _server_error(503, "Service Unavailable")
        with self._lock:
            for f in self._failures:
                if f.remaining > 0 and (f.method is None or f.method == method) and f.path.search(path):
                    f.remaining -= 1
                    self._failures = [x for x in self._failures if x.remaining > 0]
                    retry_after = str(max(0, int(f.retry_after))) if f.retry_after is not None else None
                    if f.status in (403, 429):
                        return _secondary(f.status, retry_after, f.message)
                    if f.status >= 500:
                        return _server_error(f.status, f.message, retry_after)
                    reply = _Reply(f.status, GhError(f.status, f.message or f"injected failure {f.status}").payload())
                    if retry_after is not None:
                        reply.headers["retry-after"] = retry_after
                    return reply
        faults = self.faults
        return faults.for_request(method) if faults is not None else None

    def _violation(self, method: str, path: str, what: str) -> None:
        self.errors.append(f"spec violation: {method} {self.prefix}{path}: {what}")

    def _dispatch(self, h: _Handler, method: str, raw_path: str, path: str, raw_query: str, raw_body: bytes,
                  body: Any) -> _Reply:
        if self.prefix and not raw_path.startswith(self.prefix + "/"):
            self._violation(method, raw_path, f"not under {self.prefix}")
            return self._error_reply(None, GhError(404, "Not Found"))
        op, params, path_known = self.spec.match(method, path)
        try:
            self._authenticate(h)
        except GhError as e:
            return self._error_reply(op, e)
        if op is None:
            what = f"the description has no {method} operation on this path" if path_known else "no such path"
            self._violation(method, path, what)
            return self._error_reply(None, GhError(404, "Not Found"))
        query, violations, bad_path = self._check_request(op, params, raw_query, raw_body, body)
        for v in violations:
            self._violation(method, path, v)
        try:
            self._count_rate(op)
            if bad_path:  # GitHub routes /deployments/abc nowhere
                raise GhError(404, "Not Found", docs=op.docs)
            if op.operation_id != "rate-limit/get":
                with self._lock:
                    self._repo(params, op)
            self._require(op)
            if violations:
                if raw_body.strip() and isinstance(body, str):
                    raise GhError(400, "Problems parsing JSON", docs=op.docs)
                lines = [v.split(": ", 1)[1] if v.startswith("request body: ") else v for v in violations]
                raise GhError(422, "Invalid request.\n\n" + "\n".join(lines), docs=op.docs)
            handler = getattr(self, "_op_" + re.sub(r"[^a-z0-9]+", "_", op.operation_id))
            with self._lock:
                reply = handler(params, query, body, op)
        except GhError as e:
            return self._error_reply(op, e)
        pointer = self.spec.response_pointer(op, reply.status)
        if str(reply.status) not in (op.op.get("responses") or {}):
            self.errors.append(f"response of the fake violates the spec: {method} {path}: status {reply.status} "
                               "is not declared")
        elif pointer is not None:
            for p in self.spec.errors(pointer, reply.payload):
                self.errors.append(f"response of the fake violates the spec: {method} {path}: {p}")
        return reply

    def _error_reply(self, op: _Operation | None, error: GhError) -> _Reply:
        payload = error.payload()
        pointer = self.spec.response_pointer(op, error.status) if op is not None else None
        for p in self.spec.errors(pointer or "/components/schemas/basic-error", payload):
            self.errors.append(f"error answer of the fake violates the spec: {error}: {p}")
        return _Reply(error.status, payload, error.headers)

    def _check_request(self, op: _Operation, params: dict[str, str], raw_query: str, raw_body: bytes,
                       body: Any) -> tuple[dict[str, Any], list[str], bool]:
        """The query decoded by the spec's parameter types, every way the request violates the spec, and
        whether a path parameter is invalid (GitHub answers those 404)."""
        violations: list[str] = []
        query: dict[str, Any] = {}
        bad_path = False
        raw = dict(parse_qsl(raw_query, keep_blank_values=True))
        known = set()
        for name, param, pointer in self.spec.parameters(op):
            known.add(name)
            where = param["in"]
            schema = self.spec.resolve(param.get("schema") or {})
            if where == "path":
                value: Any = _coerce(params.get(name, ""), schema)
                params[name] = value
            elif where == "query":
                if name not in raw:
                    if param.get("required"):
                        violations.append(f"query parameter {name} is required")
                    continue
                value = _coerce(raw[name], schema)
                query[name] = value
            else:
                continue
            for e in self.spec.errors(pointer, value):
                violations.append(f"For '{name}', {e}." if where == "query" else f"path parameter {name}: {e}")
                bad_path = bad_path or where == "path"
        for name in raw:
            if name not in known:
                violations.append(f"query parameter {name} is not in the description")
        request_body = op.op.get("requestBody")
        if request_body is not None:
            if not raw_body.strip():
                if request_body.get("required"):
                    violations.append("the request body is required")
            elif isinstance(body, str):
                violations.append("the request body is not JSON")
            else:
                pointer = f"{op.pointer}/requestBody/content/application~1json/schema"
                for leaf in self.spec.raw_errors(pointer, body):
                    violations.append("request body: " + _describe(leaf))
        elif raw_body.strip():
            violations.append("the operation takes no request body")
        return query, list(dict.fromkeys(violations)), bad_path

    def _authenticate(self, h: _Handler) -> None:
        m = _AUTH.fullmatch((h.headers.get("Authorization") or "").strip())
        if not m or not secrets.compare_digest(m.group(2), self.token):
            raise GhError(401, "Bad credentials")

    def _count_rate(self, op: _Operation) -> None:
        if op.operation_id == "rate-limit/get":
            return  # GitHub: calling GET /rate_limit does not count against the limit
        with self._lock:
            if self.rate_limit_remaining <= 0:
                self.rate_limit_remaining = 0
                raise GhError(403, f"API rate limit exceeded for installation ID {self.installation_id}. If you "
                                   "reach out to GitHub Support for help, please include the request ID "
                                   f"{_request_id()} and timestamp {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC.",
                              docs="https://docs.github.com/rest/overview/rate-limits-for-the-rest-api")
            self.rate_limit_remaining -= 1

    def _granted(self, permission: str) -> bool:
        kind, _, level = permission.partition(":")
        return permission in self.permissions or (level == "read" and f"{kind}:write" in self.permissions)

    def _require(self, op: _Operation) -> None:
        needed = _PERMISSIONS[op.operation_id]
        if needed and not any(self._granted(p) for p in needed):
            accepted = "; ".join(p.replace("-", "_").replace(":", "=") for p in needed)
            raise GhError(403, "Resource not accessible by integration", docs=op.docs,
                          headers={"x-accepted-github-permissions": accepted})

    # -- lookups --------------------------------------------------------------------------------------

    def _repo_by_name(self, full_name: str) -> dict[str, Any]:
        repo = self._repos.get(full_name.lower())
        if repo is None:
            raise KeyError(f"no repository {full_name} (add_repo first)")
        return repo

    def _repo(self, params: dict[str, Any], op: _Operation | None = None) -> dict[str, Any]:
        repo = self._repos.get(f"{params['owner']}/{params['repo']}".lower())
        if repo is None:
            raise GhError(404, "Not Found", docs=op.docs if op else DOCS)
        return repo

    def _pull(self, repo: dict[str, Any], number: int, op: _Operation | None = None) -> dict[str, Any]:
        pull = self._pulls.get((repo["full_name"].lower(), number))
        if pull is None:
            if op is None:
                raise KeyError(f"no pull {repo['full_name']}#{number} (add_pull first)")
            raise GhError(404, "Not Found", docs=op.docs)
        return pull

    def _deployment(self, repo: dict[str, Any], deployment_id: int, op: _Operation) -> dict[str, Any]:
        d = self._deployments.get(deployment_id)
        if d is None or d["repo"] != repo["full_name"]:
            raise GhError(404, "Not Found", docs=op.docs)
        return d

    # -- rendering ------------------------------------------------------------------------------------

    def _user(self, login: str) -> dict[str, Any]:
        return user_object(login, api=self.url, web=self.web_url)

    def _repo_url(self, repo: dict[str, Any]) -> str:
        return f"{self.url}/repos/{repo['full_name']}"

    def _render_repo(self, repo: dict[str, Any]) -> dict[str, Any]:
        out = repository_object(repo["full_name"], api=self.url, web=self.web_url,
                                default_branch=repo["default_branch"], private=repo["private"],
                                created_at=repo["created_at"])
        out.update({
            "network_count": 0, "subscribers_count": 1, "temp_clone_token": "" if repo["private"] else None,
            "organization": out["owner"], "allow_squash_merge": True, "allow_merge_commit": True,
            "allow_rebase_merge": True, "allow_auto_merge": False, "delete_branch_on_merge": False,
            "allow_update_branch": False, "use_squash_pr_title_as_default": False,
            "squash_merge_commit_message": "COMMIT_MESSAGES", "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
            "merge_commit_message": "PR_TITLE", "merge_commit_title": "MERGE_MESSAGE",
            "permissions": {"admin": self._granted("administration:write"), "maintain": False,
                            "push": self._granted("contents:write"), "triage": False, "pull": True},
        })
        return out

    def _render_deployment(self, d: dict[str, Any]) -> dict[str, Any]:
        u = f"{self.url}/repos/{d['repo']}/deployments/{d['id']}"
        return {"url": u, "id": d["id"], "node_id": _node_id("DE", d["id"]), "sha": d["sha"], "ref": d["ref"],
                "task": d["task"], "payload": _copy(d["payload"]), "original_environment": d["original_environment"],
                "environment": d["environment"], "description": d["description"], "creator": self._user(d["creator"]),
                "created_at": d["created_at"], "updated_at": d["updated_at"], "statuses_url": f"{u}/statuses",
                "repository_url": f"{self.url}/repos/{d['repo']}", "transient_environment": d["transient_environment"],
                "production_environment": d["production_environment"], "performed_via_github_app": None}

    def _render_status(self, d: dict[str, Any], s: dict[str, Any]) -> dict[str, Any]:
        du = f"{self.url}/repos/{d['repo']}/deployments/{d['id']}"
        return {"url": f"{du}/statuses/{s['id']}", "id": s["id"], "node_id": _node_id("DES", s["id"]),
                "state": s["state"], "creator": self._user(s["creator"]), "description": s["description"],
                "environment": s["environment"], "target_url": s["log_url"], "log_url": s["log_url"],
                # Live: "" when unset, though the schema gives these the uri format
                "environment_url": s["environment_url"], "created_at": s["created_at"],
                "updated_at": s["created_at"], "deployment_url": du,
                "repository_url": f"{self.url}/repos/{d['repo']}", "performed_via_github_app": None}

    def _render_environment(self, e: dict[str, Any]) -> dict[str, Any]:
        rules: list[dict[str, Any]] = []
        if e["wait_timer"]:
            rid = _stable_id(f"{e['repo']}/{e['name']}/wait", 4_000_000)
            rules.append({"id": rid, "node_id": _node_id("GA", rid), "type": "wait_timer",
                          "wait_timer": e["wait_timer"]})
        if e["reviewers"]:
            rid = _stable_id(f"{e['repo']}/{e['name']}/reviewers", 4_000_000)
            reviewers = [{"type": r.get("type", "User"), "reviewer": self._user(f"user-{r.get('id')}")}
                         for r in e["reviewers"] if r.get("type", "User") == "User"]
            rules.append({"id": rid, "node_id": _node_id("GA", rid), "type": "required_reviewers",
                          "prevent_self_review": e["prevent_self_review"], "reviewers": reviewers})
        if e["branch_policy"] is not None:
            rid = _stable_id(f"{e['repo']}/{e['name']}/branch", 4_000_000)
            rules.append({"id": rid, "node_id": _node_id("GA", rid), "type": "branch_policy"})
        return {"id": e["id"], "node_id": _node_id("EN", e["id"]), "name": e["name"],
                "url": f"{self.url}/repos/{e['repo']}/environments/{quote(e['name'], safe='')}",
                "html_url": f"{self.web_url}/{e['repo']}/deployments/activity_log?environments_filter="
                            f"{quote(e['name'], safe='')}",
                "created_at": e["created_at"], "updated_at": e["updated_at"], "protection_rules": rules,
                "deployment_branch_policy": _copy(e["branch_policy"])}

    def _render_comment(self, c: dict[str, Any]) -> dict[str, Any]:
        issue = f"{self.url}/repos/{c['repo']}/issues/{c['number']}"
        u = f"{self.url}/repos/{c['repo']}/issues/comments/{c['id']}"
        owner = c["repo"].split("/", 1)[0]
        association = "NONE" if c["login"].endswith("[bot]") else ("OWNER" if c["login"] == owner else "CONTRIBUTOR")
        return {"id": c["id"], "node_id": _node_id("IC", c["id"]), "url": u,
                "html_url": f"{self.web_url}/{c['repo']}/pull/{c['number']}#issuecomment-{c['id']}",
                "body": c["body"], "user": self._user(c["login"]), "created_at": c["created_at"],
                "updated_at": c["updated_at"], "issue_url": issue, "author_association": association,
                "performed_via_github_app": None,
                "reactions": {"url": f"{u}/reactions", "total_count": 0, "+1": 0, "-1": 0, "laugh": 0,
                              "hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0}}

    def _render_pull(self, repo: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
        return pull_request_object(
            repo["full_name"], p["number"], p["head_sha"], api=self.url, web=self.web_url, head_ref=p["head_ref"],
            head_repo=p["head_repo"], base_ref=p["base_ref"], base_sha=repo["branches"].get(p["base_ref"]),
            state=p["state"], labels=p["labels"], title=p["title"], user=p["user"], merged=p["merged"],
            created_at=p["created_at"], updated_at=p["updated_at"], closed_at=p["closed_at"],
            default_branch=repo["default_branch"], private=repo["private"], draft=p["draft"])

    def _page(self, items: list[Any], query: dict[str, Any], path: str) -> tuple[list[Any], dict[str, str]]:
        """One page of `items` and the Link header GitHub sends with it (none for a single page)."""
        per_page = query.get("per_page", 30)
        per_page = 30 if not isinstance(per_page, int) or per_page < 1 else min(per_page, 100)
        page = query.get("page", 1)
        page = 1 if not isinstance(page, int) or page < 1 else page
        last = max(1, -(-len(items) // per_page))
        chosen = items[(page - 1) * per_page: page * per_page]
        if last == 1:
            return chosen, {}
        raw = dict(query)

        def link(n: int, rel: str) -> str:
            raw["page"] = n
            return f'<{self.url}{path}?{urlencode(raw)}>; rel="{rel}"'

        links = []
        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links.append(link(page + 1, "next"))
            links.append(link(last, "last"))
        if page > 1:
            links.append(link(1, "first"))
        return chosen, {"Link": ", ".join(links)} if links else {}

    # -- operations: rate limit and repository --------------------------------------------------------

    def _op_rate_limit_get(self, params: dict[str, Any], query: dict[str, Any], body: Any, op: _Operation) -> _Reply:
        remaining = max(0, self.rate_limit_remaining)
        core = {"limit": self.rate_limit_limit, "remaining": remaining, "reset": self.rate_limit_reset,
                "used": self.rate_limit_limit - remaining, "resource": "core"}
        reset = int(time.time()) + 60

        def fresh(limit: int, resource: str) -> dict[str, Any]:
            return {"limit": limit, "remaining": limit, "reset": reset, "used": 0, "resource": resource}

        resources = {"core": core, "search": fresh(30, "search"), "graphql": fresh(5000, "graphql"),
                     "code_search": fresh(10, "code_search"),
                     "integration_manifest": fresh(5000, "integration_manifest")}
        return _Reply(200, {"resources": resources, "rate": dict(core)})

    def _op_repos_get(self, params: dict[str, Any], query: dict[str, Any], body: Any, op: _Operation) -> _Reply:
        return _Reply(200, self._render_repo(self._repo(params, op)))

    # -- operations: deployments ----------------------------------------------------------------------

    def _op_repos_list_deployments(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                   op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        items = [d for d in self._deployments.values() if d["repo"] == repo["full_name"]]
        for key in ("environment", "ref", "sha", "task"):
            if key in query:
                items = [d for d in items if d[key] == query[key]]
        items.sort(key=lambda d: -d["id"])  # newest first, as GitHub lists them
        chosen, headers = self._page(items, query, f"/repos/{repo['full_name']}/deployments")
        return _Reply(200, [self._render_deployment(d) for d in chosen], headers)

    def _resolve_ref(self, repo: dict[str, Any], ref: str, op: _Operation) -> str:
        if _SHA.fullmatch(ref):
            return ref
        name = ref.removeprefix("refs/heads/")
        if name in repo["branches"]:
            return str(repo["branches"][name])
        raise GhError(422, f"No ref found for: {ref}", docs=op.docs)

    def _ensure_environment(self, repo: dict[str, Any], name: str) -> dict[str, Any]:
        key = (repo["full_name"].lower(), name)
        env = self._environments.get(key)
        if env is None:
            now = _now()
            env = {"id": self._next_environment, "repo": repo["full_name"], "name": name, "created_at": now,
                   "updated_at": now, "wait_timer": 0, "reviewers": [], "prevent_self_review": False,
                   "branch_policy": None}
            self._next_environment += 1
            self._environments[key] = env
        return env

    def _op_repos_create_deployment(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                    op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        ref = str(body["ref"])
        sha = self._resolve_ref(repo, ref, op)
        default = repo["default_branch"]
        if body.get("auto_merge", True) and ref not in (default, f"refs/heads/{default}") \
                and sha != repo["branches"].get(default):
            # The fake has no commit graph: merging the default branch into any other ref "conflicts"
            # (unconfirmed wording beyond GitHub's "Conflict merging <base> into <head>.").
            raise GhError(409, f"Conflict merging {default} into {ref}.", docs=op.docs)
        payload = body.get("payload", {})
        if isinstance(payload, str):
            try:
                payload = json.loads(payload) if payload.strip() else {}
            except ValueError:
                raise GhError(422, "Invalid request.\n\npayload is not valid JSON.", docs=op.docs) from None
            if not isinstance(payload, dict):
                raise GhError(422, "Invalid request.\n\npayload is not a JSON object.", docs=op.docs)
        environment = str(body.get("environment", "production"))
        now = _now()
        d = {"id": self._next_deployment, "repo": repo["full_name"], "sha": sha, "ref": ref,
             "task": body.get("task", "deploy"), "payload": _copy(payload), "original_environment": environment,
             "environment": environment, "description": body.get("description", ""), "creator": self.login,
             "created_at": now, "updated_at": now,
             "transient_environment": bool(body.get("transient_environment", False)),
             "production_environment": bool(body.get("production_environment", environment == "production")),
             "statuses": []}
        self._next_deployment += 1
        self._deployments[d["id"]] = d
        self._ensure_environment(repo, environment)
        return _Reply(201, self._render_deployment(d))

    def _op_repos_get_deployment(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                 op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        return _Reply(200, self._render_deployment(self._deployment(repo, params["deployment_id"], op)))

    def _op_repos_delete_deployment(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                    op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        d = self._deployment(repo, params["deployment_id"], op)
        inactive = bool(d["statuses"]) and d["statuses"][-1]["state"] == "inactive"
        alone = not any(o is not d and o["repo"] == d["repo"] and o["environment"] == d["environment"]
                        for o in self._deployments.values())
        if not inactive and not alone:
            raise GhError(422, "We cannot delete an active deployment unless it is the only deployment in a given "
                               "environment.", docs=op.docs)
        del self._deployments[d["id"]]
        return _Reply(204, None)

    def _op_repos_list_deployment_statuses(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                           op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        d = self._deployment(repo, params["deployment_id"], op)
        chosen, headers = self._page(list(reversed(d["statuses"])), query,
                                     f"/repos/{repo['full_name']}/deployments/{d['id']}/statuses")
        return _Reply(200, [self._render_status(d, s) for s in chosen], headers)

    def _add_status(self, d: dict[str, Any], state: str, *, description: str = "", environment: str | None = None,
                    environment_url: str = "", log_url: str = "") -> dict[str, Any]:
        now = _now()
        s = {"id": self._next_status, "state": state, "creator": self.login, "description": description,
             "environment": environment or d["environment"], "environment_url": environment_url,
             "log_url": log_url, "created_at": now}
        self._next_status += 1
        d["statuses"].append(s)
        d["updated_at"] = now
        return s

    def _op_repos_create_deployment_status(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                           op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        d = self._deployment(repo, params["deployment_id"], op)
        description = str(body.get("description", ""))
        if len(description) > 140:
            # unconfirmed wording; the limit is documented
            raise GhError(422, "Validation Failed", docs=op.docs, errors=[
                {"resource": "DeploymentStatus", "code": "custom", "field": "description",
                 "message": "description is too long (maximum is 140 characters)"}])
        previous = d["statuses"][-1]["environment"] if d["statuses"] else d["environment"]
        environment = str(body.get("environment") or previous)
        if environment != d["environment"]:
            d["environment"] = environment
            self._ensure_environment(repo, environment)
        log_url = str(body.get("log_url") or body.get("target_url") or "")
        s = self._add_status(d, body["state"], description=description, environment=environment,
                             environment_url=str(body.get("environment_url", "")), log_url=log_url)
        if body["state"] == "success" and body.get("auto_inactive", True):
            for other in self._deployments.values():
                if (other["id"] < d["id"] and other["repo"] == d["repo"] and other["environment"] == environment
                        and not other["transient_environment"] and not other["production_environment"]
                        and other["statuses"] and other["statuses"][-1]["state"] == "success"):
                    self._add_status(other, "inactive", environment=environment,
                                     environment_url=other["statuses"][-1]["environment_url"])
        rendered = self._render_status(d, s)
        return _Reply(201, rendered, {"Location": rendered["url"]})

    # -- operations: environments ---------------------------------------------------------------------

    def _environment(self, repo: dict[str, Any], name: str, op: _Operation) -> dict[str, Any]:
        env = self._environments.get((repo["full_name"].lower(), name))
        if env is None:
            raise GhError(404, "Not Found", docs=op.docs)
        return env

    def _op_repos_get_all_environments(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                       op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        items = [e for (k, _), e in self._environments.items() if k == repo["full_name"].lower()]
        chosen, headers = self._page(items, query, f"/repos/{repo['full_name']}/environments")
        return _Reply(200, {"total_count": len(items), "environments": [self._render_environment(e) for e in chosen]},
                      headers)

    def _op_repos_get_environment(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                  op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        return _Reply(200, self._render_environment(self._environment(repo, params["environment_name"], op)))

    def _op_repos_create_or_update_environment(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                               op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        name = str(params["environment_name"])
        body = body or {}
        if not name.strip() or len(name) > 255:
            raise GhError(422, "Environment name is invalid", docs=op.docs)  # unconfirmed wording
        policy = body.get("deployment_branch_policy")
        if policy is not None and policy.get("protected_branches") == policy.get("custom_branch_policies"):
            # unconfirmed wording; the spec documents the 422
            raise GhError(422, "Only one of protected_branches or custom_branch_policies can be true", docs=op.docs)
        env = self._ensure_environment(repo, name)
        env["updated_at"] = _now()
        if "wait_timer" in body:
            env["wait_timer"] = int(body["wait_timer"] or 0)
        if "reviewers" in body:
            env["reviewers"] = _copy(body["reviewers"] or [])
        if "prevent_self_review" in body:
            env["prevent_self_review"] = bool(body["prevent_self_review"])
        if "deployment_branch_policy" in body:
            env["branch_policy"] = _copy(policy)
        return _Reply(200, self._render_environment(env))

    def _op_repos_delete_an_environment(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                        op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        env = self._environment(repo, str(params["environment_name"]), op)
        del self._environments[(repo["full_name"].lower(), env["name"])]
        return _Reply(204, None)

    # -- operations: comments and labels --------------------------------------------------------------

    def _new_comment(self, repo: dict[str, Any], number: int, body: str, login: str) -> dict[str, Any]:
        now = _now()
        c = {"id": self._next_comment, "repo": repo["full_name"], "number": number, "body": body, "login": login,
             "created_at": now, "updated_at": now}
        self._next_comment += 1
        self._comments[c["id"]] = c
        return c

    def _comment(self, repo: dict[str, Any], comment_id: int, op: _Operation) -> dict[str, Any]:
        c = self._comments.get(comment_id)
        if c is None or c["repo"] != repo["full_name"]:
            raise GhError(404, "Not Found", docs=op.docs)
        return c

    def _op_issues_list_comments(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                 op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        number = params["issue_number"]
        self._pull(repo, number, op)
        items = [c for c in self._comments.values() if c["repo"] == repo["full_name"] and c["number"] == number]
        if "since" in query:
            items = [c for c in items if c["updated_at"] >= str(query["since"])]
        chosen, headers = self._page(items, query, f"/repos/{repo['full_name']}/issues/{number}/comments")
        return _Reply(200, [self._render_comment(c) for c in chosen], headers)

    def _op_issues_create_comment(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                  op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        self._pull(repo, params["issue_number"], op)
        text = str(body["body"])
        if len(text) > 65536:
            raise GhError(422, "Validation Failed", docs=op.docs, errors=[
                {"resource": "IssueComment", "code": "unprocessable", "field": "data",
                 "message": "Body is too long (maximum is 65536 characters)"}])
        rendered = self._render_comment(self._new_comment(repo, params["issue_number"], text, self.login))
        return _Reply(201, rendered, {"Location": rendered["url"]})

    def _op_issues_update_comment(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                  op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        c = self._comment(repo, params["comment_id"], op)
        c["body"] = str(body["body"])
        c["updated_at"] = _now()
        return _Reply(200, self._render_comment(c))

    def _op_issues_delete_comment(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                  op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        c = self._comment(repo, params["comment_id"], op)
        del self._comments[c["id"]]
        return _Reply(204, None)

    def _op_issues_remove_label(self, params: dict[str, Any], query: dict[str, Any], body: Any,
                                op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        pull = self._pull(repo, params["issue_number"], op)
        name = str(params["name"])
        match = next((label for label in pull["labels"] if label.lower() == name.lower()), None)
        if match is None:
            raise GhError(404, "Label does not exist", docs=op.docs)
        pull["labels"].remove(match)
        pull["updated_at"] = _now()
        return _Reply(200, [label_object(repo["full_name"], label, api=self.url) for label in pull["labels"]])

    # -- operations: pulls ----------------------------------------------------------------------------

    def _op_pulls_list(self, params: dict[str, Any], query: dict[str, Any], body: Any, op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        state = query.get("state", "open")
        items = [p for (k, _), p in self._pulls.items()
                 if k == repo["full_name"].lower() and (state == "all" or p["state"] == state)]
        if "base" in query:
            items = [p for p in items if p["base_ref"] == query["base"]]
        if "head" in query:
            owner, _, ref = str(query["head"]).partition(":")
            items = [p for p in items if p["head_repo"].split("/")[0].lower() == owner.lower()
                     and (not ref or p["head_ref"] == ref)]
        sort = query.get("sort", "created")
        key = "updated_at" if sort == "updated" else "created_at"
        descending = query.get("direction", "desc" if sort == "created" else "asc") == "desc"
        items.sort(key=lambda p: (p[key], p["number"]), reverse=descending)
        chosen, headers = self._page(items, query, f"/repos/{repo['full_name']}/pulls")
        simple_keys = set(self.spec.resolve({"$ref": "#/components/schemas/pull-request-simple"})["properties"])
        rendered = [{k: v for k, v in self._render_pull(repo, p).items() if k in simple_keys} for p in chosen]
        return _Reply(200, rendered, headers)

    def _op_pulls_get(self, params: dict[str, Any], query: dict[str, Any], body: Any, op: _Operation) -> _Reply:
        repo = self._repo(params, op)
        return _Reply(200, self._render_pull(repo, self._pull(repo, params["pull_number"], op)))


# ------------------------------------------------------------------------------------------------
# script
# ------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.github_api",
                                     description="Run the fake GitHub REST API (prints its URL and token).")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: an ephemeral one)")
    parser.add_argument("--prefix", default="", help='"" (api.github.com style, default) or "/api/v3" (GHES)')
    parser.add_argument("--latency-ms", type=float, default=0.0, help="sleep before answering each request")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="exit after this long (default 600)")
    parser.add_argument("--token", default=None, help="the token clients must send (default: random)")
    parser.add_argument("--repo", action="append", default=[], help="add this repository (repeatable)")
    args = parser.parse_args(argv)
    fake = FakeGitHub.start(args.latency_ms, port=args.port, token=args.token, prefix=args.prefix)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        for repo in args.repo:
            fake.add_repo(repo)
        print(fake.url, flush=True)
        print(fake.token, flush=True)
        stop.wait(args.max_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
