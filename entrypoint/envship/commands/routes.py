"""`envship routes`: an environment's Cloudflare route alone (apply, remove, or show with --dry-run), for
re-pointing a host without a redeploy. deploy cuts over with the same code after a healthy rollout
(engine/routes.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..adapters import files
from ..adapters.console import Console
from ..core.config import CloudflareRoutes, Environment
from ..core.render import Target, resolve_target
from ..core.routes import RouteOwner
from ..errors import RefusedError, UsageError
from .render import pick_environment

if TYPE_CHECKING:
    from ..adapters.kube import Kube
    from ..engine.routes import RoutePlan, Routes


@dataclass(frozen=True)
class RoutesOptions:
    config: str
    env: str
    pr: int | None = None
    event_pr: int | None = None   # from the pull_request event; used only by preview environments
    dry_run: bool = False
    delete: bool = False


def routes_for(route: CloudflareRoutes | None, app: str, target: Target, console: Console,
               environ: Mapping[str, str], kube: Kube | None = None, holder: str = "") -> Routes | None:
    """The route engine for `target`, or None when its environment has no route (no host, no
    routes.cloudflare, or `routes: false`)."""
    if route is None or not target.environment.routes or not target.host:
        return None
    from ..adapters.cloudflare import Cloudflare
    from ..engine.routes import Routes, RouteTarget

    token = environ.get("CLOUDFLARE_API_TOKEN", "")
    console.mask([token])
    cf = Cloudflare.from_environ(environ)
    env = target.environment
    owner = RouteOwner(app, env.name, target.namespace, environ.get("GITHUB_REPOSITORY", ""))
    where = f" ({env.location})" if env.location else ""
    route_target = RouteTarget(target.host, owner, env.adopt, env.preview, target.pr,
                               f"'adopt: true' in environment '{env.name}'{where}")
    return Routes(cf, route, route_target, console, kube, holder, target.namespace)


def print_plan(plan: RoutePlan, console: Console) -> None:
    """The route plan as a table on stdout (host, current, desired, action), and in the step summary."""
    rows = [("HOST", "CURRENT", "DESIRED", "ACTION"), *plan.rows()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    console.result("".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() + "\n"
                           for r in rows))
    table = "\n".join(f"| `{h}` | {c} | {d} | {a} |" for h, c, d, a in plan.rows())
    console.summary(f"#### Cloudflare route ({plan.mode})\n\n| host | current | desired | action |\n|---|---|---|---|\n"
                    f"{table}\n")


def run(opts: RoutesOptions, console: Console, environ: Mapping[str, str]) -> int:
    config = files.read_config(opts.config)
    environment = pick_environment(config, opts.env)
    target = resolve_target(environment, opts.pr if opts.pr is not None or not environment.preview else opts.event_pr)
    if config.cloudflare is None:
        raise UsageError("the config has no routes.cloudflare section: there is no route to manage",
                         "add routes: {cloudflare: {zone: example.com}} to envship.yaml")
    if not environment.routes or not target.host:
        why = "has 'routes: false'" if not environment.routes else "has no 'host'"
        raise UsageError(f"environment '{environment.name}' {why}, so it has no Cloudflare route",
                         "choose an environment with a host, or give this one a host", environment.location)
    if opts.delete and environment.protected:
        raise RefusedError(f"environment '{environment.name}' is protected: its route is not removed by envship",
                           "remove it in Cloudflare by hand if you really mean to take it offline",
                           environment.location)
    kube = connect(config.cloudflare, environment, opts, environ, console)
    try:
        routes = routes_for(config.cloudflare, config.app, target, console, environ, kube, holder(environ))
        assert routes is not None
        try:
            return apply(routes, opts, console, environ, kube)
        finally:
            routes.cf.close()
    finally:
        if kube is not None:
            kube.close()


def connect(route: CloudflareRoutes, environment: Environment, opts: RoutesOptions, environ: Mapping[str, str],
            console: Console) -> Kube | None:
    """The cluster, when the route needs it: the addresses its Ingress published (dns mode, target
    ingress), or the Lease that serialises writers of a tunnel."""
    needs_addresses = route.mode == "dns" and route.target == "ingress" and not opts.delete
    needs_lease = route.mode == "tunnel" and not opts.dry_run
    if not (needs_addresses or needs_lease):
        return None
    from ..adapters.kube import Kube, credentials

    connection = credentials.connect(environment, environ)
    console.mask(connection.secrets)
    return Kube(connection, trace=console.detail)


def holder(environ: Mapping[str, str]) -> str:
    from ..adapters import runtime
    from ..engine.lock import holder_identity

    url = runtime.run_url(environ, attempt=False)
    return holder_identity(f"{url}#{environ.get('GITHUB_JOB', '')}" if url else "")


def apply(routes: Routes, opts: RoutesOptions, console: Console, environ: Mapping[str, str],
          kube: Kube | None) -> int:
    from ..engine.routes import addresses_for, smoke_check

    host = routes.target.host
    if opts.delete:
        plan = routes.plan_removal()
    else:
        plan = routes.preflight() or routes.plan(addresses_for(host, live_addresses(routes, kube) if kube else []),
                                                 fresh=False)
    print_plan(plan, console)
    if opts.dry_run:
        console.info(f"dry run: {plan.writes} change(s) to the route of {host} planned; nothing was sent")
        return 0
    if not plan.writes:
        console.info(f"route {host}: nothing to change")
        return 0
    if opts.delete:
        routes.remove(plan)
        console.info(f"route {host}: removed this environment's records" +
                     (" and tunnel rule" if plan.tunnel is not None and plan.tunnel.writes else ""))
        return 0
    done = routes.apply(plan)
    console.info(f"route {host}: {plan.action}")
    check = routes.config.smoke_check
    if check is not None:
        failure = smoke_check(check, host, environ, console)
        if failure is not None:
            routes.restore(done)
            from ..errors import OperationError

            raise OperationError(f"smoke check failed: {failure}; the previous route was restored",
                                 "check the app answers on that path (routes.smoke-check), then re-run")
        console.info("  smoke check passed")
    return 0


def live_addresses(routes: Routes, kube: Kube) -> list[dict[str, object]]:
    """The environment's Ingresses and LoadBalancer Services, as the cluster has them now."""
    from ..adapters.kube import KubeError
    from ..core.ownership import PART_OF, ApplySet

    owner = routes.target.owner
    applyset = ApplySet(owner.app, owner.environment, owner.namespace, routes.target.pr)
    selector = f"{PART_OF}={applyset.id}"
    found: list[dict[str, object]] = []
    for api_version, kind in (("networking.k8s.io/v1", "Ingress"), ("v1", "Service"),
                              ("gateway.networking.k8s.io/v1", "Gateway")):
        try:
            items, _ = kube.list(kube.resource(api_version, kind), owner.namespace, selector)
        except KubeError as e:
            if kind == "Gateway" and e.status in (0, 404):
                continue   # a cluster without the Gateway API
            raise
        found += [{**item, "kind": kind, "apiVersion": api_version} for item in items]
    return found
