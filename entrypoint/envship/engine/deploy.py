"""One deploy, start to end: lock, check ownership, apply in tiers, wait (fast-fail), prune, record; roll
back on failure. What the deploy may change and prune is its applyset's (core/ownership.py)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..adapters import runtime
from ..adapters.console import Console, fenced
from ..adapters.kube import Kube, KubeError
from ..core import health, ownership, plan
from ..core.deployments import Outcome
from ..core.health import Failure, HealthRules
from ..core.naming import sanitize_label
from ..core.ownership import key_of
from ..core.plan import DeployRecord
from ..core.render import RenderedObject, Rendering
from ..errors import OperationError, Problem, RefusedError
from .lock import DeployLock, holder_identity
from .rollout import Rollout, Verdict
from .routes import RoutePlan, Routes, addresses_for, smoke_check
from .session import ApplyResult, Look, Session, Survey, refuse_foreign


@dataclass(frozen=True)
class DeploySettings:
    """How a deploy behaves, whoever asked for it (the CLI or the action)."""

    timeout: float = 600.0
    no_rollback: bool = False
    lock_timeout: float = 600.0
    crashloop_restarts: int = 1
    allow_mass_prune: bool = False  # prune most of the app (or all of its workloads, or a Namespace)
    lease_seconds: int = 30
    heartbeat: float = 15.0         # during a long wait (rollout, lock), a line at least this often


def lock_name(app: str, environment: str) -> str:
    return sanitize_label(f"envship-lock-{app}-{environment}")


class Deploy:
    def __init__(self, kube: Kube, rendering: Rendering, app: str, opts: DeploySettings, console: Console,
                 environ: Mapping[str, str], routes: Routes | None = None) -> None:
        self.kube = kube
        self.rendering = rendering
        self.app = app
        self.opts = opts
        self.console = console
        self.environ = environ
        self.target = rendering.target
        self.session = Session(kube, rendering, app, console, environ)
        self.rules = HealthRules(crashloop_restarts=opts.crashloop_restarts)
        self.namespace_created = False
        self.lock: DeployLock | None = None
        self.routes = routes
        self.route_report = ""   # the route as the summary shows it
        self.outcome = Outcome(ok=False, url=rendering.url)   # for GitHub's statuses, outputs and the summary
        self.previous: DeployRecord | None = None

    @property
    def rollback_enabled(self) -> bool:
        return self.target.environment.protected or not self.opts.no_rollback

    def run(self) -> int:
        objects = self.rendering.objects
        env = self.target
        self.console.info(f"deploying {self.rendering.release.image} to {env.name} ({env.namespace}) on "
                          f"{self.kube.connection.description}")
        if self.routes is not None:   # a route that cannot be made is found before the cluster is touched
            with self.console.group(f"check the route of {self.routes.target.host}"):
                self.routes.preflight()
        with self.console.group(f"connect to {self.kube.connection.description}"):
            namespace, look = self.session.connect_and_look(objects, lock_name(self.app, env.name))
            if namespace is None:
                self.create_namespace(objects)
            else:
                done = self.nothing_to_change(objects, look)
                if done is not None:
                    return done
        self.lock = DeployLock(self.kube, env.namespace, lock_name(self.app, env.name), self.holder(),
                               self.opts.lease_seconds)
        self.lock.acquire(self.opts.lock_timeout,
                          lambda who: self.console.info(f"waiting for the deploy lock: {who}"), self.opts.heartbeat)
        try:
            return self.deploy(objects)
        finally:
            self.lock.release()

    def nothing_to_change(self, objects: Sequence[RenderedObject], look: Look) -> int | None:
        """A redeploy that would change nothing ends here, read-only: no lock, no write, no new record.
        That is when no other deploy holds the lock, the last healthy release applied exactly these
        objects and they are live as it left them (plan.unchanged), nothing is to be pruned or adopted,
        and every workload reports itself healthy. Anything else (None) goes the full way, under the
        lock, which reads the cluster again."""
        if look.lease is not None or not look.releases:
            return None   # a deploy is running, or there is none yet: the full way
        survey = self.session.survey(objects, read=(look.releases, look.parent))
        decision, previous = survey.decision, survey.previous
        self.previous = previous
        if previous is None or decision.foreign or decision.prune or decision.adopted:
            return None
        if not self.session.parent_current(self.session.group_kinds(o.obj for o in decision.apply), survey.parent):
            return None
        skip = self.session.unchanged(survey)
        if any(key_of(o.obj) not in skip for o in decision.apply):
            return None
        addresses = self.rendering.needs_address
        for obj in decision.apply:
            live = survey.live[key_of(obj.obj)]
            if health.needs_wait(obj.obj, addresses) and \
                    health.object_health(live, (), self.rules, addresses).state != health.READY:
                return None
        for note in decision.notes:
            self.console.info(f"note: {note}")
        if self.routes is not None:   # the cluster is right; the route may still lag (a run cut short)
            members = [survey.live[key_of(o.obj)] for o in decision.apply if key_of(o.obj) in survey.live]
            failure = self.converge_route(members, smoke=False, fresh=False)
            if failure:
                raise OperationError(f"the route of {self.routes.target.host} was changed but its smoke check "
                                     f"failed: {failure}; the previous route was restored",
                                     "check the app answers on that path (routes.smoke-check), then re-run")
        release = self.rendering.release
        self.console.info(f"nothing to change: revision {previous.revision} runs {release.image} in "
                          f"{self.target.name} ({self.target.namespace}) with these objects, healthy; "
                          "nothing was written")
        self.set_outputs(previous.revision, 0)
        self.console.summary(f"### envship deploy: {self.target.name} unchanged\n\nRevision {previous.revision} "
                             f"(`{release.image}`) is running and healthy; nothing to change.\n")
        return 0

    def lock_lost(self) -> str | None:
        return self.lock.lost if self.lock is not None else None

    def stop_if_lock_lost(self, before: str) -> None:
        """A deploy that lost its lock stops where it is: another deploy may be running, so this one must
        not prune, record or roll back over it."""
        lost = self.lock_lost()
        if lost:
            raise OperationError(f"the deploy lock was lost ({lost}); stopped before {before}",
                                 "another deploy may be running now; the objects applied so far stay as they are. "
                                 "Re-run envship when it is done (every command converges)")

    def holder(self) -> str:
        url = runtime.run_url(self.environ, attempt=False)  # the run, for people; the nonce tells processes apart
        job = self.environ.get("GITHUB_JOB", "")
        return holder_identity(f"{url}#{job}" if url else "")

    def create_namespace(self, objects: Sequence[RenderedObject]) -> None:
        """The lock lives in the namespace, so it must exist before anything else. A missing one is
        created (POST: never an existing namespace) with the applyset's label, which is how envship
        remembers that the namespace is its own; an existing one is left alone until the ownership
        check under the lock has passed."""
        namespace = self.session.target_namespace(objects)
        # nothing namespaced can be in the way yet, but cluster-scoped objects can: check them first
        refuse_foreign(self.session.survey(objects, namespace_exists=False).decision)
        try:
            self.kube.create(self.session.resource_of(namespace.obj), None, namespace.obj)
        except KubeError as e:
            if e.status != 409:
                raise
            return  # created meanwhile by someone else: judged under the lock like any existing namespace
        self.namespace_created = True
        self.console.info(f"  {namespace.describe()} created")

    def check_ownership(self, survey: Survey) -> None:
        """Everything that must hold before the first write under the lock."""
        decision = survey.decision
        refuse_foreign(decision)
        if not self.opts.allow_mass_prune:
            sweeping = ownership.sweeping_prune(decision, self.app, self.target.namespace)
            if sweeping is not None:
                raise RefusedError(f"this deploy stops before changing anything: {sweeping.message}", sweeping.hint)
        if self.rendering.needs_address:
            unservable = self.session.unservable_ingresses(decision.apply)
            if unservable:
                raise OperationError(unservable[0].message, unservable[0].hint, unservable[0].location)
        for note in decision.notes:
            self.console.info(f"note: {note}")
        for name in decision.adopted:
            self.console.info(f"  {name} adopted (adopt: true): envship owns it from now on")

    def deploy(self, objects: Sequence[RenderedObject]) -> int:
        survey = self.session.survey(objects)
        previous = self.previous = survey.previous
        self.check_ownership(survey)
        decision = survey.decision
        members = self.session.group_kinds(o.obj for o in decision.apply)
        known = members | self.session.group_kinds(decision.members) | ownership.parent_group_kinds(survey.parent)
        rollout = self.rollout([o.obj for o in decision.apply])
        rollout.start()   # the watches open while the objects are applied
        try:
            with self.console.group(f"apply {len(decision.apply)} objects to {self.target.namespace}"):
                # the inventory first: a deploy killed after this still finds everything it may have created
                parent = self.session.apply_parent(known, survey.parent)
                result, applied = self.session.apply_all(decision.apply, survey.live,
                                                         skip=self.session.unchanged(survey))
                created = f"Namespace/{self.target.namespace}" if self.namespace_created else ""
                result.applied = [(n, "created" if n == created else o) for n, o in result.applied]
                self.report_apply(result, already_shown=created)
            if result.failed:
                raise self.apply_failure(result)
            rollout.expect(applied.values())
            with self.console.group("wait for the rollout"):
                started = time.monotonic()
                verdict = self.wait(rollout)
                self.outcome.rollout_seconds = time.monotonic() - started
        finally:
            rollout.stop()
        self.stop_if_lock_lost("judging the rollout, pruning or recording anything")
        if verdict.ok and self.routes is not None:
            failure = self.converge_route(rollout.published(), smoke=True)
            if failure:
                verdict = Verdict(ok=False, failed=f"the route of {self.routes.target.host}",
                                  failure=Failure("SmokeCheckFailed", failure))
        if verdict.ok:
            self.report_addresses(applied.values())
            pruned = self.session.prune(decision.prune)
            self.session.apply_parent(members, parent)
            revision = (previous.revision if previous else 0) + 1
            self.stop_if_lock_lost("recording the release")
            self.session.record_release(self.session.new_record(revision, [o.obj for o in decision.apply]),
                                        survey.releases)
            self.report_success(result, pruned, revision)
            return 0
        self.report_failure(verdict)
        self.roll_back(previous, verdict)
        return 1

    def converge_route(self, published: Iterable[Mapping[str, Any]], smoke: bool, fresh: bool = True) -> str | None:
        """Point the host at the healthy release (after the rollout: never before). With a smoke check
        configured, a failing check restores the previous route and returns why; the check runs after every
        deploy that changed something (`smoke`), and after a route change. A route that cannot be written
        leaves the healthy release in place, unrecorded, so a re-run finishes the job."""
        from ..adapters.cloudflare import CloudflareError

        routes = self.routes
        assert routes is not None
        host = routes.target.host
        with self.console.group(f"route {host}"):
            try:
                plan = routes.plan(addresses_for(host, published), fresh)
                for line in routes.describe(plan):
                    self.console.info(line)
                done: RoutePlan | None = routes.apply(plan) if plan.writes else None
            except (CloudflareError, RefusedError) as e:
                raise OperationError(f"the new release is healthy on the cluster, but its route was not updated: "
                                     f"{e.problems[0].message}",
                                     (e.problems[0].hint + "; " if e.problems[0].hint else "") +
                                     "then re-run the deploy (it finishes the route without re-rolling) or "
                                     "'envship routes'") from e
            self.route_report = f"{host}: {plan.dns.wanted_text()}" + (f", {plan.action}" if done else "")
            check = routes.config.smoke_check
            if check is None or not (smoke or done):
                return None
            failure = smoke_check(check, host, self.environ, self.console)
            if failure is None:
                self.console.info("  smoke check passed")
                return None
            if done is not None:
                self.console.info(f"  smoke check failed: restoring the previous route of {host}")
                routes.restore(done)
            return failure

    def rollout(self, objects: Sequence[Mapping[str, Any]]) -> Rollout:
        return Rollout(self.kube, self.target.namespace, self.session.selector, objects, self.rules,
                       lambda line: self.console.info(f"  {line}"), self.lock_lost, self.rendering.needs_address,
                       heartbeat=self.opts.heartbeat)

    def wait(self, rollout: Rollout) -> Verdict:
        """The rollout's verdict. An error while waiting is a failed verdict too: what was applied may be
        unhealthy, so it goes down the one failure path (report, rollback, summary)."""
        try:
            verdict = rollout.wait(self.opts.timeout)
        except KubeError as e:
            return Verdict(ok=False, failed="the wait", failure=Failure("WatchFailed", e.problems[0].message))
        if not verdict.ok and verdict.failure is not None and verdict.failure.reason not in ("WatchFailed",
                                                                                               "LockLost"):
            rollout.explain(verdict)
        return verdict

    # -- rollback -----------------------------------------------------------------------------------
    def roll_back(self, previous: DeployRecord | None, verdict: Verdict) -> None:
        if not self.rollback_enabled:
            self.console.info("rollback disabled ({--no-rollback}): the failed release stays in place")
            return
        if previous is None:
            self.console.info("no earlier healthy release recorded: nothing to roll back to")
            return
        self.console.info(f"rolling back to revision {previous.revision} ({previous.image})")
        with self.console.group(f"roll back to revision {previous.revision}"):
            restored = [RenderedObject(plan.as_member(o, self.session.applyset)) for o in previous.objects]
            survey = self.session.survey(restored)
            decision = survey.decision
            if decision.foreign:   # taken by someone else since that release: not ours to restore
                self.console.error(Problem(f"rollback stopped: {decision.foreign[0].message}", None,
                                           "fix the cluster by hand or deploy a known-good digest"), "rollback failed")
                return
            # Secrets are recorded without their values: they are left as they are, and checked
            kept = [o for o in decision.apply if plan.values_left_out(o.obj)]
            result, reapplied = self.session.apply_all([o for o in decision.apply if o not in kept], survey.live)
            self.check_kept_secrets(kept, survey)
            if result.failed:
                self.console.error(Problem(f"rollback failed to apply {result.failed[0][0]}: {result.failed[0][1]}",
                                           None, "fix the cluster by hand or deploy a known-good digest"),
                                   "rollback failed")
                return
            rollout = self.rollout(previous.objects)
            rollout.expect(reapplied.values())
            back = self.wait(rollout)
        if back.ok:
            pruned = self.session.prune(decision.prune)
            self.console.info(f"rolled back to revision {previous.revision}: healthy"
                              + (f"; removed {', '.join(pruned)}" if pruned else ""))
            self.console.summary(f"**Rolled back** to revision {previous.revision} (`{previous.image}`): healthy.\n")
        else:
            failure = back.failure
            self.console.error(Problem(f"rollback to revision {previous.revision} is not healthy either: "
                                       f"{back.failed} {failure.reason if failure else ''}", None,
                                       "the cluster itself may be unhealthy; investigate with kubectl"),
                               "rollback failed")
            self.console.summary(f"**Rollback** to revision {previous.revision} failed too.\n")

    def check_kept_secrets(self, kept: Sequence[RenderedObject], survey: Survey) -> None:
        """A recorded Secret is not re-applied (its values are not in the record): the live one must still
        hold what the release ran with. The env Secret always does (immutable, named by its content)."""
        salt = plan.record_salt(self.session.applyset)
        for obj in kept:
            live = survey.live.get(key_of(obj.obj))
            recorded = obj.obj["metadata"]["annotations"][plan.VALUES_HASH]
            if live is None:
                problem = f"{obj.describe()} is gone and cannot be restored"
            elif plan.values_fingerprint(live, salt) != recorded:
                problem = f"{obj.describe()} changed since that release and cannot be restored"
            else:
                continue
            self.console.warn(Problem(f"rollback: {problem} (release records keep no secret values)", None,
                                      "deploy the previous digest again with its secret values"))

    # -- reporting ------------------------------------------------------------------------------------
    def report_addresses(self, applied: Iterable[Mapping[str, Any]]) -> None:
        """Ingresses and LoadBalancer Services that were not waited for (no route needs their address):
        what they had when applied, so the log still says where the app is reachable."""
        if self.rendering.needs_address:
            return
        for obj in applied:
            if health.publishes_address(obj):
                address = health.address_of(obj)
                where = f"at {address}" if address else "has no address yet (not waited for: no route needs it)"
                self.console.info(f"  {ownership.describe(obj)} {where}")

    def report_apply(self, result: ApplyResult, already_shown: str = "") -> None:
        for name, outcome in sorted(result.applied):
            if name != already_shown:
                self.console.info(f"  {name} {outcome}")

    def apply_failure(self, result: ApplyResult) -> OperationError:
        name, message = result.failed[0]
        done = ", ".join(n for n, _ in result.applied) or "none"
        skipped = ", ".join(result.not_attempted) or "none"
        return OperationError(
            f"applying {name} failed: {message}",
            f"applied before the failure: {done}; not attempted: {skipped}. Fix the object and re-run: "
            "apply is idempotent", result.where.get(name))

    def report_failure(self, verdict: Verdict) -> None:
        failure = verdict.failure
        assert failure is not None
        where = ""
        if failure.container:
            where += f" container {failure.container}"
        if failure.pod:
            where += f" of pod {failure.pod}"
        message = f"{verdict.failed} is not healthy:{where} {failure.reason}: {failure.message}".strip()
        if failure.reason == "WatchFailed":
            message = f"the rollout could not be watched ({verdict.failed}): {failure.message}"
        self.outcome.ok, self.outcome.message = False, f"{verdict.failed}: {failure.reason}"
        details = []
        if verdict.events:
            details += ["last events:", *(f"  {e}" for e in verdict.events)]
        if verdict.logs:
            details += ["last log lines:", *(f"  {line}" for line in verdict.logs.splitlines()[-20:])]
        # events and pod logs come from the cluster (and the app): printed as untrusted text
        self.console.error(Problem(message, None, self.failure_hint(failure.reason)), "rollout failed",
                           "\n".join(details))
        block = fenced("\n".join([message, *details]))
        self.console.summary(f"### envship deploy: {self.target.name} failed\n\n{block}\n")

    @staticmethod
    def failure_hint(reason: str) -> str:
        return {
            "ImagePullBackOff": "the cluster cannot pull the image: check the digest exists and the node's pull access",
            "ErrImagePull": "the cluster cannot pull the image: check the digest exists and the node's pull access",
            "CrashLoopBackOff": "the container exits right after starting: see the log lines above",
            "CreateContainerConfigError": "a ConfigMap or Secret key the pod needs is missing: check env/envFrom",
            "Unschedulable": "no node can take the pod: lower its requests or add capacity",
            "ProgressDeadlineExceeded": "the rollout made no progress within the deadline: see the events",
            "Timeout": "raise {--timeout} if the rollout is just slow",
            "SmokeCheckFailed": "the release does not answer through its route as routes.smoke-check expects; the "
                                "previous route is back: see the app's logs",
            "WatchFailed": "envship cannot tell whether the new release is healthy, so it is treated as failed: "
                           "check the deploying identity may get, list and watch pods, replicasets and the "
                           "workloads, then re-run",
        }.get(reason, "see the events above")

    def set_outputs(self, revision: int, changes: int) -> None:
        self.outcome.ok, self.outcome.revision, self.outcome.changes = True, revision, changes
        outputs = {**self.rendering.outputs(), "revision": str(revision), "changes": str(changes),
                   "previous-digest": self.previous.digest if self.previous else ""}
        for name, value in outputs.items():
            self.console.set_output(name, value)

    def report_success(self, result: ApplyResult, pruned: list[str], revision: int) -> None:
        release = self.rendering.release
        url = self.rendering.url
        self.set_outputs(revision, result.count("created") + result.count("configured") + len(pruned))
        for name in pruned:
            self.console.info(f"  {name} pruned")
        self.console.info(f"deployed {release.image} to {self.target.name} ({self.target.namespace}), "
                          f"revision {revision}: {result.count('created')} created, "
                          f"{result.count('configured')} configured, {result.count('unchanged')} unchanged, "
                          f"{len(pruned)} pruned")
        rows = [("environment", self.target.name), ("namespace", self.target.namespace),
                ("image", release.image), ("digest", release.digest), ("git sha", release.git_sha or "-"),
                ("revision", str(revision)), ("rollout", f"{self.outcome.rollout_seconds:.1f} s"),
                ("previous", self.previous.image if self.previous else "-"),
                ("objects", f"{result.count('created')} created, {result.count('configured')} configured, "
                            f"{result.count('unchanged')} unchanged"),
                ("pruned", ", ".join(pruned) or "-"), ("url", url or "-")]
        if self.route_report:
            rows.append(("route", self.route_report))
        table = "\n".join(f"| {k} | `{v}` |" for k, v in rows)
        self.console.summary(f"### envship deploy: {self.target.name} healthy\n\n| | |\n|---|---|\n{table}\n")

