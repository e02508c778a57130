"""The flows users see on GitHub, end to end against the fake Kubernetes API, the fake Cloudflare API and
the fake GitHub API together (each checking requests against its official description): push -> staging,
promotion to production, pull request previews from opened to closed, garbage collection; with
neighbours (another pull request's preview, a comment someone else wrote) and GitHub failing."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Project
from fakes.cloudflare_api import FakeCloudflare
from fakes.cloudflare_plugin import fake_cloudflare  # noqa: F401 - the fixture
from fakes.github_api import FakeGitHub
from fakes.github_events import pull_request_event, write_event
from fakes.github_plugin import fake_github  # noqa: F401 - the fixture
from fakes.kube_apiserver import FakeKube
from fakes.pytest_plugin import fake_kube  # noqa: F401 - the fixture
from test_deploy import DEPLOYMENT, DIGEST_A, DIGEST_B, IMAGE_A, IMAGE_B, SERVICE

from envship.cli import main

SHA_1, SHA_2, SHA_3 = "1" * 40, "2" * 40, "3" * 40
REPO = "acme/hello"
CONFIG = """\
app: hello
image: ghcr.io/acme/hello
manifests: deploy
environments:
  staging:
    context: fake
    namespace: hello-staging
    host: staging.example.com
    create-namespace: true
  production:
    context: fake
    namespace: hello-prod
    host: www.example.com
    create-namespace: true
    protected: true
    promote-from: staging
  preview:
    preview: true
    context: fake
    namespace: hello-pr-{pr}
    host: hello-pr-{pr}.example.com
    ttl: 24h
    max: MAX
routes:
  cloudflare:
    zone: example.com
    target: 203.0.113.7
"""


class Flows:
    def __init__(self, project: Project, kube: FakeKube, cf: FakeCloudflare, gh: FakeGitHub) -> None:
        self.project, self.kube, self.cf, self.gh = project, kube, cf, gh
        cf.add_zone("example.com")
        self.max = 3
        project.config(CONFIG.replace("MAX", str(self.max)))
        project.manifest("deployment.yaml", DEPLOYMENT)
        project.manifest("service.yaml", SERVICE)
        self.environ = {"KUBECONFIG": str(kube.kubeconfig(project.root / "kubeconfig")),
                        "SOURCE_DATE_EPOCH": "", "ENVSHIP_LEASE_SECONDS": "5",
                        "CLOUDFLARE_API_URL": cf.url, "CLOUDFLARE_API_TOKEN": cf.token,
                        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "77", **gh.env(REPO)}
        self.environ.pop("SOURCE_DATE_EPOCH")
        self.logs: list[str] = []

    def set_max(self, n: int) -> None:
        self.project.config(CONFIG.replace("MAX", str(n)))

    def run(self, *argv: str, **extra: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), environ={**self.environ, **extra}, out=out, err=err)
        self.logs.append(out.getvalue() + err.getvalue())
        return code, out.getvalue(), err.getvalue()

    def deploy(self, env: str, image: str, sha: str, *args: str, **extra: str) -> tuple[int, str, str]:
        return self.run("deploy", "--env", env, "--image", image, "--skip-image-check", "--timeout", "20s", *args,
                        GITHUB_SHA=sha, **extra)

    def preview(self, event: dict[str, Any], image: str, *args: str, **extra: str) -> tuple[int, str, str]:
        path = write_event(self.project.root, event, f"event-{len(self.logs)}.json")
        return self.run("preview", "--image", image, "--event", str(path), "--skip-image-check", "--timeout", "20s",
                        *args, GITHUB_EVENT_NAME="pull_request", **extra)

    def deployments(self, environment: str) -> list[dict[str, Any]]:
        return self.gh.deployments(REPO, environment)

    @staticmethod
    def states(deployment: dict[str, Any]) -> list[str]:
        return [s["state"] for s in deployment["statuses"]]

    def envship_comments(self, number: int) -> list[dict[str, Any]]:
        return [c for c in self.gh.comments(REPO, number) if "<!-- envship-preview" in c["body"]]


@pytest.fixture
def flows(project: Project, fake_kube: FakeKube, fake_cloudflare: FakeCloudflare,  # noqa: F811
          fake_github: FakeGitHub) -> Flows:  # noqa: F811
    return Flows(project, fake_kube, fake_cloudflare, fake_github)


# -- push -> staging ---------------------------------------------------------------------------------------
def test_a_deploy_is_a_github_deployment_from_in_progress_to_success(flows: Flows) -> None:
    code, _, err = flows.deploy("staging", IMAGE_A, SHA_1)
    assert code == 0, err
    [deployment] = flows.deployments("staging")
    assert (deployment["ref"], deployment["sha"], deployment["environment"]) == (SHA_1, SHA_1, "staging")
    assert deployment["payload"]["digest"] == DIGEST_A and deployment["payload"]["namespace"] == "hello-staging"
    assert deployment["production_environment"] is False and deployment["transient_environment"] is False
    assert flows.states(deployment) == ["in_progress", "success"]
    success = deployment["statuses"][-1]
    assert success["environment_url"] == "https://staging.example.com"
    assert success["log_url"] == "https://github.com/acme/hello/actions/runs/77"
    code, _, err = flows.deploy("staging", IMAGE_B, SHA_2)
    assert code == 0, err
    first, second = flows.deployments("staging")
    assert flows.states(first)[-1] == "inactive" and flows.states(second)[-1] == "success"


def test_a_failed_rollout_is_a_failed_deployment(flows: Flows) -> None:
    flows.kube.set_scenario("crashloop", image="hello@" + DIGEST_B)
    code, _, _ = flows.deploy("staging", IMAGE_B, SHA_1)
    assert code == 1
    [deployment] = flows.deployments("staging")
    assert flows.states(deployment) == ["in_progress", "failure"]
    assert "CrashLoopBackOff" in deployment["statuses"][-1]["description"]


def test_github_down_during_a_deploy_is_a_warning(flows: Flows) -> None:
    flows.gh.down = True
    code, _, err = flows.deploy("staging", IMAGE_A, SHA_1)
    assert code == 0, err
    assert "warning: GitHub deployment not created" in err and "the deploy itself is not affected" in err
    assert flows.kube.get("deployments", "hello-staging", "web") is not None


# -- promotion -----------------------------------------------------------------------------------------
def test_production_gets_stagings_digest_and_says_where_from(flows: Flows) -> None:
    assert flows.deploy("staging", IMAGE_A, SHA_1)[0] == 0
    code, _, err = flows.run("promote", "--from", "staging", "--to", "production", "--skip-image-check",
                             "--expect-digest", DIGEST_A, GITHUB_SHA=SHA_3)
    assert code == 0, err
    [deployment] = flows.deployments("production")
    assert deployment["ref"] == SHA_1 and deployment["production_environment"] is True
    assert deployment["payload"]["promoted_from"] == {"environment": "staging", "revision": "1",
                                                      "digest": DIGEST_A, "git_sha": SHA_1,
                                                      "run_url": "https://github.com/acme/hello/actions/runs/77"}
    assert flows.states(deployment) == ["in_progress", "success"]
    assert flows.deploy("staging", IMAGE_B, SHA_2)[0] == 0
    assert flows.run("promote", "--from", "staging", "--to", "production", "--skip-image-check")[0] == 0
    first, second = flows.deployments("production")
    # GitHub's auto_inactive skips production deployments: envship retires the earlier one itself
    assert flows.states(first)[-1] == "inactive" and flows.states(second)[-1] == "success"
    code, out, _ = flows.run("status", "--env", "production", "--output", "json")
    assert json.loads(out)["environments"][0]["github"] == f"matches deployment {second['id']} (success)"


# -- previews --------------------------------------------------------------------------------------------
def test_a_preview_from_opened_to_closed_leaves_nothing_and_spares_its_neighbour(flows: Flows) -> None:
    for number, sha in ((1, SHA_1), (2, SHA_2)):
        flows.gh.add_pull(REPO, number, sha)
        code, _, err = flows.preview(pull_request_event("opened", number, sha), IMAGE_A)
        assert code == 0, err
    [comment] = flows.envship_comments(1)
    assert "is live" in comment["body"] and "https://hello-pr-1.example.com" in comment["body"]
    assert DIGEST_A in comment["body"] and SHA_1[:12] in comment["body"]
    assert flows.kube.get("resourcequotas", "hello-pr-1", "envship-preview") is not None
    [deployment] = flows.deployments("preview/pr-1")
    assert deployment["transient_environment"] is True and deployment["ref"] == SHA_1

    code, _, err = flows.preview(pull_request_event("synchronize", 1, SHA_3), IMAGE_B)
    assert code == 0, err
    [comment] = flows.envship_comments(1)          # edited in place, never a second one
    assert DIGEST_B in comment["body"] and SHA_3[:12] in comment["body"]
    assert [flows.states(d)[-1] for d in flows.deployments("preview/pr-1")] == ["inactive", "success"]

    flows.gh.close_pull(REPO, 1)
    code, _, err = flows.preview(pull_request_event("closed", 1, SHA_3), IMAGE_B)
    assert code == 0, err
    namespace = flows.kube.get("namespaces", None, "hello-pr-1")
    assert namespace is None or namespace["status"]["phase"] == "Terminating"
    assert [r["name"] for r in flows.cf.records("example.com")] == ["hello-pr-2.example.com"]
    assert all(flows.states(d)[-1] == "inactive" for d in flows.deployments("preview/pr-1"))
    assert "preview/pr-1" not in [e["name"] for e in flows.gh.environments(REPO)]
    assert "was removed" in flows.envship_comments(1)[0]["body"]
    # the other pull request's preview is untouched
    assert flows.kube.get("deployments", "hello-pr-2", "web") is not None
    assert flows.states(flows.deployments("preview/pr-2")[0])[-1] == "success"
    assert "is live" in flows.envship_comments(2)[0]["body"]


def test_a_fork_gets_no_preview(flows: Flows) -> None:
    flows.gh.add_pull(REPO, 5, SHA_1, head_repo="mallory/hello")
    code, _, err = flows.preview(pull_request_event("opened", 5, SHA_1, head_repo="mallory/hello"), IMAGE_A)
    assert code == 0, err
    assert "comes from a fork (mallory/hello)" in err
    assert flows.kube.get("namespaces", None, "hello-pr-5") is None and flows.deployments("preview/pr-5") == []


def test_a_comment_someone_else_wrote_with_the_marker_is_never_edited(flows: Flows) -> None:
    flows.gh.add_pull(REPO, 1, SHA_1)
    fake = flows.gh.add_comment(REPO, 1, "<!-- envship-preview app=hello env=preview pr=1 -->\nfree money",
                                login="mallory")
    code, _, err = flows.preview(pull_request_event("opened", 1, SHA_1), IMAGE_A)
    assert code == 0, err
    assert flows.gh.comments(REPO, 1)[0]["body"] == fake["body"]
    assert len(flows.envship_comments(1)) == 2


def test_max_previews_is_enforced_with_a_comment(flows: Flows) -> None:
    flows.set_max(1)
    for number, sha in ((1, SHA_1), (2, SHA_2)):
        flows.gh.add_pull(REPO, number, sha)
    assert flows.preview(pull_request_event("opened", 1, SHA_1), IMAGE_A)[0] == 0
    code, _, err = flows.preview(pull_request_event("opened", 2, SHA_2), IMAGE_A)
    assert code == 1 and "previews run already, the most 'max: 1'" in err
    assert "was not created" in flows.envship_comments(2)[0]["body"]
    assert flows.kube.get("namespaces", None, "hello-pr-2") is None
    assert flows.preview(pull_request_event("synchronize", 1, SHA_3), IMAGE_B)[0] == 0   # its own is not counted


def test_gc_removes_closed_and_idle_previews_and_keeps_active_ones(flows: Flows) -> None:
    for number, sha in ((1, SHA_1), (2, SHA_2), (3, SHA_3)):
        flows.gh.add_pull(REPO, number, sha)
    old = {"SOURCE_DATE_EPOCH": "1700000000"}        # a deploy long ago: idle for longer than its 24h ttl
    assert flows.preview(pull_request_event("opened", 1, SHA_1), IMAGE_A)[0] == 0
    assert flows.preview(pull_request_event("opened", 2, SHA_2), IMAGE_A, **old)[0] == 0
    assert flows.preview(pull_request_event("opened", 3, SHA_3), IMAGE_A)[0] == 0
    flows.gh.close_pull(REPO, 1)
    code, out, err = flows.run("gc", "--dry-run")
    assert code == 0, err
    assert out.splitlines() == ["would remove #1 (hello-pr-1): pull request #1 is closed",
                                out.splitlines()[1]]
    assert out.splitlines()[1].startswith("would remove #2 (hello-pr-2): idle for ")
    assert flows.kube.get("deployments", "hello-pr-1", "web") is not None      # dry run: nothing changed
    code, _, err = flows.run("gc")
    assert code == 0, err
    for gone in ("hello-pr-1", "hello-pr-2"):
        namespace = flows.kube.get("namespaces", None, gone)
        assert namespace is None or namespace["status"]["phase"] == "Terminating"
    assert flows.kube.get("deployments", "hello-pr-3", "web") is not None
    assert [r["name"] for r in flows.cf.records("example.com")] == ["hello-pr-3.example.com"]
    assert "Removed by envship gc: pull request #1 is closed." in flows.envship_comments(1)[0]["body"]


def test_no_token_or_secret_in_anything_these_flows_print(flows: Flows, tmp_path: Path) -> None:
    flows.gh.add_pull(REPO, 1, SHA_1)
    secret = "s3cr3t-db-password-9d8e"
    assert flows.deploy("staging", IMAGE_A, SHA_1, "--secret", f"DB_PASSWORD={secret}")[0] == 0
    assert flows.run("promote", "--from", "staging", "--to", "production", "--skip-image-check",
                     "--secret", f"DB_PASSWORD={secret}")[0] == 0
    assert flows.preview(pull_request_event("opened", 1, SHA_1), IMAGE_A, "--secret", f"DB_PASSWORD={secret}")[0] == 0
    flows.gh.down = True
    flows.deploy("staging", IMAGE_B, SHA_2, "--secret", f"DB_PASSWORD={secret}")
    everything = "\n".join(flows.logs)
    for value in (secret, flows.gh.token, flows.cf.token):
        assert value not in everything
    flows.gh.down = False
    comments = json.dumps(flows.gh.comments(REPO, 1)) + json.dumps(flows.gh.deployments(REPO))
    assert secret not in comments and flows.cf.token not in comments


def test_require_label_previews_only_labelled_pull_requests(flows: Flows) -> None:
    labelled = CONFIG.replace("MAX", "3").replace("    ttl: 24h\n", "    ttl: 24h\n    require-label: preview\n")
    flows.project.config(labelled)
    flows.gh.add_pull(REPO, 7, SHA_1)
    code, _, err = flows.preview(pull_request_event("opened", 7, SHA_1), IMAGE_A)
    assert code == 0 and "has no 'preview' label (require-label)" in err, err
    assert flows.kube.get("namespaces", None, "hello-pr-7") is None
    code, _, err = flows.preview(pull_request_event("labeled", 7, SHA_1, label="preview"), IMAGE_A)
    assert code == 0, err
    assert flows.kube.get("deployments", "hello-pr-7", "web") is not None
    code, _, err = flows.preview(pull_request_event("unlabeled", 7, SHA_1, label="preview"), "")
    assert code == 0 and "the label 'preview' was removed" in err, err
    namespace = flows.kube.get("namespaces", None, "hello-pr-7")
    assert namespace is None or namespace["status"]["phase"] == "Terminating"


def test_the_action_tears_a_preview_down_from_the_closed_event(flows: Flows) -> None:
    flows.gh.add_pull(REPO, 4, SHA_1)
    assert flows.preview(pull_request_event("opened", 4, SHA_1), IMAGE_A)[0] == 0
    flows.gh.close_pull(REPO, 4)
    event = write_event(flows.project.root, pull_request_event("closed", 4, SHA_1), "closed.json")
    inputs = {"COMMAND": "preview", "IMAGE": "", "CONFIG": "envship.yaml", "ENV": "", "SECRETS": "",
              "ALLOW-FORKS": "false", "GITHUB-TOKEN": flows.gh.token}
    code, out, err = flows.run("action", GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="pull_request",
                               GITHUB_EVENT_PATH=str(event), GITHUB_TOKEN="",
                               **{f"INPUT_{k}": v for k, v in inputs.items()})
    assert code == 0, out + err
    assert flows.kube.get("deployments", "hello-pr-4", "web") is None
    assert "was removed" in flows.envship_comments(4)[0]["body"]
    assert not any(flows.gh.token in line for line in (out + err).splitlines()
                   if not line.startswith("::add-mask::"))


def test_a_malformed_event_is_a_usage_error(flows: Flows) -> None:
    path = flows.project.root / "bad.json"
    path.write_text(json.dumps({"action": "opened", "pull_request": {"number": "1; rm -rf /"}}))
    code, _, err = flows.run("preview", "--image", IMAGE_A, "--event", str(path))
    assert code == 2 and "is not a pull_request event: 'number' is missing or not a pull request number" in err
    path.write_text("{not json")
    code, _, err = flows.run("preview", "--image", IMAGE_A, "--event", str(path))
    assert code == 2 and "is not JSON" in err


def test_without_administration_the_preview_environment_stays_with_a_note(flows: Flows) -> None:
    flows.gh.add_pull(REPO, 8, SHA_1)
    assert flows.preview(pull_request_event("opened", 8, SHA_1), IMAGE_A)[0] == 0
    flows.gh.permissions.discard("administration:write")
    code, _, err = flows.preview(pull_request_event("closed", 8, SHA_1), "")
    assert code == 0, err
    assert "preview/pr-8" in [e["name"] for e in flows.gh.environments(REPO)]
    assert all(flows.states(d)[-1] == "inactive" for d in flows.deployments("preview/pr-8"))
    body = flows.envship_comments(8)[0]["body"]
    assert "was removed" in body and "needs a token with `administration: write`" in body


def test_an_exhausted_rate_limit_is_a_warning_not_an_hour_of_waiting(flows: Flows) -> None:
    import time

    flows.gh.rate_limit_remaining = 0
    started = time.monotonic()
    code, _, err = flows.deploy("staging", IMAGE_A, SHA_1)
    assert code == 0, err
    assert "GitHub's rate limit is exhausted" in err and time.monotonic() - started < 30


def test_a_rerun_of_the_same_event_keeps_one_comment(flows: Flows) -> None:
    flows.gh.add_pull(REPO, 9, SHA_1)
    for _ in range(2):
        assert flows.preview(pull_request_event("opened", 9, SHA_1), IMAGE_A)[0] == 0
    assert len(flows.envship_comments(9)) == 1
    assert len(flows.deployments("preview/pr-9")) == 2


def test_gc_leaves_the_previews_of_another_repository_with_the_same_names(flows: Flows) -> None:
    flows.gh.add_repo("someone/hello")
    flows.gh.add_pull("someone/hello", 6, SHA_1)
    code, _, err = flows.preview(pull_request_event("opened", 6, SHA_1, repo="someone/hello"), IMAGE_A,
                                 GITHUB_REPOSITORY="someone/hello")
    assert code == 0, err
    code, _, err = flows.run("gc")          # as acme/hello, where pull request #6 does not exist
    assert code == 0, err
    assert flows.kube.get("deployments", "hello-pr-6", "web") is not None
    assert [r["name"] for r in flows.cf.records("example.com")] == ["hello-pr-6.example.com"]
