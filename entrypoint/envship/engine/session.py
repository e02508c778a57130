"""What deploy and plan share: a connected cluster session for one rendering.

Requests stay at one per object plus a constant: discovery (aggregated: two requests), the namespace,
the release records, the applyset's parent and one list per kind for the live state (ownership check,
prune, diff), read together; one server-side apply per changed object (objects of a tier in parallel).
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..adapters.console import Console
from ..adapters.kube import ApiResource, Kube, KubeError
from ..core import health, ownership, plan
from ..core.ownership import PART_OF, Decision, Inventory, Key, describe, group_kind, key_of
from ..core.plan import DeployRecord
from ..core.render import RenderedObject, Rendering
from ..errors import Location, OperationError, Problem

PARALLEL_APPLIES = 8
NAMESPACES = ApiResource("v1", "Namespace", "namespaces", False)
# Served by every cluster envship supports (core/v1; coordination.k8s.io/v1 since Kubernetes 1.14), so
# reading the parent, the release records and the lock's lease needs no discovery.
SECRETS = ApiResource("v1", "Secret", "secrets", True)
LEASES = ApiResource("coordination.k8s.io/v1", "Lease", "leases", True)
KEEP_RELEASES = 10


@dataclass
class ApplyResult:
    applied: list[tuple[str, str]] = field(default_factory=list)   # (describe, created|configured|unchanged)
    failed: list[tuple[str, str]] = field(default_factory=list)    # (describe, error message)
    not_attempted: list[str] = field(default_factory=list)
    where: dict[str, Location | None] = field(default_factory=dict)  # describe -> the manifest's field

    def count(self, outcome: str) -> int:
        return sum(1 for _, o in self.applied if o == outcome)


@dataclass
class Survey:
    """The cluster as this deploy finds it, and what follows for ownership."""

    parent: dict[str, Any] | None
    live: dict[Key, dict[str, Any]]
    inventory: Inventory
    decision: Decision
    previous: DeployRecord | None = None                       # the last healthy release
    releases: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # its records, by revision


@dataclass(frozen=True)
class Look:
    """Read before the lock, beside discovery: is another deploy running (the lease), and what did the
    last ones leave (their records, the applyset's parent)?"""

    lease: dict[str, Any] | None
    releases: list[tuple[int, dict[str, Any]]]
    parent: dict[str, Any] | None


class Session:
    def __init__(self, kube: Kube, rendering: Rendering, app: str, console: Console,
                 environ: Mapping[str, str] | None = None) -> None:
        self.kube = kube
        self.rendering = rendering
        self.app = app
        self.console = console
        self.target = rendering.target
        self.applyset = self.target.applyset(app)
        self.repository = (environ or {}).get("GITHUB_REPOSITORY", "")
        self.selector = f"{PART_OF}={self.applyset.id}"  # the members, as kubectl would select them
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

    def connect(self, objects: Sequence[RenderedObject]) -> dict[str, Any] | None:
        """Discovery and the target namespace, in one round trip: the namespace is core/v1 everywhere, so
        reading it needs no discovery. Returns the namespace (None when it does not exist)."""
        namespace: dict[str, Any] | None = self.beside_discovery(objects, self.namespace)[0]
        return namespace

    def connect_and_look(self, objects: Sequence[RenderedObject], lease_name: str) -> tuple[dict[str, Any] | None,
                                                                                         Look]:
        """`connect`, and in the same round trip the look for a release to keep: the lock's lease, the
        release records and the parent (none of them needs discovery; in a namespace that does not
        exist yet they are simply absent). A deploy saves a round trip; the look is read before the
        lock and only ever trusted for a redeploy that ends without writing anything."""
        namespace, lease, releases, parent = self.beside_discovery(
            objects, self.namespace, lambda: self.lease(lease_name), self.releases, self.parent)
        return namespace, Look(lease, releases, parent)

    def beside_discovery(self, objects: Sequence[RenderedObject], *reads: Callable[[], Any]) -> list[Any]:
        """Discovery for `objects` and these reads (none may need discovery) at once: one round trip."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(reads)) as pool:
            answers = [pool.submit(read) for read in reads]
            self.check_kinds(objects)
            return [answer.result() for answer in answers]

    def namespace(self) -> dict[str, Any] | None:
        live = self.kube.get(NAMESPACES, None, self.target.namespace)
        if live is not None and (live.get("status") or {}).get("phase") == "Terminating":
            raise OperationError(f"namespace {self.target.namespace} is being deleted",
                                 "wait until it is gone, then re-run envship")
        return live

    def live_state(self, kinds: Iterable[tuple[str, str]],
                   pool: concurrent.futures.ThreadPoolExecutor | None = None) -> dict[Key, dict[str, Any]]:
        """Every object of these kinds in the namespace (and the cluster-scoped ones): one list per kind,
        all at once."""
        resources = []
        for api_version, kind in sorted(set(kinds)):
            try:
                resources.append(self.kube.resource(api_version, kind))
            except KubeError:
                continue  # a kind the cluster no longer serves has nothing live
        live: dict[Key, dict[str, Any]] = {}
        if not resources:
            return live
        if pool is None:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(PARALLEL_APPLIES, len(resources))) as own:
                return self.live_state(kinds, own)
        listings = [pool.submit(lambda r: self.kube.list(r, self.target.namespace if r.namespaced else None)[0], r)
                    for r in resources]
        for listing in listings:
            for item in listing.result():
                live[key_of(item)] = item
        return live

    def target_namespace(self, objects: Sequence[RenderedObject]) -> RenderedObject:
        """The rendered Namespace of the target (create-namespace, or the manifests'), for a namespace
        that does not exist yet; without one there is nothing to create it from."""
        namespace = next((o for o in objects if o.kind == "Namespace" and o.name == self.target.namespace), None)
        if namespace is None:
            raise OperationError(
                f"namespace {self.target.namespace} does not exist in {self.kube.connection.description}",
                f"create it, or set 'create-namespace: true' on environment '{self.target.name}'")
        return namespace

    # -- ownership --------------------------------------------------------------------------------
    def parent(self) -> dict[str, Any] | None:
        return self.kube.get(SECRETS, self.target.namespace, self.applyset.name)

    def survey(self, objects: Sequence[RenderedObject], namespace_exists: bool = True,
               read: tuple[list[tuple[int, dict[str, Any]]], dict[str, Any] | None] | None = None) -> Survey:
        """The parent, the release records, the live state of every kind that matters (rendered, in the
        last release, in the parent's inventory) and the ownership decision for `objects`. The reads go
        out together: one round trip for the usual case, a second only for kinds no longer rendered.
        `read`: the records and the parent, when they were just read."""
        adopt = self.target.environment.adopt
        if not namespace_exists:
            live = self.cluster_scoped_state(objects)
            inventory = Inventory(self.applyset)
            return Survey(None, live, inventory, ownership.decide(inventory, objects, live, adopt))
        rendered = {(str(o.obj["apiVersion"]), o.kind) for o in objects}
        with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL_APPLIES) as pool:
            if read is None:
                releases_read = pool.submit(self.releases)
                parent_read = pool.submit(self.parent)
            live = self.live_state(rendered, pool)
            releases, parent = read if read is not None else (releases_read.result(), parent_read.result())
            previous = self.decode_latest(releases)
            problem = self.applyset.parent_problem(parent, self.repository, adopt)
            if problem is not None:
                raise OperationError(problem.message, problem.hint)
            kinds = set(rendered)
            if previous is not None:
                kinds |= {(str(o["apiVersion"]), str(o["kind"])) for o in previous.objects}
            kinds |= self.inventory_kinds(parent, {k for _, k in kinds})
            live.update(self.live_state(kinds - rendered, pool))
        legacy: frozenset[Key] = frozenset()
        if previous is not None and not previous.applyset:  # a deploy made before ApplySets: migrate it
            legacy = frozenset(key_of(o) for o in previous.objects)
        inventory = Inventory(self.applyset, legacy)
        return Survey(parent, live, inventory, ownership.decide(inventory, objects, live, adopt), previous, releases)

    def inventory_kinds(self, parent: Mapping[str, Any] | None, known: set[str]) -> set[tuple[str, str]]:
        """(apiVersion, kind) of the group-kinds the parent lists that neither the rendering nor the last
        release names (the parent is the inventory kubectl would prune from)."""
        found = set()
        for entry in ownership.parent_group_kinds(parent):
            kind, _, group = entry.partition(".")
            if kind in known:
                continue
            version = self.kube.preferred_version(group)
            if version is not None:
                found.add((version, kind))
        return found

    def cluster_scoped_state(self, objects: Sequence[RenderedObject]) -> dict[Key, dict[str, Any]]:
        """Before the namespace exists nothing namespaced can: only cluster-scoped objects may be in the
        way (one GET each; usually there are none)."""
        live: dict[Key, dict[str, Any]] = {}
        for obj in objects:
            res = self.resource_of(obj.obj)
            if res.namespaced or (obj.kind == "Namespace" and obj.name == self.target.namespace):
                continue
            current = self.kube.get(res, None, obj.name)
            if current is not None:
                current.setdefault("kind", obj.kind)
                current.setdefault("apiVersion", obj.obj["apiVersion"])
                live[key_of(current)] = current
        return live

    def unchanged(self, survey: Survey) -> frozenset[Key]:
        """The objects of the decision that applying would not change (plan.unchanged): what the last
        healthy release applied, unchanged, and live as it left them. A release recorded before ApplySets
        has none (its objects lack the membership label)."""
        previous = survey.previous
        if previous is None or not previous.applyset:
            return frozenset()
        recorded = {key_of(o): o for o in previous.objects}
        salt = plan.record_salt(self.applyset)
        adopted = set(survey.decision.adopted)
        return frozenset(key for o in survey.decision.apply if o.describe() not in adopted
                         and plan.unchanged(o.obj, recorded.get(key := key_of(o.obj)), survey.live.get(key), salt))

    def desired_parent(self, group_kinds: set[str], live: Mapping[str, Any] | None) -> dict[str, Any]:
        """The parent listing `group_kinds`. A run outside Actions (no GITHUB_REPOSITORY) keeps the
        repository the deploys come from."""
        annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
        repository = self.repository or str(annotations.get(ownership.REPOSITORY, ""))
        return self.applyset.parent(group_kinds, f"envship/{__version__}", repository)

    def parent_current(self, group_kinds: set[str], live: Mapping[str, Any] | None) -> bool:
        """Whether the live parent already says what apply_parent would write: every field it sets."""
        return live is not None and plan.contained(self.desired_parent(group_kinds, live), live)

    def lease(self, name: str) -> dict[str, Any] | None:
        return self.kube.get(LEASES, self.target.namespace, name)

    def apply_parent(self, group_kinds: set[str], live: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The applyset's parent with its inventory: before members are applied it lists every group-kind
        that may hold one (old and new), after a prune only the current ones (KEP-3659's order). Not
        written when the live parent already says exactly that (a redeploy that changes nothing writes
        nothing). Returns the parent as it now is."""
        if live is not None and self.parent_current(group_kinds, live):
            return dict(live)
        return self.kube.apply(self.desired_parent(group_kinds, live))

    @staticmethod
    def group_kinds(objects: Iterable[Mapping[str, Any]]) -> set[str]:
        return {group_kind(o) for o in objects}

    def unservable_ingresses(self, objects: Sequence[RenderedObject]) -> list[Problem]:
        """Ingresses whose address a route needs but that no IngressClass can serve: the wait for their
        address would run out its whole timeout. One list of IngressClasses, only when there are some."""
        ingresses = [o for o in objects if o.kind == "Ingress" and health.needs_wait(o.obj)]
        if not ingresses:
            return []
        try:
            classes, _ = self.kube.list(self.kube.resource("networking.k8s.io/v1", "IngressClass"))
        except KubeError as e:
            if e.status in (403, 404):
                return []   # not allowed to look, or no such API: the wait will tell
            raise
        problems = []
        for obj in ingresses:
            why = health.ingress_class_problem(obj.obj, classes)
            if why:
                problems.append(Problem(
                    f"{obj.describe()} can get no address: {why}; routes.cloudflare.target 'ingress' needs it",
                    obj.source, "install an ingress controller (ingress-nginx, or GKE's 'gce' class) or name an "
                    "existing class in spec.ingressClassName; or point routes.cloudflare.target at a load "
                    "balancer's IP or hostname, or use mode: tunnel"))
        return problems

    # -- apply ------------------------------------------------------------------------------------
    def apply_all(self, objects: Sequence[RenderedObject], live: Mapping[Key, Mapping[str, Any]],
                  dry_run: bool = False, skip: frozenset[Key] = frozenset()
                  ) -> tuple[ApplyResult, dict[Key, dict[str, Any]]]:
        """Server-side apply tier by tier, a tier's objects in parallel; stops after a failed tier. Objects
        in `skip` (unchanged: see `unchanged`) are reported unchanged without a request."""
        result = ApplyResult()
        returned: dict[Key, dict[str, Any]] = {}
        for obj in objects:
            key = key_of(obj.obj)
            if key in skip and key in live:
                returned[key] = dict(live[key])
                result.applied.append((obj.describe(), "unchanged"))
        tiers = plan.tiers([o for o in objects if key_of(o.obj) not in returned])
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
                        # the line of the field the server rejected, when it names one
                        result.where[obj.describe()] = obj.locate(e.fields[0]) if e.fields else obj.source
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
    def prune(self, members: Sequence[Mapping[str, Any]]) -> list[str]:
        """Delete members of this applyset that are no longer rendered, each by its uid: an object deleted
        and created again by someone else meanwhile is not this deploy's to delete."""
        removed = []
        for obj in members:
            res = self.resource_of(obj)
            meta = obj["metadata"]
            try:
                self.kube.delete(res, meta.get("namespace"), meta["name"], uid=str(meta.get("uid", "")))
            except KubeError as e:
                if e.status != 409:
                    raise
                self.console.info(f"  {describe(obj)} was replaced meanwhile by someone else: left alone")
                continue
            removed.append(describe(obj))
        return removed

    # -- release records --------------------------------------------------------------------------
    def releases(self) -> list[tuple[int, dict[str, Any]]]:
        items, _ = self.kube.list(SECRETS, self.target.namespace, plan.record_selector(self.applyset))
        numbered = [(int(i["metadata"]["labels"].get("envship.dev/revision", "0")), i) for i in items]
        return sorted(numbered, key=lambda pair: pair[0])

    def decode_latest(self, releases: Sequence[tuple[int, dict[str, Any]]]) -> DeployRecord | None:
        if not releases:
            return None
        try:
            return plan.decode_release_record(releases[-1][1])
        except (ValueError, TypeError, KeyError) as e:
            self.console.warn(Problem(f"the last release record is unreadable ({type(e).__name__}); "
                                      "rollback is not possible this time"))
            return None

    def record_release(self, record: DeployRecord, releases: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Write the record, keep the last KEEP_RELEASES (of `releases`, read under the lock, and this one),
        and take the secret values out of records that an earlier envship version wrote with them (after a
        rotation they must not live on)."""
        written = self.kube.apply(plan.release_record_object(record, self.applyset))
        res = self.kube.resource("v1", "Secret")
        releases = [*[r for r in releases if r[0] != record.revision], (record.revision, written)]
        for revision, old in releases[:-KEEP_RELEASES]:
            if revision < record.revision:
                self.kube.delete(res, self.target.namespace, old["metadata"]["name"])
        purged = 0
        salt = plan.record_salt(self.applyset)
        for revision, old in releases[-KEEP_RELEASES:]:
            try:
                stored = plan.decode_release_record(old)
            except (ValueError, TypeError, KeyError):
                continue  # unreadable: left as it is (rollback skips it too)
            if revision == record.revision or not stored.holds_secret_values():
                continue
            stored.objects = [plan.without_secret_values(o, salt) for o in stored.objects]
            self.kube.apply(plan.release_record_object(stored, self.applyset))
            purged += 1
        if purged:
            self.console.info(f"removed secret values from {purged} release record(s) an earlier envship version "
                              "wrote with them")

    def new_record(self, revision: int, objects: Sequence[Mapping[str, Any]]) -> DeployRecord:
        release = self.rendering.release
        salt = plan.record_salt(self.applyset)
        return DeployRecord(revision, release.image, release.digest, release.git_sha, release.run_url,
                             release.time,
                             [plan.without_secret_values(o, salt) for o in objects], self.applyset.id,
                             dict(release.promoted_from))


def _outcome(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    if before is None:
        return "created"
    return "configured" if plan.changed(before, after) else "unchanged"


def refuse_foreign(decision: Decision) -> None:
    """Stop at the first rendered object that belongs to someone else (saying how many more there are)."""
    foreign = decision.foreign
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise OperationError(foreign[0].message + more, foreign[0].hint, foreign[0].location)
