"""`envship render`: the exact objects an environment would receive, without touching any cluster."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..adapters import files, runtime
from ..adapters.console import Console
from ..core import output
from ..core.config import Config, Environment, did_you_mean
from ..core.render import Inputs, Release, Rendering, render, resolve_target
from ..engine.images import ImageRegistry, pin_image
from ..errors import UsageError


@dataclass(frozen=True)
class RenderOptions:
    config: str
    env: str
    image: str
    pr: int | None = None
    event_pr: int | None = None  # from the pull_request event; used only by preview environments
    values: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    output_dir: str | None = None
    show_secrets: bool = False
    allow_tag: bool = False  # a tag for a protected environment (resolved through the registry)
    promoted_from: Mapping[str, str] = field(default_factory=dict)  # promote: where the digest came from


def pick_environment(config: Config, name: str) -> Environment:
    env = config.environment(name)
    if env is None:
        known = ", ".join(config.environments)
        hint = did_you_mean(name, config.environments)
        raise UsageError(f"unknown environment '{name}' (known: {known})",
                         hint or f"pass --env with one of: {known}")
    return env


def registry_for(console: Console, environ: Mapping[str, str]) -> ImageRegistry:
    from ..adapters import registry  # requests is imported only when a registry is asked

    return registry.client(environ, console.mask)


def build_rendering(opts: RenderOptions, environ: Mapping[str, str], console: Console | None = None,
                    verify: bool = False) -> Rendering:
    """Config + manifests + options -> Rendering. Shared by render, plan and deploy. A digest stays
    offline unless `verify` (deploy checks it exists); a tag is resolved through the registry."""
    config = files.read_config(opts.config)
    environment = pick_environment(config, opts.env)
    pr = opts.pr if opts.pr is not None or not environment.preview else opts.event_pr
    target = resolve_target(environment, pr)
    log = console or Console()
    pinned = pin_image(config, environment, opts.image, opts.allow_tag, lambda: registry_for(log, environ), verify)
    if pinned.resolved_from_tag:
        log.info(f"resolved {opts.image} to {pinned.digest}")
    release = Release(image=pinned.image, digest=pinned.digest, git_sha=runtime.git_sha(environ),
                      run_url=runtime.run_url(environ), time=runtime.release_time(environ),
                      image_tag=pinned.resolved_from_tag or "", promoted_from=dict(opts.promoted_from))
    inputs = Inputs(config, environment, release, pr, opts.values, opts.secrets)
    docs = files.read_manifests(config)
    rendering = render(docs, inputs, target)
    for note in rendering.notes:
        log.info(f"note: {note}")
    return rendering


def run(opts: RenderOptions, console: Console, environ: Mapping[str, str]) -> int:
    rendering = build_rendering(opts, environ, console)
    if opts.output_dir:
        rendered = output.to_files(rendering, opts.show_secrets)
        files.write_rendered(opts.output_dir, rendered, environ)
        console.info(f"wrote {len(rendered)} objects to {opts.output_dir}")
    else:
        with console.group(f"rendered manifests for {rendering.target.name}"):
            console.result(output.to_stream(rendering, opts.show_secrets))
    report(rendering, console)
    return 0


def report(rendering: Rendering, console: Console) -> None:
    target, release = rendering.target, rendering.release
    outputs = rendering.outputs()
    for name, value in outputs.items():
        console.set_output(name, value)
    rows = [("environment", target.name), ("namespace", target.namespace), ("image", release.image),
            ("objects", str(len(rendering.objects))), ("url", outputs["url"] or "-")]
    if target.pr is not None:
        rows.insert(1, ("pull request", f"#{target.pr}"))
    table = "\n".join(f"| {k} | `{v}` |" for k, v in rows)
    console.summary(f"### envship render: {target.name}\n\n| | |\n|---|---|\n{table}\n")
