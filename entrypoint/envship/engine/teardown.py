"""Remove one deploy target (a preview, usually): its route, then its objects, then its namespace when
envship created it. Only members of the target's ApplySet are deleted, each by uid; the records and the
parent go last, so a teardown cut short is finished by running it again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..adapters.console import Console
from ..adapters.kube import Kube, KubeError
from ..core import plan
from ..core.render import Rendering
from .deploy import lock_name
from .lock import DeployLock
from .routes import Routes
from .session import NAMESPACES, Session


@dataclass
class TeardownResult:
    removed: list[str] = field(default_factory=list)
    namespace_deleted: bool = False
    route_removed: bool = False
    found: bool = True    # anything of the target was there


class Teardown:
    def __init__(self, kube: Kube, rendering: Rendering, console: Console, environ: Mapping[str, str],
                 routes: Routes | None, holder: str, lock_timeout: float = 600.0) -> None:
        self.kube = kube
        self.rendering = rendering
        self.console = console
        self.session = Session(kube, rendering, rendering.app, console, environ)
        self.routes = routes
        self.holder = holder
        self.lock_timeout = lock_timeout
        self.target = rendering.target

    def run(self) -> TeardownResult:
        result = TeardownResult()
        if self.routes is not None:   # first: a host must never point at a namespace being deleted
            plan_ = self.routes.plan_removal()
            if plan_.writes:
                self.routes.remove(plan_)
                result.route_removed = True
                self.console.info(f"  route {self.routes.target.host} removed")
        namespace = self.session.namespace()
        if namespace is None:
            result.found = result.route_removed
            return result
        lock = DeployLock(self.kube, self.target.namespace, lock_name(self.rendering.app, self.target.name),
                          self.holder)
        lock.acquire(self.lock_timeout, lambda who: self.console.info(f"waiting for the deploy lock: {who}"))
        try:
            self.remove_objects(result, namespace)
        finally:
            lock.release()
        return result

    def remove_objects(self, result: TeardownResult, namespace: Mapping[str, Any]) -> None:
        survey = self.session.survey([])
        members = [m for m in survey.decision.prune
                   if not (m.get("kind") == "Namespace" and m["metadata"]["name"] == self.target.namespace)]
        # the namespace is envship's only when envship created it: then it carries the applyset's label
        own_namespace = self.session.applyset.owns(namespace)
        if not members and survey.parent is None and not own_namespace:
            result.found = result.route_removed
            return
        result.removed = self.session.prune(members)
        for name in result.removed:
            self.console.info(f"  {name} deleted")
        self.delete_records(survey.parent is not None)
        if own_namespace:
            try:
                self.kube.delete(NAMESPACES, None, self.target.namespace, uid=str(namespace["metadata"]["uid"]))
            except KubeError as e:
                if e.status not in (404, 409):
                    raise
            result.namespace_deleted = True
            self.console.info(f"  Namespace/{self.target.namespace} deleted (envship created it)")
        else:
            self.console.info(f"  namespace {self.target.namespace} kept: envship did not create it")

    def delete_records(self, has_parent: bool) -> None:
        secrets = self.kube.resource("v1", "Secret")
        records, _ = self.kube.list(secrets, self.target.namespace, plan.record_selector(self.session.applyset))
        for record in records:
            self.kube.delete(secrets, self.target.namespace, record["metadata"]["name"],
                             uid=str(record["metadata"].get("uid", "")))
        if has_parent:   # the inventory last: until here a re-run still finds every member
            parent = self.session.parent()
            if parent is not None:
                self.kube.delete(secrets, self.target.namespace, parent["metadata"]["name"],
                                 uid=str(parent["metadata"].get("uid", "")))
