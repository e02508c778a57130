"""Cloudflare API v4 over requests: the only code that talks to Cloudflare.

- Every answer is checked as the v4 envelope (`success`, `errors[].code`, `result`, `result_info`); a
  non-JSON answer (an edge's HTML error page) is an error naming the status.
- Retries (urllib3 `Retry`): 429 on every method, since a throttled request was not processed, waiting as
  `Retry-After` asks (at most a minute; longer is reported instead of waited for); 5xx and broken
  connections only on requests that may be repeated (GET, PUT of a whole document, PATCH to fixed values,
  DELETE), never on a create, where a repeat could make a duplicate record.
- The token is verified and the zone looked up once per client; a 403 names the permission the call
  needed, as the dashboard spells it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from .. import __version__
from ..errors import OperationError, UsageError

DEFAULT_URL = "https://api.cloudflare.com/client/v4"
TIMEOUT = (10.0, 60.0)
MAX_RETRY_AFTER = 60.0
MAX_PAGES = 200          # 200 pages of 100 records: far beyond any one name's records
MAX_BODY = 32 * 2**20
PER_PAGE = 100
INVALID_TOKEN = {1000, 6003, 6111, 9109}   # "Invalid API Token", "Invalid request headers" and kin

ZONE_READ = "Zone / Zone / Read"
DNS_READ = "Zone / DNS / Read"
DNS_EDIT = "Zone / DNS / Edit"
TUNNEL_READ = "Account / Cloudflare Tunnel / Read"
TUNNEL_EDIT = "Account / Cloudflare Tunnel / Edit"


class ApiError(TypedDict, total=False):
    code: int
    message: str


class Envelope(TypedDict, total=False):
    success: bool
    errors: list[ApiError]
    messages: list[Any]
    result: Any
    result_info: dict[str, Any]


class CloudflareError(OperationError):
    """A Cloudflare request failed; `status` is the HTTP status (0 without an answer), `codes` the API's."""

    def __init__(self, message: str, hint: str = "", status: int = 0, codes: tuple[int, ...] = ()) -> None:
        super().__init__(message, hint)
        self.status = status
        self.codes = codes


@dataclass
class Stats:
    """What the client did, for the closing report and the benchmarks."""

    requests: int = 0
    retries: int = 0
    throttled_seconds: float = 0.0
    by_method: dict[str, int] = field(default_factory=dict)


class _Retry(Retry):
    """urllib3's Retry, with 429 retried on every method (the request was refused before any processing)
    and Retry-After capped, counting what it waited."""

    stats: Stats

    def new(self, **kw: Any) -> _Retry:
        fresh: _Retry = super().new(**kw)
        fresh.stats = self.stats
        return fresh

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code == 429:
            return bool(self.total)
        return bool(super().is_retry(method, status_code, has_retry_after))

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        if seconds is None:
            return None
        if seconds > MAX_RETRY_AFTER:
            raise CloudflareError(f"Cloudflare asks to wait {int(seconds)} s before another request (Retry-After)",
                                  "the account's API rate limit is exhausted (1,200 requests per 5 minutes); "
                                  "re-run later: every envship command converges", 429, (10000,))
        return seconds

    def sleep(self, response: Any = None) -> None:
        self.stats.retries += 1
        seconds = self.get_retry_after(response) if response is not None else None
        if seconds:
            self.stats.throttled_seconds += seconds
        super().sleep(response)


def make_session(stats: Stats, retries: int = 6, backoff: float = 0.5) -> requests.Session:
    retry = _Retry(total=retries, connect=3, read=2, backoff_factor=backoff, backoff_max=20,
                   status_forcelist=(500, 502, 503, 504, 520, 521, 522, 523, 524),
                   allowed_methods={"GET", "PUT", "PATCH", "DELETE"}, respect_retry_after_header=True,
                   raise_on_status=False)
    retry.stats = stats
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=8)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = f"envship/{__version__}"
    return session


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    status: str
    plan: str


class Cloudflare:
    def __init__(self, token: str, url: str = DEFAULT_URL, retries: int = 6, backoff: float = 0.5) -> None:
        self.url = url.rstrip("/")
        self.stats = Stats()
        self.session = make_session(self.stats, retries, backoff)
        self.session.headers["Authorization"] = f"Bearer {token}"
        self._zones: dict[str, Zone] = {}
        self._verified = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], token: str = "") -> Cloudflare:
        token = token or environ.get("CLOUDFLARE_API_TOKEN", "")
        if not token.strip():
            raise UsageError("no Cloudflare API token: routes.cloudflare is set, so envship needs one to route "
                             "the environment's host",
                             "set CLOUDFLARE_API_TOKEN (the action's input 'cloudflare-api-token') to a token with "
                             f"{ZONE_READ} and {DNS_EDIT} (tunnel mode also {TUNNEL_EDIT}); or set 'routes: false' "
                             "on environments Cloudflare does not serve")
        url = environ.get("CLOUDFLARE_API_URL", "") or DEFAULT_URL
        if not url.startswith(("https://", "http://")):
            raise UsageError(f"CLOUDFLARE_API_URL {url!r} is not an http(s) URL",
                             f"unset it for {DEFAULT_URL}, or give the full URL of a proxy or test server")
        return cls(token.strip(), url)

    def close(self) -> None:
        self.session.close()

    # -- token and zone ---------------------------------------------------------------------------
    def verify(self, account: str | None = None) -> None:
        """The token is active. User tokens verify at /user/tokens/verify, account-owned tokens at
        /accounts/ID/tokens/verify; with an account known, the second is tried when the first says the
        token is not a user token."""
        if self._verified:
            return
        try:
            result = self.call("GET", "/user/tokens/verify", need="")
        except CloudflareError as e:
            if not account or not (set(e.codes) & INVALID_TOKEN or e.status in (401, 403)):
                raise self.invalid_token(e) from e
            try:
                result = self.call("GET", f"/accounts/{account}/tokens/verify", need="")
            except CloudflareError as e2:
                raise self.invalid_token(e2) from e2
        status = str((result or {}).get("status", ""))
        if status != "active":
            raise CloudflareError(f"the Cloudflare API token is {status or 'not active'}",
                                  "create a new token (My Profile > API Tokens) and update the secret")
        self._verified = True

    @staticmethod
    def invalid_token(e: CloudflareError) -> CloudflareError:
        if e.status in (400, 401, 403) and (set(e.codes) & INVALID_TOKEN or e.status == 401):
            return CloudflareError("Cloudflare does not accept the API token (invalid, revoked or mistyped)",
                                   "check CLOUDFLARE_API_TOKEN (the action's input 'cloudflare-api-token') holds an "
                                   "API token, not the Global API Key or a token id", e.status, e.codes)
        return e

    def zone(self, name: str) -> Zone:
        if name in self._zones:
            return self._zones[name]
        found = self.call("GET", "/zones", {"name": name, "per_page": 5}, need=ZONE_READ)
        zones = [z for z in found or [] if isinstance(z, dict) and z.get("name") == name]
        if not zones:
            raise CloudflareError(f"zone {name} was not found, or the API token cannot see it",
                                  f"check routes.cloudflare.zone, and that the token has {ZONE_READ} for {name} "
                                  "(Zone Resources: include the zone)", 200)
        data = zones[0]
        zone = Zone(str(data["id"]), name, str(data.get("status", "")),
                    str(((data.get("plan") or {}).get("legacy_id")) or ""))
        self._zones[name] = zone
        return zone

    # -- DNS records ---------------------------------------------------------------------------------
    def records(self, zone: Zone, name: str, comment: str = "") -> list[dict[str, Any]]:
        """Records at `name`, and (with `comment`) every record whose comment is exactly that, in one query:
        the filters are OR-ed (match=any)."""
        query: dict[str, Any] = {"name": name}
        if comment:
            query.update({"comment.exact": comment, "match": "any"})
        return list(self.pages(f"/zones/{zone.id}/dns_records", query, DNS_READ))

    def create_record(self, zone: Zone, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", f"/zones/{zone.id}/dns_records", body=body, need=DNS_EDIT))

    def patch_record(self, zone: Zone, record_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.call("PATCH", f"/zones/{zone.id}/dns_records/{record_id}", body=body, need=DNS_EDIT))

    def delete_record(self, zone: Zone, record_id: str) -> None:
        try:
            self.call("DELETE", f"/zones/{zone.id}/dns_records/{record_id}", need=DNS_EDIT)
        except CloudflareError as e:
            if e.status != 404:   # gone already (a retried delete, or someone else): what was wanted
                raise

    def batch(self, zone: Zone, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", f"/zones/{zone.id}/dns_records/batch", body=body, need=DNS_EDIT) or {})

    # -- tunnels ---------------------------------------------------------------------------------------
    def tunnel(self, account: str, tunnel: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/accounts/{account}/cfd_tunnel/{tunnel}", need=TUNNEL_READ))

    def tunnel_config(self, account: str, tunnel: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/accounts/{account}/cfd_tunnel/{tunnel}/configurations", need=TUNNEL_READ)
                    or {})

    def put_tunnel_config(self, account: str, tunnel: str, config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.call("PUT", f"/accounts/{account}/cfd_tunnel/{tunnel}/configurations",
                              body={"config": config}, need=TUNNEL_EDIT) or {})

    # -- HTTP ----------------------------------------------------------------------------------------
    def pages(self, path: str, query: Mapping[str, Any], need: str) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            envelope = self.request("GET", path, {**query, "page": page, "per_page": PER_PAGE}, None, need)
            yield from (r for r in envelope.get("result") or [] if isinstance(r, dict))
            info = envelope.get("result_info") or {}
            total_pages = int(info.get("total_pages") or 1)
            if page >= total_pages or page >= MAX_PAGES:
                return
            page += 1

    def call(self, method: str, path: str, query: Mapping[str, Any] | None = None,
             body: Mapping[str, Any] | None = None, need: str = "") -> Any:
        return self.request(method, path, query, body, need).get("result")

    def request(self, method: str, path: str, query: Mapping[str, Any] | None, body: Mapping[str, Any] | None,
                need: str) -> Envelope:
        self.stats.requests += 1
        self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1
        try:
            response = self.session.request(method, self.url + path, params=query, json=body, timeout=TIMEOUT)
        except CloudflareError:
            raise
        except requests.RequestException as e:
            raise CloudflareError(f"Cloudflare API at {self.url} cannot be reached: {type(e).__name__}",
                                  "check the network (and CLOUDFLARE_API_URL if set); re-run: envship converges") \
                from e
        envelope = self.envelope(response, method, path)
        if response.status_code >= 400 or not envelope.get("success", False):
            raise self.failure(response.status_code, envelope, method, path, need)
        return envelope

    def envelope(self, response: requests.Response, method: str, path: str) -> Envelope:
        content = response.content[:MAX_BODY + 1]
        try:
            data = json.loads(content) if len(content) <= MAX_BODY else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise CloudflareError(f"Cloudflare answered {method} {_short(path)} with HTTP {response.status_code} "
                                  "and no API response (not JSON)",
                                  "a proxy or Cloudflare's edge failed; re-run later: envship converges",
                                  response.status_code)
        return data  # type: ignore[return-value]

    @staticmethod
    def failure(status: int, envelope: Envelope, method: str, path: str, need: str) -> CloudflareError:
        errors = [e for e in envelope.get("errors") or [] if isinstance(e, dict)]
        codes = tuple(int(e.get("code") or 0) for e in errors)
        text = "; ".join(f"{e.get('message', '')} ({e.get('code')})" for e in errors)[:500] or "no error given"
        what = f"Cloudflare refused {method} {_short(path)}: {text}"
        if status == 403 or 10000 in codes:
            hint = (f"the API token lacks {need}: add it to the token (My Profile > API Tokens > Edit)" if need
                    else "check the token's permissions")
            return CloudflareError(what + (f" (the API token lacks {need})" if need else ""), hint, status, codes)
        if status == 429:
            return CloudflareError(what, "Cloudflare's API rate limit: re-run later (every envship command converges)",
                                   status, codes)
        if status >= 500:
            return CloudflareError(what, "Cloudflare had a problem; re-run later: envship converges", status, codes)
        return CloudflareError(what, "", status, codes)


def _short(path: str) -> str:
    """A path for messages: the ids shortened (they mean nothing to a reader; the host is named elsewhere)."""
    parts = [p if len(p) < 32 else p[:8] + "…" for p in path.split("/")]
    return "/".join(parts)
