"""What deploy and plan share: a connected cluster session for one rendering.

Requests stay at one per object plus a constant: discovery once per group/version used, one list per
kind for the live state (ownership check, prune, diff), one server-side apply per object (objects of a
tier in parallel), one watch per waited kind.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..adapters.console import Console
from ..adapters.kube import ApiResource, Kube, KubeError
from ..core import plan
from ..core.plan import Key, ReleaseRecord, key_of
from ..core.render import RenderedObject, Rendering
from ..errors import OperationError, Problem

PARALLEL_APPLIES = 8
KEEP_RELEASES = 10


@dataclass
class ApplyResult:
    applied: list[tuple[str, str]] = field(default_factory=list)   # (describe, created|configured|unchanged)
    failed: list[tuple[str, str]] = field(default_factory=list)    # (describe, error message)
    not_attempted: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for _, o in self.applied if o == outcome)


class Session:
    def __init__(self, kube: Kube, rendering: Rendering, app: str, console: Console) -> None:
        self.kube = kube
        self.rendering = rendering
        self.app = app
        self.console = console
        self.target = rendering.target
        self.selector = plan.owner_selector(app, self.target.name, self.target.pr)
        self.replaced: set[str] = set()  # objects deleted and created again (immutable Job templates)

    # -- discovery and live state -----------------------------------------------------------------
    def resource_of(self, obj: Mapping[str, Any]) -> ApiResource:
        return self.kube.resource(str(obj["apiVersion"]), str(obj["kind"]))

    def check_kinds(self, objects: Sequence[RenderedObject]) -> None:
        # discovery for the groups used, in parallel; the lock, release records and leases come later
        self.kube.discover({str(o.obj["apiVersion"]) for o in objects}
                           | {"v1", "coordination.k8s.io/v1"})
        problems = []
        for obj in objects:
            try:
                self.resource_of(obj.obj)
            except KubeError as e:
                if e.status != 404:
                    raise
                problems.append(Problem(f"the cluster does not serve {obj.kind} ({obj.obj['apiVersion']})",
                                        obj.source, e.problems[0].hint))
        if problems:
            raise OperationError(problems[0].message, problems[0].hint, problems[0].location)

    def namespace_exists(self) -> bool:
        return self.namespace() is not None

    def namespace(self) -> dict[str, Any] | None:
        res = self.kube.resource("v1", "Namespace")
        live = self.kube.get(res, None, self.target.namespace)
        if live is not None and (live.get("status") or {}).get("phase") == "Terminating":
            raise OperationError(f"namespace {self.target.namespace} is being deleted",
                                 "wait until it is gone, then re-run envship")
        return live

    def live_state(self, kinds: Iterable[tuple[str, str]]) -> dict[Key, dict[str, Any]]:
        """Every object of these kinds in the namespace (and the cluster-scoped ones): one list per kind."""
        resources = []
        for api_version, kind in sorted(set(kinds)):
            try:
                resources.append(self.kube.resource(api_version, kind))
            except KubeError:
                continue  # a kind the cluster no longer serves has nothing live
        live: dict[Key, dict[str, Any]] = {}
        if not resources:
            return live
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(PARALLEL_APPLIES, len(resources))) as pool:
            listings = pool.map(lambda r: self.kube.list(r, self.target.namespace if r.namespaced else None)[0],
                                resources)
            for items in listings:
                for item in items:
                    live[key_of(item)] = item
        return live

    # -- apply ------------------------------------------------------------------------------------
    def apply_all(self, objects: Sequence[RenderedObject], live: Mapping[Key, Mapping[str, Any]],
                  dry_run: bool = False) -> tuple[ApplyResult, dict[Key, dict[str, Any]]]:
        """Server-side apply tier by tier, a tier's objects in parallel; stops after a failed tier."""
        result = ApplyResult()
        returned: dict[Key, dict[str, Any]] = {}
        tiers = plan.tiers(objects)
        with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL_APPLIES) as pool:
            for index, tier in enumerate(tiers):
                futures = {pool.submit(self.apply_one, o, dry_run): o for o in tier}
                for future in concurrent.futures.as_completed(futures):
                    obj = futures[future]
                    try:
                        applied = future.result()
                    except KubeError as e:
                        detail = e.problems[0].message + ("; " + "; ".join(e.causes) if e.causes else "")
                        result.failed.append((obj.describe(), detail))
                        continue
                    key = key_of(obj.obj)
                    returned[key] = applied
                    result.applied.append((obj.describe(), _outcome(live.get(key), applied)))
                if result.failed:
                    result.not_attempted = [o.describe() for t in tiers[index + 1:] for o in t]
                    break
        return result, returned

    def apply_one(self, obj: RenderedObject, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply; a Job whose pod template changed (immutable, e.g. a migration Job running the
        new image) is replaced: deleted with its pods, then created again, as kapp's fallback-on-replace."""
        try:
            return self.kube.apply(obj.obj, dry_run)
        except KubeError as e:
            if obj.kind != "Job" or e.status != 422 or "immutable" not in e.problems[0].message:
                raise
        res = self.resource_of(obj.obj)
        self.replaced.add(obj.describe())
        if dry_run:
            return dict(obj.obj)  # what would be created after the replacement
        self.kube.delete(res, obj.namespace, obj.name)
        deadline = time.monotonic() + 60
        while self.kube.get(res, obj.namespace, obj.name) is not None:
            if time.monotonic() > deadline:
                raise OperationError(f"{obj.describe()} must be replaced (its template is immutable) but is still "
                                     "being deleted after 60 s", "check its finalizers, then re-run")
            time.sleep(0.2)
        self.console.info(f"  {obj.describe()} replaced (a Job's pod template cannot change in place)")
        return self.kube.apply(obj.obj)

    # -- prune ------------------------------------------------------------------------------------
    def prune(self, live: Mapping[Key, Mapping[str, Any]], keep: Sequence[RenderedObject],
              dry_run: bool = False) -> list[str]:
        removed = []
        for obj in plan.prune_candidates(live.values(), keep, self.app, self.target.name):
            res = self.resource_of(obj)
            self.kube.delete(res, obj["metadata"].get("namespace"), obj["metadata"]["name"], dry_run=dry_run)
            removed.append(plan.describe(obj))
        return removed

    # -- release records --------------------------------------------------------------------------
    def releases(self) -> list[tuple[int, dict[str, Any]]]:
        res = self.kube.resource("v1", "Secret")
        items, _ = self.kube.list(res, self.target.namespace, f"{self.selector},{plan.RECORD_LABEL}=release")
        numbered = [(int(i["metadata"]["labels"].get("envship.dev/revision", "0")), i) for i in items]
        return sorted(numbered, key=lambda pair: pair[0])

    def latest_release(self) -> ReleaseRecord | None:
        releases = self.releases()
        if not releases:
            return None
        try:
            return plan.decode_release_record(releases[-1][1])
        except (ValueError, TypeError, KeyError) as e:
            self.console.warn(Problem(f"the last release record is unreadable ({type(e).__name__}); "
                                      "rollback is not possible this time"))
            return None

    def record_release(self, record: ReleaseRecord) -> None:
        obj = plan.release_record_object(record, self.app, self.target.name, self.target.namespace,
                                         self.target.pr)
        self.kube.apply(obj)
        res = self.kube.resource("v1", "Secret")
        for revision, old in self.releases()[:-KEEP_RELEASES]:
            if revision < record.revision:
                self.kube.delete(res, self.target.namespace, old["metadata"]["name"])


def _outcome(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    if before is None:
        return "created"
    return "configured" if plan.changed(before, after) else "unchanged"
