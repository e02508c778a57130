"""`envship teardown --env E [--pr N]`: remove a deploy target (a preview, usually): its Cloudflare route,
its objects, its namespace when envship created it. Refused for protected environments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..adapters import files
from ..adapters.console import Console
from ..core.render import Release, Rendering, resolve_target
from ..errors import RefusedError
from . import routes as routes_command
from .render import pick_environment


@dataclass(frozen=True)
class TeardownOptions:
    config: str
    env: str
    pr: int | None = None
    lock_timeout: float = 600.0


def run(opts: TeardownOptions, console: Console, environ: Mapping[str, str]) -> int:
    from ..adapters.kube import Kube, credentials
    from ..engine.teardown import Teardown

    config = files.read_config(opts.config)
    environment = pick_environment(config, opts.env)
    if environment.protected:
        raise RefusedError(f"environment '{environment.name}' is protected: envship never tears it down",
                           "remove it by hand if you really mean to", environment.location)
    target = resolve_target(environment, opts.pr)
    rendering = Rendering(target, Release(image="", digest=""), config.app)
    route = config.cloudflare if environment.routes and target.host else None
    routes = routes_command.routes_for(route, config.app, target, console, environ,
                                       holder=routes_command.holder(environ))
    connection = credentials.connect(environment, environ)
    console.mask(connection.secrets)
    kube = Kube(connection, trace=console.detail)
    if routes is not None:
        routes.kube = kube
    try:
        result = Teardown(kube, rendering, console, environ, routes, routes_command.holder(environ),
                          opts.lock_timeout).run()
    finally:
        if routes is not None:
            routes.cf.close()
        kube.close()
    what = f"{target.name} ({target.namespace})"
    if not result.found:
        console.info(f"nothing to tear down: {what} has no objects, records or route of envship's")
    else:
        console.info(f"tore down {what}: {len(result.removed)} object(s) deleted"
                     + (", namespace deleted" if result.namespace_deleted else "")
                     + (", route removed" if result.route_removed else ""))
    console.summary(f"### envship teardown: {what}\n\n{len(result.removed)} object(s) deleted"
                    + ("; namespace deleted" if result.namespace_deleted else "")
                    + ("; route removed" if result.route_removed else "") + ".\n")
    return 0
