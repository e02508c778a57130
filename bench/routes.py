#!/usr/bin/env python3
"""Cloudflare routes: API requests and wall time of `envship routes` against the fake Cloudflare API, side
by side with a naive deploy script.

    python bench/routes.py [--latency-ms 50] [--quick] [--json]

envship runs in-process (`envship.cli.main(["routes", ...])`) against a fresh fake Cloudflare API
(tests/fakes/cloudflare_api.py, in this process, `--latency-ms` added to every request to mimic a real API
round trip) per scenario group, with the zone example.com. Tunnel scenarios also start the fake Kubernetes
API (tests/fakes/kube_apiserver.py, no added latency): envship's tunnel writers take a Lease there.
Requests are counted from the fake's request log (injected fault answers included); writes are POST, PUT,
PATCH and DELETE that reached the API. "after zone" = total minus the fixed requests of each run: 2 for
envship (token verify + zone lookup), 1 for the naive script (zone lookup; it verifies nothing).

Scenarios
- dns (literal `target: 203.0.113.7`, host staging.example.com): first create; no-op re-run; content change
  (203.0.113.8); A -> CNAME (lb.example.net); delete (`--delete`) of a preview's record; no-op with 300
  other records in the zone.
- tunnel (2 connectors, 20 foreign ingress rules + the catch-all): first create (CNAME + rule); no-op
  re-run; service change; delete of a preview; 10 previews (`routes --env preview --pr N`) at once in
  threads: total requests, configuration PUTs, retries ("merging again"), rules that survived.
- faults (not with --quick): the dns first create with `set_faults(seed, rate=0.2)` for seeds 1..5: exit
  codes, requests, and whether a fault-free re-run ends with exactly one record at the host.

Peer: there is no external-dns or flarectl here. The "naive script" is what a hand-written `curl` deploy
step does, with `requests`, against the same fake: dns: GET the zone id, GET the records by name, POST when
there is none, else PUT the first one (no ownership check, no change detection); tunnel: the same for the
CNAME, then GET the tunnel configuration, drop a rule for the host if any, insert the rule before the
catch-all, PUT (no lease, no read-back). It runs first create, no-op re-run and the 10 concurrent previews
(and the dns content change). Figures only: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "entrypoint"), str(ROOT / "tests")]

from fakes.cloudflare_api import FakeCloudflare  # noqa: E402 - after the path set-up
from fakes.kube_apiserver import FakeKube  # noqa: E402

ZONE = "example.com"
ACCOUNT = "0123456789abcdef0123456789abcdef"
REPOSITORY = "acme/hello"
SERVICE = "http://web.{namespace}.svc.cluster.local:80"
CATCH_ALL = {"service": "http_status:404"}
FOREIGN_RULES = [{"hostname": f"svc{i}.example.com", "service": f"http://svc{i}.tools.svc:80"} for i in range(20)]
OTHER_RECORDS = 300
CONCURRENT = 10
FAULT_SEEDS = (1, 2, 3, 4, 5)
FAULT_RATE = 0.2
FIXED = {"envship": 2, "naive": 1}   # requests every run sends before its own work: verify + zone / zone

ENVIRONMENTS = """\
app: hello
image: ghcr.io/acme/hello
manifests: deploy
environments:
  staging:
    context: fake
    namespace: hello-staging
    host: staging.example.com
  preview:
    preview: true
    context: fake
    namespace: hello-pr-{pr}
    host: hello-pr-{pr}.example.com
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: ghcr.io/acme/hello:latest}]}
"""


def dns_config(target: str = "203.0.113.7") -> str:
    return ENVIRONMENTS + f"routes:\n  cloudflare:\n    zone: {ZONE}\n    target: {target}\n"


def tunnel_config(tunnel: str, service: str = SERVICE) -> str:
    return (ENVIRONMENTS + f"routes:\n  cloudflare:\n    zone: {ZONE}\n    mode: tunnel\n"
            f"    account: {ACCOUNT}\n    tunnel: {tunnel}\n    service: {service}\n")


def progress(message: str) -> None:
    print(f"bench/routes.py: {message}", file=sys.stderr, flush=True)


# -- rows -------------------------------------------------------------------------------------------

@dataclass
class Row:
    scenario: str
    tool: str
    requests: int
    writes: int
    after_zone: int
    wall_s: float
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def row(cf: FakeCloudflare, scenario: str, tool: str, runs: int, wall: float, notes: str = "",
        **extra: Any) -> Row:
    total = len(cf.requests)
    return Row(scenario, tool, total, len(cf.writes()), total - FIXED[tool] * runs, round(wall, 3), notes, extra)


# -- the fakes and the project ----------------------------------------------------------------------

class Bench:
    """A temp project dir, the fake Kubernetes API (for the tunnel Lease) and fresh fake Cloudflare APIs."""

    def __init__(self, work: Path, latency_ms: float) -> None:
        self.work = work
        self.latency_ms = latency_ms
        self.kube = FakeKube.start()
        self.kubeconfig = self.kube.kubeconfig(work / "kubeconfig")
        self.fakes: list[FakeCloudflare] = []
        self.problems: list[str] = []
        (work / "deploy").mkdir(parents=True, exist_ok=True)
        (work / "deploy" / "deployment.yaml").write_text(DEPLOYMENT)
        self.config = work / "envship.yaml"

    @contextmanager
    def cloudflare(self) -> Iterator[FakeCloudflare]:
        cf = FakeCloudflare.start(latency_ms=self.latency_ms)
        self.fakes.append(cf)
        try:
            cf.add_zone(ZONE)
            yield cf
        finally:
            cf.stop()
            self.problems += [f"fake Cloudflare: {e}" for e in cf.errors]

    def stop(self) -> None:
        for cf in self.fakes:
            cf.stop()
        self.kube.stop()
        self.problems += [f"fake Kubernetes: {e}" for e in self.kube.errors + self.kube.controller.errors]

    def write(self, text: str) -> None:
        self.config.write_text(text)

    def environ(self, cf: FakeCloudflare) -> dict[str, str]:
        return {"CLOUDFLARE_API_URL": cf.url, "CLOUDFLARE_API_TOKEN": cf.token, "GITHUB_REPOSITORY": REPOSITORY,
                "KUBECONFIG": str(self.kubeconfig), "SOURCE_DATE_EPOCH": "1700000000", "HOME": str(self.work)}

    def envship(self, cf: FakeCloudflare, *args: str, env: str = "staging") -> tuple[int, str, float]:
        """One `envship routes` in-process: exit code, stderr, wall seconds."""
        from envship.cli import main

        out, err = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        code = main(["routes", "--config", str(self.config), "--env", env, *args], environ=self.environ(cf),
                    out=out, err=err)
        return code, err.getvalue(), time.perf_counter() - start

    def measure(self, cf: FakeCloudflare, scenario: str, *args: str, env: str = "staging", expect: str = "") -> Row:
        cf.reset_requests()
        code, err, wall = self.envship(cf, *args, env=env)
        if code != 0:
            raise SystemExit(f"{scenario}: envship routes exited {code}:\n{err[-3000:]}")
        said = next((line.strip() for line in err.splitlines() if line.startswith("route ")), "")
        if expect and expect not in said:
            raise SystemExit(f"{scenario}: expected {expect!r} in envship's last route line, got {said!r}:\n{err}")
        return row(cf, scenario, "envship", 1, wall, said.split(": ", 1)[-1])


# -- the naive script -------------------------------------------------------------------------------

class Naive:
    """What a hand-written curl deploy step does: no ownership check, no change detection, no lease."""

    def __init__(self, cf: FakeCloudflare) -> None:
        self.url = cf.url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {cf.token}"

    def close(self) -> None:
        self.session.close()

    def call(self, method: str, path: str, **kw: Any) -> Any:
        response = self.session.request(method, self.url + path, timeout=30, **kw)
        response.raise_for_status()
        return response.json()["result"]

    def upsert(self, host: str, rtype: str, content: str) -> None:
        zone_id = self.call("GET", "/zones", params={"name": ZONE})[0]["id"]
        found = self.call("GET", f"/zones/{zone_id}/dns_records", params={"name": host})
        body = {"type": rtype, "name": host, "content": content, "ttl": 1, "proxied": True}
        if found:
            self.call("PUT", f"/zones/{zone_id}/dns_records/{found[0]['id']}", json=body)
        else:
            self.call("POST", f"/zones/{zone_id}/dns_records", json=body)

    def tunnel_route(self, tunnel: str, host: str, service: str) -> None:
        self.upsert(host, "CNAME", f"{tunnel}.cfargotunnel.com")
        path = f"/accounts/{ACCOUNT}/cfd_tunnel/{tunnel}/configurations"
        config = self.call("GET", path)["config"]
        rules = [r for r in config["ingress"] if r.get("hostname") != host]
        rules.insert(len(rules) - 1, {"hostname": host, "service": service})
        config["ingress"] = rules
        self.call("PUT", path, json={"config": config})


def naive_run(cf: FakeCloudflare, action: Callable[[Naive], None]) -> float:
    naive = Naive(cf)
    try:
        start = time.perf_counter()
        action(naive)
        return time.perf_counter() - start
    finally:
        naive.close()


def naive_measure(cf: FakeCloudflare, scenario: str, action: Callable[[Naive], None], notes: str = "") -> Row:
    cf.reset_requests()
    return row(cf, scenario, "naive", 1, naive_run(cf, action), notes)


# -- scenarios ---------------------------------------------------------------------------------------

def host_records(cf: FakeCloudflare, host: str) -> list[dict[str, Any]]:
    return [r for r in cf.records(ZONE) if r["name"] == host]


def dns_scenarios(bench: Bench) -> list[Row]:
    rows: list[Row] = []
    progress("dns: envship")
    with bench.cloudflare() as cf:
        bench.write(dns_config())
        rows.append(bench.measure(cf, "dns: first create", expect="create"))
        rows.append(bench.measure(cf, "dns: no-op re-run", expect="nothing to change"))
        bench.write(dns_config("203.0.113.8"))
        rows.append(bench.measure(cf, "dns: content change", expect="update"))
        bench.write(dns_config("lb.example.net"))
        rows.append(bench.measure(cf, "dns: A -> CNAME", expect="replace"))
        code, err, _ = bench.envship(cf, "--pr", "7", env="preview")
        if code != 0:
            raise SystemExit(f"dns preview set-up failed:\n{err}")
        rows.append(bench.measure(cf, "dns: delete (preview)", "--pr", "7", "--delete", env="preview",
                                  expect="removed"))
    with bench.cloudflare() as cf:
        bench.write(dns_config())
        code, err, _ = bench.envship(cf)
        if code != 0:
            raise SystemExit(f"dns set-up failed:\n{err}")
        for i in range(OTHER_RECORDS):
            cf.add_record(ZONE, "A", f"host{i}.example.com", f"198.51.{100 + i // 250}.{i % 250 + 1}")
        rows.append(bench.measure(cf, f"dns: no-op, {OTHER_RECORDS} other records", expect="nothing to change"))
    progress("dns: naive script")
    with bench.cloudflare() as cf:
        host = "staging.example.com"
        rows.append(naive_measure(cf, "dns: first create", lambda n: n.upsert(host, "A", "203.0.113.7")))
        rows.append(naive_measure(cf, "dns: no-op re-run", lambda n: n.upsert(host, "A", "203.0.113.7"),
                                  "writes anyway"))
        rows.append(naive_measure(cf, "dns: content change", lambda n: n.upsert(host, "A", "203.0.113.8")))
    return rows


@contextmanager
def tunnel_fake(bench: Bench) -> Iterator[tuple[FakeCloudflare, str]]:
    with bench.cloudflare() as cf:
        tunnel = cf.add_tunnel(ACCOUNT, "main", connectors=2)
        cf.set_tunnel_config(tunnel, {"ingress": [*FOREIGN_RULES, CATCH_ALL]})
        yield cf, tunnel


def preview_rules(cf: FakeCloudflare, tunnel: str) -> list[str]:
    return sorted(str(r.get("hostname")) for r in cf.tunnel_config(tunnel)["config"]["ingress"]
                  if str(r.get("hostname", "")).startswith("hello-pr-"))


def foreign_kept(cf: FakeCloudflare, tunnel: str) -> bool:
    ingress = cf.tunnel_config(tunnel)["config"]["ingress"]
    return all(r in ingress for r in FOREIGN_RULES) and ingress[-1] == CATCH_ALL


def tunnel_scenarios(bench: Bench) -> list[Row]:
    rows: list[Row] = []
    progress("tunnel: envship")
    with tunnel_fake(bench) as (cf, tunnel):
        bench.write(tunnel_config(tunnel))
        rows.append(bench.measure(cf, "tunnel: first create", expect="create"))
        rows.append(bench.measure(cf, "tunnel: no-op re-run", expect="nothing to change"))
        bench.write(tunnel_config(tunnel, SERVICE.replace(":80", ":8080")))
        rows.append(bench.measure(cf, "tunnel: service change"))
        code, err, _ = bench.envship(cf, "--pr", "7", env="preview")
        if code != 0:
            raise SystemExit(f"tunnel preview set-up failed:\n{err}")
        rows.append(bench.measure(cf, "tunnel: delete (preview)", "--pr", "7", "--delete", env="preview",
                                  expect="removed"))
    with tunnel_fake(bench) as (cf, tunnel):
        bench.write(tunnel_config(tunnel))
        rows.append(envship_concurrent(bench, cf, tunnel))
    progress("tunnel: naive script")
    with tunnel_fake(bench) as (cf, tunnel):
        service = SERVICE.format(namespace="hello-staging")
        rows.append(naive_measure(cf, "tunnel: first create",
                                  lambda n: n.tunnel_route(tunnel, "staging.example.com", service)))
        rows.append(naive_measure(cf, "tunnel: no-op re-run",
                                  lambda n: n.tunnel_route(tunnel, "staging.example.com", service), "writes anyway"))
    with tunnel_fake(bench) as (cf, tunnel):
        rows.append(naive_concurrent(cf, tunnel))
    return rows


def concurrent_notes(cf: FakeCloudflare, tunnel: str, codes: list[int], retries: int) -> tuple[str, dict[str, Any]]:
    survived = preview_rules(cf, tunnel)
    records = sum(1 for r in cf.records(ZONE) if r["name"].startswith("hello-pr-"))
    puts = cf.count("PUT", r"/configurations$")
    extra = {"config_puts": puts, "retries": retries, "rules_survived": len(survived), "records": records,
             "exit_codes": codes, "foreign_rules_kept": foreign_kept(cf, tunnel)}
    notes = (f"{puts} config PUTs, {retries} retries, rules kept {len(survived)}/{CONCURRENT}, "
             f"{records} CNAMEs, exits {sorted(set(codes))}")
    return notes, extra


def envship_concurrent(bench: Bench, cf: FakeCloudflare, tunnel: str) -> Row:
    progress(f"tunnel: {CONCURRENT} concurrent previews, envship")
    results: dict[int, tuple[int, str, float]] = {}

    def one(pr: int) -> None:
        results[pr] = bench.envship(cf, "--pr", str(pr), env="preview")

    cf.reset_requests()
    bench.kube.requests.clear()
    threads = [threading.Thread(target=one, args=(pr,)) for pr in range(1, CONCURRENT + 1)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    wall = time.perf_counter() - start
    kube_requests = len(bench.kube.requests)
    errs = [results[pr][1] for pr in sorted(results)]
    retries = sum(err.count("merging again") for err in errs)
    waits = sum(err.count("waiting for the tunnel's lock") for err in errs)
    notes, extra = concurrent_notes(cf, tunnel, [results[pr][0] for pr in sorted(results)], retries)
    extra.update(lock_waits=waits, kube_requests=kube_requests)
    return row(cf, f"tunnel: {CONCURRENT} concurrent previews", "envship", CONCURRENT, wall, notes, **extra)


def naive_concurrent(cf: FakeCloudflare, tunnel: str) -> Row:
    progress(f"tunnel: {CONCURRENT} concurrent previews, naive script")
    codes: dict[int, int] = {}

    def one(pr: int) -> None:
        host = f"hello-pr-{pr}.example.com"
        try:
            naive_run(cf, lambda n: n.tunnel_route(tunnel, host, SERVICE.format(namespace=f"hello-pr-{pr}")))
            codes[pr] = 0
        except requests.RequestException:
            codes[pr] = 1

    cf.reset_requests()
    threads = [threading.Thread(target=one, args=(pr,)) for pr in range(1, CONCURRENT + 1)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    wall = time.perf_counter() - start
    notes, extra = concurrent_notes(cf, tunnel, [codes.get(pr, -1) for pr in range(1, CONCURRENT + 1)], 0)
    return row(cf, f"tunnel: {CONCURRENT} concurrent previews", "naive", CONCURRENT, wall, notes, **extra)


def fault_scenarios(bench: Bench) -> list[Row]:
    rows: list[Row] = []
    host = "staging.example.com"
    for seed in FAULT_SEEDS:
        progress(f"faults: seed {seed}, rate {FAULT_RATE}")
        with bench.cloudflare() as cf:
            bench.write(dns_config())
            mode = cf.set_faults(seed, rate=FAULT_RATE)
            assert mode is not None
            code, err, wall = bench.envship(cf)
            total, writes = len(cf.requests), len(cf.writes())
            injected = dict(mode.counts)
            cf.set_faults(None)
            rerun, rerun_err, _ = bench.envship(cf)
            found = host_records(cf, host)
            converged = rerun == 0 and len(found) == 1 and found[0]["content"] == "203.0.113.7"
            why = next((line.strip() for line in err.splitlines() if line.startswith("error")), "")
            kinds = ", ".join(f"{n}x{k}" for k, n in sorted(injected.items()))
            notes = (f"exit {code}, injected {sum(injected.values())} ({kinds or 'none'})"
                     f"; re-run exit {rerun}, {len(found)} record(s): {'converged' if converged else 'NOT converged'}")
            rows.append(Row(f"dns: first create, faults seed {seed}", "envship", total, writes,
                            total - FIXED["envship"], round(wall, 3), notes,
                            {"exit_code": code, "injected": injected, "rerun_exit_code": rerun,
                             "records_at_host": len(found), "converged": converged, "error": why,
                             "rerun_error": "" if rerun == 0 else rerun_err[-500:]}))
    return rows


# -- report -----------------------------------------------------------------------------------------

def print_table(results: dict[str, Any]) -> None:
    print(f"fake Cloudflare API with {results['latency_ms']:g} ms per request; {results['machine']}; "
          f"after zone = total - 2 (envship: verify + zone) or - 1 (naive: zone) per run")
    header = ("scenario", "tool", "requests", "writes", "after zone", "wall s", "notes")
    rows = [header] + [(r["scenario"], r["tool"], str(r["requests"]), str(r["writes"]), str(r["after_zone"]),
                        f"{r['wall_s']:.2f}", r["notes"]) for r in results["rows"]]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])] + [r[i].rjust(widths[i]) for i in range(2, 6)]
        print("  ".join([*cells, r[6]]).rstrip())
    if results["problems"]:
        print(f"warning: the fakes reported {len(results['problems'])} problem(s); see --json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, default=50.0,
                        help="added to every Cloudflare API request (default 50)")
    parser.add_argument("--quick", action="store_true", help="skip the seeded-fault scenarios")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    import envship

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="envship-bench-routes-"))
    bench = Bench(work, args.latency_ms)
    rows: list[Row] = []
    try:
        rows += dns_scenarios(bench)
        rows += tunnel_scenarios(bench)
        if not args.quick:
            rows += fault_scenarios(bench)
    finally:
        bench.stop()
        shutil.rmtree(work, ignore_errors=True)
    order: dict[str, int] = {}
    for i, r in enumerate(rows):
        order.setdefault(r.scenario, i)
    rows.sort(key=lambda r: (order[r.scenario], r.tool != "envship"))   # envship and the naive script side by side
    results: dict[str, Any] = {
        "latency_ms": args.latency_ms, "python": sys.version.split()[0], "envship_version": envship.__version__,
        "machine": f"{os.cpu_count()} cores, {platform.platform()}", "fixed_requests": FIXED,
        "rows": [asdict(r) for r in rows], "problems": bench.problems,
        "bench_seconds": round(time.perf_counter() - started, 1)}
    for problem in bench.problems:
        print(f"warning: {problem[:2000]}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
