"""An environment's Cloudflare route: plan from one read, apply owned records and rules only, verify,
restore, remove. core/routes.py decides; this module reads and writes through adapters/cloudflare.py.

Requests: the token check and the zone lookup once per run; then one read of the host's records (which
also finds this target's records under other names: the filters are OR-ed) and, in tunnel mode, one
read of the tunnel's configuration. A route that is already right costs those reads and nothing else.

Tunnel configurations are one document written whole, without a precondition: envship's writers of one
tunnel take a Lease named for it (`routes.cloudflare.lock-namespace`, default `default`), re-read under
it, PUT, and read back; when the document changed under them anyway (a writer outside envship), they
read, merge and write again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..adapters.cloudflare import Cloudflare, CloudflareError, Zone
from ..adapters.console import Console
from ..adapters.kube import Kube
from ..core import routes
from ..core.config import CloudflareRoutes, SmokeCheck
from ..core.naming import expand_placeholders, sanitize_label
from ..core.routes import DnsChange, Record, RouteOwner, TunnelChange, Wanted
from ..errors import OperationError, Problem, RefusedError
from .lock import DeployLock

TUNNEL_ATTEMPTS = 5
TUNNEL_LOCK_TIMEOUT = 300.0


@dataclass(frozen=True)
class RouteTarget:
    """The host to route and whose it is."""

    host: str
    owner: RouteOwner
    adopt: bool = False
    preview: bool = False
    pr: int | None = None
    adopt_field: str = "adopt: true"


@dataclass
class RoutePlan:
    host: str
    mode: str
    dns: DnsChange
    tunnel: TunnelChange | None = None

    @property
    def writes(self) -> int:
        return self.dns.writes + (self.tunnel.writes if self.tunnel else 0)

    @property
    def action(self) -> str:
        actions = [self.dns.action] + ([self.tunnel.action] if self.tunnel else [])
        changed = [a for a in actions if a != "none"]
        return changed[0] if changed else "none"

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(host, current, desired, action) for the plan's table."""
        rows = [(self.host, self.dns.current_text(), self.dns.wanted_text() if self.dns.action != "delete" else "-",
                 self.dns.action)]
        for record in self.dns.elsewhere:
            rows.append((record.name, record.describe(), "-", "delete (host no longer configured)"))
        if self.tunnel is not None:
            before = str(self.tunnel.before.get("service")) if self.tunnel.before else "-"
            after = "-" if self.tunnel.action == "remove" else self.tunnel.service
            rows.append((f"{self.host} (tunnel rule)", before, after, self.tunnel.action))
        return rows


class Routes:
    def __init__(self, cf: Cloudflare, config: CloudflareRoutes, target: RouteTarget, console: Console,
                 kube: Kube | None = None, holder: str = "", namespace: str = "") -> None:
        self.cf = cf
        self.config = config
        self.target = target
        self.console = console
        self.kube = kube
        self.holder = holder
        self.namespace = namespace     # the environment's namespace, for {namespace} in the tunnel service
        self._zone: Zone | None = None
        self._records: list[Record] | None = None      # the last read, for a plan that may reuse it
        self._tunnel_doc: dict[str, Any] | None = None
        self.connectors_checked = False
        self._warned = False

    @property
    def tunnel_mode(self) -> bool:
        return self.config.mode == "tunnel"

    @property
    def service(self) -> str:
        values = {"namespace": self.namespace, "pr": str(self.target.pr or "")}
        return expand_placeholders(self.config.service or "", values)

    def zone(self) -> Zone:
        if self._zone is None:
            self.cf.verify(self.config.account)
            self._zone = self.cf.zone(self.config.zone)
            if self._zone.status not in ("active", ""):
                self.console.warn(Problem(f"zone {self._zone.name} is {self._zone.status} in Cloudflare, not active",
                                          None, "until its nameservers point at Cloudflare, the route is not served"))
        return self._zone

    # -- reading and planning ----------------------------------------------------------------------
    def found(self, fresh: bool = True) -> list[Record]:
        if fresh or self._records is None:
            data = self.cf.records(self.zone(), self.target.host, self.target.owner.mark)
            self._records = [Record.from_api(r) for r in data]
        return self._records

    def tunnel_document(self, fresh: bool = True) -> dict[str, Any]:
        if fresh or self._tunnel_doc is None:
            self._tunnel_doc = self.cf.tunnel_config(str(self.config.account), str(self.config.tunnel))
        return self._tunnel_doc

    def wanted(self, addresses: Sequence[str]) -> list[Wanted]:
        if self.tunnel_mode:
            return [routes.tunnel_record(str(self.config.tunnel))]
        if self.config.target != "ingress":
            return routes.wanted_records([self.config.target])
        return routes.wanted_records(addresses)

    def plan(self, addresses: Sequence[str] = (), fresh: bool = True) -> RoutePlan:
        """What applying the route would do; raises RefusedError when a record or rule that is not this
        target's stands in the way. Sends reads only (none with `fresh` false, after a preflight)."""
        wanted = self.wanted(addresses)
        if not wanted:
            raise OperationError(f"no address to point {self.target.host} at: the cluster published none",
                                 "check the Ingress, Gateway or LoadBalancer Service has an address: "
                                 "kubectl get ingress,gateway,service")
        dns = routes.plan_records(self.target.host, wanted, self.found(fresh), self.target.owner, self.target.adopt,
                                  self.target.adopt_field)
        plan = RoutePlan(self.target.host, self.config.mode, dns)
        if self.tunnel_mode:
            document = self.tunnel_document(fresh)
            config = dict(document.get("config") or {})
            plan.tunnel = routes.merge_rule(config, self.target.host, self.service)
            self.check_rule_owner(plan)
        return plan

    def check_rule_owner(self, plan: RoutePlan) -> None:
        """A rule for the host is this target's only when the host's record is (core/routes.py)."""
        tunnel = plan.tunnel
        if tunnel is None or tunnel.before is None or (plan.dns.current and plan.dns.action != "adopt"):
            return
        if self.target.adopt and tunnel.action == "none":
            return   # adopted along with its record: it already routes where envship would
        raise RefusedError(
            f"tunnel {self.config.tunnel} already has a rule for {self.target.host} "
            f"(-> {tunnel.before.get('service')}) that envship did not create (the host has no record with "
            f"this environment's mark)",
            f"remove the rule in Cloudflare (Zero Trust > Networks > Tunnels), choose another host, or set "
            f"{self.target.adopt_field} when it already points at {self.service}")

    def warnings(self) -> list[Problem]:
        if self._warned:
            return []
        self._warned = True
        problem = routes.host_depth_problem(self.target.host, self.config.zone, self.target.preview,
                                            self.target.owner.app)
        return [problem] if problem else []

    def plan_removal(self) -> RoutePlan:
        dns = routes.plan_removal(self.target.host, self.found(), self.target.owner)
        plan = RoutePlan(self.target.host, self.config.mode, dns)
        if self.tunnel_mode:
            document = self.tunnel_document()
            change = routes.remove_rule(dict(document.get("config") or {}), self.target.host)
            if change.action == "remove" and not dns.current:
                self.console.warn(Problem(f"tunnel {self.config.tunnel} has a rule for {self.target.host}, but the "
                                          "host has no record of this environment's: the rule is not envship's and "
                                          "stays", None, "remove it in Cloudflare if it is stale"))
                change = TunnelChange(self.target.host, "", "none", change.config)
            plan.tunnel = change
        return plan

    def preflight(self) -> RoutePlan | None:
        """Before the cluster is touched: the token works, the zone is there, nothing foreign is at the
        host, and a tunnel the route must change has a connector. Reads only; a plan made after it with
        `fresh=False` reuses them. Returns the plan when the content is known without the cluster."""
        found = self.found()
        routes.check_foreign(self.target.host, found, self.target.owner, self.target.adopt, self.target.adopt_field)
        for problem in self.warnings():
            self.console.warn(problem)
        if not self.tunnel_mode and self.config.target == "ingress":
            return None    # the address comes from the cluster after the rollout
        plan = self.plan(fresh=False)
        if plan.writes:
            self.check_connectors()
        return plan

    def check_connectors(self) -> None:
        """A tunnel without a running cloudflared answers error 1033: said before any cut-over to it."""
        if not self.tunnel_mode or self.connectors_checked:
            return
        tunnel = self.cf.tunnel(str(self.config.account), str(self.config.tunnel))
        connections = [c for c in tunnel.get("connections") or [] if isinstance(c, dict)
                       and not c.get("is_pending_reconnect")]
        if tunnel.get("deleted_at"):
            raise OperationError(f"tunnel {self.config.tunnel} was deleted in Cloudflare",
                                 "create a tunnel and put its id in routes.cloudflare.tunnel")
        if not connections:
            status = tunnel.get("status") or "without connections"
            raise OperationError(
                f"tunnel {tunnel.get('name') or self.config.tunnel} is {status}: no cloudflared connector is "
                f"running, so {self.target.host} would answer Cloudflare error 1033 once routed to it",
                "start cloudflared for this tunnel (e.g. the cloudflared Deployment in the cluster) and re-run; "
                "the route was not changed")
        self.connectors_checked = True

    # -- writing ---------------------------------------------------------------------------------------
    def apply(self, plan: RoutePlan) -> RoutePlan:
        """Make the route what `plan` says. DNS first (the mark that makes the tunnel rule ours), then
        the tunnel rule; returns the plan as carried out."""
        if plan.tunnel is not None and plan.writes:
            self.check_connectors()
        if plan.dns.writes:
            self.write_records(plan.dns)
        if plan.tunnel is not None and plan.tunnel.writes:
            plan.tunnel = self.write_rule(lambda config: routes.merge_rule(config, self.target.host, self.service))
        return plan

    def remove(self, plan: RoutePlan) -> None:
        """The tunnel rule first, then the records: a rule never outlives the record that makes it ours."""
        if plan.tunnel is not None and plan.tunnel.writes:
            self.write_rule(lambda config: routes.remove_rule(config, self.target.host))
        if plan.dns.writes:
            self.write_records(plan.dns)

    def restore(self, done: RoutePlan) -> None:
        """Put back what `done` replaced: the host's records and tunnel rule as they were before."""
        if done.tunnel is not None and done.tunnel.writes:
            before = done.tunnel.before
            self.write_rule(lambda config: routes.restore_rule(config, self.target.host, before))
        if done.dns.writes:
            previous = [Wanted(r.type, r.content) for r in done.dns.current]
            found = self.found()
            change = (routes.plan_records(self.target.host, previous, found, self.target.owner, False,
                                          self.target.adopt_field) if previous
                      else routes.plan_removal(self.target.host, found, self.target.owner))
            if done.dns.action == "adopt":   # an adopted record goes back to having no mark
                change.patches = [p for p in change.patches if p.get("comment") is None]
            if change.writes:
                self.write_records(change)

    def write_records(self, change: DnsChange) -> None:
        zone = self.zone()
        if change.writes == 1 and change.posts:
            self.cf.create_record(zone, change.posts[0])
        elif change.writes == 1 and change.patches:
            patch = dict(change.patches[0])
            self.cf.patch_record(zone, str(patch.pop("id")), patch)
        elif change.writes == 1 and change.deletes:
            self.cf.delete_record(zone, change.deletes[0])
        elif change.writes:
            self.cf.batch(zone, change.batch())   # atomic: A <-> CNAME never meets error 81053

    def write_rule(self, change_of: Callable[[dict[str, Any]], TunnelChange]) -> TunnelChange:
        """Read, merge, write, read back, under the tunnel's lease; again when the document changed under
        the write."""
        lock = self.tunnel_lock()
        try:
            return self._write_rule(change_of)
        finally:
            if lock is not None:
                lock.release()

    def _write_rule(self, change_of: Callable[[dict[str, Any]], TunnelChange]) -> TunnelChange:
        account, tunnel = str(self.config.account), str(self.config.tunnel)
        change = TunnelChange(self.target.host, "", "none", {})
        for attempt in range(1, TUNNEL_ATTEMPTS + 1):
            document = self.cf.tunnel_config(account, tunnel)
            version = int(document.get("version") or 0)
            change = change_of(dict(document.get("config") or {}))
            if change.action == "none":
                return change
            written = self.cf.put_tunnel_config(account, tunnel, change.config)
            if int(written.get("version") or 0) > version + 1:
                self.console.warn(Problem(
                    f"another writer changed tunnel {tunnel}'s configuration between envship's read and write "
                    f"(version {version} -> {written.get('version')}); its change may have been overwritten",
                    None, "writers outside envship (the dashboard, other tools) are not serialised with envship's; "
                          "check the tunnel's public hostnames"))
            back = dict(self.cf.tunnel_config(account, tunnel).get("config") or {})
            if self.landed(change, back):
                return change
            self.console.info(f"  tunnel configuration changed under the write (attempt {attempt}): merging again")
            time.sleep(min(0.2 * attempt, 1.0))
        raise CloudflareError(f"tunnel {tunnel}'s configuration kept changing while envship wrote its rule for "
                              f"{self.target.host} ({TUNNEL_ATTEMPTS} attempts)",
                              "another program rewrites the tunnel's configuration continuously; stop it, or let "
                              "envship own this host's rule alone, and re-run")

    def landed(self, change: TunnelChange, back: Mapping[str, Any]) -> bool:
        """The read-back holds this write: the host's rule as written, and every other rule it kept."""
        rule, written = routes.host_rule(back, self.target.host), routes.host_rule(change.config, self.target.host)
        ours_ok = rule == written if written is None or rule is None else rule.get("service") == written.get("service")
        return ours_ok and not routes.rules_kept(change.config, back, self.target.host)

    def tunnel_lock(self) -> DeployLock | None:
        if self.kube is None:
            return None
        name = sanitize_label(f"envship-tunnel-{self.config.tunnel}")
        # the section it guards is three requests long: waiters look again often
        lock = DeployLock(self.kube, self.config.lock_namespace, name, self.holder, retry_period=0.2)
        try:
            lock.acquire(TUNNEL_LOCK_TIMEOUT,
                         lambda who: self.console.info(f"  waiting for the tunnel's lock: {who}"))
        except OperationError as e:
            raise OperationError(f"the tunnel's lock {self.config.lock_namespace}/{name} stayed taken for "
                                 f"{int(TUNNEL_LOCK_TIMEOUT)} s", "another envship run is writing this tunnel's "
                                 "configuration, or died holding the lock (it expires 30 s after its last renewal); "
                                 "re-run") from e
        return lock

    # -- reporting --------------------------------------------------------------------------------------
    def describe(self, plan: RoutePlan) -> Iterable[str]:
        for host, current, desired, action in plan.rows():
            if action == "none":
                yield f"  route {host}: unchanged ({current})"
            else:
                yield f"  route {host}: {action}: {current} -> {desired}"


def addresses_for(host: str, objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """The addresses to route `host` to: those of the Ingresses or Gateways that serve it (by their rules'
    hosts, their listeners' hostnames), or failing that of every Ingress and Gateway, or of LoadBalancer
    Services."""
    from ..core import health

    objects = [o for o in objects if health.publishes_address(o)]
    fronts = [o for o in objects if o.get("kind") == "Ingress" or health.is_gateway(o)]
    serving = [o for o in fronts if host in _hosts_served(o)]
    chosen = serving or fronts or objects
    found: list[str] = []
    for obj in chosen:
        for address in health.address_of(obj).split(", "):
            if address and address not in found:
                found.append(address)
    return found


def _hosts_served(obj: Mapping[str, Any]) -> set[str]:
    spec = obj.get("spec") or {}
    entries = spec.get("rules") if obj.get("kind") == "Ingress" else spec.get("listeners")
    key = "host" if obj.get("kind") == "Ingress" else "hostname"
    return {str(e.get(key, "")).lower() for e in entries or [] if isinstance(e, dict)}


def smoke_check(check: SmokeCheck, host: str, environ: Mapping[str, str], console: Console) -> str | None:
    """None when `scheme://host/path` answered the expected status within the timeout, else why not."""
    from ..adapters import web

    url = f"{check.scheme}://{host}{check.path}"
    console.info(f"  smoke check: GET {url}, expecting {check.status} within {int(check.timeout)} s")
    return web.probe(url, check.status, check.timeout, environ)
