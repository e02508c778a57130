"""The GitHub Action: action.yml inputs -> the same commands the CLI runs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..adapters.console import Console
from ..adapters.github_actions import parse_assignments
from ..adapters.runtime import read_input
from ..errors import EnvshipError, Problem, UsageError
from . import options

if TYPE_CHECKING:
    from .render import RenderOptions

# only what is implemented is advertised (action.yml lists the same)
COMMANDS = ("render", "plan", "deploy", "build", "resolve", "routes", "promote", "preview", "teardown", "gc",
            "status")
DEFAULT_CONFIG = "envship.yaml"


def run(console: Console, environ: Mapping[str, str]) -> int:
    secrets = read_secrets(console, environ)
    token = read_input(environ, "cloudflare-api-token").strip()
    if token:   # masked before anything else is printed; the commands read it where the CLI does
        console.mask([token])
        environ = {**environ, "CLOUDFLARE_API_TOKEN": token}
    command = read_input(environ, "command")
    if not command:
        # No default on purpose: a workflow that forgot `command: deploy` must not go green having
        # deployed nothing.
        raise UsageError("input 'command' is required: the action does nothing by default",
                         f"set 'with: command:' to one of: {', '.join(COMMANDS)}")
    if command not in COMMANDS:
        raise UsageError(f"input 'command' is '{command}', which this version does not support",
                         f"use one of: {', '.join(COMMANDS)}")
    if command == "build":
        return run_build(console, environ)
    if command == "routes":
        return run_routes(console, environ)
    if command == "promote":
        return run_promote(console, environ, secrets)
    if command in ("preview", "teardown", "gc", "status"):
        return run_previews(command, console, environ, secrets)
    if command == "resolve":
        from . import resolve

        return resolve.run(required(environ, "image", "the image to resolve, REPO:TAG"), console, environ)
    from . import render

    values = parse_assignments(read_input(environ, "env"), "input 'env'")
    warn_empty_values(console, values)
    opts = render.RenderOptions(
        config=read_input(environ, "config") or DEFAULT_CONFIG,
        env=required(environ, "environment", "the environment to render, e.g. staging"),
        image=required(environ, "image", "the build job's output, REPO@sha256:..."),
        pr=explicit_pr(environ),
        event_pr=event_pr(environ),
        values=values,
        secrets=secrets,
        output_dir=read_input(environ, "output") or None,
        allow_tag=bool(options.convert(options.named("allow-tag"), read_input(environ, "allow-tag"))),
    )
    if command in ("plan", "deploy"):
        return run_deploy(command, opts, console, environ)
    return render.run(opts, console, environ)


def run_deploy(command: str, render_opts: RenderOptions, console: Console, environ: Mapping[str, str]) -> int:
    from . import deploy, plan

    opts = deploy.DeployOptions.from_values(render_opts, options.from_action(command, environ, read_input))
    if command == "plan":
        return plan.run(opts, console, environ)
    return deploy.run(opts, console, environ)


def run_promote(console: Console, environ: Mapping[str, str], secrets: Mapping[str, str]) -> int:
    from . import promote

    values = parse_assignments(read_input(environ, "env"), "input 'env'")
    warn_empty_values(console, values)
    return promote.run(promote.PromoteOptions(
        config=read_input(environ, "config") or DEFAULT_CONFIG,
        source=required(environ, "from", "the environment whose running digest to promote, e.g. staging"),
        target=required(environ, "environment", "the environment to promote to, e.g. production"),
        expect_digest=read_input(environ, "expect-digest") or None, values=values, secrets=secrets,
        settings=options.from_action("promote", environ, read_input)), console, environ)


def flag(environ: Mapping[str, str], name: str) -> bool:
    text = read_input(environ, name).strip().lower() or "false"
    if text not in ("true", "false"):
        raise UsageError(f"input '{name}' must be true or false, not {text!r}",
                         f"set 'with: {name}: true' or 'false', or leave it out")
    return text == "true"


def run_previews(command: str, console: Console, environ: Mapping[str, str], secrets: Mapping[str, str]) -> int:
    config = read_input(environ, "config") or DEFAULT_CONFIG
    if command == "preview":
        from . import preview

        values = parse_assignments(read_input(environ, "env"), "input 'env'")
        warn_empty_values(console, values)
        return preview.run(preview.PreviewOptions(
            config=config, image=read_input(environ, "image"),
            allow_forks=flag(environ, "allow-forks"), env=read_input(environ, "environment") or None,
            values=values, secrets=secrets, settings=options.from_action("preview", environ, read_input)),
            console, environ)
    if command == "gc":
        from . import preview

        return preview.gc(config, read_input(environ, "environment") or None, flag(environ, "dry-run"), console,
                          environ)
    if command == "status":
        from . import status

        # (the `output` input is render's directory: the action prints the table)
        return status.run(config, read_input(environ, "environment") or None, "table", console, environ)
    from . import teardown

    return teardown.run(teardown.TeardownOptions(
        config, required(environ, "environment", "the environment to tear down, e.g. preview"),
        explicit_pr(environ) or event_pr(environ)), console, environ)


def run_routes(console: Console, environ: Mapping[str, str]) -> int:
    from . import routes

    return routes.run(routes.RoutesOptions(
        config=read_input(environ, "config") or DEFAULT_CONFIG,
        env=required(environ, "environment", "the environment whose route to apply, e.g. staging"),
        pr=explicit_pr(environ), event_pr=event_pr(environ), dry_run=flag(environ, "dry-run"),
        delete=flag(environ, "delete"),
    ), console, environ)


def run_build(console: Console, environ: Mapping[str, str]) -> int:
    from . import build

    opts = build.BuildOptions(
        config=read_input(environ, "config") or DEFAULT_CONFIG,
        repository=read_input(environ, "repository") or None,
        context=read_input(environ, "context") or ".",
        file=read_input(environ, "file") or None,
        builder=read_input(environ, "builder") or "docker",
        tags=tuple(words(read_input(environ, "tags"))),
        cache_from=tuple(lines(read_input(environ, "cache-from"))),
        cache_to=tuple(lines(read_input(environ, "cache-to"))),
        release_file=read_input(environ, "release-file") or build.DEFAULT_RELEASE_FILE,
        platforms=tuple(words(read_input(environ, "platforms"))),
        build_args=parse_assignments(read_input(environ, "build-args"), "input 'build-args'"),
    )
    return build.run(opts, console, environ)


def words(text: str) -> list[str]:
    """A list input: one item per line, or comma-separated (as docker/build-push-action takes them)."""
    return [w.strip() for line in text.splitlines() for w in line.split(",") if w.strip()]


def lines(text: str) -> list[str]:
    """One item per line (cache specs contain commas: type=gha,mode=max)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def warn_empty_values(console: Console, values: Mapping[str, str]) -> None:
    """`KEY=${{ vars.KEY }}` with the variable unset arrives as `KEY=`, silently overriding the config."""
    for key, value in values.items():
        if value == "":
            console.warn(Problem(
                f"input 'env' sets {key} to an empty value, which overrides envship.yaml's value",
                None, f"if that is not meant, define the variable {key} for this environment or drop the line"))


def read_secrets(console: Console, environ: Mapping[str, str]) -> dict[str, str]:
    """Parse the `secrets` input and mask every value before anything else is printed. If the input is
    malformed, every line of it is masked before the error is reported."""
    raw = read_input(environ, "secrets")
    try:
        secrets = parse_assignments(raw, "input 'secrets'", sensitive=True)
    except EnvshipError:
        console.mask(line.strip() for line in raw.splitlines() if line.strip())
        raise
    console.mask(secrets.values())
    return secrets


def required(environ: Mapping[str, str], name: str, what: str) -> str:
    value = read_input(environ, name)
    if not value:
        raise UsageError(f"input '{name}' is required", f"set 'with: {name}:' to {what}")
    return value


def explicit_pr(environ: Mapping[str, str]) -> int | None:
    text = read_input(environ, "pr")
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"input 'pr' must be a pull request number, not {text!r}",
                         "leave it empty to use the number of the pull_request event that started the run")
    return int(text)


def event_pr(environ: Mapping[str, str]) -> int | None:
    """The number of the pull request whose event started the run (used for preview environments)."""
    if environ.get("GITHUB_EVENT_NAME") not in ("pull_request", "pull_request_target"):
        return None
    try:
        with open(environ.get("GITHUB_EVENT_PATH", ""), encoding="utf-8") as f:
            number = json.load(f).get("pull_request", {}).get("number")
    except (OSError, ValueError, AttributeError):
        # Only a preview needs it, and a preview without a number says so and asks for the `pr` input.
        return None
    return number if isinstance(number, int) else None
