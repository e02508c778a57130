"""The fake Cloudflare API (tests/fakes/cloudflare_api.py): the live API's behaviour a deploy tool relies on,
checked over real HTTP, and its checks against Cloudflare's OpenAPI description."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from fakes import FakeCloudflare
from fakes.cloudflare_api import ALL_PERMISSIONS
from fakes.cloudflare_plugin import fake_cloudflare  # noqa: F401 - the fixture
from fakes.http import Request

REPO_ROOT = Path(__file__).resolve().parents[1]


class Api:
    """A thin client, as envship's Cloudflare adapter will be one."""

    def __init__(self, cf: FakeCloudflare, token: str | None = None) -> None:
        self.cf = cf
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token or cf.token}"

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        return self.session.request(method, self.cf.url + path, json=body, params=params, timeout=10)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.call("GET", path, **params)


def error(response: requests.Response) -> tuple[int, int, str]:
    body = response.json()
    assert body["success"] is False and body["result"] is None and body["messages"] == []
    return response.status_code, body["errors"][0]["code"], body["errors"][0]["message"]


def a_record(name: str = "www", content: str = "192.0.2.1", **extra: Any) -> dict[str, Any]:
    return {"type": "A", "name": name, "content": content, "ttl": 1, **extra}


@pytest.fixture
def zone(fake_cloudflare: FakeCloudflare) -> str:  # noqa: F811 - the fixture
    return fake_cloudflare.add_zone("example.com")


@pytest.fixture
def api(fake_cloudflare: FakeCloudflare) -> Api:  # noqa: F811
    return Api(fake_cloudflare)


# ------------------------------------------------------------------------------------------------
# authentication and permissions
# ------------------------------------------------------------------------------------------------

def test_auth_failures_answer_like_the_live_api(fake_cloudflare: FakeCloudflare) -> None:  # noqa: F811
    cf = fake_cloudflare
    url = cf.url + "/zones"
    missing = requests.get(url, timeout=5)
    assert error(missing) == (400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
    malformed = requests.get(url, headers={"Authorization": f"Token {cf.token}"}, timeout=5)
    assert error(malformed) == (400, 6003, "Invalid request headers")
    assert malformed.json()["errors"][0]["error_chain"] == [
        {"code": 6111, "message": "Invalid format for Authorization header"}]
    wrong = Api(cf, token="x" * 40)
    assert error(wrong.get("/zones")) == (403, 10000, "Authentication error")
    assert error(wrong.get("/user/tokens/verify")) == (401, 1000, "Invalid API Token")
    ok = Api(cf).get("/user/tokens/verify")
    assert ok.status_code == 200 and ok.json()["result"] == {"id": cf.token_id, "status": "active"}
    assert ok.json()["messages"][0]["message"] == "This API Token is valid and active"
    # a user token is not an account token
    assert error(Api(cf).get(f"/accounts/{cf.account_id}/tokens/verify"))[:2] == (401, 1000)
    assert cf.errors == []


def test_account_token_verifies_on_known_accounts_only() -> None:
    with FakeCloudflare.start(token_kind="account") as cf:
        api = Api(cf)
        assert api.get(f"/accounts/{cf.account_id}/tokens/verify").json()["result"]["status"] == "active"
        assert error(api.get("/accounts/" + "0" * 32 + "/tokens/verify"))[:2] == (401, 1000)
        assert error(api.get("/user/tokens/verify"))[:2] == (401, 1000)
        assert cf.errors == []


def test_missing_permission_is_403_10000_and_zones_without_read_are_unlisted(
        fake_cloudflare: FakeCloudflare, zone: str, api: Api) -> None:  # noqa: F811
    cf = fake_cloudflare
    assert cf.permissions == set(ALL_PERMISSIONS)
    cf.permissions -= {"dns:edit"}
    assert error(api.call("POST", f"/zones/{zone}/dns_records", a_record())) == (403, 10000, "Authentication error")
    assert api.get(f"/zones/{zone}/dns_records").status_code == 200  # dns:read is still there
    cf.permissions.discard("zone:read")
    listing = api.get("/zones", name="example.com")
    assert listing.status_code == 200 and listing.json()["result"] == []
    t = cf.add_tunnel(cf.account_id)
    cf.permissions.discard("tunnel:edit")
    put = api.call("PUT", f"/accounts/{cf.account_id}/cfd_tunnel/{t}/configurations",
                   {"config": {"ingress": [{"service": "http_status:404"}]}})
    assert error(put)[:2] == (403, 10000)
    assert cf.tunnel_config(t)["version"] == 0


# ------------------------------------------------------------------------------------------------
# zones and records
# ------------------------------------------------------------------------------------------------

def test_zone_lookup_and_record_pagination(fake_cloudflare: FakeCloudflare, zone: str, api: Api) -> None:  # noqa: F811
    cf = fake_cloudflare
    other = cf.add_zone("example.org", account_id="a" * 32)
    found = api.get("/zones", name="example.com").json()
    assert [z["id"] for z in found["result"]] == [zone]
    assert found["result_info"] == {"page": 1, "per_page": 20, "count": 1, "total_count": 1, "total_pages": 1}
    assert [z["id"] for z in api.get("/zones", **{"account.id": "a" * 32}).json()["result"]] == [other]
    for i in range(250):
        cf.add_record("example.com", "TXT", f"r{i:03d}", f"value {i}")
    pages = [api.get(f"/zones/{zone}/dns_records", per_page=100, page=p, order="name").json() for p in (1, 2, 3)]
    assert [p["result_info"]["count"] for p in pages] == [100, 100, 50]
    assert all(p["result_info"]["total_pages"] == 3 and p["result_info"]["total_count"] == 250 for p in pages)
    names = [r["name"] for p in pages for r in p["result"]]
    assert names == sorted(names) and len(set(names)) == 250 and names[0] == "r000.example.com"
    assert api.get(f"/zones/{zone}/dns_records", per_page=100, page=4).json()["result"] == []
    # per_page over the zones list's maximum (50) violates the description
    assert api.get("/zones", per_page=100).status_code == 400
    assert any("per_page" in e for e in cf.errors)
    cf.errors.clear()


def test_record_lifecycle(fake_cloudflare: FakeCloudflare, zone: str, api: Api) -> None:  # noqa: F811
    cf = fake_cloudflare
    created = api.call("POST", f"/zones/{zone}/dns_records", a_record("WWW", comment="hello", tags=["team:web"]))
    assert created.status_code == 200
    rec = created.json()["result"]
    assert len(rec["id"]) == 32 and rec["id"] == rec["id"].lower()
    assert rec["name"] == "www.example.com" and rec["zone_id"] == zone and rec["zone_name"] == "example.com"
    assert rec["comment"] == "hello" and "comment_modified_on" in rec and rec["proxiable"] is True
    path = f"/zones/{zone}/dns_records/{rec['id']}"
    assert api.get(path).json()["result"] == rec == cf.record(rec["id"])
    patched = api.call("PATCH", path, {"content": "192.0.2.2"}).json()["result"]
    assert patched["content"] == "192.0.2.2" and patched["comment"] == "hello" and patched["tags"] == ["team:web"]
    replaced = api.call("PUT", path, {"type": "CNAME", "name": "www", "content": "app.example.net", "ttl": 300})
    assert replaced.json()["result"]["type"] == "CNAME" and replaced.json()["result"]["comment"] is None
    assert [r["type"] for r in cf.records("example.com")] == ["CNAME"]
    deleted = requests.delete(cf.url + path, headers=cf.auth_headers, timeout=5)  # no body, as clients send
    assert deleted.status_code == 200 and deleted.json()["result"] == {"id": rec["id"]}
    assert error(api.get(path)) == (404, 81044, "Record does not exist.")
    assert error(api.get(f"/zones/{'0' * 32}/dns_records"))[:2] == (400, 7003)
    assert cf.record(rec["id"]) is None


def test_list_filters(fake_cloudflare: FakeCloudflare, zone: str, api: Api) -> None:  # noqa: F811
    cf = fake_cloudflare
    cf.add_record("example.com", "A", "a", "192.0.2.1", comment="Managed by envship", tags=["owner:envship"])
    cf.add_record("example.com", "A", "b", "192.0.2.2", proxied=True)
    cf.add_record("example.com", "TXT", "a", "hello", comment="other")

    def names(**q: Any) -> list[str]:
        return [f"{r['type']} {r['name']}" for r in api.get(f"/zones/{zone}/dns_records", **q).json()["result"]]

    assert names(name="a.example.com", type="A") == ["A a.example.com"]
    assert names(**{"comment.contains": "ENVSHIP"}) == ["A a.example.com"]
    assert names(**{"comment.absent": ""}) == ["A b.example.com"]
    assert names(tag="owner:envship") == ["A a.example.com"]
    assert names(proxied="true") == ["A b.example.com"]
    assert names(type="TXT", proxied="true", match="any") == ["A b.example.com", "TXT a.example.com"]
    assert names(order="content", direction="desc")[0] == "TXT a.example.com"


def test_conflicts_81053_81054_and_identical_records(fake_cloudflare: FakeCloudflare, zone: str,  # noqa: F811
                                                      api: Api) -> None:
    cf = fake_cloudflare
    cf.add_record("example.com", "A", "www", "192.0.2.1")
    cname = api.call("POST", f"/zones/{zone}/dns_records",
                     {"type": "CNAME", "name": "www.example.com", "content": "x.example.net", "ttl": 1})
    assert error(cname) == (400, 81053, "An A, AAAA, or CNAME record with that host already exists.")
    cf.add_record("example.com", "CNAME", "app", "x.example.net")
    assert error(api.call("POST", f"/zones/{zone}/dns_records", a_record("app")))[:2] == (400, 81054)
    assert error(api.call("POST", f"/zones/{zone}/dns_records", a_record("www"))) == (
        400, 81058, "An identical record already exists.")
    cf.duplicate_code = 81057
    assert error(api.call("POST", f"/zones/{zone}/dns_records", a_record("www")))[:2] == (400, 81057)
    # a second address at the same name is fine
    assert api.call("POST", f"/zones/{zone}/dns_records", a_record("www", "192.0.2.9")).status_code == 200


def test_batch_swaps_a_for_cname_atomically(fake_cloudflare: FakeCloudflare, zone: str, api: Api) -> None:  # noqa: F811
    cf = fake_cloudflare
    a_id = cf.add_record("example.com", "A", "www", "192.0.2.1", proxied=True)
    keep = cf.add_record("example.com", "TXT", "www", "keep")
    before = cf.records("example.com")
    cname = {"type": "CNAME", "name": "www", "content": "t.cfargotunnel.com", "ttl": 1, "proxied": True}
    # in the wrong order, as two requests, the CNAME hits the A record
    assert error(api.call("POST", f"/zones/{zone}/dns_records", cname))[:2] == (400, 81053)
    # a failing batch (the patch names a record that does not exist) applies nothing, not even the delete
    failing = api.call("POST", f"/zones/{zone}/dns_records/batch",
                       {"deletes": [{"id": a_id}], "patches": [{"id": "f" * 32, "content": "x"}], "posts": [cname]})
    assert error(failing)[:2] == (404, 81044)
    assert cf.records("example.com") == before
    # deletes run before posts: one batch swaps the A for a CNAME
    ok = api.call("POST", f"/zones/{zone}/dns_records/batch",
                  {"deletes": [{"id": a_id}], "patches": [{"id": keep, "comment": "kept"}], "posts": [cname]})
    assert ok.status_code == 200, ok.text
    result = ok.json()["result"]
    assert [r["id"] for r in result["deletes"]] == [a_id] and result["patches"][0]["comment"] == "kept"
    assert result["posts"][0]["type"] == "CNAME" and result["puts"] == []
    assert sorted(r["type"] for r in cf.records("example.com")) == ["CNAME", "TXT"]


def test_record_rules_the_schema_does_not_state(fake_cloudflare: FakeCloudflare, zone: str,  # noqa: F811
                                                api: Api) -> None:
    cf = fake_cloudflare
    post = f"/zones/{zone}/dns_records"
    long_comment = "c" * 101
    assert error(api.call("POST", post, a_record(comment=long_comment))) == (
        400, 9313, "DNS record comment exceeds the maximum length of 100 characters.")
    paid = cf.add_zone("example.net", plan="pro")
    assert api.call("POST", f"/zones/{paid}/dns_records", a_record(comment=long_comment)).status_code == 200
    txt = {"type": "TXT", "name": "t", "content": "x", "ttl": 1, "proxied": True}
    assert error(api.call("POST", post, txt)) == (400, 9004, "This record type cannot be proxied.")
    proxied = api.call("POST", post, a_record("p", ttl=3600, proxied=True)).json()["result"]
    assert proxied["ttl"] == 1
    no_ttl = {"type": "A", "name": "n", "content": "192.0.2.1"}
    assert error(api.call("POST", post, no_ttl))[:2] == (400, 9021)
    assert error(api.call("POST", post, a_record("q", ttl=45)))[:2] == (400, 9021)
    assert api.call("POST", post, {"type": "AAAA", "name": "v6", "content": "2001:db8::1", "ttl": 1}).status_code == 200
    bad_cname = {"type": "CNAME", "name": "c", "content": "not a host", "ttl": 1}
    assert error(api.call("POST", post, bad_cname))[:2] == (400, 9007)
    # A content that is not IPv4 also violates the description's format: recorded, answered with the live error
    assert error(api.call("POST", post, a_record(content="192.0.2.300"))) == (
        400, 9005, "Content for A record must be a valid IPv4 address.")
    assert any("ipv4" in e for e in cf.errors)
    cf.errors.clear()


def test_spec_violations_are_recorded_and_answered_400(fake_cloudflare: FakeCloudflare, zone: str,  # noqa: F811
                                                       api: Api) -> None:
    cf = fake_cloudflare
    bad = api.call("POST", f"/zones/{zone}/dns_records", a_record(proxied="yes"))
    assert error(bad) == (400, 9207, "Request body is invalid.")
    assert any("'yes' is not of type 'boolean'" in e and "proxied" in e for e in cf.errors)
    assert cf.records("example.com") == []
    cf.errors.clear()
    assert api.get(f"/zones/{zone}/dns_records", colour="blue").status_code == 400
    assert any("colour is not in the description" in e for e in cf.errors)
    cf.errors.clear()
    assert error(api.get("/zones/" + zone + "/settings"))[:2] == (404, 7000)
    assert any("no such path" in e for e in cf.errors)
    cf.errors.clear()
    assert error(api.call("DELETE", "/zones"))[:2] == (405, 7001)
    assert len(cf.errors) == 1
    cf.errors.clear()


# ------------------------------------------------------------------------------------------------
# tunnels
# ------------------------------------------------------------------------------------------------

def test_tunnel_status_follows_its_connectors(fake_cloudflare: FakeCloudflare, api: Api) -> None:  # noqa: F811
    cf = fake_cloudflare
    account = "b" * 32
    never = cf.add_tunnel(account, name="never", connectors=0)
    running = cf.add_tunnel(account, name="main", connectors=2)

    def tunnel(t: str) -> dict[str, Any]:
        response = api.get(f"/accounts/{account}/cfd_tunnel/{t}")
        assert response.status_code == 200, response.text
        return dict(response.json()["result"])

    t = tunnel(never)
    assert (t["status"], t["connections"], t["conns_active_at"]) == ("inactive", [], None)
    t = tunnel(running)
    assert t["status"] == "healthy" and len({c["client_id"] for c in t["connections"]}) == 2
    assert t["tun_type"] == "cfd_tunnel" and t["remote_config"] is True and t["deleted_at"] is None
    assert {"colo_name", "id", "is_pending_reconnect", "opened_at", "origin_ip", "client_id",
            "client_version"} <= set(t["connections"][0])
    cf.set_connectors(running, 0)
    t = tunnel(running)
    assert t["status"] == "down" and t["connections"] == [] and t["conns_inactive_at"] is not None
    assert error(api.get(f"/accounts/{account}/cfd_tunnel/{'0' * 8}-0000-4000-8000-{'0' * 12}"))[:2] == (404, 1003)
    assert error(api.get(f"/accounts/{'c' * 32}/cfd_tunnel/{running}"))[:2] == (403, 10000)


def test_config_put_replaces_the_document_and_bumps_version(fake_cloudflare: FakeCloudflare,  # noqa: F811
                                                            api: Api) -> None:
    cf = fake_cloudflare
    t = cf.add_tunnel(cf.account_id)
    path = f"/accounts/{cf.account_id}/cfd_tunnel/{t}/configurations"
    fresh = api.get(path).json()["result"]
    assert fresh["version"] == 0 and fresh["config"] == {"ingress": [{"service": "http_status:404"}]}
    assert fresh["source"] == "cloudflare" and fresh["tunnel_id"] == t and fresh["account_id"] == cf.account_id
    config = {"ingress": [{"hostname": "app.example.com", "path": "/api", "service": "http://api:80",
                           "originRequest": {"connectTimeout": 5}},
                          {"hostname": "app.example.com", "service": "http://web:80"},
                          {"service": "http_status:404"}],
              "originRequest": {"noTLSVerify": True}, "warp-routing": {"enabled": False}}
    put = api.call("PUT", path, {"config": config})
    assert put.status_code == 200, put.text
    assert put.json()["result"]["version"] == 1 and put.json()["result"]["config"] == config
    smaller = {"ingress": [{"service": "http_status:404"}]}
    assert api.call("PUT", path, {"config": smaller}).json()["result"]["config"] == smaller  # the whole document
    cf.set_tunnel_config(t, config)
    assert cf.tunnel_config(t) == {"version": 3, "config": config}


def test_catch_all_rule_rules(fake_cloudflare: FakeCloudflare, api: Api) -> None:  # noqa: F811
    cf = fake_cloudflare
    t = cf.add_tunnel(cf.account_id)
    path = f"/accounts/{cf.account_id}/cfd_tunnel/{t}/configurations"
    last_has_host = {"ingress": [{"hostname": "a.example.com", "service": "http://a:80"}]}
    status, code, message = error(api.call("PUT", path, {"config": last_has_host}))
    assert (status, code) == (400, 1055)
    assert message.endswith("The last ingress rule must match all URLs "
                            "(i.e. it should not have a hostname or path filter)")
    last_has_path = {"ingress": [{"service": "http://a:80", "path": "/x"}]}
    assert error(api.call("PUT", path, {"config": last_has_path}))[:2] == (400, 1055)
    early = {"ingress": [{"service": "http://a:80"}, {"hostname": "b.example.com", "service": "http://b:80"},
                         {"service": "http_status:404"}]}
    assert "Rule #1" in error(api.call("PUT", path, {"config": early}))[2]
    assert cf.errors == []  # the catch-all without hostname is what the live API wants, not a violation
    empty = api.call("PUT", path, {"config": {"ingress": []}})
    assert error(empty)[:2] == (400, 1055)
    assert any("ingress" in e for e in cf.errors)  # minItems 1 in the description
    cf.errors.clear()
    assert cf.tunnel_config(t)["version"] == 0


def test_after_hook_lands_a_foreign_write_between_get_and_put(fake_cloudflare: FakeCloudflare,  # noqa: F811
                                                              api: Api) -> None:
    cf = fake_cloudflare
    t = cf.add_tunnel(cf.account_id)
    path = f"/accounts/{cf.account_id}/cfd_tunnel/{t}/configurations"
    foreign = {"ingress": [{"hostname": "other.example.com", "service": "http://o:80"}, {"service": "http_status:404"}]}
    cf.after("GET", r"/configurations$", lambda: cf.set_tunnel_config(t, foreign))
    seen = api.get(path).json()["result"]
    assert seen["version"] == 0
    assert cf.tunnel_config(t) == {"version": 1, "config": foreign}  # landed right after the GET was answered
    api.get(path)  # times=1: no second foreign write
    assert cf.tunnel_config(t)["version"] == 1
    mine = {"ingress": [{"hostname": "mine.example.com", "service": "http://m:80"}, {"service": "http_status:404"}]}
    result = api.call("PUT", path, {"config": mine}).json()["result"]
    assert result["version"] == 2 and result["config"] == mine  # no precondition: the foreign write is lost


# ------------------------------------------------------------------------------------------------
# failures, request log, script
# ------------------------------------------------------------------------------------------------

def test_inject_failure_and_request_log(fake_cloudflare: FakeCloudflare, zone: str, api: Api) -> None:  # noqa: F811
    cf = fake_cloudflare
    cf.inject_failure(r"/dns_records$", status=429, retry_after=2, method="POST")
    limited = api.call("POST", f"/zones/{zone}/dns_records", a_record())
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert limited.json()["success"] is False and cf.records("example.com") == []
    assert api.call("POST", f"/zones/{zone}/dns_records", a_record()).status_code == 200
    cf.inject_failure("/zones", status=502, html=True, method="GET")
    edge = api.get("/zones")
    assert edge.status_code == 502 and edge.headers["Content-Type"] == "text/html" and "cloudflare" in edge.text
    posts = [r for r in cf.requests if r.method == "POST"]
    assert [r.status for r in posts] == [429, 200] and posts[0].injected and posts[1].body["name"] == "www"
    assert isinstance(posts[1], Request) and posts[1].path == f"/zones/{zone}/dns_records"
    assert [r.status for r in cf.writes()] == [200]
    assert cf.count("POST", r"/dns_records$") == 2 and cf.count(path="^/zones$") == 1
    cf.reset_requests()
    assert cf.requests == [] and cf.count() == 0


def test_set_faults_is_deterministic() -> None:
    def run(seed: int) -> tuple[list[int], dict[str, int]]:
        with FakeCloudflare.start() as cf:
            z = cf.add_zone("example.com")
            faults = cf.set_faults(seed, rate=0.5)
            assert faults is not None
            api = Api(cf)
            statuses = [api.get(f"/zones/{z}/dns_records").status_code for _ in range(30)]
            statuses += [api.call("POST", f"/zones/{z}/dns_records", a_record(f"h{i}")).status_code for i in range(10)]
            assert cf.errors == []
            return statuses, dict(faults.counts)

    first, counts = run(7)
    assert run(7) == (first, counts)
    assert counts["429"] > 0 and counts["5xx"] > 0 and {500, 502, 503} & set(first)
    assert all(s in (200, 429) for s in first[30:])  # writes never get a 5xx
    assert run(8)[0] != first


def test_latency_is_applied() -> None:
    with FakeCloudflare.start(latency_ms=30) as cf:
        t0 = time.monotonic()
        assert Api(cf).get("/user/tokens/verify").status_code == 200
        assert time.monotonic() - t0 >= 0.03


def test_script_prints_url_and_token_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.cloudflare_api", "--port", "0", "--latency-ms", "1",
                             "--max-seconds", "30", "--zone", "example.com", "--tunnel", "d" * 32],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        token = proc.stdout.readline().strip()
        tunnel = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/client/v4") and token
        headers = {"Authorization": f"Bearer {token}"}
        zones = requests.get(url + "/zones", headers=headers, timeout=5).json()["result"]
        assert [z["name"] for z in zones] == ["example.com"]
        got = requests.get(f"{url}/accounts/{'d' * 32}/cfd_tunnel/{tunnel}", headers=headers, timeout=5)
        assert got.json()["result"]["status"] == "healthy"
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
