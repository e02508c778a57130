"""What users of kubectl and kapp reach for: plan's exit code, --output json against the published schemas,
-q/-v, colour only on a terminal (NO_COLOR), a heartbeat during long waits, and files in the Actions
workspace handed to the workspace's owner. Against the fake Kubernetes API server and a real registry."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import Project, run
from fakes.kube_apiserver import FakeKube
from fakes.pytest_plugin import fake_kube  # noqa: F401 - the fixture
from registry_fixture import Registry
from test_action import action_environ, run_action
from test_deploy import CONFIG, DIGEST_A, IMAGE_A, IMAGE_B, NS, Cluster

from envship.adapters import files
from envship.cli import main

pytest_plugins = ["registry_fixture"]
SCHEMAS = Path(__file__).resolve().parents[1] / "entrypoint" / "envship" / "schemas"
ANSI = "\x1b["
SLOW_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      annotations: {fake.envship.dev/scenario: slow, fake.envship.dev/ready-after: 4s}
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/hello:latest
"""


@pytest.fixture
def cluster(project: Project, fake_kube: FakeKube) -> Cluster:  # noqa: F811 - the fixture
    return Cluster(project, fake_kube)


def valid(command: str, document: Any) -> Any:
    schema = json.loads((SCHEMAS / f"{command}.output.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)
    return document


class TTY(io.StringIO):
    """A stream that says it is a terminal, as a user's shell is."""

    def isatty(self) -> bool:
        return True


# -- plan --exit-code ---------------------------------------------------------------------------------
def test_plan_exit_code_tells_changes_from_none_and_from_errors(cluster: Cluster) -> None:
    code, out, err = cluster.run("plan", "--exit-code")
    assert code == 3, err                                     # deploy would create everything
    assert "# create Deployment" in out
    assert cluster.run("plan")[0] == 0                        # without the flag: 0 either way
    assert cluster.deploy()[0] == 0
    code, out, err = cluster.run("plan", "--exit-code")
    assert code == 0, err                                     # nothing to change
    assert "0 to create, 0 to update" in err
    code, _, err = cluster.run("plan", "--exit-code", "--set", "LOG_LEVEL=debug")
    assert code == 3, err                                     # a changed value
    code, _, err = cluster.run("plan", "--exit-code", env="nope")
    assert code == 2 and "unknown environment 'nope'" in err  # bad input keeps its own code


def test_plan_exit_code_through_the_action(cluster: Cluster) -> None:
    environ = {**action_environ(cluster.project.root, command="plan", **{"skip-image-check": "true"}),
               "KUBECONFIG": str(cluster.kubeconfig), "INPUT_CONFIG": "envship.yaml"}
    assert run_action(cluster.project.root, {**environ, "INPUT_EXIT-CODE": "true"}).code == 3
    result = run_action(cluster.project.root, environ)
    assert result.code == 0 and result.outputs["changes"] == "4"


# -- --output json ------------------------------------------------------------------------------------
def test_plan_json_is_one_document_matching_its_schema(cluster: Cluster) -> None:
    code, out, err = cluster.run("plan", "--output", "json")
    assert code == 0, err
    document = valid("plan", json.loads(out))            # stdout is the document alone
    assert (document["environment"], document["namespace"], document["image"]) == ("staging", NS, IMAGE_A)
    assert document["changes"] == 4 and document["unchanged"] == 0
    assert {o["object"]: o["action"] for o in document["objects"]} == {
        "Namespace/hello-staging": "create", "ConfigMap/" + document["objects"][1]["object"].split("/")[1]: "create",
        "Service/web": "create", "Deployment/web": "create"}
    diff = next(o["diff"] for o in document["objects"] if o["object"] == "Deployment/web")
    assert re.search(rf"^\+\s+image: {re.escape(IMAGE_A)}$", diff, re.M)
    assert cluster.deploy()[0] == 0
    cluster.project.manifest("service.yaml", "")          # the Service is no longer rendered
    document = valid("plan", json.loads(cluster.run("plan", "--output", "json")[1]))
    assert [(o["object"], o["action"]) for o in document["objects"]] == [("Service/web", "delete")]
    assert document["changes"] == 1


def test_deploy_json_says_what_happened_failed_or_not(cluster: Cluster) -> None:
    code, out, err = cluster.deploy("--output", "json")
    assert code == 0, err
    first = valid("deploy", json.loads(out))
    assert first["ok"] is True and first["revision"] == 1 and first["previous_digest"] is None
    assert first["changes"] == 4 and first["digest"] == DIGEST_A and first["error"] == ""
    code, out, err = cluster.deploy("--output", "json", image=IMAGE_B)
    second = valid("deploy", json.loads(out))
    assert code == 0 and second["revision"] == 2 and second["previous_digest"] == DIGEST_A
    cluster.kube.set_scenario("crashloop", image="c" * 64)
    code, out, err = cluster.deploy("--output", "json", image="ghcr.io/acme/hello@sha256:" + "c" * 64)
    failed = valid("deploy", json.loads(out))
    assert code == 1 and failed["ok"] is False and "CrashLoopBackOff" in failed["error"]
    assert "error: " in err                                   # the error itself stays on stderr


def test_status_json_matches_its_schema(cluster: Cluster) -> None:
    assert cluster.deploy()[0] == 0
    code, out, err = run_status(cluster)
    assert code == 0, err
    document = valid("status", json.loads(out))
    staging = next(e for e in document["environments"] if e["environment"] == "staging")
    assert staging["digest"] == DIGEST_A and staging["health"] == "healthy" and staging["revision"] == 1


def run_status(cluster: Cluster) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["status", "--output", "json"], environ=cluster.environ, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_resolve_json_matches_its_schema(registry: Registry, tmp_path: Path) -> None:
    digest = registry.upload_image("json/app", "1.0")
    result = run(["resolve", registry.ref("json/app", "1.0"), "--output", "json"],
                 {"DOCKER_CONFIG": str(tmp_path), "HOME": str(tmp_path)})
    assert result.code == 0, result.err
    document = valid("resolve", json.loads(result.out))
    assert document["digest"] == digest and document["image"] == f"{registry.host}/json/app@{digest}"


def test_output_takes_only_text_or_json(cluster: Cluster) -> None:
    code, out, err = cluster.run("plan", "--output", "yaml")
    assert code == 2 and out == "" and "--output: invalid choice: 'yaml'" in err


# -- levels and colour ---------------------------------------------------------------------------------
def test_quiet_keeps_errors_and_data_and_verbose_shows_requests(cluster: Cluster) -> None:
    code, out, err = cluster.deploy("-q")
    assert code == 0 and err == "" and out == ""               # nothing but what went wrong
    code, out, err = cluster.run("plan", "-q")
    assert code == 0 and err == "" and out == ""               # no change: no diff, no words
    code, out, err = cluster.deploy("-v", image=IMAGE_B)
    assert code == 0, err
    requests = [line for line in err.splitlines() if re.fullmatch(r"(GET|POST|PUT|PATCH|DELETE) /\S+ \d{3} \d+ ms"
                                                                  r"( \(watch\))?", line)]
    assert any(line.startswith("PATCH /apis/apps/v1/namespaces/hello-staging/deployments/web 200") for line in requests)
    assert "deployed " in err                                  # -v adds to the normal lines
    code, _, err = cluster.run("deploy", "-q", "--timeout", "nope")
    assert code == 2 and err.startswith("error: --timeout must be a duration")


def test_colour_only_on_a_terminal_and_never_with_no_color(cluster: Cluster) -> None:
    def plan(environ: dict[str, str]) -> tuple[str, str]:
        out, err = TTY(), TTY()
        main(["plan", "--env", "staging", "--image", IMAGE_A, "--skip-image-check"],
             environ={**cluster.environ, **environ}, out=out, err=err)
        return out.getvalue(), err.getvalue()

    out, _ = plan({})
    assert re.search(rf"^\x1b\[32m\+\s+image: {re.escape(IMAGE_A)}\x1b\[0m$", out, re.M)   # added lines green
    for environ in ({"NO_COLOR": "1"}, {"TERM": "dumb"}):
        out, _ = plan(environ)
        assert ANSI not in out and re.search(rf"^\+\s+image: {re.escape(IMAGE_A)}$", out, re.M)
    out, _ = plan({"NO_COLOR": ""})                             # set but empty: no-color.org says colour stays
    assert ANSI in out
    code, out, err = cluster.run("plan")                        # StringIO is no terminal
    assert code == 0 and ANSI not in out + err
    err_tty = TTY()
    assert main(["render", "--env", "nope", "--image", IMAGE_A], environ={}, out=TTY(), err=err_tty) == 2
    assert err_tty.getvalue().startswith("\x1b[31merror: ")


# -- heartbeat -----------------------------------------------------------------------------------------
def test_a_slow_rollout_says_what_it_still_waits_for(cluster: Cluster) -> None:
    cluster.project.manifest("deployment.yaml", SLOW_DEPLOYMENT)
    code, _, err = cluster.deploy(extra_environ={"ENVSHIP_HEARTBEAT_SECONDS": "1"})
    assert code == 0, err
    beats = [line for line in err.splitlines() if "still waiting after" in line]
    assert len(beats) >= 2, err
    seconds = [int(m.group(1)) for m in (re.search(r"Deployment/web for (\d+) s", b) for b in beats) if m]
    assert len(seconds) == len(beats) and seconds == sorted(seconds) and seconds[-1] >= 2
    assert all(re.search(r"still waiting after \d+ s of at most 20 s", b) for b in beats)
    code, _, err = cluster.deploy(extra_environ={"ENVSHIP_HEARTBEAT_SECONDS": "0"})
    assert code == 2 and "ENVSHIP_HEARTBEAT_SECONDS must be a whole number of seconds from 1 to 3600" in err


def test_a_quick_rollout_has_no_heartbeat(cluster: Cluster) -> None:
    code, _, err = cluster.deploy()
    assert code == 0 and "still waiting" not in err


def test_waiting_for_the_lock_says_so_while_it_waits(cluster: Cluster) -> None:
    cluster.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    now = "2999-01-01T00:00:00.000000Z"
    cluster.kube.apply({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": "envship-lock-hello-staging", "namespace": NS},
                        "spec": {"holderIdentity": "https://github.com/acme/hello/actions/runs/7#deploy_0badcafe",
                                 "leaseDurationSeconds": 5, "acquireTime": now, "renewTime": now}})
    code, _, err = cluster.deploy("--lock-timeout", "20s", extra_environ={"ENVSHIP_HEARTBEAT_SECONDS": "1"})
    assert code == 0, err
    beats = [line for line in err.splitlines() if line.startswith("waiting for the deploy lock")]
    assert len(beats) >= 3 and "still waiting after" in beats[-1] and "at most 20 s" in beats[-1]


# -- workspace files belong to the workspace's owner -----------------------------------------------------
OWNER = (4321, 4322)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="runs as root, as container actions do")
def test_files_the_action_writes_belong_to_the_workspace_owner(project: Project, tmp_path: Path) -> None:
    project.standard()
    os.chown(project.root, *OWNER)
    result = run_action(project.root, action_environ(project.root, output="out/rendered"))
    assert result.code == 0, result.log
    written = [project.root / "out", project.root / "out" / "rendered", *(project.root / "out/rendered").iterdir()]
    assert len(written) == 5   # two folders, three objects (no secrets given: no Secret)
    assert {(p.stat().st_uid, p.stat().st_gid) for p in written} == {OWNER}
    # the release record (build) goes through the same hand-over; outside the workspace nothing is touched
    environ = {"GITHUB_WORKSPACE": str(project.root)}
    files.write_text(str(project.root / "records" / "release.json"), "{}\n", environ)
    assert (project.root / "records" / "release.json").stat().st_uid == OWNER[0]
    assert (project.root / "records").stat().st_uid == OWNER[0]
    outside = tmp_path.parent / f"{tmp_path.name}-outside.json"
    files.write_text(str(outside), "{}\n", environ)
    assert outside.stat().st_uid == 0
    outside.unlink()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="runs as root, as container actions do")
def test_a_root_owned_workspace_stays_as_it_is(project: Project) -> None:
    project.standard()
    result = run_action(project.root, action_environ(project.root, output="rendered"))
    assert result.code == 0, result.log
    assert {p.stat().st_uid for p in (project.root / "rendered").iterdir()} == {0}


def test_config_fixture_is_the_deploy_tests(cluster: Cluster) -> None:
    """This module reuses test_deploy's project: a change there shows here first."""
    assert (cluster.project.root / "envship.yaml").read_text() == CONFIG
