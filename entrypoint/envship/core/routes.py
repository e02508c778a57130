"""Cloudflare routes as data (pure): who owns a DNS record, what an environment's host should resolve to,
and how a tunnel's ingress list changes. engine/routes.py reads and writes; this module decides.

Ownership follows external-dns's registry idea, in the record itself: every record envship creates carries
a comment naming its target (`envship app=hello env=staging ns=hello-staging repo=acme/hello`, at most 100
characters, the limit of Free zones). A record is envship's for this target only when its comment is
exactly that mark. A tunnel ingress rule has no comment field, so its ownership is its host's: the rule
for host H is this target's when the DNS record at H carries this target's mark (the record is created
before the rule and deleted after it, so a rule without a marked record never is envship's).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import Problem, RefusedError

COMMENT_LIMIT = 100   # characters of a record comment on Free zones (paid plans: 500): the mark fits both
MARK_PREFIX = "envship "
ADDRESS_TYPES = ("A", "AAAA", "CNAME")   # the types a proxied route uses; also all Cloudflare can proxy
AUTOMATIC_TTL = 1     # proxied records always report ttl 1; asking for another one updates forever
TUNNEL_DOMAIN = "cfargotunnel.com"
CATCH_ALL = {"service": "http_status:404"}


@dataclass(frozen=True)
class RouteOwner:
    """The target a route belongs to: the same identity as the target's ApplySet, plus the repository."""

    app: str
    environment: str
    namespace: str
    repository: str = ""

    @property
    def mark(self) -> str:
        words = f"{MARK_PREFIX}app={self.app} env={self.environment} ns={self.namespace}"
        if self.repository:
            words += f" repo={self.repository}"
        if len(words) <= COMMENT_LIMIT:
            return words
        # long names: a hash of the whole identity keeps marks distinct; the readable part is cut to fit
        digest = hashlib.sha256(words.encode()).hexdigest()[:20]
        return f"{MARK_PREFIX}id={digest} app={self.app} env={self.environment} ns={self.namespace}"[:COMMENT_LIMIT]


def is_envship_mark(comment: str) -> bool:
    return comment.startswith(MARK_PREFIX) and ("app=" in comment or "id=" in comment)


@dataclass(frozen=True)
class Record:
    """A DNS record, with the fields envship reads (the API's JSON has more)."""

    id: str
    type: str
    name: str
    content: str
    proxied: bool = False
    ttl: int = AUTOMATIC_TTL
    comment: str = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Record:
        return cls(str(data.get("id", "")), str(data.get("type", "")), str(data.get("name", "")).lower(),
                   str(data.get("content", "")), bool(data.get("proxied")), int(data.get("ttl") or AUTOMATIC_TTL),
                   str(data.get("comment") or ""))

    def describe(self) -> str:
        return f"{self.type} {self.content}" + (" (proxied)" if self.proxied else "")


@dataclass(frozen=True)
class Wanted:
    """One record the host should have: always proxied, ttl automatic, with the owner's mark."""

    type: str
    content: str

    def describe(self) -> str:
        return f"{self.type} {self.content} (proxied)"


def normal_content(kind: str, content: str) -> str:
    """Content as compared: IPv6 in its short form, hostnames lower-case without the final dot."""
    if kind in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(content))
        except ValueError:
            return content
    return content.lower().rstrip(".")


def wanted_records(addresses: Sequence[str]) -> list[Wanted]:
    """What a host should point at, from a literal target or the addresses an Ingress published: an A or
    AAAA record per IP address (several make a round-robin the proxy balances), or one CNAME to a hostname
    (a name with a CNAME can have no other address record: error 81053). IP addresses win over hostnames
    when a load balancer publishes both."""
    ips: list[Wanted] = []
    names: list[Wanted] = []
    for address in (a.strip() for a in addresses):
        if not address:
            continue
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            names.append(Wanted("CNAME", normal_content("CNAME", address)))
            continue
        ips.append(Wanted("A" if ip.version == 4 else "AAAA", str(ip)))
    if ips:
        return sorted(set(ips), key=lambda w: (w.type, w.content))
    return names[:1]


def tunnel_record(tunnel_id: str) -> Wanted:
    return Wanted("CNAME", f"{tunnel_id.lower()}.{TUNNEL_DOMAIN}")


@dataclass
class DnsChange:
    """What becomes of one host's records: requests to send (`posts`, `patches`, `deletes`) and, for the
    plan table and a restore, what is there now and what will be."""

    host: str
    action: str                                  # create | update | replace | adopt | delete | none
    current: list[Record] = field(default_factory=list)    # this target's records at the host (and adopted)
    wanted: list[Wanted] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)
    patches: list[dict[str, Any]] = field(default_factory=list)   # each with its "id"
    deletes: list[str] = field(default_factory=list)              # record ids
    elsewhere: list[Record] = field(default_factory=list)         # this target's records at other names

    @property
    def writes(self) -> int:
        return len(self.posts) + len(self.patches) + len(self.deletes)

    def batch(self) -> dict[str, Any]:
        """The change as one atomic batch request (deletes run first there, so A -> CNAME works)."""
        body: dict[str, Any] = {}
        if self.deletes:
            body["deletes"] = [{"id": i} for i in self.deletes]
        if self.patches:
            body["patches"] = self.patches
        if self.posts:
            body["posts"] = self.posts
        return body

    def current_text(self) -> str:
        return ", ".join(r.describe() for r in self.current) or "-"

    def wanted_text(self) -> str:
        return ", ".join(w.describe() for w in self.wanted) or "-"


def record_body(host: str, wanted: Wanted, mark: str) -> dict[str, Any]:
    return {"type": wanted.type, "name": host, "content": wanted.content, "proxied": True, "ttl": AUTOMATIC_TTL,
            "comment": mark}


def plan_records(host: str, wanted: Sequence[Wanted], found: Iterable[Record], owner: RouteOwner,
                 adopt: bool, adopt_field: str) -> DnsChange:
    """The requests that make `host` carry exactly `wanted`, from the records found at the host and those
    with this target's mark anywhere in the zone. Records at the host that are not this target's are never
    changed: one that stands in the way (an address record, or any record where a CNAME must go) stops the
    route, unless `adopt` is set and it already points where it should, in which case the mark is added."""
    mark = owner.mark
    host = host.lower()
    found = list(found)
    ours = [r for r in found if r.name == host and r.comment == mark]
    elsewhere = [r for r in found if r.name != host and r.comment == mark]
    wanted_set = {(w.type, normal_content(w.type, w.content)) for w in wanted}
    wants_cname = any(w.type == "CNAME" for w in wanted)
    adopted: list[Record] = []
    for record in (r for r in found if r.name == host and r.comment != mark):
        if record.type not in ADDRESS_TYPES and not wants_cname:
            continue   # a TXT or MX record beside an address record is nobody's business here
        if adopt and not is_envship_mark(record.comment) and \
                (record.type, normal_content(record.type, record.content)) in wanted_set:
            adopted.append(record)
            continue
        raise RefusedError(*_foreign(host, record, mark, adopt, adopt_field))
    current = ours + adopted
    change = DnsChange(host, "none", current=current, wanted=list(wanted), elsewhere=elsewhere)
    left = list(current)
    missing: list[Wanted] = []
    for w in wanted:
        same = next((r for r in left if (r.type, normal_content(r.type, r.content)) ==
                     (w.type, normal_content(w.type, w.content))), None)
        if same is None:
            missing.append(w)
            continue
        left.remove(same)
        fix = _drift(same, mark)
        if fix:
            change.patches.append({"id": same.id, **fix})
    for w in missing:
        reuse = next((r for r in left if r.type == w.type), None)
        if reuse is not None:
            left.remove(reuse)
            change.patches.append({"id": reuse.id, "content": w.content, **_drift(reuse, mark, always=True)})
        else:
            change.posts.append(record_body(host, w, mark))
    change.deletes = [r.id for r in left] + [r.id for r in elsewhere]
    change.action = _action(change, adopted, left)
    return change


def check_foreign(host: str, found: Iterable[Record], owner: RouteOwner, adopt: bool, adopt_field: str) -> None:
    """Before the content is known (it may come from the cluster): refuse at once what no content could
    make adoptable, an address record at the host that is not this target's (with `adopt`, only one
    carrying another envship target's mark)."""
    for record in found:
        if record.name == host.lower() and record.comment != owner.mark and record.type in ADDRESS_TYPES and \
                (is_envship_mark(record.comment) or not adopt):
            raise RefusedError(*_foreign(host, record, owner.mark, adopt, adopt_field))


def plan_removal(host: str, found: Iterable[Record], owner: RouteOwner) -> DnsChange:
    """Delete this target's records at `host` and anywhere else in the zone; nothing else."""
    mark = owner.mark
    host = host.lower()
    found = list(found)
    ours = [r for r in found if r.name == host and r.comment == mark]
    elsewhere = [r for r in found if r.name != host and r.comment == mark]
    change = DnsChange(host, "none", current=ours, elsewhere=elsewhere)
    change.deletes = [r.id for r in ours + elsewhere]
    if change.deletes:
        change.action = "delete"
    return change


def _drift(record: Record, mark: str, always: bool = False) -> dict[str, Any]:
    """The fields a record of ours must be patched in to be exactly what envship writes."""
    fix: dict[str, Any] = {}
    if not record.proxied or always:
        fix["proxied"] = True
    if record.ttl != AUTOMATIC_TTL or always:
        fix["ttl"] = AUTOMATIC_TTL
    if record.comment != mark or always:
        fix["comment"] = mark
    return fix


def _action(change: DnsChange, adopted: Sequence[Record], left: Sequence[Record]) -> str:
    if not change.writes:
        return "none"
    if adopted:
        return "adopt"
    if not change.current:
        return "create"
    if change.posts and left:
        return "replace"   # A <-> CNAME and the like: one batch, deletes first
    return "update"


def _foreign(host: str, record: Record, mark: str, adopt: bool, adopt_field: str) -> tuple[str, str]:
    what = f"{record.type} record {record.name} -> {record.content}"
    if is_envship_mark(record.comment):
        return (f"the {what} belongs to another envship target ({record.comment[:COMMENT_LIMIT]!r}), "
                f"not to this one ({mark!r})",
                "two environments (or repositories) cannot route the same host: give this environment "
                "another host, or remove the other environment's route first")
    if adopt:
        return (f"the {what} was not created by envship and points elsewhere; {adopt_field} only adopts a "
                "record that already has the content envship would write",
                f"delete or change the record in Cloudflare by hand, or choose another host for {host}")
    return (f"the {what} was not created by envship (its comment has no envship mark), so envship will "
            "not change it",
            f"delete it in Cloudflare, choose another host, or set {adopt_field} to take it over when it already "
            "points where envship would point it")


# -- tunnels ------------------------------------------------------------------------------------------
@dataclass
class TunnelChange:
    """One host's ingress rule in a tunnel's configuration: the document to PUT, and what it replaces."""

    host: str
    service: str
    action: str                         # add | update | remove | none
    config: dict[str, Any]              # the whole new configuration (every other key and rule kept)
    before: dict[str, Any] | None = None   # the host's rule as it was

    @property
    def writes(self) -> int:
        return 0 if self.action == "none" else 1


def _is_catch_all(rule: Mapping[str, Any]) -> bool:
    return not rule.get("hostname") and not rule.get("path")


def host_rule(config: Mapping[str, Any], host: str) -> dict[str, Any] | None:
    """The rule that routes the whole of `host` (rules for a path of it are other rules)."""
    for rule in config.get("ingress") or []:
        if isinstance(rule, dict) and str(rule.get("hostname", "")).lower() == host.lower() and not rule.get("path"):
            return rule
    return None


def merge_rule(config: Mapping[str, Any], host: str, service: str) -> TunnelChange:
    """`config` with `host` -> `service`: the host's rule updated in place, or inserted just before the
    catch-all, which stays last; every other rule and key as it was."""
    new = dict(config)
    ingress = [r for r in (config.get("ingress") or []) if isinstance(r, dict)]
    before = host_rule(config, host)
    if before is not None:
        if before.get("service") == service:
            return TunnelChange(host, service, "none", dict(config), before)
        index = ingress.index(before)
        ingress[index] = {**before, "service": service}
        new["ingress"] = ingress
        return TunnelChange(host, service, "update", new, before)
    rule = {"hostname": host, "service": service}
    if ingress and _is_catch_all(ingress[-1]):
        ingress.insert(len(ingress) - 1, rule)
    else:   # no catch-all (the API requires one last): add the usual one after the new rule
        ingress += [rule, dict(CATCH_ALL)]
    new["ingress"] = ingress
    return TunnelChange(host, service, "add", new, None)


def remove_rule(config: Mapping[str, Any], host: str) -> TunnelChange:
    before = host_rule(config, host)
    if before is None:
        return TunnelChange(host, "", "none", dict(config))
    new = dict(config)
    new["ingress"] = [r for r in (config.get("ingress") or []) if r is not before]
    return TunnelChange(host, str(before.get("service", "")), "remove", new, before)


def restore_rule(config: Mapping[str, Any], host: str, before: Mapping[str, Any] | None) -> TunnelChange:
    """Put the host's rule back as it was (`before`; None: it did not exist)."""
    if before is None:
        return remove_rule(config, host)
    change = merge_rule(config, host, str(before.get("service", "")))
    rule = host_rule(change.config, host)
    if rule is not None and rule != before:
        ingress = list(change.config["ingress"])
        ingress[ingress.index(rule)] = dict(before)
        change.config["ingress"] = ingress
        change.action = "update"
    return change


def rules_kept(before: Mapping[str, Any], after: Mapping[str, Any], host: str) -> list[dict[str, Any]]:
    """Rules of other hosts that `before` had and `after` lacks: a writer that lost them."""
    def others(config: Mapping[str, Any]) -> list[dict[str, Any]]:
        ours = host_rule(config, host)
        return [r for r in (config.get("ingress") or []) if isinstance(r, dict) and r is not ours]
    kept = others(after)
    return [r for r in others(before) if r not in kept]


# -- hosts ------------------------------------------------------------------------------------------
def host_depth_problem(host: str, zone: str, preview: bool, app: str) -> Problem | None:
    """Universal SSL covers the zone and one level below it (*.example.com): a deeper host gets no
    certificate at the edge, and browsers refuse it."""
    host, zone = host.lower(), zone.lower()
    if not host.endswith("." + zone):
        return None
    levels = host[: -len(zone) - 1].count(".") + 1
    if levels <= 1:
        return None
    hint = ("use a host one level below the zone, e.g. " +
            (f"'{app}-pr-{{pr}}.{zone}'" if preview else f"'{host.split('.')[0]}.{zone}'") +
            ", or order an Advanced Certificate that covers it")
    return Problem(f"host {host} is {levels} levels below the zone {zone}: Cloudflare's Universal SSL "
                   f"certificate covers only *.{zone}, so browsers will reject https://{host}", None, hint)
