"""`envship preview --image REF [--event PATH] [--allow-forks]` (action `command: preview`, on
pull_request): deploy, update or tear down the pull request's preview environment, and keep one sticky
comment on the pull request saying where it is and in which state. `envship gc` removes previews whose
pull request closed or that sat idle longer than their ttl."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..adapters import files, runtime
from ..adapters.console import Console
from ..core import preview as rules
from ..core.config import Config, Environment
from ..core.deployments import github_environment
from ..core.render import resolve_target
from ..errors import EnvshipError, OperationError, Problem, UsageError
from . import deploy, teardown
from .render import RenderOptions, pick_environment

if TYPE_CHECKING:
    from ..adapters.github import GitHub

MAX_EVENT = 25 * 2**20   # GitHub's webhook payload limit
DEFAULT_LOGIN = "github-actions[bot]"


@dataclass(frozen=True)
class PreviewOptions:
    config: str
    image: str
    event: str = ""
    allow_forks: bool = False
    env: str | None = None
    values: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, bool | float | int] = field(default_factory=dict)


def preview_environment(config: Config, name: str | None) -> Environment:
    if name:
        environment = pick_environment(config, name)
        if not environment.preview:
            raise UsageError(f"environment '{name}' is not a preview environment", "name one with 'preview: true'")
        return environment
    previews = [e for e in config.environments.values() if e.preview]
    if len(previews) != 1:
        raise UsageError(f"the config has {len(previews)} preview environments; envship preview needs one",
                         "add one with 'preview: true'" if not previews else "choose one with {--env}")
    return previews[0]


def read_event(path: str) -> rules.PullRequestEvent:
    if not path:
        raise UsageError("no pull_request event: GITHUB_EVENT_PATH is not set",
                         "run in a workflow triggered by pull_request, or pass {--event} PATH")
    try:
        data = json.loads(files.read_bounded(Path(path), MAX_EVENT, path, "the event file"))
    except OSError as e:
        raise UsageError(f"cannot read the event file {path}: {e.strerror}", "check {--event}") from e
    except ValueError as e:
        raise UsageError(f"the event file {path} is not JSON", "pass the pull_request payload") from e
    return rules.parse_event(data, path)


class StickyComment:
    """One comment per preview, found by its hidden marker among the comments envship's account wrote,
    edited in place; never a second one. GitHub failures are warnings."""

    def __init__(self, github: GitHub | None, app: str, environment: str, pr: int, login: str,
                 console: Console) -> None:
        self.github, self.pr, self.login, self.console = github, pr, login, console
        self.app = app
        self.mark = rules.marker(app, environment, pr)

    def write(self, state: rules.CommentState) -> None:
        if self.github is None:
            return
        body = rules.comment_body(self.mark, self.app, state)
        try:
            ours = [c for c in self.github.comments(self.pr) if c["login"] == self.login and self.mark in c["body"]]
            if ours:
                if ours[0]["body"] != body:
                    self.github.update_comment(ours[0]["id"], body)
            else:
                self.github.create_comment(self.pr, body)
        except EnvshipError as e:
            self.console.warn(Problem(f"the preview comment on #{self.pr} was not written: "
                                      f"{e.problems[0].message}", None, e.problems[0].hint))


def run(opts: PreviewOptions, console: Console, environ: Mapping[str, str]) -> int:
    event = read_event(opts.event or environ.get("GITHUB_EVENT_PATH", ""))
    config = files.read_config(opts.config)
    environment = preview_environment(config, opts.env)
    step = rules.step_for(event, environment, opts.allow_forks)
    console.info(f"preview of pull request #{event.number}: {step.what} ({step.why})")
    if step.what == "skip":
        console.summary(f"### envship preview: #{event.number} skipped\n\n{step.why}\n")
        return 0
    github = github_for(console, environ)
    comment = StickyComment(github, config.app, environment.name, event.number,
                            environ.get("ENVSHIP_GITHUB_LOGIN", "") or DEFAULT_LOGIN, console)
    try:
        if step.what == "teardown":
            return remove(config, environment, event.number, console, environ, github, comment)
        return deploy_preview(opts, config, environment, event, console, environ, comment)
    finally:
        if github is not None:
            github.close()


def github_for(console: Console, environ: Mapping[str, str]) -> GitHub | None:
    from ..adapters.github import GitHub

    token = environ.get("GITHUB_TOKEN", "") or runtime.read_input(environ, "github-token")
    console.mask([token])
    return GitHub.from_environ(environ, token)


def deploy_preview(opts: PreviewOptions, config: Config, environment: Environment, event: rules.PullRequestEvent,
                   console: Console, environ: Mapping[str, str], comment: StickyComment) -> int:
    if not opts.image:
        raise UsageError(f"no image to deploy the preview of #{event.number} with",
                         "pass {--image} REPO@sha256:D, the pull request's build (only a closing event needs none)")
    target = resolve_target(environment, event.number)
    if environment.max is not None:
        others = [p for p in previews_on_cluster(config, environment, environ, console) if p.pr != event.number]
        if len(others) >= environment.max:
            numbers = ", ".join(f"#{p.pr}" for p in others)
            note = (f"{len(others)} previews are running ({numbers}), the most `max: {environment.max}` allows; "
                    "close a pull request or wait for `envship gc`, then push again.")
            comment.write(rules.CommentState("refused", note=note))
            raise OperationError(f"no preview for #{event.number}: {len(others)} previews run already, the most "
                                 f"'max: {environment.max}' of environment '{environment.name}' allows",
                                 "close pull requests whose previews are no longer needed, or raise max")
    render = RenderOptions(config=opts.config, env=environment.name, image=opts.image, pr=event.number,
                           values=opts.values, secrets=opts.secrets)
    # the deployment's ref and the release's commit are the pull request's head, not the merge commit
    head_environ = {**environ, "GITHUB_SHA": event.head_sha}
    url = f"https://{target.host}" if target.host else ""
    run_url = runtime.run_url(environ)
    try:
        code = deploy.run(deploy.DeployOptions.from_values(render, opts.settings), console, head_environ)
    except EnvshipError:
        comment.write(rules.CommentState("failed", commit=event.head_sha, run_url=run_url,
                                         note="The deploy failed: see the run's log."))
        raise
    now = datetime.now(UTC)
    state = "deployed" if code == 0 else "failed"
    comment.write(rules.CommentState(state, url=url if code == 0 else "", digest=opts.image.rpartition("@")[2],
                                     commit=event.head_sha, expires=rules.expiry(now, environment.ttl),
                                     run_url=run_url))
    return code


def remove(config: Config, environment: Environment, pr: int, console: Console, environ: Mapping[str, str],
           github: GitHub | None, comment: StickyComment | None, why: str = "") -> int:
    teardown.run(teardown.TeardownOptions(config.file, environment.name, pr), console, environ)
    note = retire_on_github(github, environment.name, pr, console)
    if comment is not None:
        comment.write(rules.CommentState("removed", note=" ".join(x for x in (why, note) if x)))
    return 0


def retire_on_github(github: GitHub | None, environment: str, pr: int, console: Console) -> str:
    """The preview's GitHub deployments inactive, its GitHub environment deleted when the token may."""
    if github is None:
        return ""
    name = github_environment(environment, pr)
    try:
        github.retire(name)
        if github.delete_environment(name):
            return ""
    except EnvshipError as e:
        console.warn(Problem(f"GitHub environment {name} not cleaned up: {e.problems[0].message}", None,
                             e.problems[0].hint))
        return ""
    note = (f"The GitHub environment `{name}` stays (its deployments are inactive): deleting it needs a token "
            "with `administration: write`, which the workflow's GITHUB_TOKEN cannot have; pass a GitHub App or "
            "fine-grained token with it as `github-token` to let envship delete it.")
    console.info(f"note: {note}")
    return note


def previews_on_cluster(config: Config, environment: Environment, environ: Mapping[str, str],
                        console: Console) -> list[rules.LivePreview]:
    from ..adapters.kube import Kube, credentials
    from ..engine.previews import live_previews

    connection = credentials.connect(environment, environ)
    console.mask(connection.secrets)
    kube = Kube(connection, trace=console.detail)
    try:
        return live_previews(kube, config.app, environment.name, environ.get("GITHUB_REPOSITORY", ""))
    finally:
        kube.close()


def gc(config_path: str, env: str | None, dry_run: bool, console: Console, environ: Mapping[str, str]) -> int:
    """Remove previews whose pull request is closed (or gone) or that sat idle longer than their ttl."""
    config = files.read_config(config_path)
    environments = [preview_environment(config, env)] if env else \
        [e for e in config.environments.values() if e.preview]
    github = github_for(console, environ)
    if github is None:
        console.warn(Problem("no GitHub token or repository: pull request states are unknown, only idle "
                             "previews (ttl) are removed", None, "set GITHUB_TOKEN and GITHUB_REPOSITORY"))
    now = datetime.now(UTC)
    removed = 0
    try:
        for environment in environments:
            for live in previews_on_cluster(config, environment, environ, console):
                state = github.pull(live.pr) if github is not None else {"state": "open"}
                reason = rules.gc_reason(live, state, environment.ttl, now)
                if not reason:
                    console.info(f"  keep #{live.pr} ({live.namespace})")
                    continue
                if dry_run:
                    console.result(f"would remove #{live.pr} ({live.namespace}): {reason}\n")
                    continue
                console.info(f"  remove #{live.pr} ({live.namespace}): {reason}")
                comment = StickyComment(github, config.app, environment.name, live.pr,
                                        environ.get("ENVSHIP_GITHUB_LOGIN", "") or DEFAULT_LOGIN, console)
                remove(config, environment, live.pr, console, environ, github, comment,
                       why=f"Removed by envship gc: {reason}.")
                removed += 1
    finally:
        if github is not None:
            github.close()
    console.info(f"gc: {removed} preview(s) removed" + (" (dry run: none)" if dry_run else ""))
    return 0
