"""Cloudflare routes end to end: envship (in-process) against the fake Kubernetes API server and the fake
Cloudflare API (tests/fakes/cloudflare_api.py, which checks every request against Cloudflare's OpenAPI
description), with neighbours present: records and tunnel rules of others, other previews, another
repository with the same names.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Project, parse_github_output
from fakes.cloudflare_api import FakeCloudflare
from fakes.cloudflare_plugin import fake_cloudflare  # noqa: F401 - the fixture
from fakes.edge import Edge
from fakes.kube_apiserver import FakeKube
from fakes.pytest_plugin import fake_kube  # noqa: F401 - the fixture
from test_deploy import DEPLOYMENT, IMAGE_A, IMAGE_B, SERVICE

from envship.cli import main

ACCOUNT = "0123456789abcdef0123456789abcdef"
MARK = "envship app=hello env=staging ns=hello-staging repo=acme/hello"
ZONE_LOOKUP = 2   # token verify + zone lookup, once per run

ENVIRONMENTS = """\
app: hello
image: ghcr.io/acme/hello
manifests: deploy
environments:
  staging:
    context: fake
    namespace: hello-staging
    host: staging.example.com
    create-namespace: true{staging_extra}
  production:
    context: fake
    namespace: hello
    host: www.example.com
    protected: true
    create-namespace: true
  preview:
    preview: true
    context: fake
    namespace: hello-pr-{{pr}}
    host: hello-pr-{{pr}}.example.com
  local:
    context: fake
    namespace: hello-local
    host: local.example.com
    create-namespace: true
    routes: false
"""


def dns_config(target: str = "203.0.113.7", staging_extra: str = "", smoke: str = "") -> str:
    return (ENVIRONMENTS.format(staging_extra=staging_extra)
            + f"routes:\n  cloudflare:\n    zone: example.com\n    target: {target}\n" + smoke)


def tunnel_config(tunnel: str, staging_extra: str = "") -> str:
    return (ENVIRONMENTS.format(staging_extra=staging_extra)
            + "routes:\n  cloudflare:\n    zone: example.com\n    mode: tunnel\n"
            + f"    account: {ACCOUNT}\n    tunnel: {tunnel}\n"
            + "    service: http://web.{namespace}.svc.cluster.local:80\n")


class Routed:
    """A project deploying to the fake cluster, routed through the fake Cloudflare API."""

    def __init__(self, project: Project, kube: FakeKube, cf: FakeCloudflare) -> None:
        self.project = project
        self.kube = kube
        self.cf = cf
        self.zone = cf.add_zone("example.com")
        project.config(dns_config())
        project.manifest("deployment.yaml", DEPLOYMENT)
        project.manifest("service.yaml", SERVICE)
        self.environ = {"KUBECONFIG": str(kube.kubeconfig(project.root / "kubeconfig")),
                        "SOURCE_DATE_EPOCH": "1700000000", "ENVSHIP_LEASE_SECONDS": "5",
                        "CLOUDFLARE_API_URL": cf.url, "CLOUDFLARE_API_TOKEN": cf.token,
                        "GITHUB_REPOSITORY": "acme/hello", "GITHUB_OUTPUT": str(project.root / "out.txt")}

    def run(self, argv: list[str], **extra: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(argv, environ={**self.environ, **extra}, out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    def deploy(self, *args: str, env: str = "staging", image: str = IMAGE_A, **extra: str) -> tuple[int, str, str]:
        return self.run(["deploy", "--env", env, "--image", image, "--skip-image-check", "--timeout", "20s",
                         *args], **extra)

    def routes(self, *args: str, env: str = "staging", **extra: str) -> tuple[int, str, str]:
        return self.run(["routes", "--env", env, *args], **extra)

    def records(self, name: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.cf.records("example.com") if name is None or r["name"] == name]

    def only(self, name: str) -> dict[str, Any]:
        [record] = self.records(name)
        return record

    def api_writes(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.cf.writes()]


@pytest.fixture
def routed(project: Project, fake_kube: FakeKube, fake_cloudflare: FakeCloudflare) -> Routed:  # noqa: F811
    return Routed(project, fake_kube, fake_cloudflare)


@pytest.fixture
def edge() -> Iterator[Edge]:
    with Edge.start() as e:
        yield e


# -- dns mode -----------------------------------------------------------------------------------------
def test_first_deploy_creates_one_proxied_record_with_the_mark(routed: Routed) -> None:
    code, _, err = routed.deploy(GITHUB_ACTIONS="true")
    assert code == 0, err
    record = routed.only("staging.example.com")
    assert (record["type"], record["content"], record["proxied"], record["ttl"]) == ("A", "203.0.113.7", True, 1)
    assert record["comment"] == MARK
    assert routed.api_writes() == [f"POST /zones/{routed.zone}/dns_records"]   # one create, no blind repeats
    assert "route staging.example.com: create: - -> A 203.0.113.7 (proxied)" in err
    assert parse_github_output((routed.project.root / "out.txt").read_text())["url"] == "https://staging.example.com"


def test_a_route_already_right_costs_two_requests_after_the_zone_lookup_and_writes_nothing(routed: Routed) -> None:
    assert routed.deploy()[0] == 0
    routed.cf.reset_requests()
    code, _, err = routed.routes()
    assert code == 0, err
    assert "route staging.example.com: nothing to change" in err
    assert routed.cf.writes() == []
    assert len(routed.cf.requests) - ZONE_LOOKUP <= 2
    routed.cf.reset_requests()
    code, _, err = routed.deploy()                 # the redeploy that changes nothing: route checked, not written
    assert code == 0 and "nothing to change" in err, err
    assert routed.cf.writes() == [] and len(routed.cf.requests) - ZONE_LOOKUP <= 2


def test_a_new_target_patches_the_record_in_place(routed: Routed) -> None:
    assert routed.deploy()[0] == 0
    before = routed.only("staging.example.com")
    routed.project.config(dns_config(target="203.0.113.8"))
    routed.cf.reset_requests()
    code, _, err = routed.routes()
    assert code == 0, err
    after = routed.only("staging.example.com")
    assert after["id"] == before["id"] and after["content"] == "203.0.113.8"
    assert routed.api_writes() == [f"PATCH /zones/{routed.zone}/dns_records/{before['id']}"]


def test_a_to_cname_and_back_are_one_atomic_batch_each(routed: Routed) -> None:
    assert routed.deploy()[0] == 0
    for target, kind in (("lb.example.net", "CNAME"), ("203.0.113.9", "A")):
        routed.project.config(dns_config(target=target))
        routed.cf.reset_requests()
        code, _, err = routed.routes()
        assert code == 0, err
        record = routed.only("staging.example.com")
        assert (record["type"], record["content"], record["comment"]) == (kind, target, MARK)
        assert routed.api_writes() == [f"POST /zones/{routed.zone}/dns_records/batch"]   # never 81053


def test_a_foreign_record_stops_the_deploy_before_the_cluster_is_touched(routed: Routed) -> None:
    foreign = routed.cf.add_record("example.com", "A", "staging.example.com", "198.51.100.1", proxied=True)
    code, _, err = routed.deploy()
    assert code == 2, err
    assert "A record staging.example.com -> 198.51.100.1 was not created by envship" in err
    assert "'adopt: true' in environment 'staging'" in err
    assert routed.kube.get("namespaces", None, "hello-staging") is None   # nothing changed anywhere
    assert routed.cf.writes() == [] and routed.cf.record(foreign)["content"] == "198.51.100.1"


def test_records_of_other_types_at_the_host_are_left_alone(routed: Routed) -> None:
    txt = routed.cf.add_record("example.com", "TXT", "staging.example.com", "\"google-site-verification=abc\"")
    assert routed.deploy()[0] == 0
    assert routed.cf.record(txt)["content"] == "\"google-site-verification=abc\""
    assert {r["type"] for r in routed.records("staging.example.com")} == {"A", "TXT"}
    routed.project.config(dns_config(target="lb.example.net"))   # a CNAME cannot share its name
    code, _, err = routed.routes()
    assert code == 2 and "TXT record staging.example.com" in err, err
    assert {r["type"] for r in routed.records("staging.example.com")} == {"A", "TXT"}   # both as they were


def test_adopt_marks_a_record_only_when_it_already_points_where_envship_would(routed: Routed) -> None:
    routed.project.config(dns_config(staging_extra="\n    adopt: true"))
    foreign = routed.cf.add_record("example.com", "A", "staging.example.com", "198.51.100.1", proxied=False)
    code, _, err = routed.routes()
    assert code == 2, err
    assert "only adopts a record that already has the content envship would write" in err
    assert routed.cf.record(foreign)["comment"] is None
    routed.project.config(dns_config(target="198.51.100.1", staging_extra="\n    adopt: true"))
    code, _, err = routed.routes()
    assert code == 0, err
    record = routed.cf.record(foreign)
    assert (record["content"], record["comment"], record["proxied"]) == ("198.51.100.1", MARK, True)
    assert "adopt" in err


def test_the_same_app_from_another_repository_is_another_owner(routed: Routed) -> None:
    assert routed.routes()[0] == 0
    code, _, err = routed.routes(GITHUB_REPOSITORY="someone/hello")
    assert code == 2, err
    assert "belongs to another envship target ('envship app=hello env=staging ns=hello-staging repo=acme/hello')" in err
    assert routed.only("staging.example.com")["comment"] == MARK


def test_dry_run_prints_the_plan_as_a_table_and_sends_no_write(routed: Routed) -> None:
    code, out, err = routed.routes("--dry-run")
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["HOST", "CURRENT", "DESIRED", "ACTION"]
    assert row.split()[:1] == ["staging.example.com"] and row.rstrip().endswith("create")
    assert "A 203.0.113.7 (proxied)" in row
    assert routed.cf.writes() == [] and routed.records() == []


def test_plan_includes_the_route_plan_and_changes_nothing(routed: Routed) -> None:
    code, out, err = routed.run(["plan", "--env", "staging", "--image", IMAGE_A, "--skip-image-check"],
                                GITHUB_ACTIONS="true")
    assert code == 0, err
    assert "staging.example.com" in out and "A 203.0.113.7 (proxied)" in out and "create" in out
    assert routed.cf.writes() == []
    assert parse_github_output((routed.project.root / "out.txt").read_text())["changes"] == "4"  # 3 objects + route


def test_a_renamed_host_takes_its_old_record_along(routed: Routed) -> None:
    assert routed.routes()[0] == 0
    routed.cf.add_record("example.com", "A", "old.example.com", "198.51.100.9")   # someone else's
    routed.project.config(dns_config().replace("host: staging.example.com", "host: web.example.com"))
    routed.cf.reset_requests()
    code, _, err = routed.routes()
    assert code == 0, err
    assert routed.records("staging.example.com") == []
    assert routed.only("web.example.com")["comment"] == MARK
    assert routed.only("old.example.com")["content"] == "198.51.100.9"
    assert routed.api_writes() == [f"POST /zones/{routed.zone}/dns_records/batch"]


def test_routes_false_and_environments_without_a_host_are_not_routed(routed: Routed) -> None:
    code, _, err = routed.deploy(env="local")
    assert code == 0, err
    assert routed.cf.requests == []
    code, _, err = routed.routes(env="local")
    assert code == 2 and "environment 'local' has 'routes: false'" in err


# -- teardown -----------------------------------------------------------------------------------------
def test_delete_removes_this_previews_records_only(routed: Routed) -> None:
    for pr in ("1", "2"):
        assert routed.routes("--pr", pr, env="preview")[0] == 0
    foreign = routed.cf.add_record("example.com", "CNAME", "docs.example.com", "docs.example.net", proxied=True)
    code, _, err = routed.routes("--pr", "1", "--delete", env="preview")
    assert code == 0, err
    assert routed.records("hello-pr-1.example.com") == []
    assert routed.only("hello-pr-2.example.com")["comment"] == \
        "envship app=hello env=preview ns=hello-pr-2 repo=acme/hello"
    assert routed.cf.record(foreign) is not None
    assert routed.routes("--pr", "1", "--delete", env="preview")[0] == 0   # again: nothing left to do


def test_a_protected_environment_is_never_torn_down(routed: Routed) -> None:
    assert routed.routes(env="production")[0] == 0
    code, _, err = routed.routes("--delete", env="production")
    assert code == 2 and "environment 'production' is protected" in err
    assert routed.only("www.example.com")


def test_a_deep_preview_host_gets_a_certificate_warning(routed: Routed) -> None:
    routed.project.config(dns_config().replace("host: hello-pr-{pr}.example.com", "host: pr-{pr}.hello.example.com"))
    code, _, err = routed.routes("--pr", "3", env="preview")
    assert code == 0, err
    assert "host pr-3.hello.example.com is 2 levels below the zone example.com" in err
    assert "'hello-pr-{pr}.example.com'" in err


# -- smoke check --------------------------------------------------------------------------------------
SMOKE = "  smoke-check:\n    path: /healthz\n    status: 200\n    timeout: 2s\n    scheme: http\n"


def test_a_failed_smoke_check_restores_the_route_and_rolls_the_release_back(routed: Routed, edge: Edge) -> None:
    routed.project.config(dns_config(smoke=SMOKE))
    code, _, err = routed.deploy(HTTP_PROXY=edge.url)
    assert code == 0 and "smoke check passed" in err, err
    assert edge.seen[-1] == "staging.example.com/healthz"
    edge.answer("staging.example.com", 503)
    routed.project.config(dns_config(target="203.0.113.8", smoke=SMOKE))
    code, _, err = routed.deploy(image=IMAGE_B, HTTP_PROXY=edge.url)
    assert code == 1, err
    assert "http://staging.example.com/healthz answered HTTP 503, not 200" in err
    assert "restoring the previous route" in err and "rolled back to revision 1" in err
    assert routed.only("staging.example.com")["content"] == "203.0.113.7"
    deployment = routed.kube.get("deployments", "hello-staging", "web")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_A


def test_routes_smoke_check_failure_restores_the_record(routed: Routed, edge: Edge) -> None:
    assert routed.routes()[0] == 0
    edge.answer("staging.example.com", 502)
    routed.project.config(dns_config(target="lb.example.net", smoke=SMOKE))
    code, _, err = routed.routes(HTTP_PROXY=edge.url)
    assert code == 1 and "smoke check failed" in err and "previous route was restored" in err, err
    record = routed.only("staging.example.com")
    assert (record["type"], record["content"], record["comment"]) == ("A", "203.0.113.7", MARK)


# -- errors and throttling ----------------------------------------------------------------------------
def test_without_a_token_nothing_is_touched(routed: Routed) -> None:
    code, _, err = routed.deploy(CLOUDFLARE_API_TOKEN="")
    assert code == 2
    assert "no Cloudflare API token" in err and "cloudflare-api-token" in err and "routes: false" in err
    assert routed.kube.get("namespaces", None, "hello-staging") is None


def test_a_token_cloudflare_rejects_is_named_and_nothing_is_touched(routed: Routed) -> None:
    code, _, err = routed.deploy(CLOUDFLARE_API_TOKEN="not-the-token-0000")
    assert code == 1, err
    assert "Cloudflare does not accept the API token" in err and "Traceback" not in err
    assert routed.kube.get("namespaces", None, "hello-staging") is None


def test_a_missing_permission_is_named(routed: Routed) -> None:
    routed.cf.permissions.discard("dns:edit")
    code, _, err = routed.routes()
    assert code == 1, err
    assert "the API token lacks Zone / DNS / Edit" in err
    routed.cf.permissions.discard("zone:read")
    code, _, err = routed.routes()
    assert code == 1 and "zone example.com was not found, or the API token cannot see it" in err
    assert "Zone / Zone / Read" in err


def test_throttling_and_server_errors_are_survived(routed: Routed) -> None:
    routed.cf.inject_failure("/dns_records$", status=429, count=2, retry_after=1, method="POST")
    routed.cf.inject_failure("/dns_records$", status=503, count=1, method="GET", html=True)
    code, _, err = routed.deploy()
    assert code == 0, err
    assert routed.only("staging.example.com")["comment"] == MARK   # one record, not a duplicate per retry
    assert "Cloudflare's API: 3 request(s) retried, waited 3.0 s as it asked (Retry-After)" in err


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_seeded_faults_end_in_one_record_after_reruns(routed: Routed, seed: int) -> None:
    routed.cf.set_faults(seed, rate=0.4)
    results = [routed.routes() for _ in range(3)]
    assert all("Traceback" not in err and "internal error" not in err for _, _, err in results)
    routed.cf.set_faults(None)
    assert routed.routes()[0] == 0
    assert routed.only("staging.example.com")["content"] == "203.0.113.7"


def test_an_edge_that_keeps_failing_is_a_clear_error(fake_cloudflare: FakeCloudflare) -> None:  # noqa: F811
    from envship.adapters.cloudflare import Cloudflare, CloudflareError

    fake_cloudflare.add_zone("example.com")
    fake_cloudflare.inject_failure("/zones$", status=502, count=20, method="GET", html=True)
    cf = Cloudflare(fake_cloudflare.token, fake_cloudflare.url, retries=3, backoff=0.01)  # the CLI's: 6, 0.5 s
    cf.verify()
    with pytest.raises(CloudflareError) as e:
        cf.zone("example.com")
    assert str(e.value.problems[0].message) == "Cloudflare answered GET /zones with HTTP 502 and no API response " \
        "(not JSON)"
    assert e.value.status == 502 and "re-run later" in e.value.problems[0].hint
    assert fake_cloudflare.count("GET", "/zones$") == 4      # the first try and 3 retries
    assert cf.stats.retries == 3


def test_the_token_never_appears_in_anything_a_run_prints_or_writes(routed: Routed, edge: Edge) -> None:
    summary = routed.project.root / "summary.md"
    actions = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "HTTP_PROXY": edge.url}
    routed.project.config(dns_config(smoke=SMOKE))
    runs = [routed.deploy(**actions), routed.routes("--dry-run", **actions)]
    edge.answer("staging.example.com", 500)
    routed.project.config(dns_config(target="203.0.113.99", smoke=SMOKE))
    runs += [routed.deploy(image=IMAGE_B, **actions)]
    routed.cf.permissions.discard("dns:edit")
    runs += [routed.routes(**actions)]
    assert [code for code, _, _ in runs] == [0, 0, 1, 1]
    written = [summary.read_text(), (routed.project.root / "out.txt").read_text()]
    for _, out, err in runs:
        visible = [line for line in (out + err).splitlines() if not line.startswith("::add-mask::")]
        assert routed.cf.token not in "\n".join(visible + written)
    assert any(f"::add-mask::{routed.cf.token}" in err for _, _, err in runs)


# -- tunnel mode --------------------------------------------------------------------------------------
FOREIGN_RULES = [{"hostname": "grafana.example.com", "service": "http://grafana:3000",
                  "originRequest": {"noTLSVerify": True}},
                 {"hostname": "staging.example.com", "path": "/api/.*", "service": "http://api:8080"}]


@pytest.fixture
def tunnel(routed: Routed) -> str:
    tunnel_id = routed.cf.add_tunnel(ACCOUNT, "main", connectors=2)
    routed.cf.set_tunnel_config(tunnel_id, {"ingress": [*FOREIGN_RULES, {"service": "http_status:404"}],
                                            "originRequest": {"connectTimeout": 10}})
    routed.project.config(tunnel_config(tunnel_id))
    return tunnel_id


def ingress_of(routed: Routed, tunnel_id: str) -> list[dict[str, Any]]:
    return list(routed.cf.tunnel_config(tunnel_id)["config"]["ingress"])


def test_a_tunnel_route_adds_one_rule_before_the_catch_all_and_a_marked_cname(routed: Routed, tunnel: str) -> None:
    code, _, err = routed.deploy()
    assert code == 0, err
    assert ingress_of(routed, tunnel) == [*FOREIGN_RULES, {"hostname": "staging.example.com",
                                                           "service": "http://web.hello-staging.svc.cluster.local:80"},
                                          {"service": "http_status:404"}]
    assert routed.cf.tunnel_config(tunnel)["config"]["originRequest"] == {"connectTimeout": 10}
    record = routed.only("staging.example.com")
    assert (record["type"], record["content"], record["proxied"], record["comment"]) == \
        ("CNAME", f"{tunnel}.cfargotunnel.com", True, MARK)
    routed.cf.reset_requests()
    code, _, err = routed.routes()
    assert code == 0 and routed.cf.writes() == [], err
    assert len(routed.cf.requests) - ZONE_LOOKUP <= 2


def test_a_tunnel_without_a_connector_is_refused_before_anything_changes(routed: Routed, tunnel: str) -> None:
    routed.cf.set_connectors(tunnel, 0)
    code, _, err = routed.deploy()
    assert code == 1, err
    assert "no cloudflared connector is running" in err and "error 1033" in err
    assert routed.kube.get("namespaces", None, "hello-staging") is None and routed.cf.writes() == []


def test_a_rule_for_the_host_that_envship_did_not_make_is_refused(routed: Routed, tunnel: str) -> None:
    config = routed.cf.tunnel_config(tunnel)["config"]
    config["ingress"].insert(0, {"hostname": "staging.example.com", "service": "http://legacy:80"})
    routed.cf.set_tunnel_config(tunnel, config)
    code, _, err = routed.routes()
    assert code == 2, err
    assert "already has a rule for staging.example.com (-> http://legacy:80) that envship did not create" in err
    assert routed.records() == [] and ingress_of(routed, tunnel)[0]["service"] == "http://legacy:80"


def test_a_writer_outside_envship_between_write_and_read_back_is_merged_again(routed: Routed, tunnel: str) -> None:
    other = {"hostname": "status.example.com", "service": "http://status:80"}

    def clobber() -> None:   # another tool writes its own document, without envship's rule
        config = routed.cf.tunnel_config(tunnel)["config"]
        config["ingress"] = [r for r in config["ingress"] if r.get("hostname") != "staging.example.com" or "path" in r]
        config["ingress"].insert(0, other)
        routed.cf.set_tunnel_config(tunnel, config)

    routed.cf.after("PUT", "/configurations$", clobber)
    code, _, err = routed.routes()
    assert code == 0, err
    assert "merging again" in err
    ingress = ingress_of(routed, tunnel)
    assert other in ingress and {"hostname": "staging.example.com",
                                 "service": "http://web.hello-staging.svc.cluster.local:80"} in ingress
    assert ingress[-1] == {"service": "http_status:404"} and all(r in ingress for r in FOREIGN_RULES)


def test_ten_concurrent_preview_deploys_share_one_tunnel(routed: Routed, tunnel: str) -> None:
    results: dict[int, tuple[int, str, str]] = {}

    def deploy(pr: int) -> None:
        results[pr] = routed.deploy("--pr", str(pr), env="preview")

    threads = [threading.Thread(target=deploy, args=(pr,)) for pr in range(1, 11)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(code == 0 for code, _, _ in results.values()), [err for _, _, err in results.values()][:2]
    ingress = ingress_of(routed, tunnel)
    hosts = [r.get("hostname") for r in ingress]
    assert sorted(h for h in hosts if h and h.startswith("hello-pr-")) == \
        sorted(f"hello-pr-{pr}.example.com" for pr in range(1, 11))
    assert all(r in ingress for r in FOREIGN_RULES) and ingress[-1] == {"service": "http_status:404"}
    assert len(routed.records()) == 10
    code, _, err = routed.routes("--pr", "4", "--delete", env="preview")   # teardown of one leaves the rest
    assert code == 0, err
    ingress = ingress_of(routed, tunnel)
    assert "hello-pr-4.example.com" not in [r.get("hostname") for r in ingress]
    assert len([r for r in ingress if str(r.get("hostname", "")).startswith("hello-pr-")]) == 9
    assert all(r in ingress for r in FOREIGN_RULES) and ingress[-1] == {"service": "http_status:404"}
    assert routed.records("hello-pr-4.example.com") == [] and len(routed.records()) == 9


# -- the action ---------------------------------------------------------------------------------------
def test_the_action_routes_with_its_token_input_masked_first(routed: Routed) -> None:
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/hello", "CLOUDFLARE_API_URL": routed.cf.url,
               "GITHUB_STEP_SUMMARY": str(routed.project.root / "summary.md"),
               "INPUT_COMMAND": "routes", "INPUT_ENVIRONMENT": "staging", "INPUT_CONFIG": "envship.yaml",
               "INPUT_CLOUDFLARE-API-TOKEN": routed.cf.token, "INPUT_DRY-RUN": "true", "INPUT_DELETE": "false",
               "INPUT_PR": "", "INPUT_SECRETS": ""}
    log = io.StringIO()
    code = main(["action"], environ=environ, out=log, err=log)
    lines = log.getvalue().splitlines()
    assert code == 0, log.getvalue()
    assert lines[0] == f"::add-mask::{routed.cf.token}"     # before anything else is printed
    assert not any(routed.cf.token in line for line in lines[1:])
    assert routed.cf.writes() == [] and "| `staging.example.com` | - | A 203.0.113.7 (proxied) | create |" in \
        (routed.project.root / "summary.md").read_text()
    environ["INPUT_DRY-RUN"] = "maybe"
    log = io.StringIO()
    assert main(["action"], environ=environ, out=log, err=log) == 2
    assert "input 'dry-run' must be true or false" in log.getvalue()


# -- target: ingress ----------------------------------------------------------------------------------
GATEWAY_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gateways.gateway.networking.k8s.io"},
    "spec": {"group": "gateway.networking.k8s.io", "scope": "Namespaced",
             "names": {"plural": "gateways", "singular": "gateway", "kind": "Gateway", "listKind": "GatewayList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]}}
GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web}
spec:
  gatewayClassName: example
  listeners: [{name: http, protocol: HTTP, port: 80, hostname: staging.example.com}]
"""


def test_a_gateway_address_is_waited_for_and_routed_to(routed: Routed) -> None:
    import requests

    routed.kube.create(GATEWAY_CRD)
    routed.project.manifest("gateway.yaml", GATEWAY)
    routed.project.config(dns_config(target="ingress"))

    def gateway_controller() -> None:   # publishes an address a moment after the Gateway appears
        routed.kube.wait_for(lambda: routed.kube.get("gateways", "hello-staging", "web"), timeout=20)
        time.sleep(0.3)
        requests.patch(f"{routed.kube.url}/apis/gateway.networking.k8s.io/v1/namespaces/hello-staging/gateways/web"
                       "/status", headers={**routed.kube.auth_headers, "Content-Type": "application/merge-patch+json"},
                       json={"status": {"addresses": [{"type": "IPAddress", "value": "198.51.100.40"}]}}, timeout=5)

    controller = threading.Thread(target=gateway_controller)
    controller.start()
    code, _, err = routed.deploy()
    controller.join(20)
    assert code == 0, err
    assert "Gateway web at 198.51.100.40" in err
    assert routed.only("staging.example.com")["content"] == "198.51.100.40"
    routed.cf.reset_requests()
    code, _, err = routed.routes()         # the routes command reads the address from the cluster
    assert code == 0 and routed.cf.writes() == [], err


def test_bad_route_settings_are_usage_errors_naming_what_to_fix(routed: Routed) -> None:
    code, _, err = routed.routes(CLOUDFLARE_API_URL="api.cloudflare.com/client/v4")
    assert code == 2 and "CLOUDFLARE_API_URL 'api.cloudflare.com/client/v4' is not an http(s) URL" in err
    routed.project.config(ENVIRONMENTS.format(staging_extra=""))
    code, _, err = routed.routes()
    assert code == 2 and "the config has no routes.cloudflare section" in err
    code, _, err = routed.routes("--pr", "3")
    assert code == 2 and "--pr is only for preview environments" in err
    assert routed.cf.requests == []
