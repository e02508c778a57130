"""The fake GitHub REST API (tests/fakes/github_api.py), driven with PyGithub itself as the client: what
github.com does that a deploy tool notices, its checks against GitHub's OpenAPI description, and the
webhook event fixtures (tests/fakes/github_events.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from fakes.github_api import ALL_PERMISSIONS, FakeGitHub, fake_sha
from fakes.github_events import (
    pull_request_event,
    push_event,
    validate_event,
    workflow_dispatch_event,
    write_event,
)
from fakes.github_plugin import fake_github  # noqa: F401 - the fixture
from github import Auth, BadCredentialsException, Github, GithubException, GithubRetry, RateLimitExceededException

REPO_ROOT = Path(__file__).resolve().parents[1]
SHA = "a" * 40
OTHER_SHA = "b" * 40


def client(gh: FakeGitHub, **kwargs: Any) -> Github:
    kwargs.setdefault("retry", None)
    # PyGithub throttles itself (0.25 s between requests, 1 s between writes) by default; the fake needs none
    kwargs.setdefault("seconds_between_requests", None)
    kwargs.setdefault("seconds_between_writes", None)
    return Github(base_url=gh.url, auth=Auth.Token(kwargs.pop("token", gh.token)), **kwargs)


def deploy(repo: Any, environment: str = "staging", **kwargs: Any) -> Any:
    kwargs.setdefault("ref", SHA)
    return repo.create_deployment(environment=environment, payload={"app": "hello"}, auto_merge=False,
                                  required_contexts=[], transient_environment=kwargs.pop("transient", False),
                                  production_environment=kwargs.pop("production", False), **kwargs)


# ------------------------------------------------------------------------------------------------
# deployments and statuses
# ------------------------------------------------------------------------------------------------

def test_deployment_and_statuses_through_pygithub(fake_github: FakeGitHub) -> None:  # noqa: F811 - the fixture
    gh = fake_github
    repo = client(gh).get_repo("acme/hello")
    assert (repo.full_name, repo.default_branch, repo.private) == ("acme/hello", "main", False)
    d = deploy(repo, description="envship deploy")
    assert (d.id, d.sha, d.ref, d.task, d.environment) == (1, SHA, SHA, "deploy", "staging")
    assert d.payload == {"app": "hello"} and d.description == "envship deploy"
    assert d.creator.login == "github-actions[bot]" and d.creator.type == "Bot"
    assert d.url == f"{gh.url}/repos/acme/hello/deployments/1" and d.statuses_url.endswith("/deployments/1/statuses")
    assert (d.transient_environment, d.production_environment, d.original_environment) == (False, False, "staging")
    d.create_status("in_progress")
    done = d.create_status("success", target_url="https://ci.example/run/1", environment_url="https://staging.example.com")
    assert (done.state, done.target_url, done.environment_url, done.environment) == (
        "success", "https://ci.example/run/1", "https://staging.example.com", "staging")
    assert [s.state for s in d.get_statuses()] == ["success", "in_progress"]  # newest first
    # log_url (which PyGithub cannot send) sets target_url too
    r = requests.post(f"{gh.url}/repos/acme/hello/deployments/1/statuses", headers=gh.auth_headers, timeout=5,
                      json={"state": "success", "log_url": "https://ci.example/run/2", "auto_inactive": False})
    assert r.status_code == 201 and r.json()["target_url"] == r.json()["log_url"] == "https://ci.example/run/2"
    assert r.headers["Location"] == r.json()["url"]
    stored = gh.deployments("acme/hello", environment="staging")
    assert [s["state"] for s in stored[0]["statuses"]] == ["in_progress", "success", "success"]
    assert [e["name"] for e in gh.environments("acme/hello")] == ["staging"]  # created with the deployment
    # a branch name resolves to its sha; an unknown ref is GitHub's 422
    gh.add_branch("acme/hello", "release", OTHER_SHA)
    assert deploy(repo, ref="release").sha == OTHER_SHA
    assert deploy(repo, ref="main").sha == fake_sha("acme/hello@main")  # the default branch's generated head
    with pytest.raises(GithubException) as e:
        deploy(repo, ref="nope")
    assert e.value.status == 422 and e.value.data["message"] == "No ref found for: nope"
    with pytest.raises(GithubException) as e:  # auto_merge (default true) of another ref: a merge conflict
        repo.create_deployment(ref=SHA, environment="staging", required_contexts=[])
    assert e.value.status == 409 and e.value.data["message"] == "Conflict merging main into " + SHA + "."
    # payload as a JSON string is stored as an object; default environment is production
    r = requests.post(f"{gh.url}/repos/acme/hello/deployments", headers=gh.auth_headers, timeout=5,
                      json={"ref": "main", "payload": '{"deploy": "migrate"}'})
    assert r.status_code == 201 and r.json()["payload"] == {"deploy": "migrate"}
    assert (r.json()["environment"], r.json()["production_environment"]) == ("production", True)


def test_auto_inactive_follows_githubs_rule(fake_github: FakeGitHub) -> None:  # noqa: F811
    gh = fake_github
    repo = client(gh).get_repo("acme/hello")
    first, second = deploy(repo), deploy(repo)
    prod1, prod2 = deploy(repo, "production", production=True), deploy(repo, "production", production=True)
    transient = deploy(repo, "staging", transient=True)
    first.create_status("success")
    transient.create_status("success", auto_inactive=False)
    running = deploy(repo)
    running.create_status("in_progress")
    second.create_status("success")  # prior, non-transient, non-production, latest success: made inactive
    states = {d["id"]: [s["state"] for s in d["statuses"]] for d in gh.deployments("acme/hello")}
    assert states[first.id] == ["success", "inactive"]
    assert states[transient.id] == ["success"]  # transient: never
    assert states[running.id] == ["in_progress"]  # later, and not success
    prod1.create_status("success")
    prod2.create_status("success")
    states = {d["id"]: [s["state"] for s in d["statuses"]] for d in gh.deployments("acme/hello")}
    assert states[prod1.id] == ["success"]  # production: never
    third = deploy(repo)
    third.create_status("success", auto_inactive=False)
    assert [s["state"] for s in gh.deployments("acme/hello")[1]["statuses"]] == ["success"]


def test_deployments_page_through_link_headers(fake_github: FakeGitHub) -> None:  # noqa: F811
    gh = fake_github
    repo = client(gh).get_repo("acme/hello")
    for _ in range(75):
        deploy(repo)
    deploy(repo, "production", production=True)
    listed = list(repo.get_deployments(environment="staging"))
    assert len(listed) == 75 and [d.id for d in listed] == list(range(75, 0, -1))
    assert gh.count("GET", r"/deployments$") == 3  # 30 + 30 + 15
    r = requests.get(f"{gh.url}/repos/acme/hello/deployments", headers=gh.auth_headers, timeout=5,
                     params={"environment": "staging", "per_page": 30, "page": 2})
    base = f"{gh.url}/repos/acme/hello/deployments?environment=staging&per_page=30"
    assert r.headers["Link"] == (f'<{base}&page=1>; rel="prev", <{base}&page=3>; rel="next", '
                                 f'<{base}&page=3>; rel="last", <{base}&page=1>; rel="first"')
    assert len(r.json()) == 30
    r = requests.get(f"{gh.url}/repos/acme/hello/deployments", headers=gh.auth_headers, timeout=5,
                     params={"per_page": 500})
    assert len(r.json()) == 76 and "Link" not in r.headers  # per_page is capped at 100
    assert [d.id for d in repo.get_deployments(sha=SHA, task="deploy", environment="production")] == [76]


def test_deleting_deployments_follows_githubs_rule(fake_github: FakeGitHub) -> None:  # noqa: F811
    gh = fake_github
    repo = client(gh).get_repo("acme/hello")
    alone = deploy(repo, "qa")
    first, second = deploy(repo), deploy(repo)
    first.create_status("success")
    url = f"{gh.url}/repos/acme/hello/deployments"
    r = requests.delete(f"{url}/{first.id}", headers=gh.auth_headers, timeout=5)
    assert r.status_code == 422 and r.json()["message"] == (
        "We cannot delete an active deployment unless it is the only deployment in a given environment.")
    second.create_status("success")  # first becomes inactive
    assert requests.delete(f"{url}/{first.id}", headers=gh.auth_headers, timeout=5).status_code == 204
    assert requests.delete(f"{url}/{alone.id}", headers=gh.auth_headers, timeout=5).status_code == 204  # only one
    assert requests.delete(f"{url}/{alone.id}", headers=gh.auth_headers, timeout=5).status_code == 404
    assert [d["id"] for d in gh.deployments("acme/hello")] == [second.id]
    with pytest.raises(GithubException) as e:
        repo.get_deployment(first.id)
    assert e.value.status == 404


# ------------------------------------------------------------------------------------------------
# environments, comments, labels, pulls
# ------------------------------------------------------------------------------------------------

def test_environments_with_slashes(fake_github: FakeGitHub) -> None:  # noqa: F811
    gh = fake_github
    repo = client(gh).get_repo("acme/hello")
    env = repo.create_environment("preview/pr-42", wait_timer=5)
    assert env.name == "preview/pr-42" and env.url.endswith("/environments/preview%2Fpr-42")
    assert gh.count("PUT", r"/environments/preview%2Fpr-42$") == 1
    assert repo.get_environment("preview/pr-42").protection_rules[0].wait_timer == 5
    repo.create_environment("staging")
    listed = repo.get_environments()
    assert [e.name for e in listed] == ["preview/pr-42", "staging"] and listed.totalCount == 2
    repo.delete_environment("preview/pr-42")
    with pytest.raises(GithubException) as e:
        repo.get_environment("preview/pr-42").name  # noqa: B018 - the lazy object loads here
    assert e.value.status == 404 and e.value.data["message"] == "Not Found"
    assert [e["name"] for e in gh.environments("acme/hello")] == ["staging"]
    gh.permissions.discard("administration:write")
    with pytest.raises(GithubException) as e:
        repo.create_environment("production")
    assert e.value.status == 403 and e.value.headers["x-accepted-github-permissions"] == "administration=write"


def test_comments_and_labels_on_a_pull(fake_github: FakeGitHub) -> None:  # noqa: F811
    gh = fake_github
    gh.add_pull("acme/hello", 42, SHA, labels=("preview", "ready"))
    gh.add_comment("acme/hello", 42, "LGTM", login="alice")
    pr = client(gh).get_repo("acme/hello").get_pull(42)
    mine = pr.create_issue_comment("Preview: https://hello-pr-42.example.com")
    assert mine.user.login == "github-actions[bot]" and mine.user.type == "Bot"
    assert mine.html_url.endswith(f"/acme/hello/pull/42#issuecomment-{mine.id}")
    for i in range(3):
        pr.create_issue_comment(f"note {i}")
    mine.edit("Preview: updated")
    listed = list(pr.get_issue_comments())
    assert [c.body for c in listed] == ["LGTM", "Preview: updated", "note 0", "note 1", "note 2"]
    assert [c.user.login for c in listed][:2] == ["alice", "github-actions[bot]"]
    mine.delete()
    assert [c["body"] for c in gh.comments("acme/hello", 42)] == ["LGTM", "note 0", "note 1", "note 2"]
    r = requests.get(f"{gh.url}/repos/acme/hello/issues/42/comments", headers=gh.auth_headers, timeout=5,
                     params={"per_page": 2})
    assert [c["body"] for c in r.json()] == ["LGTM", "note 0"] and 'rel="next"' in r.headers["Link"]
    pr.remove_from_labels("preview")
    assert [label["name"] for label in gh.pull("acme/hello", 42)["labels"]] == ["ready"]
    with pytest.raises(GithubException) as e:
        pr.remove_from_labels("preview")
    assert e.value.status == 404 and e.value.data["message"] == "Label does not exist"
    r = requests.post(f"{gh.url}/repos/acme/hello/issues/7/comments", headers=gh.auth_headers,
                      json={"body": "x"}, timeout=5)
    assert r.status_code == 404  # comments need the issue (here: a pull) to exist


def test_pulls_get_and_list(fake_github: FakeGitHub) -> None:  # noqa: F811
    gh = fake_github
    gh.add_pull("acme/hello", 1, SHA, head_ref="feature-a", title="Feature A")
    gh.add_pull("acme/hello", 2, OTHER_SHA, head_ref="patch", head_repo="contributor/hello", labels=("preview",))
    gh.add_pull("acme/hello", 3, SHA, state="closed", merged=True)
    repo = client(gh).get_repo("acme/hello")
    pr = repo.get_pull(2)
    assert (pr.head.sha, pr.head.ref, pr.head.repo.full_name, pr.head.repo.fork) == (
        OTHER_SHA, "patch", "contributor/hello", True)
    assert (pr.base.ref, pr.base.repo.full_name, pr.state, [label.name for label in pr.labels]) == (
        "main", "acme/hello", "open", ["preview"])
    assert repo.get_pull(1).head.repo.fork is False and repo.get_pull(3).merged is True
    assert [p.number for p in repo.get_pulls()] == [2, 1]  # open, newest first
    assert [p.number for p in repo.get_pulls(state="closed")] == [3]
    assert sorted(p.number for p in repo.get_pulls(state="all")) == [1, 2, 3]
    assert [p.number for p in repo.get_pulls(head="contributor:patch")] == [2]
    gh.close_pull("acme/hello", 2)
    assert repo.get_pull(2).state == "closed" and gh.pull("acme/hello", 2)["closed_at"] is not None
    with pytest.raises(GithubException) as e:
        repo.get_pull(99)
    assert e.value.status == 404


# ------------------------------------------------------------------------------------------------
# authentication, permissions, rate limits, faults
# ------------------------------------------------------------------------------------------------

def test_bad_credentials_and_missing_permissions(fake_github: FakeGitHub) -> None:  # noqa: F811
    gh = fake_github
    with pytest.raises(BadCredentialsException) as e:
        client(gh, token="ghs_wrong").get_repo("acme/hello")
    assert e.value.status == 401 and e.value.data["message"] == "Bad credentials"
    assert "documentation_url" in e.value.data
    r = requests.get(f"{gh.url}/repos/acme/hello", timeout=5)
    assert r.status_code == 401 and r.json()["message"] == "Bad credentials"
    assert requests.get(f"{gh.url}/repos/acme/hello", timeout=5,
                        headers={"Authorization": f"Bearer {gh.token}"}).status_code == 200
    gh.permissions = set(ALL_PERMISSIONS) - {"deployments:write"}
    repo = client(gh).get_repo("acme/hello")
    with pytest.raises(GithubException) as e:
        deploy(repo)
    assert e.value.status == 403 and e.value.data["message"] == "Resource not accessible by integration"
    assert e.value.headers["x-accepted-github-permissions"] == "deployments=write"
    gh.add_pull("acme/hello", 5, SHA)
    pull = repo.get_pull(5)
    gh.permissions -= {"issues:write", "pull-requests:write"}
    with pytest.raises(GithubException) as e:
        pull.create_issue_comment("x")
    assert e.value.headers["x-accepted-github-permissions"] == "issues=write; pull_requests=write"
    with pytest.raises(GithubException) as e:
        client(gh).get_repo("acme/missing")
    assert e.value.status == 404 and e.value.data["message"] == "Not Found"


def test_rate_limit_headers_and_exhaustion(fake_github: FakeGitHub) -> None:  # noqa: F811
    gh = fake_github
    g = client(gh)
    g.get_repo("acme/hello")
    g.get_repo("acme/hello")
    remaining, limit = g.rate_limiting
    assert (remaining, limit) == (4998, 5000) and g.rate_limiting_resettime > time.time()
    core = g.get_rate_limit().resources.core
    assert (core.limit, core.remaining, core.used) == (5000, 4998, 2)  # GET /rate_limit is free
    r = requests.get(f"{gh.url}/repos/acme/hello", headers=gh.auth_headers, timeout=5)
    assert r.headers["x-ratelimit-remaining"] == "4997" and r.headers["x-ratelimit-used"] == "3"
    assert r.headers["x-ratelimit-resource"] == "core" and r.headers["x-github-request-id"]
    assert r.headers["x-github-media-type"] == "github.v3; format=json"
    gh.rate_limit_remaining = 0
    with pytest.raises(RateLimitExceededException) as e:
        g.get_repo("acme/hello")
    assert e.value.status == 403 and e.value.data["message"].startswith("API rate limit exceeded for ")
    assert e.value.headers["x-ratelimit-remaining"] == "0"


def test_secondary_rate_limit_is_retried_by_pygithub(fake_github: FakeGitHub) -> None:  # noqa: F811
    gh = fake_github
    gh.inject_failure(r"/repos/acme/hello$", status=403, retry_after=0)
    gh.inject_failure(r"/repos/acme/hello$", status=429, retry_after=0)
    repo = client(gh, retry=GithubRetry(total=3)).get_repo("acme/hello")
    assert repo.full_name == "acme/hello"
    assert [(r.status, r.injected) for r in gh.requests] == [(403, True), (429, True), (200, False)]
    gh.inject_failure(r"/deployments$", status=403, retry_after=7, method="POST")
    with pytest.raises(GithubException) as e:
        deploy(client(gh).get_repo("acme/hello"))
    assert e.value.status == 403 and e.value.headers["retry-after"] == "7"
    assert e.value.data["message"].startswith("You have exceeded a secondary rate limit")
    assert gh.writes() == []
    gh.down = True
    r = requests.get(f"{gh.url}/repos/acme/hello", headers=gh.auth_headers, timeout=5)
    assert r.status_code == 503 and gh.requests[-1].injected


def test_seeded_faults_are_deterministic() -> None:
    def run(seed: int) -> list[int]:
        with FakeGitHub.start() as gh:
            gh.add_repo("acme/hello")
            gh.set_faults(seed, rate=0.3)
            for _ in range(40):
                requests.get(f"{gh.url}/repos/acme/hello", headers=gh.auth_headers, timeout=5)
            assert gh.errors == []
            return [r.status for r in gh.requests]

    first = run(7)
    assert first == run(7) and first != run(8)
    assert {s for s in first} - {200} <= {403, 429, 500, 502, 503} and set(first) - {200}


# ------------------------------------------------------------------------------------------------
# base path, spec checks, script mode
# ------------------------------------------------------------------------------------------------

def test_ghes_prefix() -> None:
    with FakeGitHub.start(prefix="/api/v3") as gh:
        gh.add_repo("acme/hello")
        assert gh.url.endswith("/api/v3")
        repo = client(gh).get_repo("acme/hello")
        assert repo.url == f"{gh.url}/repos/acme/hello"
        for _ in range(35):
            deploy(repo)
        assert len(list(repo.get_deployments())) == 35  # Link URLs carry the prefix
        assert gh.requests[0].path == "/repos/acme/hello"
        r = requests.get(f"http://{gh.host}:{gh.port}/repos/acme/hello", headers=gh.auth_headers, timeout=5)
        assert r.status_code == 404 and gh.errors and "not under /api/v3" in gh.errors[0]
        gh.errors.clear()


def test_spec_violations_are_recorded_and_answered(fake_github: FakeGitHub) -> None:  # noqa: F811
    gh = fake_github
    url = f"{gh.url}/repos/acme/hello/deployments"
    r = requests.post(url, headers=gh.auth_headers, json={"ref": "main", "task": 5, "auto_merge": False}, timeout=5)
    assert r.status_code == 422
    assert r.json()["message"] == "Invalid request.\n\nFor 'properties/task', 5 is not a string."
    assert len(gh.errors) == 1 and "spec violation: POST /repos/acme/hello/deployments" in gh.errors[0]
    r = requests.post(url, headers=gh.auth_headers, json={"environment": "staging"}, timeout=5)
    assert r.status_code == 422 and r.json()["message"] == "Invalid request.\n\n\"ref\" wasn't supplied."
    r = requests.post(url, headers=gh.auth_headers, data="{not json", timeout=5)
    assert r.status_code == 400 and r.json()["message"] == "Problems parsing JSON"
    assert requests.get(f"{url}/abc", headers=gh.auth_headers, timeout=5).status_code == 404
    assert requests.get(f"{gh.url}/repos/acme/hello/releases", headers=gh.auth_headers, timeout=5).status_code == 404
    assert requests.get(url, headers=gh.auth_headers, params={"bogus": "1"}, timeout=5).status_code == 422
    assert len(gh.errors) == 6 and gh.deployments("acme/hello") == []
    gh.errors.clear()


def test_event_fixtures_validate(tmp_path: Path) -> None:
    opened = pull_request_event("opened", 42, SHA, head_repo="contributor/hello", labels=("preview",))
    assert opened["pull_request"]["head"]["repo"]["fork"] is True and opened["number"] == 42
    labeled = pull_request_event("labeled", 42, SHA, label="preview")
    assert labeled["label"]["name"] == "preview" and labeled["pull_request"]["labels"][0]["name"] == "preview"
    sync = pull_request_event("synchronize", 42, OTHER_SHA)
    assert sync["after"] == OTHER_SHA and sync["before"] != OTHER_SHA
    closed = pull_request_event("closed", 42, SHA, merged=True)
    assert closed["pull_request"]["merged"] is True and closed["pull_request"]["state"] == "closed"
    for action in ("reopened", "unlabeled"):
        pull_request_event(action, 42, SHA, label="preview")
    assert push_event("refs/heads/main", SHA)["head_commit"]["id"] == SHA
    dispatch = workflow_dispatch_event({"environment": "staging"}, "refs/heads/main")
    path = write_event(tmp_path, dispatch)
    assert path.read_text().startswith("{") and '"workflow": ".github/workflows/deploy.yml"' in path.read_text()
    broken = pull_request_event("opened", 42, SHA)
    del broken["pull_request"]["head"]["sha"]
    broken["number"] = "42"
    with pytest.raises(AssertionError, match="'sha' is a required property") as e:
        validate_event("pull-request-opened", broken)
    assert "'42' is not of type 'integer'" in str(e.value)
    with pytest.raises(ValueError, match="names its label"):
        pull_request_event("labeled", 42, SHA)


def test_event_ids_match_the_fake(fake_github: FakeGitHub) -> None:  # noqa: F811
    fake_github.add_pull("acme/hello", 42, SHA)
    event = pull_request_event("opened", 42, SHA)
    served = fake_github.pull("acme/hello", 42)
    assert (event["repository"]["id"], event["pull_request"]["id"]) == (served["base"]["repo"]["id"], served["id"])


def test_script_mode_prints_url_and_token_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.github_api", "--port", "0", "--repo", "acme/hello",
                             "--max-seconds", "600"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        token = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and token.startswith("ghs_")
        r = requests.get(f"{url}/repos/acme/hello", headers={"Authorization": f"token {token}"}, timeout=5)
        assert r.status_code == 200 and r.json()["full_name"] == "acme/hello"
        started = time.monotonic()
        proc.terminate()
        assert proc.wait(timeout=5) == 0 and time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
