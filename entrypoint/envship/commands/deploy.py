"""`envship deploy`: render, check the image, connect, and run the deploy engine (engine/deploy.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..adapters.console import Console
from ..adapters.kube import Kube, credentials
from ..engine.deploy import Deploy, DeploySettings
from ..errors import EnvshipError, UsageError
from . import documents
from . import render as render_command
from . import routes as routes_command
from .report import DeploymentReport

if TYPE_CHECKING:
    from ..engine.routes import Routes


@dataclass(frozen=True)
class DeployOptions:
    render: render_command.RenderOptions
    verify_image: bool = True   # the digest must exist in the registry before the cluster is touched
    timeout: float = 600.0
    no_rollback: bool = False
    lock_timeout: float = 600.0
    crashloop_restarts: int = 1
    allow_mass_prune: bool = False  # prune most of the app (or all of its workloads, or a Namespace)
    exit_code: bool = False         # plan: exit 3 when deploy would change something
    output: str = "text"            # text | json (one document on stdout: commands/documents.py)

    @classmethod
    def from_values(cls, render: render_command.RenderOptions,
                    values: Mapping[str, bool | float | int]) -> DeployOptions:
        """From commands/options.py's table (plan's subset included): the CLI and the action alike."""
        return cls(render, verify_image=not values.get("skip_image_check", False),
                   timeout=float(values.get("timeout", 600.0)), no_rollback=bool(values.get("no_rollback", False)),
                   lock_timeout=float(values.get("lock_timeout", 600.0)),
                   crashloop_restarts=int(values.get("crashloop_restarts", 1)),
                   allow_mass_prune=bool(values.get("allow_mass_prune", False)),
                   exit_code=bool(values.get("exit_code", False)))

    def settings(self, lease_seconds: int = 30, heartbeat: float = 15.0) -> DeploySettings:
        return DeploySettings(self.timeout, self.no_rollback, self.lock_timeout, self.crashloop_restarts,
                              self.allow_mass_prune, lease_seconds, heartbeat)


def run(opts: DeployOptions, console: Console, environ: Mapping[str, str]) -> int:
    lease, heartbeat = lease_seconds(environ), heartbeat_seconds(environ)  # refused before anything is touched
    rendering = render_command.build_rendering(opts.render, environ, console, verify=opts.verify_image)
    environment = rendering.target.environment
    # the route's token is checked for presence before anything else is touched
    routes = routes_command.routes_for(rendering.route, rendering.app, rendering.target, console, environ,
                                       holder=routes_command.holder(environ))
    connection = credentials.connect(environment, environ)
    console.mask(connection.secrets)
    kube = Kube(connection, trace=console.detail)
    if routes is not None:
        routes.kube = kube   # the tunnel's lease lives in the cluster
    report = DeploymentReport.for_rendering(rendering, console, environ)
    deploy = Deploy(kube, rendering, rendering.app, opts.settings(lease, heartbeat), console, environ, routes)
    report.start()
    error = ""
    try:
        code = deploy.run()
    except EnvshipError as e:
        deploy.outcome.ok, deploy.outcome.message = False, e.problems[0].message
        error = console.words(e.problems[0].message)
        raise
    except KeyboardInterrupt:
        deploy.outcome.ok, deploy.outcome.message = False, "cancelled"
        error = "cancelled"
        raise
    finally:
        report.finish(deploy.outcome)
        report.close()
        if opts.output == "json":   # failed or not: a script reads what happened from one place
            documents.emit(console, documents.deploy_document(rendering, deploy.outcome, console.outputs, error))
        report_throttling(kube, console)
        if routes is not None:
            report_cloudflare(routes, console)
        kube.close()
    return code


def report_cloudflare(routes: Routes, console: Console) -> None:
    stats = routes.cf.stats
    if stats.throttled_seconds or stats.retries:
        console.info(f"Cloudflare's API: {stats.retries} request(s) retried"
                     + (f", waited {stats.throttled_seconds:.1f} s as it asked (Retry-After)"
                        if stats.throttled_seconds else ""))
    routes.cf.close()


def report_throttling(kube: Kube, console: Console) -> None:
    if kube.throttled_seconds:
        console.info(f"the API server throttled this run: waited {kube.throttled_seconds:.1f} s as it asked "
                     f"(Retry-After); {kube.retries} request(s) retried in all")


def heartbeat_seconds(environ: Mapping[str, str]) -> float:
    """ENVSHIP_HEARTBEAT_SECONDS: how often a long wait says what it still waits for (default 15 s)."""
    text = environ.get("ENVSHIP_HEARTBEAT_SECONDS", "15")
    if not text.isdigit() or not 1 <= int(text) <= 3600:
        raise UsageError(f"ENVSHIP_HEARTBEAT_SECONDS must be a whole number of seconds from 1 to 3600, not {text!r}",
                         "unset it for the default of 15 s")
    return float(text)


def lease_seconds(environ: Mapping[str, str]) -> int:
    text = environ.get("ENVSHIP_LEASE_SECONDS", "30")
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"ENVSHIP_LEASE_SECONDS must be a whole number of seconds, not {text!r}",
                         "unset it for the default of 30 s")
    return int(text)
