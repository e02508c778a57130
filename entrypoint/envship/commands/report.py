"""A deploy as GitHub sees it: a deployment, `in_progress` while it runs, then `success` (environment URL,
run URL) or `failure`; earlier active deployments of the environment retired. GitHub is told, never
asked: a GitHub failure is a warning and never fails a deploy that succeeded on the cluster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..adapters import runtime
from ..adapters.console import Console
from ..core import deployments
from ..core.deployments import DeploymentRequest, Outcome
from ..errors import EnvshipError, Problem

if TYPE_CHECKING:
    from ..adapters.github import GitHub
    from ..core.render import Rendering


class DeploymentReport:
    def __init__(self, github: GitHub | None, request: DeploymentRequest | None, console: Console,
                 log_url: str) -> None:
        self.github = github
        self.request = request
        self.console = console
        self.log_url = log_url
        self.deployment_id: int | None = None

    @classmethod
    def for_rendering(cls, rendering: Rendering, console: Console, environ: Mapping[str, str]) -> DeploymentReport:
        from ..adapters.github import GitHub

        token = environ.get("GITHUB_TOKEN", "") or runtime.read_input(environ, "github-token")
        console.mask([token])
        github = GitHub.from_environ(environ, token)
        release, target = rendering.release, rendering.target
        request = None
        if github is not None and release.git_sha:
            request = deployments.deployment_request(
                app=rendering.app, environment=target.name, namespace=target.namespace, pr=target.pr,
                protected=target.environment.protected, image=release.image, digest=release.digest,
                git_sha=release.git_sha, run_url=release.run_url, promoted_from=release.promoted_from)
        elif github is not None:
            console.info("note: no GitHub deployment: GITHUB_SHA is not set")
        return cls(github if request else None, request, console, runtime.run_url(environ))

    def start(self) -> None:
        if self.github is None or self.request is None:
            return
        try:
            self.deployment_id = self.github.create_deployment(self.request)
            self.github.set_status(self.deployment_id, "in_progress", log_url=self.log_url,
                                   description="envship: applying and waiting for the rollout")
        except EnvshipError as e:
            self.warn(e, "GitHub deployment not created")
            self.github = None
            return
        self.console.set_output("deployment-id", str(self.deployment_id))

    def finish(self, outcome: Outcome) -> None:
        if self.github is None or self.request is None or self.deployment_id is None:
            return
        state = "success" if outcome.ok else "failure"
        try:
            self.github.set_status(self.deployment_id, state, environment_url=outcome.url if outcome.ok else "",
                                   log_url=self.log_url, description=deployments.status_description(outcome))
            if outcome.ok and (self.request.production or self.request.transient):   # (others: auto_inactive)
                priors = self.github.priors(self.request.environment, skip=self.deployment_id)
                for old in deployments.to_retire(self.request, self.deployment_id, priors):
                    self.github.set_status(old, "inactive", description="envship: superseded",
                                           auto_inactive=False)
        except EnvshipError as e:
            self.warn(e, f"GitHub deployment {self.deployment_id} not marked {state}")

    def warn(self, error: EnvshipError, what: str) -> None:
        problem = error.problems[0]
        self.console.warn(Problem(f"{what}: {problem.message} (the deploy itself is not affected)", None,
                                  problem.hint))

    def close(self) -> None:
        if self.github is not None:
            self.github.close()
