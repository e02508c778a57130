"""`envship plan`: what deploy would change, by server-side dry-run; changes nothing.

Each object is applied with dryRun=All, so the server's defaulting, admission and validation run and
the diff shows what would really be stored. Secret values are masked. Exit 0 with or without changes;
the `changes` output says how many objects would change.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..adapters import credentials
from ..adapters.console import Console
from ..adapters.kube import Kube
from ..core import plan
from ..core.plan import key_of
from ..errors import OperationError
from . import render as render_command
from .cluster import Session
from .deploy import DeployOptions


def run(opts: DeployOptions, console: Console, environ: Mapping[str, str]) -> int:
    rendering = render_command.build_rendering(opts.render, environ, console, verify=opts.verify_image)
    connection = credentials.connect(rendering.target.environment, environ)
    console.mask(connection.secrets)
    kube = Kube(connection)
    try:
        return _plan(Session(kube, rendering, rendering.app, console), console)
    finally:
        kube.close()


def _plan(session: Session, console: Console) -> int:
    rendering, target = session.rendering, session.target
    session.check_kinds(rendering.objects)
    namespace_missing = not session.namespace_exists()
    if namespace_missing and not any(o.kind == "Namespace" for o in rendering.objects):
        raise OperationError(f"namespace {target.namespace} does not exist",
                             f"create it, or set 'create-namespace: true' on environment '{target.name}'")
    previous = session.latest_release() if not namespace_missing else None
    kinds = {(str(o.obj["apiVersion"]), o.kind) for o in rendering.objects}
    if previous is not None:
        kinds |= {(str(o["apiVersion"]), str(o["kind"])) for o in previous.objects}
    live = session.live_state(kinds)
    foreign = plan.foreign_objects(rendering, live, session.app, target.environment.adopt)
    if foreign:
        raise OperationError(foreign[0].message, foreign[0].hint, foreign[0].location)
    if namespace_missing:
        # The server cannot dry-run objects into a namespace that does not exist yet: show them as new.
        desired = {key_of(o.obj): o.obj for o in rendering.objects}
    else:
        result, returned = session.apply_all(rendering.objects, live, dry_run=True)
        if result.failed:
            name, message = result.failed[0]
            raise OperationError(f"the server rejects {name}: {message}", "fix the manifest; deploy would fail")
        desired = returned
    changed = []
    for obj in rendering.objects:
        key = key_of(obj.obj)
        text = plan.diff(live.get(key), desired.get(key, obj.obj), obj.describe())
        if not text and key in live and plan.changed(live[key], desired.get(key, obj.obj)):
            text = f"  {obj.describe()}: Secret values changed (not shown)\n"
        if text:
            action = "create" if key not in live else "replace" if obj.describe() in session.replaced else "update"
            changed.append((obj.describe(), action, text))
    pruned = [plan.describe(o) for o in plan.prune_candidates(live.values(), rendering.objects, session.app,
                                                              target.name)]
    for name, action, text in changed:
        console.result(f"# {action} {name}\n{text}\n")
    for name in pruned:
        console.result(f"# delete {name} (no longer rendered)\n")
    total = len(changed) + len(pruned)
    replaced = sum(a == "replace" for _, a, _ in changed)
    console.info(f"plan for {target.name} ({target.namespace}): {sum(a == 'create' for _, a, _ in changed)} to "
                 f"create, {sum(a == 'update' for _, a, _ in changed)} to update, "
                 + (f"{replaced} to replace (immutable Job template), " if replaced else "")
                 + f"{len(pruned)} to delete, {len(rendering.objects) - len(changed)} unchanged")
    console.set_output("changes", str(total))
    for name, value in (("image", rendering.release.image), ("digest", rendering.release.digest),
                        ("environment", target.name), ("namespace", target.namespace),
                        ("url", render_command.environment_url(rendering))):
        console.set_output(name, value)
    rows = [f"| {action} | `{name}` |" for name, action, _ in changed] + [f"| delete | `{n}` |" for n in pruned]
    body = "\n".join(rows) if rows else "| - | no changes |"
    diffs = "\n".join(f"<details><summary>{name}</summary>\n\n```diff\n{text}```\n</details>"
                      for name, _, text in changed)
    console.summary(f"### envship plan: {target.name}, {total} change(s)\n\n| action | object |\n|---|---|\n"
                    f"{body}\n\n{diffs}\n")
    return 0
