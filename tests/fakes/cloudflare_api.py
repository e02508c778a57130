"""A fake Cloudflare API v4 for tests and benchmarks: a real HTTP/1.1 server on 127.0.0.1 that behaves like
api.cloudflare.com for what a deploy tool uses (zones, DNS records, tunnels and their remote configuration,
token verification), and that checks every request it receives, and every success answer it gives, against
Cloudflare's official OpenAPI description cut in /work/shared/specs/cloudflare-api.json.

Start it from Python::

    with FakeCloudflare.start() as cf:                      # port 0: an ephemeral port
        zone_id = cf.add_zone("example.com")
        requests.get(cf.url + "/zones", params={"name": "example.com"},
                     headers={"Authorization": f"Bearer {cf.token}"})
        cf.count("POST", r"/dns_records$")                  # every request is logged (Request records)

or as a script (manual runs, benchmarks)::

    python -m tests.fakes.cloudflare_api --port 0 --latency-ms 20 --max-seconds 600 --zone example.com --tunnel ACCOUNT

which prints the URL (the CLOUDFLARE_API_URL, ending in /client/v4) on the first line of stdout, the API
token on the second and the id of each tunnel it created on the next ones, and exits after --max-seconds
(default 600), on SIGTERM or on Ctrl-C.

What it serves (paths under /client/v4)
- GET /user/tokens/verify (token_kind "user") and GET /accounts/{account_id}/tokens/verify (token_kind
  "account", for an account the fake knows from add_zone/add_tunnel): {"id", "status": "active"} with the
  message 10000 "This API Token is valid and active".
- GET /zones: name (exact, or the documented `contains:`/`starts_with:`/`ends_with:`/`not_equal:`
  operators), status, account.id, account.name, match, order/direction, page/per_page (default 20, 5..50
  as the spec says). Without zone:read the list is empty (200): zones a token cannot see are not listed.
- DNS records: GET (list: name, type, content, proxied, comment and comment.*, tag and tag.*, tag_match,
  match, search, order/direction, page/per_page default 100), POST, GET one, PATCH (partial), PUT (full
  replace), DELETE (result {"id"}), POST .../batch {deletes, patches, puts, posts} executed in that order
  and atomically (any failure: nothing applied). Records are stored with 32-hex ids, fully qualified
  lower-case names, zone_id/zone_name, proxiable, settings, meta, comment (null when none), tags,
  created_on, modified_on, comment_modified_on/tags_modified_on once set.
- GET /accounts/{a}/cfd_tunnel/{t}: status healthy (connectors running), inactive (never run: no
  connections, conns_active_at null) or down (had connectors, none now: connections [], conns_inactive_at
  set); one connection per connector (`connections_per_connector`; cloudflared really opens 4).
- GET/PUT /accounts/{a}/cfd_tunnel/{t}/configurations: {tunnel_id, account_id, version, config, source
  "cloudflare", created_at}. A fresh tunnel's config is {"ingress": [{"service": "http_status:404"}]} at
  version 0; every PUT replaces the whole document (no precondition, like the live API) and bumps version.

Errors and where their codes come from (answers use the v4 envelope; "confirmed" = seen in live
responses quoted in public issues; "unconfirmed" = documented-looking value picked here)
- 400 6003 "Invalid request headers" + error_chain 6111 "Invalid format for Authorization header": an
  Authorization header that is not `Bearer <token>` (confirmed, jeessy2/ddns-go#916).
- 400 9106 "Missing X-Auth-Key, X-Auth-Email or Authorization headers": no credentials (unconfirmed).
- 401 1000 "Invalid API Token": a well-formed unknown token on a tokens/verify endpoint, also a token
  of the other kind there (unconfirmed). 403 10000 "Authentication error": an unknown token elsewhere
  (favonia/cloudflare-ddns#897 observes 10000 for invalid tokens) and a missing permission (confirmed,
  cloudflare-docs "403 Authentication error when creating DNS records").
- 400 7003 "Could not route to /client/v4/zones/<id>/..., perhaps your object identifier is invalid?":
  unknown zone, or a record id that is not 32 hex (confirmed, cloudflare-go#118, status 400).
- 404 81044 "Record does not exist." (confirmed, code and message; status unconfirmed).
- 400 9005/9006 "Content for A record must be a valid IPv4 address." / "... AAAA ... IPv6 address."
  (confirmed), 9007 "Content for CNAME record is invalid." (message confirmed, code unconfirmed), 9039
  "CNAME content cannot reference itself." (unconfirmed).
- 400 9004 "This record type cannot be proxied." (confirmed): proxied on anything but A, AAAA, CNAME.
- 400 9021 "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for automatic.": ttl missing on
  create (the 2026 API requires it; 9021 is what the API answered when it briefly required ttl in 2020,
  confirmed, with the range then 120..2147483647) or out of range (30 allowed on enterprise zones).
- 400 9313 "DNS record comment exceeds the maximum length of 100 characters." (confirmed; 500 on paid).
- 400 81053 "An A, AAAA, or CNAME record with that host already exists." (confirmed): a CNAME where an
  A, AAAA or CNAME exists. 400 81054 "A CNAME record with that host already exists." (confirmed,
  favonia/cloudflare-ddns#990): an A or AAAA where a CNAME exists.
- 400 81058 "An identical record already exists." (confirmed, 2025) for a record identical (type, name,
  content) to another; `duplicate_code = 81057` gives the older "The record already exists." (confirmed,
  2018-2022) instead.
- 400 9207 "Request body is invalid." for a DNS body that violates the spec (message confirmed, code
  unconfirmed); 400 1001 "Invalid request: ..." for other spec violations (unconfirmed); 400 6007
  "Malformed JSON in request body" (unconfirmed).
- Tunnels: 404 1003 "Tunnel not found" (unconfirmed); 400 1055 "Bad Configuration: Validation failed:
  The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)" (message
  confirmed, terraform-provider-cloudflare#2327; code unconfirmed), the same prefix with cloudflared's
  "The config file doesn't have any ingress rules" and "Rule #N is matching every request, so the rules
  after it will never be matched" for an empty ingress and a catch-all that is not last.
- An unknown account on account paths: 403 10000 "Authentication error" (unconfirmed).
- 404 7000 "No route for that URI" for paths outside the spec, 405 7001 "Method not allowed for this
  URI" for a method the spec lacks there (both also recorded as spec violations in `errors`).

Spec checks: path parameters, query parameters (coerced from strings by their schema type; unknown ones
are violations) and JSON bodies are validated with openapi-schema-validator (OAS 3.0, formats checked);
a violation is recorded in `errors` and answered 400. Success answers are validated against the
operation's 200 schema, error answers against the plain `*_api-response-common-failure` schema of the
operation's family; a mismatch is a bug in the fake and is recorded in `errors` too.

Fault injection: `inject_failure(path, status=..., count=...)` fails the next matching requests (429 with
Retry-After and code 971 "Please wait and consider throttling your request speed", unconfirmed; 5xx as JSON
code 10002, unconfirmed, or with html=True an HTML page like Cloudflare's edge sends). `set_faults(seed)`
switches on seeded faults (FaultMode). Injected answers are not spec-checked (they are edge answers).

Known differences from the live API
- Where the spec and the live API disagree the live API wins (each place says so in a comment): the
  catch-all ingress rule has no hostname; DELETE of a record takes no body; comment, deleted_at,
  conns_active_at and conns_inactive_at are null when unset; the dns_records operations list only the
  email+key security scheme, but the live API takes API tokens.
- Edit permissions imply read (as Cloudflare's "Edit" permission groups do).
- No zone plans beyond the comment limit and the enterprise TTL minimum; no record types' data checks
  (data-style records are stored as given); no tag quotas; no CNAME flattening; no audit logs; token
  policies are the flat `permissions` set, for every zone and account the fake knows.
- Pagination pages over the current state, not a snapshot; only the JSON request bodies Cloudflare takes.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import ipaddress
import json
import math
import random
import re
import secrets
import signal
import string
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from .http import FakeHandler, FakeHTTPServer, RequestLog

SPEC_PATH = Path("/work/shared/specs/cloudflare-api.json")
PREFIX = "/client/v4"
ALL_PERMISSIONS = frozenset({"zone:read", "dns:read", "dns:edit", "tunnel:read", "tunnel:edit"})
PROXIABLE = ("A", "AAAA", "CNAME")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HOSTNAME = re.compile(r"(?=.{1,253}$)(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                       r"[a-z0-9_]([a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)
_BEARER = re.compile(r"Bearer ([A-Za-z0-9._~+/-]+=*)")
_COLOS = ("fra08", "ams01", "lhr16", "cdg03")
_CLIENT_VERSION = "2025.8.1"
_HTML_5XX = ("<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1>"
             "</center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n")
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hex_id() -> str:
    return uuid.uuid4().hex


def _copy(obj: Any) -> Any:
    return copy.deepcopy(obj)





class CfError(Exception):
    """An API error answer: `status` and the v4 envelope's errors."""

    def __init__(self, status: int, code: int, message: str, *, chain: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.chain = chain
        self.headers = headers or {}

    def payload(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.chain:
            error["error_chain"] = self.chain
        return {"success": False, "errors": [error], "messages": [], "result": None}


def _auth_error() -> CfError:
    return CfError(403, 10000, "Authentication error")


@dataclass
class _Reply:
    status: int
    payload: Any  # dict (JSON) or bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class _Failure:
    status: int
    remaining: int
    path: re.Pattern[str]
    method: str | None
    retry_after: float | None
    code: int | None
    message: str | None
    html: bool


class FaultMode:
    """Seeded faults as Cloudflare's API and edge produce them: a share `rate` of requests fails, with a
    429 (Retry-After "0" or "1") on any request, or a 500/502/503 (sometimes an HTML page instead of JSON)
    only on GET and DELETE: a write that failed with a 5xx cannot be told apart from one that succeeded, so
    clients do not retry those. The same seed gives the same choices in the same order; `counts` says what
    was injected."""

    def __init__(self, seed: int, rate: float, kinds: tuple[str, ...]) -> None:
        self.seed = seed
        self.rate = rate
        self.kinds = tuple(kinds)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def for_request(self, method: str) -> _Reply | None:
        with self.lock:
            if self.rng.random() >= self.rate:
                return None
            choices = [k for k in self.kinds if k == "429" or (k == "5xx" and method in ("GET", "DELETE"))]
            if not choices:
                return None
            kind = self.rng.choice(choices)
            self.counts[kind] += 1
            if kind == "429":
                retry_after = "1" if self.rng.random() < 0.2 else "0"
                return _rate_limited(retry_after)
            status = self.rng.choice((500, 502, 503))
            return _server_error(status, html=self.rng.random() < 0.3)


def _rate_limited(retry_after: str | None, code: int | None = None, message: str | None = None) -> _Reply:
    # Unconfirmed code: 971 is what clients report seeing; the message is quoted in lablabs/cloudflare-exporter#74.
    body = CfError(429, code or 971, message or "Please wait and consider throttling your request speed").payload()
    return _Reply(429, body, {"Retry-After": retry_after} if retry_after is not None else {})


def _server_error(status: int, *, html: bool, code: int | None = None, message: str | None = None,
                  retry_after: str | None = None) -> _Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    reason = _REASONS.get(status, "Error")
    if html:  # what Cloudflare's edge sends when the API behind it fails: not JSON
        return _Reply(status, _HTML_5XX.format(status=status, reason=reason).encode(), headers, "text/html")
    return _Reply(status, CfError(status, code or 10002, message or reason).payload(), headers)


# ------------------------------------------------------------------------------------------------
# the OpenAPI description
# ------------------------------------------------------------------------------------------------

@dataclass
class _Operation:
    method: str
    template: str
    regex: re.Pattern[str]
    pointer: str  # JSON pointer of the operation object
    op: dict[str, Any]
    literal_segments: int

    @property
    def operation_id(self) -> str:
        return str(self.op["operationId"])

    @property
    def family(self) -> str:
        if "dns_records" in self.template:
            return "dns-records"
        if "tokens/verify" in self.template:
            return "iam"
        if "cfd_tunnel" in self.template:
            return "tunnel"
        return "zones"


def _pointer_escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class Spec:
    """The cut OpenAPI description, with the live API's documented differences patched in, and validators
    for its schemas by JSON pointer (so `#/components/...` references resolve against the whole document)."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        doc = json.loads(path.read_text(encoding="utf-8"))
        schemas = doc["components"]["schemas"]
        # Live API: the catch-all rule that must end the ingress list has no hostname, though the schema
        # requires hostname on every rule (README of the specs); only service is required.
        schemas["tunnel_ingressRule"]["required"] = ["service"]
        # Live API: records without a comment carry "comment": null, and clients send null to remove one;
        # a tunnel not deleted has "deleted_at": null, one never run "conns_active_at": null, one running
        # "conns_inactive_at": null. The schema types these as plain strings.
        for name in ("dns-records_comment", "tunnel_deleted_at", "tunnel_conns_active_at", "tunnel_conns_inactive_at"):
            schemas[name]["nullable"] = True
        self.doc = doc
        self.registry: Registry[Any] = Registry().with_resource(
            "urn:cloudflare-api", Resource.from_contents(doc, default_specification=DRAFT4))
        self._validators: dict[str, OAS30Validator] = {}
        self._lock = threading.Lock()
        self.operations: list[_Operation] = []
        for template, item in doc["paths"].items():
            names: list[str] = []

            def group(match: re.Match[str], names: list[str] = names) -> str:
                names.append(match.group(1))
                return f"(?P<{match.group(1)}>[^/]+)"

            regex = re.compile("^" + re.sub(r"\\\{([a-z_]+)\\\}", group, re.escape(template)) + "$")
            literal = sum(1 for part in template.split("/") if part and not part.startswith("{"))
            for method, op in item.items():
                if method in ("get", "put", "post", "patch", "delete"):
                    pointer = f"/paths/{_pointer_escape(template)}/{method}"
                    self.operations.append(_Operation(method.upper(), template, regex, pointer, op, literal))
        # literal path segments win over parameters (POST .../dns_records/batch is not a record id)
        self.operations.sort(key=lambda o: -o.literal_segments)

    def match(self, method: str, path: str) -> tuple[_Operation | None, dict[str, str], bool]:
        """(operation, path parameters, whether any operation has this path)."""
        path_known = False
        for op in self.operations:
            m = op.regex.match(path)
            if m:
                path_known = True
                if op.method == method:
                    return op, {k: unquote(v) for k, v in m.groupdict().items()}, True
        return None, {}, path_known

    def validator(self, pointer: str) -> OAS30Validator:
        with self._lock:
            v = self._validators.get(pointer)
            if v is None:
                v = OAS30Validator({"$ref": "urn:cloudflare-api#" + pointer}, registry=self.registry,
                                   format_checker=oas30_format_checker)
                self._validators[pointer] = v
            return v

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.doc
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
        return schema

    def errors(self, pointer: str, instance: Any) -> list[str]:
        """Violations of the schema at `pointer`, described by the failing leaf checks (for a oneOf over
        record types, those of the variant whose `type` matched)."""
        found = []
        for error in self.validator(pointer).iter_errors(instance):
            for leaf in _leaves(error):
                where = "/".join(str(p) for p in leaf.absolute_path)
                found.append(f"{leaf.message}" + (f" (at {where})" if where else ""))
        return list(dict.fromkeys(found))

    def parameters(self, op: _Operation) -> list[tuple[str, dict[str, Any], str]]:
        """(name, parameter object, JSON pointer of its schema) for the operation's parameters."""
        out = []
        for i, declared in enumerate(op.op.get("parameters") or []):
            param, pointer = declared, f"{op.pointer}/parameters/{i}/schema"
            if "$ref" in declared:
                param = self.resolve({"$ref": declared["$ref"]})
                pointer = declared["$ref"].lstrip("#") + "/schema"
            out.append((param["name"], param, pointer))
        return out


def _leaves(error: Any) -> list[Any]:
    if not error.context:
        return [error]
    if error.validator in ("oneOf", "anyOf"):
        by_branch: dict[Any, list[Any]] = {}
        for sub in error.context:
            by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
        # the branch whose `type` enum accepted the instance (record variants), else every branch
        typed = [subs for subs in by_branch.values()
                 if not any(s.validator == "enum" and list(s.absolute_path)[-1:] == ["type"] for s in subs)]
        if typed and len(typed) < len(by_branch):
            return [leaf for subs in typed for sub in subs for leaf in _leaves(sub)]
    return [leaf for sub in error.context for leaf in _leaves(sub)]


_SPEC: Spec | None = None
_SPEC_LOCK = threading.Lock()


def load_spec() -> Spec:
    global _SPEC  # noqa: PLW0603 - one parsed description per process; validators are cached on it
    with _SPEC_LOCK:
        if _SPEC is None:
            _SPEC = Spec()
        return _SPEC


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """A query or path string as the schema's type, as a server decodes it (unchanged when it does not parse,
    so validation reports it)."""
    kind = schema.get("type")
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    if kind in ("number", "integer"):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    return value


# ------------------------------------------------------------------------------------------------
# HTTP plumbing
# ------------------------------------------------------------------------------------------------

class _Handler(FakeHandler):
    server_version = "cloudflare"
    timeout = 120  # idle keep-alive connections end after this

    def send(self, reply: _Reply) -> None:
        body = reply.payload if isinstance(reply.payload, bytes) else json.dumps(reply.payload).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("CF-RAY", f"{secrets.token_hex(8)}-FRA")
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


# ------------------------------------------------------------------------------------------------
# the fake
# ------------------------------------------------------------------------------------------------

class FakeCloudflare(RequestLog):
    """The fake API. Use `FakeCloudflare.start(...)`; `stop()` (or leaving the `with` block) shuts it down."""

    connections_per_connector = 1
    duplicate_code = 81058  # 81057: the older "The record already exists." answer

    def __init__(self, *, latency_ms: float = 0.0, token: str | None = None, token_kind: str = "user",
                 permissions: Iterable[str] = ALL_PERMISSIONS, host: str = "127.0.0.1", port: int = 0) -> None:
        if token_kind not in ("user", "account"):
            raise ValueError("token_kind is 'user' or 'account'")
        self.spec = load_spec()
        self.latency_s = latency_ms / 1000.0
        self.token = token or "".join(secrets.choice(string.ascii_letters + string.digits + "_-") for _ in range(40))
        self.token_id = _hex_id()
        self.token_kind = token_kind
        self.permissions: set[str] = set(permissions)
        self.account_id = _hex_id()  # the account of zones added without one
        RequestLog.__init__(self)
        self.errors: list[str] = []
        self.faults: FaultMode | None = None
        self._lock = threading.RLock()
        self._failures: list[_Failure] = []
        self._accounts: dict[str, str] = {self.account_id: "Example Account"}
        self._zones: dict[str, dict[str, Any]] = {}
        self._records: dict[str, dict[str, Any]] = {}
        self._tunnels: dict[str, dict[str, Any]] = {}
        self._httpd = FakeHTTPServer((host, port), self, _Handler)
        self.host, self.port = str(self._httpd.server_address[0]), int(self._httpd.server_address[1])
        self.url = f"http://{self.host}:{self.port}{PREFIX}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fake-cloudflare-api", daemon=True)
        self._stopped = False

    @classmethod
    def start(cls, latency_ms: float = 0.0, **kwargs: Any) -> FakeCloudflare:
        """Start serving. Keyword arguments: token (random by default), token_kind ("user" or "account"),
        permissions (default ALL_PERMISSIONS), host, port."""
        fake = cls(latency_ms=latency_ms, **kwargs)
        fake._thread.start()
        return fake

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._httpd.stop(self._thread)

    def __enter__(self) -> FakeCloudflare:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state for tests ------------------------------------------------------------------------------

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def add_zone(self, name: str, plan: str = "free", account_id: str | None = None) -> str:
        """A zone (status active) of `account_id` (default: `self.account_id`); plan "free" allows comments
        of 100 characters, other plans ("pro", "business", "enterprise") 500."""
        name = name.lower().rstrip(".")
        account = account_id or self.account_id
        now = _now()
        zone_id = _hex_id()
        with self._lock:
            if any(z["name"] == name for z in self._zones.values()):
                raise ValueError(f"zone {name} exists")
            self._accounts.setdefault(account, f"Account {account[:8]}")
            self._zones[zone_id] = {
                "id": zone_id, "name": name, "status": "active", "paused": False, "type": "full",
                "development_mode": 0, "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
                "original_name_servers": None, "original_registrar": None, "original_dnshost": None,
                "modified_on": now, "created_on": now, "activated_on": now,
                "meta": {"step": 2, "custom_certificate_quota": 0, "page_rule_quota": 3, "phishing_detected": False},
                # live account-owned zones carry owner.id null; the schema types it a string
                "owner": {"id": account, "type": "organization", "name": self._accounts[account]},
                "account": {"id": account, "name": self._accounts[account]},
                "tenant": {"id": None, "name": None}, "tenant_unit": {"id": None},
                "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
                "plan": {"id": _hex_id(), "name": f"{plan.capitalize()} Website", "price": 0, "currency": "USD",
                         "frequency": "", "is_subscribed": False, "can_subscribe": False, "legacy_id": plan,
                         "legacy_discount": False, "externally_managed": False},
            }
        return zone_id

    def add_record(self, zone: str, type: str, name: str, content: str, proxied: bool = False, ttl: int = 1,
                   comment: str | None = None, tags: list[str] | None = None, **extra: Any) -> str:
        """A record as a POST would create it (same checks; ValueError with the API's message when refused)."""
        with self._lock:
            zone_obj = self._zone_by_name(zone)
            body: dict[str, Any] = {"type": type, "name": name, "content": content, "proxied": proxied, "ttl": ttl,
                                    "comment": comment, "tags": list(tags or []), **extra}
            try:
                record = self._new_record(zone_obj, body, self._records)
            except CfError as e:
                raise ValueError(f"{e.code}: {e.message}") from e
            self._records[record["id"]] = record
            return str(record["id"])

    def records(self, zone: str) -> list[dict[str, Any]]:
        """The zone's records as the API returns them (copies), in creation order."""
        with self._lock:
            zone_id = self._zone_by_name(zone)["id"]
            return [_copy(r) for r in self._records.values() if r["zone_id"] == zone_id]

    def record(self, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            r = self._records.get(record_id)
            return _copy(r) if r is not None else None

    def add_tunnel(self, account_id: str, name: str = "main", connectors: int = 1) -> str:
        """A remotely-managed cfd_tunnel; connectors=0: never run (status inactive, no connections)."""
        tunnel_id = str(uuid.uuid4())
        now = _now()
        with self._lock:
            self._accounts.setdefault(account_id, f"Account {account_id[:8]}")
            self._tunnels[tunnel_id] = {
                "id": tunnel_id, "account": account_id, "name": name, "created_at": now, "connectors": [],
                "conns_active_at": None, "conns_inactive_at": None,
                "config": {"ingress": [{"service": "http_status:404"}]}, "version": 0, "config_created_at": now,
            }
            self._set_connectors(tunnel_id, connectors)
        return tunnel_id

    def set_connectors(self, tunnel_id: str, n: int) -> None:
        """Run `n` cloudflared connectors for the tunnel (0 on a tunnel that had some: status down)."""
        with self._lock:
            self._set_connectors(tunnel_id, n)

    def tunnel_config(self, tunnel_id: str) -> dict[str, Any]:
        with self._lock:
            t = self._tunnels[tunnel_id]
            return {"version": t["version"], "config": _copy(t["config"])}

    def set_tunnel_config(self, tunnel_id: str, config: dict[str, Any]) -> None:
        """A write by someone else (the dashboard, another deploy): replaces the document, bumps version."""
        with self._lock:
            t = self._tunnels[tunnel_id]
            t["config"] = _copy(config)
            t["version"] += 1
            t["config_created_at"] = _now()

    def inject_failure(self, path: str = "", *, status: int = 429, count: int = 1, retry_after: float | None = 1,
                       method: str | None = None, code: int | None = None, message: str | None = None,
                       html: bool = False) -> None:
        """The next `count` requests whose path (without /client/v4) matches the regular expression `path`
        (and `method`) fail with `status`: the v4 envelope with `code`/`message` (defaults per status), or an
        HTML page like Cloudflare's edge sends (html=True, for 5xx). 429 and 503 carry `Retry-After` in whole
        seconds when retry_after is not None."""
        with self._lock:
            self._failures.append(_Failure(status, count, re.compile(path), method, retry_after, code, message, html))

    def set_faults(self, seed: int | None, rate: float = 0.1,
                   kinds: tuple[str, ...] = ("429", "5xx")) -> FaultMode | None:
        """Seeded faults on (see FaultMode), or off with seed None; returns the FaultMode (its `counts`)."""
        self.faults = None if seed is None else FaultMode(seed, rate, kinds)
        return self.faults

    # -- request handling -----------------------------------------------------------------------------

    def _handle(self, h: _Handler, method: str) -> None:
        url = urlsplit(h.path)
        raw_path = url.path
        path = raw_path[len(PREFIX):] if raw_path.startswith(PREFIX + "/") else raw_path
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            raw_body = h.read_body()
        except (OSError, ValueError):
            h.close_connection = True
            return
        record = self._log_request(method, path, query, raw_body)
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        try:
            reply = self._injected(method, path)
            if reply is not None:
                record.injected = True
            else:
                reply = self._dispatch(h, method, raw_path, path, url.query, raw_body, record.body)
        except Exception as e:  # noqa: BLE001 - a fake must answer 500 like a server, and record why
            self.errors.append(f"{method} {h.path}: {traceback.format_exc()}")
            reply = _Reply(500, CfError(500, 10002, f"internal error in the fake: {e}").payload())
        record.status = reply.status
        if not record.injected:
            # after the answer was made, before it is sent: the client cannot see the answer before the
            # hook's write has landed, whatever connection its next request uses
            self._run_hooks(method, path)
        try:
            h.send(reply)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            h.close_connection = True

    def _injected(self, method: str, path: str) -> _Reply | None:
        with self._lock:
            for f in self._failures:
                if f.remaining > 0 and (f.method is None or f.method == method) and f.path.search(path):
                    f.remaining -= 1
                    self._failures = [x for x in self._failures if x.remaining > 0]
                    retry_after = (str(max(0, int(f.retry_after)))
                                   if f.retry_after is not None and f.status in (429, 503) else None)
                    if f.status == 429:
                        return _rate_limited(retry_after, f.code, f.message)
                    if f.status >= 500:
                        return _server_error(f.status, html=f.html, code=f.code, message=f.message,
                                             retry_after=retry_after)
                    error = CfError(f.status, f.code or 10000, f.message or f"injected failure {f.status}")
                    return _Reply(f.status, error.payload(), {"Retry-After": retry_after} if retry_after else {})
        faults = self.faults
        return faults.for_request(method) if faults is not None else None

    def _violation(self, method: str, path: str, what: str) -> None:
        self.errors.append(f"spec violation: {method} {PREFIX}{path}: {what}")

    def _dispatch(self, h: _Handler, method: str, raw_path: str, path: str, raw_query: str, raw_body: bytes,
                  body: Any) -> _Reply:
        if not raw_path.startswith(PREFIX + "/"):
            self._violation(method, raw_path, "not under /client/v4")
            return self._error_reply(None, CfError(404, 7000, "No route for that URI"))
        op, params, path_known = self.spec.match(method, path)
        if op is None:
            if path_known:
                self._violation(method, path, f"the description has no {method} operation on this path")
                return self._error_reply(None, CfError(405, 7001, "Method not allowed for this URI"))
            self._violation(method, path, "the description has no such path")
            return self._error_reply(None, CfError(404, 7000, "No route for that URI"))
        query, violations = self._check_request(op, params, raw_query, raw_body, body)
        for v in violations:
            self._violation(method, path, v)
        try:
            self._authenticate(h, op, params)
            if violations:
                self._invalid(op, params, body, violations, raw_body)
            handler = getattr(self, "_op_" + op.operation_id.replace("-", "_"))
            with self._lock:
                reply = handler(params, query, body, raw_path)
        except CfError as e:
            return self._error_reply(op, e)
        problems = self.spec.errors(f"{op.pointer}/responses/200/content/application~1json/schema", reply.payload)
        for p in problems:
            self.errors.append(f"response of the fake violates the spec: {method} {path}: {p}")
        return reply

    def _error_reply(self, op: _Operation | None, error: CfError) -> _Reply:
        payload = error.payload()
        family = op.family if op is not None else "zones"
        for p in self.spec.errors(f"/components/schemas/{family}_api-response-common-failure", payload):
            self.errors.append(f"error answer of the fake violates the spec: {error}: {p}")
        return _Reply(error.status, payload, error.headers)

    def _check_request(self, op: _Operation, params: dict[str, str], raw_query: str, raw_body: bytes,
                       body: Any) -> tuple[dict[str, Any], list[str]]:
        """The query decoded by the spec's parameter types, and every way the request violates the spec."""
        violations: list[str] = []
        query: dict[str, Any] = {}
        raw = dict(parse_qsl(raw_query, keep_blank_values=True))
        known = set()
        for name, param, pointer in self.spec.parameters(op):
            known.add(name)
            where = param["in"]
            schema = self.spec.resolve(param.get("schema") or {})
            if where == "path":
                value: Any = _coerce(params.get(name, ""), schema)
            elif where == "query":
                if name not in raw:
                    if param.get("required"):
                        violations.append(f"query parameter {name} is required")
                    continue
                value = _coerce(raw[name], schema)
                query[name] = value
            else:
                continue
            for e in self.spec.errors(pointer, value):
                violations.append(f"{where} parameter {name}={value!r}: {e}")
        for name in raw:
            if name not in known:
                violations.append(f"query parameter {name} is not in the description")
        request_body = op.op.get("requestBody")
        if request_body is not None:
            if not raw_body.strip():
                # Live API: DELETE of a DNS record takes no body although the description declares a
                # required JSON one (README of the specs); clients send none.
                if request_body.get("required") and op.method != "DELETE":
                    violations.append("the request body is required")
            elif isinstance(body, str):
                violations.append("the request body is not JSON")
            else:
                schema_pointer = f"{op.pointer}/requestBody/content/application~1json/schema"
                if "schema" in request_body.get("content", {}).get("application/json", {}):
                    violations.extend(f"request body: {e}" for e in self.spec.errors(schema_pointer, body))
        elif raw_body.strip():
            violations.append("the operation takes no request body")
        return query, violations

    def _invalid(self, op: _Operation, params: dict[str, str], body: Any, violations: list[str],
                 raw_body: bytes) -> None:
        """Answer a request that violates the spec: the specific error the live API gives when one applies,
        else a generic 400."""
        if raw_body.strip() and isinstance(body, str):
            raise CfError(400, 6007, "Malformed JSON in request body")
        if op.family == "dns-records" and any(v.startswith("request body") for v in violations):
            if op.method in ("POST", "PUT", "PATCH") and isinstance(body, dict) and "batch" not in op.template:
                with self._lock, contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
                    self._dry_run_record(op, params, body)
            raise CfError(400, 9207, "Request body is invalid.")
        if op.operation_id == "cloudflare-tunnel-configuration-put-configuration" and isinstance(body, dict):
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                _check_ingress(body.get("config"))
        raise CfError(400, 1001, "Invalid request: " + violations[0])

    def _dry_run_record(self, op: _Operation, params: dict[str, str], body: dict[str, Any]) -> None:
        zone = self._zone(params["zone_id"], params)
        if op.method == "POST":
            self._new_record(zone, body, self._records)
        else:
            existing = self._record(zone, params["dns_record_id"], params, self._records)
            self._changed_record(zone, existing, body, self._records, replace=op.method == "PUT")

    def _authenticate(self, h: _Handler, op: _Operation, params: dict[str, str]) -> None:
        # The description lists only email+key for the dns_records operations; the live API takes tokens.
        verify = op.operation_id in ("user-api-tokens-verify-token", "account-api-tokens-verify-token")
        header = h.headers.get("Authorization")
        if header is None:
            raise CfError(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
        m = _BEARER.fullmatch(header.strip())
        if not m:
            raise CfError(400, 6003, "Invalid request headers",
                          chain=[{"code": 6111, "message": "Invalid format for Authorization header"}])
        if m.group(1) != self.token:
            if verify:
                raise CfError(401, 1000, "Invalid API Token")
            raise _auth_error()
        if op.operation_id == "user-api-tokens-verify-token" and self.token_kind != "user":
            raise CfError(401, 1000, "Invalid API Token")
        if op.operation_id == "account-api-tokens-verify-token" and (
                self.token_kind != "account" or params.get("account_id") not in self._accounts):
            raise CfError(401, 1000, "Invalid API Token")

    def _require(self, permission: str) -> None:
        kind, _, level = permission.partition(":")
        granted = permission in self.permissions or (level == "read" and f"{kind}:edit" in self.permissions)
        if not granted:
            raise _auth_error()

    # -- lookups --------------------------------------------------------------------------------------

    def _zone_by_name(self, name: str) -> dict[str, Any]:
        name = name.lower().rstrip(".")
        for z in self._zones.values():
            if z["name"] == name or z["id"] == name:
                return z
        raise KeyError(f"no zone {name}")

    def _zone(self, zone_id: str, params: dict[str, str], raw_path: str | None = None) -> dict[str, Any]:
        zone = self._zones.get(zone_id)
        if zone is None:
            where = raw_path or f"{PREFIX}/zones/{zone_id}"
            raise CfError(400, 7003, f"Could not route to {where}, perhaps your object identifier is invalid?")
        return zone

    def _record(self, zone: dict[str, Any], record_id: str, params: dict[str, str],
                recs: dict[str, dict[str, Any]], raw_path: str | None = None) -> dict[str, Any]:
        if not _HEX32.fullmatch(record_id):
            where = raw_path or f"{PREFIX}/zones/{zone['id']}/dns_records/{record_id}"
            raise CfError(400, 7003, f"Could not route to {where}, perhaps your object identifier is invalid?")
        r = recs.get(record_id)
        if r is None or r["zone_id"] != zone["id"]:
            raise CfError(404, 81044, "Record does not exist.")
        return r

    def _account(self, account_id: str) -> None:
        if account_id not in self._accounts:
            raise _auth_error()  # the API does not tell a token whether an account it cannot use exists

    def _tunnel(self, params: dict[str, str]) -> dict[str, Any]:
        self._account(params["account_id"])
        t = self._tunnels.get(params["tunnel_id"])
        if t is None or t["account"] != params["account_id"]:
            raise CfError(404, 1003, "Tunnel not found")
        return t

    # -- operations: tokens and zones -----------------------------------------------------------------

    def _verify_result(self) -> _Reply:
        return _ok({"id": self.token_id, "status": "active"},
                   messages=[{"code": 10000, "message": "This API Token is valid and active", "type": None}])

    def _op_user_api_tokens_verify_token(self, params: dict[str, str], query: dict[str, Any], body: Any,
                                         raw_path: str) -> _Reply:
        return self._verify_result()

    def _op_account_api_tokens_verify_token(self, params: dict[str, str], query: dict[str, Any], body: Any,
                                            raw_path: str) -> _Reply:
        return self._verify_result()

    def _op_zones_get(self, params: dict[str, str], query: dict[str, Any], body: Any, raw_path: str) -> _Reply:
        zones = list(self._zones.values())
        if "zone:read" not in self.permissions and "zone:edit" not in self.permissions:
            zones = []  # zones a token cannot read are not listed: an empty list, not an error
        checks: list[Callable[[dict[str, Any]], bool]] = []
        if "name" in query:
            checks.append(lambda z: _name_filter(str(query["name"]), z["name"]))
        if "status" in query:
            checks.append(lambda z: z["status"] == query["status"])
        if "account.id" in query:
            checks.append(lambda z: z["account"]["id"] == query["account.id"])
        if "account.name" in query:
            checks.append(lambda z: _name_filter(str(query["account.name"]), z["account"]["name"]))
        combine = any if query.get("match") == "any" else all
        if checks:
            zones = [z for z in zones if combine(c(z) for c in checks)]
        order = str(query.get("order", "name"))
        zones.sort(key=lambda z: str(z["account"][order.split(".")[1]] if "." in order else z[order]),
                   reverse=query.get("direction") == "desc")
        items, info = _paginate(zones, query, 20)
        return _ok([_copy(z) for z in items], result_info=info)

    # -- operations: DNS records ----------------------------------------------------------------------

    def _op_dns_records_for_a_zone_list_dns_records(self, params: dict[str, str], query: dict[str, Any], body: Any,
                                                    raw_path: str) -> _Reply:
        self._require("dns:read")
        zone = self._zone(params["zone_id"], params, raw_path)
        recs = [r for r in self._records.values() if r["zone_id"] == zone["id"]]
        recs = _filter_records(recs, query)
        order = str(query.get("order", "type"))
        recs.sort(key=lambda r: (str(r[order]) if order != "ttl" else f"{r['ttl']:08d}", r["name"], r["created_on"]),
                  reverse=query.get("direction") == "desc")
        items, info = _paginate(recs, query, 100)
        return _ok([_copy(r) for r in items], result_info=info)

    def _op_dns_records_for_a_zone_create_dns_record(self, params: dict[str, str], query: dict[str, Any], body: Any,
                                                     raw_path: str) -> _Reply:
        self._require("dns:edit")
        zone = self._zone(params["zone_id"], params, raw_path)
        record = self._new_record(zone, body, self._records)
        self._records[record["id"]] = record
        return _ok(_copy(record))

    def _op_dns_records_for_a_zone_dns_record_details(self, params: dict[str, str], query: dict[str, Any], body: Any,
                                                      raw_path: str) -> _Reply:
        self._require("dns:read")
        zone = self._zone(params["zone_id"], params, raw_path)
        return _ok(_copy(self._record(zone, params["dns_record_id"], params, self._records, raw_path)))

    def _op_dns_records_for_a_zone_patch_dns_record(self, params: dict[str, str], query: dict[str, Any], body: Any,
                                                    raw_path: str) -> _Reply:
        self._require("dns:edit")
        zone = self._zone(params["zone_id"], params, raw_path)
        existing = self._record(zone, params["dns_record_id"], params, self._records, raw_path)
        updated = self._changed_record(zone, existing, body, self._records, replace=False)
        self._records[updated["id"]] = updated
        return _ok(_copy(updated))

    def _op_dns_records_for_a_zone_update_dns_record(self, params: dict[str, str], query: dict[str, Any], body: Any,
                                                     raw_path: str) -> _Reply:
        self._require("dns:edit")
        zone = self._zone(params["zone_id"], params, raw_path)
        existing = self._record(zone, params["dns_record_id"], params, self._records, raw_path)
        updated = self._changed_record(zone, existing, body, self._records, replace=True)
        self._records[updated["id"]] = updated
        return _ok(_copy(updated))

    def _op_dns_records_for_a_zone_delete_dns_record(self, params: dict[str, str], query: dict[str, Any], body: Any,
                                                     raw_path: str) -> _Reply:
        self._require("dns:edit")
        zone = self._zone(params["zone_id"], params, raw_path)
        record = self._record(zone, params["dns_record_id"], params, self._records, raw_path)
        del self._records[record["id"]]
        return _ok({"id": record["id"]})

    def _op_dns_records_for_a_zone_batch_dns_records(self, params: dict[str, str], query: dict[str, Any], body: Any,
                                                     raw_path: str) -> _Reply:
        """Deletes, then patches, then puts, then posts, as the live API executes a batch, on a copy of the
        records that replaces them only when every operation succeeded (a batch is atomic)."""
        self._require("dns:edit")
        zone = self._zone(params["zone_id"], params, raw_path)
        recs = {k: _copy(v) for k, v in self._records.items()}
        result: dict[str, list[dict[str, Any]]] = {"deletes": [], "patches": [], "puts": [], "posts": []}
        for item in body.get("deletes") or []:
            record = self._record(zone, str(item["id"]), params, recs)
            del recs[record["id"]]
            result["deletes"].append(record)
        for key, replace in (("patches", False), ("puts", True)):
            for item in body.get(key) or []:
                existing = self._record(zone, str(item["id"]), params, recs)
                changes = {k: v for k, v in item.items() if k != "id"}
                updated = self._changed_record(zone, existing, changes, recs, replace=replace)
                recs[updated["id"]] = updated
                result[key].append(updated)
        for item in body.get("posts") or []:
            record = self._new_record(zone, item, recs)
            recs[record["id"]] = record
            result["posts"].append(record)
        self._records = recs
        return _ok(_copy(result))

    def _new_record(self, zone: dict[str, Any], body: dict[str, Any],
                    recs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        if "ttl" not in body:
            # The 2026 API requires ttl on create (README of the specs); 9021 is its TTL error.
            raise _ttl_error(zone)
        now = _now()
        record: dict[str, Any] = {"id": _hex_id(), "zone_id": zone["id"], "zone_name": zone["name"],
                                  "created_on": now, "modified_on": now}
        self._apply_fields(zone, record, body, previous=None)
        self._check_conflicts(record, recs)
        return record

    def _changed_record(self, zone: dict[str, Any], existing: dict[str, Any], body: dict[str, Any],
                        recs: dict[str, dict[str, Any]], *, replace: bool) -> dict[str, Any]:
        if replace:
            merged: dict[str, Any] = dict(body)
        else:
            merged = {k: existing[k] for k in ("type", "name", "content", "proxied", "ttl", "comment", "tags",
                                                "settings", "priority", "data") if k in existing}
            merged.update(body)
            if existing.get("proxied") and "ttl" not in body:
                merged["ttl"] = 1
        record = {k: existing[k] for k in ("id", "zone_id", "zone_name", "created_on")}
        record["modified_on"] = _now()
        self._apply_fields(zone, record, merged, previous=existing)
        self._check_conflicts(record, recs)
        return record

    def _apply_fields(self, zone: dict[str, Any], record: dict[str, Any], body: dict[str, Any],
                      previous: dict[str, Any] | None) -> None:
        rtype = str(body["type"]).upper()
        name = _fqdn(str(body["name"]), zone["name"])
        proxied = bool(body.get("proxied", False))
        if proxied and rtype not in PROXIABLE:
            raise CfError(400, 9004, "This record type cannot be proxied.")
        ttl = body.get("ttl", 1)
        minimum = 30 if zone["plan"]["legacy_id"] == "enterprise" else 60
        if not proxied and ttl != 1 and not minimum <= ttl <= 86400:
            raise _ttl_error(zone)
        if "data" in body and rtype not in ("A", "AAAA", "CNAME", "TXT", "MX", "NS", "PTR"):
            data = body["data"] or {}
            content = " ".join(str(v) for v in data.values())
            record["data"] = _copy(data)
        else:
            content = str(body.get("content", ""))
        _check_content(rtype, name, content)
        if rtype == "CNAME":
            content = content.lower().rstrip(".")
        limit = 100 if zone["plan"]["legacy_id"] == "free" else 500
        comment = body.get("comment") or None
        if comment is not None and len(comment) > limit:
            raise CfError(400, 9313, f"DNS record comment exceeds the maximum length of {limit} characters.")
        tags = sorted(body.get("tags") or [])
        now = record["modified_on"]
        record.update({
            "name": name, "type": rtype, "content": content, "proxiable": rtype in PROXIABLE, "proxied": proxied,
            # proxied records report ttl 1 (automatic) whatever was sent (README of the specs)
            "ttl": 1 if proxied else ttl, "settings": _copy(body.get("settings") or {}),
            "meta": {"auto_added": False, "managed_by_apps": False, "managed_by_argo_tunnel": False},
            "comment": comment, "tags": tags,
        })
        if "priority" in body:
            record["priority"] = body["priority"]
        if comment is not None:
            unchanged = previous is not None and previous.get("comment") == comment
            record["comment_modified_on"] = previous["comment_modified_on"] if unchanged and previous else now
        if tags:
            unchanged = previous is not None and previous.get("tags") == tags
            record["tags_modified_on"] = previous["tags_modified_on"] if unchanged and previous else now

    def _check_conflicts(self, record: dict[str, Any], recs: dict[str, dict[str, Any]]) -> None:
        same_name = [r for r in recs.values()
                     if r["zone_id"] == record["zone_id"] and r["name"] == record["name"] and r["id"] != record["id"]]
        rtype = record["type"]
        if rtype == "CNAME" and any(r["type"] in PROXIABLE for r in same_name):
            raise CfError(400, 81053, "An A, AAAA, or CNAME record with that host already exists.")
        if rtype in ("A", "AAAA") and any(r["type"] == "CNAME" for r in same_name):
            # Live: 81054 (favonia/cloudflare-ddns#990), not 81053, for an address beside a CNAME.
            raise CfError(400, 81054, "A CNAME record with that host already exists.")
        if any(r["type"] == rtype and r["content"] == record["content"] for r in same_name):
            # Live: 81058 "An identical record already exists." (2025 reports) on create and update; older
            # answers were 81057 "The record already exists." (duplicate_code chooses).
            if self.duplicate_code == 81057:
                raise CfError(400, 81057, "The record already exists.")
            raise CfError(400, 81058, "An identical record already exists.")

    # -- operations: tunnels --------------------------------------------------------------------------

    def _set_connectors(self, tunnel_id: str, n: int) -> None:
        t = self._tunnels[tunnel_id]
        now = _now()
        had = len(t["connectors"])
        if n > had:
            for _ in range(n - had):
                t["connectors"].append({"client_id": str(uuid.uuid4()), "opened_at": now,
                                        "ids": [str(uuid.uuid4()) for _ in range(self.connections_per_connector)]})
        else:
            del t["connectors"][n:]
        if n and not had:
            t["conns_active_at"], t["conns_inactive_at"] = now, None
        elif had and not n:
            t["conns_inactive_at"] = now

    def _tunnel_view(self, t: dict[str, Any]) -> dict[str, Any]:
        connections = []
        for i, c in enumerate(t["connectors"]):
            for j, conn_id in enumerate(c["ids"]):
                connections.append({"colo_name": _COLOS[(i + j) % len(_COLOS)], "id": conn_id, "uuid": conn_id,
                                    "is_pending_reconnect": False, "opened_at": c["opened_at"],
                                    "origin_ip": f"198.51.100.{10 + i}", "client_id": c["client_id"],
                                    "client_version": _CLIENT_VERSION})
        if t["connectors"]:
            status = "healthy"
        elif t["conns_active_at"] is not None:
            status = "down"
        else:
            status = "inactive"
        return {"id": t["id"], "account_tag": t["account"], "created_at": t["created_at"], "deleted_at": None,
                "name": t["name"], "connections": connections, "conns_active_at": t["conns_active_at"],
                "conns_inactive_at": t["conns_inactive_at"], "tun_type": "cfd_tunnel", "metadata": {},
                "status": status, "remote_config": True, "config_src": "cloudflare"}

    def _config_view(self, t: dict[str, Any]) -> dict[str, Any]:
        return {"tunnel_id": t["id"], "account_id": t["account"], "version": t["version"],
                "config": _copy(t["config"]), "source": "cloudflare", "created_at": t["config_created_at"]}

    def _op_cloudflare_tunnel_get_a_cloudflare_tunnel(self, params: dict[str, str], query: dict[str, Any],
                                                      body: Any, raw_path: str) -> _Reply:
        self._require("tunnel:read")
        return _ok(self._tunnel_view(self._tunnel(params)))

    def _op_cloudflare_tunnel_configuration_get_configuration(self, params: dict[str, str], query: dict[str, Any],
                                                              body: Any, raw_path: str) -> _Reply:
        self._require("tunnel:read")
        return _ok(self._config_view(self._tunnel(params)))

    def _op_cloudflare_tunnel_configuration_put_configuration(self, params: dict[str, str], query: dict[str, Any],
                                                              body: Any, raw_path: str) -> _Reply:
        """Replaces the whole document, with no precondition (the live API has none), and bumps version."""
        self._require("tunnel:edit")
        t = self._tunnel(params)
        config = body.get("config")
        _check_ingress(config)
        # every other key (originRequest, warp-routing, per-rule originRequest and path) is kept verbatim
        t["config"] = _copy(config)
        t["version"] += 1
        t["config_created_at"] = _now()
        return _ok(self._config_view(t))


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------

def _ok(result: Any, *, result_info: dict[str, Any] | None = None,
        messages: list[dict[str, Any]] | None = None) -> _Reply:
    payload: dict[str, Any] = {"success": True, "errors": [], "messages": messages or [], "result": result}
    if result_info is not None:
        payload["result_info"] = result_info
    return _Reply(200, payload)


def _paginate(items: list[Any], query: dict[str, Any], default_per_page: int) -> tuple[list[Any], dict[str, Any]]:
    page = int(query.get("page", 1))
    per_page = int(query.get("per_page", default_per_page))
    total = len(items)
    chosen = items[(page - 1) * per_page: page * per_page]
    return chosen, {"page": page, "per_page": per_page, "count": len(chosen), "total_count": total,
                    "total_pages": math.ceil(total / per_page) if per_page else 0}


def _name_filter(expression: str, value: str) -> bool:
    """The zones list's `name` filter: exact by default, or `operator:operand`."""
    operator, _, operand = expression.partition(":")
    ops: dict[str, Callable[[str, str], bool]] = {
        "equal": lambda v, o: v == o, "not_equal": lambda v, o: v != o, "contains": lambda v, o: o in v,
        "starts_with": lambda v, o: v.startswith(o), "ends_with": lambda v, o: v.endswith(o)}
    if operator.endswith("_case_sensitive") and operator.removesuffix("_case_sensitive") in ops:
        return ops[operator.removesuffix("_case_sensitive")](value, operand)
    if operand and operator in ops:
        return ops[operator](value.lower(), operand.lower())
    return value.lower() == expression.lower()


def _fqdn(name: str, zone: str) -> str:
    """Record names are stored fully qualified and lower-case: "@" is the apex, a name outside the zone is
    relative to it (as the live API expands it)."""
    name = name.strip().lower().rstrip(".")
    if name in ("@", "", zone):
        return zone
    return name if name.endswith("." + zone) else f"{name}.{zone}"


def _check_content(rtype: str, name: str, content: str) -> None:
    if rtype == "A":
        try:
            ipaddress.IPv4Address(content)
        except ValueError:
            raise CfError(400, 9005, "Content for A record must be a valid IPv4 address.") from None
    elif rtype == "AAAA":
        try:
            ipaddress.IPv6Address(content)
        except ValueError:
            raise CfError(400, 9006, "Content for AAAA record must be a valid IPv6 address.") from None
    elif rtype == "CNAME":
        target = content.lower().rstrip(".")
        if not _HOSTNAME.fullmatch(target) or _is_ip(target):
            raise CfError(400, 9007, "Content for CNAME record is invalid.")
        if target == name:
            raise CfError(400, 9039, "CNAME content cannot reference itself.")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _ttl_error(zone: dict[str, Any]) -> CfError:
    minimum = 30 if zone["plan"]["legacy_id"] == "enterprise" else 60
    return CfError(400, 9021, f"Invalid TTL. Must be between {minimum} and 86400 seconds, or 1 for automatic.")


def _check_ingress(config: Any) -> None:
    """The live API's ingress validation (cloudflared's rules): at least one rule, the last one a catch-all
    (no hostname, or "*", and no path), no catch-all before it. The description instead requires hostname on
    every rule; the live API wins."""
    prefix = "Bad Configuration: Validation failed: "
    rules = (config or {}).get("ingress") if isinstance(config, dict) else None
    if not rules:
        raise CfError(400, 1055, prefix + "The config file doesn't have any ingress rules")

    def catch_all(rule: dict[str, Any]) -> bool:
        return rule.get("hostname") in (None, "", "*") and not rule.get("path")

    if not catch_all(rules[-1]):
        raise CfError(400, 1055, prefix + "The last ingress rule must match all URLs "
                                          "(i.e. it should not have a hostname or path filter)")
    for i, rule in enumerate(rules[:-1], start=1):
        if catch_all(rule):
            raise CfError(400, 1055, prefix + f"Rule #{i} is matching every request, so the rules after it "
                                              "will never be matched")


def _filter_records(recs: list[dict[str, Any]], query: dict[str, Any]) -> list[dict[str, Any]]:
    """The list filters: name, type, content, proxied, comment*, tag* (combined by tag_match), search; all
    combined by match (all: AND, any: OR). Comment and tag filters are case-insensitive."""
    checks: list[Callable[[dict[str, Any]], bool]] = []
    if "name" in query:
        name = str(query["name"]).lower().rstrip(".")
        checks.append(lambda r: r["name"] == name)
    if "type" in query:
        checks.append(lambda r: r["type"] == query["type"])
    if "content" in query:
        checks.append(lambda r: r["content"].lower() == str(query["content"]).lower())
    if "proxied" in query:
        checks.append(lambda r: r["proxied"] == query["proxied"])

    def text(r: dict[str, Any]) -> str:
        return (r.get("comment") or "").lower()

    comment_ops: dict[str, Callable[[str, str], bool]] = {
        "comment": lambda c, v: c == v, "comment.exact": lambda c, v: c == v, "comment.contains": lambda c, v: v in c,
        "comment.startswith": lambda c, v: c.startswith(v), "comment.endswith": lambda c, v: c.endswith(v)}
    for key, fn in comment_ops.items():
        if key in query:
            value = str(query[key]).lower()
            checks.append(lambda r, fn=fn, value=value: r.get("comment") is not None and fn(text(r), value))
    if "comment.present" in query:
        checks.append(lambda r: r.get("comment") is not None)
    if "comment.absent" in query:
        checks.append(lambda r: r.get("comment") is None)

    def tag_map(r: dict[str, Any]) -> dict[str, str]:
        out = {}
        for tag in r.get("tags") or []:
            k, _, v = tag.partition(":")
            out[k.lower()] = v.lower()
        return out

    tag_checks: list[Callable[[dict[str, Any]], bool]] = []
    value_ops: dict[str, Callable[[str, str], bool]] = {
        "tag.exact": lambda t, v: t == v, "tag.contains": lambda t, v: v in t,
        "tag.startswith": lambda t, v: t.startswith(v), "tag.endswith": lambda t, v: t.endswith(v)}
    if "tag" in query:  # "name:value" (exact) or "name" (present)
        tname, sep, tvalue = str(query["tag"]).lower().partition(":")
        tag_checks.append(lambda r: tag_map(r).get(tname) == tvalue if sep else tname in tag_map(r))
    for key, fn in value_ops.items():
        if key in query:
            tname, _, tvalue = str(query[key]).lower().partition(":")
            tag_checks.append(lambda r, fn=fn, tname=tname, tvalue=tvalue: tname in tag_map(r)
                              and fn(tag_map(r)[tname], tvalue))
    if "tag.present" in query:
        present = str(query["tag.present"]).lower()
        tag_checks.append(lambda r: present in tag_map(r))
    if "tag.absent" in query:
        absent = str(query["tag.absent"]).lower()
        tag_checks.append(lambda r: absent not in tag_map(r))
    if tag_checks:
        tag_combine = any if query.get("tag_match") == "any" else all
        checks.append(lambda r: tag_combine(c(r) for c in tag_checks))
    if "search" in query:
        needle = str(query["search"]).lower()
        checks.append(lambda r: needle in r["name"] or needle in r["content"].lower() or needle in text(r))
    if not checks:
        return recs
    combine = any if query.get("match") == "any" else all
    return [r for r in recs if combine(c(r) for c in checks)]


# ------------------------------------------------------------------------------------------------
# script
# ------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.cloudflare_api",
                                     description="Run the fake Cloudflare API (prints its URL and token).")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: an ephemeral one)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="sleep before answering each request")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="exit after this long (default 600)")
    parser.add_argument("--token", default=None, help="the API token clients must send (default: random)")
    parser.add_argument("--token-kind", choices=("user", "account"), default="user")
    parser.add_argument("--zone", action="append", default=[], help="add this zone (repeatable)")
    parser.add_argument("--tunnel", action="append", default=[], metavar="ACCOUNT",
                        help="add a tunnel with one connector in this account; its id is printed (repeatable)")
    args = parser.parse_args(argv)
    fake = FakeCloudflare.start(args.latency_ms, port=args.port, token=args.token, token_kind=args.token_kind)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        for zone in args.zone:
            fake.add_zone(zone)
        tunnels = [fake.add_tunnel(account) for account in args.tunnel]
        print(fake.url, flush=True)
        print(fake.token, flush=True)
        for tunnel_id in tunnels:
            print(tunnel_id, flush=True)
        stop.wait(args.max_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
