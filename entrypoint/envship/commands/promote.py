"""`envship promote --from staging --to production`: deploy to the target exactly the digest that runs,
healthy, in the source environment, with the target's variables and secrets.

The source's digest is read from its cluster (its last release record) and cross-checked there: every
workload of that release still runs the recorded image and is healthy, and the imageID of every pod of
the current revision is the recorded digest. Any doubt is a refusal (exit 2, nothing changed)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..adapters import files
from ..adapters.console import Console
from ..core import promotion
from ..core.config import Environment
from ..core.render import resolve_target
from ..errors import RefusedError, UsageError
from . import deploy
from .render import RenderOptions, pick_environment

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class PromoteOptions:
    config: str
    source: str
    target: str
    expect_digest: str | None = None
    values: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, bool | float | int] = field(default_factory=dict)   # commands/options.py's table


def run(opts: PromoteOptions, console: Console, environ: Mapping[str, str]) -> int:
    if opts.expect_digest is not None and not DIGEST.fullmatch(opts.expect_digest):
        raise UsageError(f"{{--expect-digest}} must be sha256: and 64 hexadecimal digits, not {opts.expect_digest!r}",
                         "copy the digest from the staging deploy's output 'digest'")
    config = files.read_config(opts.config)
    source, target = pick_environment(config, opts.source), pick_environment(config, opts.target)
    promotion.check_route(config, source, target)
    namespace = resolve_target(source, None).namespace
    state = read_source(source, config.app, namespace, environ, console)
    if state is None:
        raise RefusedError(f"'{source.name}' has no release recorded in namespace {namespace}: nothing to promote",
                           f"deploy to '{source.name}' first")
    record = state.record
    problems = promotion.source_problems(state, config.image)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RefusedError(f"'{source.name}' is not a sound source for '{target.name}': {problems[0]}{more}",
                           f"fix or redeploy '{source.name}' until it is healthy, then promote again")
    expected = promotion.expected_digest_problem(record, opts.expect_digest)
    if expected:
        raise RefusedError(f"not promoting: {expected}",
                           "something else was deployed to the source since; check which digest you mean")
    origin = promotion.promoted_from(source, record)
    console.info(f"promoting {record.image} (revision {record.revision} of {source.name}"
                 + (f", commit {record.git_sha[:12]}" if record.git_sha else "") + f") to {target.name}")
    render = RenderOptions(config=opts.config, env=target.name, image=record.image, values=opts.values,
                           secrets=opts.secrets, promoted_from=origin)
    # the deploy's commit is the one the digest was built from, not whatever the dispatching branch has now
    target_environ = {**environ, "GITHUB_SHA": record.git_sha} if record.git_sha else environ
    return deploy.run(deploy.DeployOptions.from_values(render, opts.settings), console, target_environ)


def read_source(source: Environment, app: str, namespace: str, environ: Mapping[str, str],
                console: Console) -> promotion.SourceState | None:
    from ..adapters.kube import Kube, credentials
    from ..engine.promotion import read_source as read

    connection = credentials.connect(source, environ)
    console.mask(connection.secrets)
    kube = Kube(connection, trace=console.detail)
    try:
        return read(kube, app, source.name, namespace)
    finally:
        kube.close()
