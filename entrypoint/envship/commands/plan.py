"""`envship plan`: what deploy would change, by server-side dry-run; changes nothing.

Each object is applied with dryRun=All, so the server's defaulting, admission and validation run and
the diff shows what would really be stored. Secret values are masked. Deletions come first, with a
warning (and a second one when deploy would refuse them as a sweeping prune). Exit 0 with or without
changes (the `changes` output says how many objects would change); with `exit-code`, 3 when deploy would
change something, so a script or a drift check can tell without parsing (kubectl diff answers 1 there, but
envship's 1 and 2 already mean "failed" and "bad input").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..adapters.console import Console
from ..adapters.kube import Kube, credentials
from ..core import ownership, plan
from ..core.ownership import describe, key_of
from ..engine.session import Session, refuse_foreign
from ..errors import EXIT_CHANGES, OperationError, Problem
from . import documents
from . import render as render_command
from . import routes as routes_command
from .deploy import DeployOptions, report_cloudflare, report_throttling

if TYPE_CHECKING:
    from ..engine.routes import Routes


def run(opts: DeployOptions, console: Console, environ: Mapping[str, str]) -> int:
    rendering = render_command.build_rendering(opts.render, environ, console, verify=opts.verify_image)
    routes = routes_command.routes_for(rendering.route, rendering.app, rendering.target, console, environ)
    connection = credentials.connect(rendering.target.environment, environ)
    console.mask(connection.secrets)
    kube = Kube(connection, trace=console.detail)
    try:
        return _plan(Session(kube, rendering, rendering.app, console, environ), console, opts, routes)
    finally:
        report_throttling(kube, console)
        if routes is not None:
            report_cloudflare(routes, console)
        kube.close()


def route_plan(routes: Routes, members: list[dict[str, Any]], console: Console) -> int:
    """The route part of the plan: what deploy would do to the host after a healthy rollout. With the
    address still to come from the cluster (a first deploy), the records at the host are checked only."""
    from ..engine.routes import addresses_for

    plan = routes.preflight()
    addresses = addresses_for(routes.target.host, members)
    if plan is None and not routes.wanted(addresses):
        console.info(f"route {routes.target.host}: points at the address the Ingress will publish (known after "
                     "the rollout); nothing in Cloudflare is in the way")
        return 0
    plan = plan or routes.plan(addresses, fresh=False)
    routes_command.print_plan(plan, console)
    return plan.writes


def _plan(session: Session, console: Console, opts: DeployOptions, routes: Routes | None = None) -> int:
    rendering, target = session.rendering, session.target
    namespace_missing = session.connect(rendering.objects) is None
    if namespace_missing:
        session.target_namespace(rendering.objects)   # there must be one to create
    survey = session.survey(rendering.objects, namespace_exists=not namespace_missing)
    decision, live = survey.decision, survey.live
    refuse_foreign(decision)
    for note in decision.notes:
        console.info(f"note: {note}")
    if namespace_missing:
        # The server cannot dry-run objects into a namespace that does not exist yet: show them as new.
        desired = {key_of(o.obj): o.obj for o in decision.apply}
    else:
        result, returned = session.apply_all(decision.apply, live, dry_run=True)
        if result.failed:
            name, message = result.failed[0]
            raise OperationError(f"the server rejects {name}: {message}", "fix the manifest; deploy would fail",
                                 result.where.get(name))
        desired = returned
    changed = []
    for obj in decision.apply:
        key = key_of(obj.obj)
        text = plan.diff(live.get(key), desired.get(key, obj.obj), obj.describe())
        if not text and key in live and plan.changed(live[key], desired.get(key, obj.obj)):
            text = f"  {obj.describe()}: Secret values changed (not shown)\n"
        if text:
            action = ("create" if key not in live else "replace" if obj.describe() in session.replaced
                      else "adopt" if obj.describe() in decision.adopted else "update")
            changed.append((obj.describe(), action, text))
    pruned = [describe(o) for o in decision.prune]
    as_json = opts.output == "json"
    report_deletions(console, pruned, decision, session, opts, show=not as_json)
    for name, action, text in ([] if as_json else changed):
        console.diff(f"# {action} {name}\n{text}\n")
    count = {a: sum(x == a for _, x, _ in changed) for a in ("create", "update", "replace", "adopt")}
    console.info(f"plan for {target.name} ({target.namespace}): {count['create']} to create, {count['update']} to "
                 "update, " + (f"{count['replace']} to replace (immutable Job template), " if count["replace"] else "")
                 + (f"{count['adopt']} to adopt, " if count["adopt"] else "")
                 + f"{len(pruned)} to delete, {len(rendering.objects) - len(changed)} unchanged")
    route_changes = 0
    if routes is not None:
        members = [live[key_of(o.obj)] for o in decision.apply if key_of(o.obj) in live]
        route_changes = route_plan(routes, members, console)
    total = len(changed) + len(pruned) + route_changes
    console.set_output("changes", str(total))
    for name, value in rendering.outputs().items():
        console.set_output(name, value)
    summarise(console, target.name, changed, pruned)
    if as_json:
        documents.emit(console, documents.plan_document(rendering, changed, pruned, route_changes))
    return EXIT_CHANGES if opts.exit_code and total else 0


def report_deletions(console: Console, pruned: list[str], decision: ownership.Decision, session: Session,
                     opts: DeployOptions, show: bool = True) -> None:
    """Deletions first and loud: they are the one thing a deploy cannot take back."""
    for name in pruned if show else []:
        console.diff(f"# DELETE {name} (no longer rendered)\n\n")
    if not pruned:
        return
    console.warn(Problem(f"deploy would delete {len(pruned)} object(s) that are no longer rendered: "
                         f"{', '.join(pruned)}"))
    sweeping = ownership.sweeping_prune(decision, session.app, session.target.namespace)
    if sweeping is not None and not opts.allow_mass_prune:
        console.warn(Problem(f"deploy would refuse this: {sweeping.message}", None, sweeping.hint))


def summarise(console: Console, environment: str, changed: list[tuple[str, str, str]], pruned: list[str]) -> None:
    rows = [f"| **delete** | `{n}` |" for n in pruned] + [f"| {action} | `{name}` |" for name, action, _ in changed]
    body = "\n".join(rows) if rows else "| - | no changes |"
    diffs = "\n".join(f"<details><summary>{name}</summary>\n\n```diff\n{text}```\n</details>"
                      for name, _, text in changed)
    total = len(changed) + len(pruned)
    warning = f"**{len(pruned)} object(s) would be deleted.**\n\n" if pruned else ""
    console.summary(f"### envship plan: {environment}, {total} change(s)\n\n{warning}| action | object |\n|---|---|\n"
                    f"{body}\n\n{diffs}\n")
