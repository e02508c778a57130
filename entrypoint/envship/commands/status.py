"""`envship status [--env E] [--output table|json]`: which digest runs where, from which commit and run,
promoted from where, healthy or not, and the URL: read from each environment's cluster (its release
record, checked against the live workloads and pods like a promotion source), and compared with
GitHub's latest deployment of the environment when a token is at hand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..adapters import files
from ..adapters.console import Console
from ..core import promotion
from ..core.config import Environment
from ..core.render import resolve_target
from ..errors import EnvshipError, UsageError
from .render import pick_environment

COLUMNS = ("environment", "namespace", "revision", "digest", "commit", "promoted_from", "health", "url", "github")


@dataclass
class Row:
    environment: str
    namespace: str
    revision: int = 0
    digest: str = ""
    image: str = ""
    commit: str = ""
    run_url: str = ""
    promoted_from: str = ""
    health: str = ""
    url: str = ""
    github: str = ""
    error: str = ""

    def cells(self) -> list[str]:
        return [self.environment, self.namespace, str(self.revision or "-"), self.digest[:19] or "-",
                self.commit[:12] or "-", self.promoted_from or "-", self.error or self.health or "-",
                self.url or "-", self.github or "-"]


def run(config_path: str, env: str | None, output: str, console: Console, environ: Mapping[str, str]) -> int:
    if output not in ("table", "json"):
        raise UsageError(f"{{--output}} must be table or json, not {output!r}", "use --output json for scripts")
    config = files.read_config(config_path)
    environments = [pick_environment(config, env)] if env else \
        [e for e in config.environments.values() if not e.preview]
    github = github_client(console, environ)
    rows = [row_for(config.app, config.image, e, environ, console, github) for e in environments]
    if github is not None:
        github.close()
    if output == "json":
        from . import documents

        documents.emit(console, documents.status_document([asdict(r) for r in rows]))
    else:
        table = [list(COLUMNS), *(r.cells() for r in rows)]
        widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
        console.result("".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n"
                               for line in table))
    return 1 if any(r.error for r in rows) else 0


def row_for(app: str, repository: str, environment: Environment, environ: Mapping[str, str], console: Console,
            github: Any) -> Row:
    from .promote import read_source as connect_and_read

    namespace = resolve_target(environment, None).namespace
    url = f"https://{environment.host}" if environment.host else ""
    row = Row(environment.name, namespace, url=url)
    try:
        state = connect_and_read(environment, app, namespace, environ, console)
    except EnvshipError as e:
        row.error = f"unreadable: {e.problems[0].message}"
        return row
    if state is None:
        row.health = "no release"
    else:
        record = state.record
        row.revision, row.digest, row.image = record.revision, record.digest, record.image
        row.commit, row.run_url = record.git_sha, record.run_url
        origin = record.promoted_from
        row.promoted_from = f"{origin['environment']} r{origin.get('revision', '?')}" if origin else ""
        problems = promotion.source_problems(state, repository)
        row.health = f"unhealthy: {problems[0]}" if problems else "healthy"
    if github is not None:
        row.github = compare_with_github(github, environment.name, row.digest)
    return row


def github_client(console: Console, environ: Mapping[str, str]) -> Any:
    from ..adapters import runtime
    from ..adapters.github import GitHub

    token = environ.get("GITHUB_TOKEN", "") or runtime.read_input(environ, "github-token")
    console.mask([token])
    return GitHub.from_environ(environ, token)


def compare_with_github(github: Any, environment: str, digest: str) -> str:
    try:
        latest = github.latest(environment)
    except EnvshipError as e:
        return f"unreadable ({e.problems[0].message})"
    if latest is None:
        return "no deployment"
    deployed = str((latest.get("payload") or {}).get("digest", ""))
    if not digest:
        return f"deployment {latest['id']} ({latest['state']}) but nothing recorded in the cluster"
    if deployed == digest:
        return f"matches deployment {latest['id']} ({latest['state']})"
    return f"differs: deployment {latest['id']} ({latest['state']}) says {deployed[:19] or 'no digest'}"
