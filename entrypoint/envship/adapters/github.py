"""GitHub REST through PyGithub: the only code that talks to GitHub (GITHUB_API_URL, so GHES and tests
work). Retries as PyGithub's GithubRetry does (secondary rate limits honouring Retry-After, 5xx with
back-off), bounded so that a GitHub outage costs a deploy seconds, not minutes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.deployments import DeploymentRequest, Prior
from ..errors import OperationError

if TYPE_CHECKING:
    from github.Repository import Repository

DEFAULT_URL = "https://api.github.com"
TIMEOUT = 15
PRIORS = 20   # earlier deployments looked at when retiring: the newest ones


class GitHubError(OperationError):
    """A GitHub request failed; `status` is the HTTP status (0 without an answer)."""

    def __init__(self, message: str, hint: str = "", status: int = 0) -> None:
        super().__init__(message, hint)
        self.status = status


class GitHub:
    def __init__(self, token: str, repository: str, url: str = DEFAULT_URL, retries: int = 3) -> None:
        from github import Auth, Github, GithubRetry

        self.repository = repository
        # lazy: objects are fetched when read, so posting to a deployment or a pull request costs no GET;
        # a few writes per run, spaced a little (GitHub asks to space content-creating requests)
        self.client = Github(base_url=url.rstrip("/"), auth=Auth.Token(token), timeout=TIMEOUT, per_page=100,
                             retry=GithubRetry(total=retries, backoff_factor=0.5, backoff_max=8,
                                               secondary_rate_wait=10, max_rate_limit_wait=10),
                             lazy=True, seconds_between_requests=None, seconds_between_writes=0.2)
        self._repo: Repository | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], token: str = "") -> GitHub | None:
        """None when the run has no token or no repository (a deploy from a laptop reports nowhere)."""
        token = (token or environ.get("GITHUB_TOKEN", "")).strip()
        repository = environ.get("GITHUB_REPOSITORY", "").strip()
        if not token or "/" not in repository:
            return None
        return cls(token, repository, environ.get("GITHUB_API_URL", "") or DEFAULT_URL)

    def close(self) -> None:
        self.client.close()

    @property
    def repo(self) -> Repository:
        if self._repo is None:
            self._repo = self.client.get_repo(self.repository)   # lazy (the client is): no GET
        return self._repo

    def create_deployment(self, request: DeploymentRequest) -> int:
        def create() -> Any:
            return self.repo.create_deployment(
                ref=request.ref, task="deploy", auto_merge=request.auto_merge,
                required_contexts=list(request.required_contexts), payload=request.payload,
                environment=request.environment, description=request.description,
                transient_environment=request.transient, production_environment=request.production)
        return int(self.call("create a deployment", create).id)

    def set_status(self, deployment_id: int, state: str, *, environment_url: str = "", log_url: str = "",
                   description: str = "", auto_inactive: bool = True) -> None:
        """POST .../deployments/{id}/statuses through PyGithub's requester: its Deployment.create_status
        knows only the deprecated target_url, not log_url."""
        body: dict[str, Any] = {"state": state, "auto_inactive": auto_inactive}
        if environment_url:
            body["environment_url"] = environment_url
        if log_url:
            body["log_url"] = log_url
        if description:
            body["description"] = description
        url = f"{self.repo.url}/deployments/{deployment_id}/statuses"
        self.call(f"set deployment {deployment_id} {state}",
                  lambda: self.repo.requester.requestJsonAndCheck("POST", url, input=body))

    def priors(self, environment: str, skip: int | None = None) -> list[Prior]:
        """The newest deployments of `environment` with their latest state (one request each), newest first,
        up to the first inactive one: envship retires every active one at each success, so what lies behind
        an inactive deployment was retired before (at most PRIORS are read)."""
        def read() -> list[Prior]:
            found: list[Prior] = []
            deployments: Any = self.repo.get_deployments(environment=environment)
            for deployment in deployments[:PRIORS]:
                if int(deployment.id) == skip:
                    continue
                latest = next(iter(deployment.get_statuses()[:1]), None)
                found.append(Prior(int(deployment.id), str(latest.state) if latest else ""))
                if found[-1].state == "inactive":
                    break
            return found
        return list(self.call(f"list the deployments of {environment}", read))

    def latest(self, environment: str) -> dict[str, Any] | None:
        """The newest deployment of `environment`: id, payload, and its latest status's state."""
        def read() -> dict[str, Any] | None:
            deployments: Any = self.repo.get_deployments(environment=environment)
            newest = next(iter(deployments[:1]), None)
            if newest is None:
                return None
            status = next(iter(newest.get_statuses()[:1]), None)
            payload = newest.payload if isinstance(newest.payload, dict) else {}
            return {"id": int(newest.id), "payload": payload, "state": str(status.state) if status else "none",
                    "sha": str(newest.sha)}
        result: dict[str, Any] | None = self.call(f"read the deployments of {environment}", read)
        return result

    # -- previews ---------------------------------------------------------------------------------------
    def pull(self, number: int) -> dict[str, Any] | None:
        """state, head sha, updated_at of a pull request; None when it does not exist."""
        from github import UnknownObjectException

        def read() -> dict[str, Any] | None:
            try:
                pull = self.repo.get_pull(number)
                return {"state": str(pull.state), "head_sha": str(pull.head.sha), "updated_at": pull.updated_at}
            except UnknownObjectException:
                return None
        result: dict[str, Any] | None = self.call(f"read pull request #{number}", read)
        return result

    def comments(self, number: int) -> list[dict[str, Any]]:
        """The pull request's comments: id, body and author login."""
        def read() -> list[dict[str, Any]]:
            return [{"id": int(c.id), "body": str(c.body or ""), "login": str(c.user.login if c.user else "")}
                    for c in self.repo.get_issue(number).get_comments()]
        return list(self.call(f"read the comments of #{number}", read))

    def create_comment(self, number: int, body: str) -> int:
        return int(self.call(f"comment on #{number}", lambda: self.repo.get_issue(number).create_comment(body)).id)

    def update_comment(self, comment_id: int, body: str) -> None:
        url = f"{self.repo.url}/issues/comments/{comment_id}"
        self.call(f"edit comment {comment_id}",
                  lambda: self.repo.requester.requestJsonAndCheck("PATCH", url, input={"body": body}))

    def retire(self, environment: str) -> int:
        """Mark every active deployment of `environment` inactive; how many were."""
        priors = self.priors(environment)
        active = [p.id for p in priors if p.state in ("success", "in_progress", "queued", "pending")]
        for deployment_id in active:
            self.set_status(deployment_id, "inactive", description="envship: environment removed",
                            auto_inactive=False)
        return len(active)

    def delete_environment(self, name: str) -> bool:
        """Delete a GitHub environment; False when the token may not (administration: write)."""
        try:
            self.call(f"delete the environment {name}", lambda: self.repo.delete_environment(name))
        except GitHubError as e:
            if e.status == 404:
                return True
            if e.status == 403:
                return False
            raise
        return True

    def call(self, what: str, action: Any) -> Any:
        from github import GithubException

        try:
            return action()
        except GithubException as e:
            message = (e.data or {}).get("message", "") if isinstance(e.data, dict) else ""
            raise GitHubError(f"GitHub refused to {what}: HTTP {e.status} {message}".strip(),
                              _hint(e.status, e.headers or {}), e.status) from e
        except OSError as e:   # requests' connection errors are OSErrors
            raise GitHubError(f"GitHub could not be reached to {what}: {type(e).__name__}",
                              "check GITHUB_API_URL and the network") from e


def _hint(status: int, headers: Mapping[str, str]) -> str:
    if status == 401:
        return "the token is invalid or expired: check the action's input 'github-token'"
    if status == 403 and headers.get("x-ratelimit-remaining") == "0":
        return "GitHub's rate limit is exhausted for this token; it resets within the hour"
    if status in (403, 404):
        needed = headers.get("x-accepted-github-permissions", "")
        return (f"the token lacks a permission ({needed}); " if needed else "the token lacks a permission; ") + \
            "give the job 'permissions: deployments: write' (and 'pull-requests: write' for previews)"
    return "GitHub had a problem; the deploy itself is not affected"
