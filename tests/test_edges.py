"""Behaviour at the edges: value types after substitution, YAML 1.1 keys, argument errors through the
error boundary, secret-derived names, file permissions, and action inputs that are easy to get wrong."""

from __future__ import annotations

import hashlib
import io
import json
import stat
from typing import Any

import pytest
import yaml
from conftest import BASE_CONFIG, DEPLOYMENT, IMAGE, Project, b64, rendered_files, run
from test_action import action_environ, run_action

from envship.cli import main

REPLICATED = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  replicas: ${REPLICAS}
  paused: ${PAUSED}
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello, tier: "${REPLICAS}"}
    spec:
      containers:
        - name: web
          image: ghcr.io/acme/hello:latest
          env:
            - name: PORT
              value: "${PORT}"
            - name: LABEL
              value: replicas-${REPLICAS}
"""


def test_unquoted_reference_takes_the_type_of_its_value(project: Project) -> None:
    project.config(BASE_CONFIG.replace("  GREETING: Hello\n", "  GREETING: Hello\n  REPLICAS: 3\n"
                                                               "  PAUSED: 'false'\n  PORT: 8080\n"))
    project.manifest("d.yaml", REPLICATED)
    result = project.render()
    assert result.code == 0, result.err
    deployment = result.one("Deployment")
    assert deployment["spec"]["replicas"] == 3            # a number, as Kubernetes requires
    assert deployment["spec"]["paused"] is False
    assert deployment["spec"]["template"]["metadata"]["labels"]["tier"] == "3"  # quoted: stays a string
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == {"PORT": "8080", "LABEL": "replicas-3"}  # quoted, and text around a reference: strings


def test_yaml_11_boolean_words_stay_variable_names(project: Project) -> None:
    project.config(BASE_CONFIG.replace("  GREETING: Hello\n", "  GREETING: Hello\n  ON: 'yes'\n  NO: port\n"))
    project.manifest("d.yaml", DEPLOYMENT)
    result = project.render()
    assert result.code == 0, result.err
    data = result.one("ConfigMap")["data"]
    assert data["ON"] == "yes" and data["NO"] == "port"


def test_argument_errors_go_through_the_error_boundary(project: Project) -> None:
    result = run(["render", "--env", "staging", "--image", IMAGE,
                  "--secret", "TOKEN=hunter2-value", "--bogus=hunter2-value"])
    assert result.code == 2
    assert "unrecognized arguments" in result.err and "hint: see 'envship --help'" in result.err
    assert "hunter2-value" not in result.err + result.out


def test_argument_errors_are_annotated_in_github_actions(project: Project) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["render"], environ={"GITHUB_ACTIONS": "true"}, out=out, err=err)
    assert code == 2
    assert "::error title=bad usage::envship render: the following arguments are required: --env, --image" \
        in err.getvalue()
    assert out.getvalue() == ""   # workflow commands go to stderr: stdout is a command's data alone


def test_rendered_output_is_not_altered_by_secret_scrubbing(project: Project) -> None:
    """A short, common secret value ("admin") must not rewrite the manifests that would be applied."""
    project.standard()
    project.manifest("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: users}\ndata: {role: admin}\n")
    result = project.render("--secret", "DB_USER=admin")
    assert result.code == 0, result.err
    assert result.one("ConfigMap", "users")["data"]["role"] == "admin"
    assert result.one("Secret")["data"] == {"DB_USER": "<redacted>"}


def secret_name(result_out: str) -> str:
    return next(o["metadata"]["name"] for o in run_objects(result_out) if o["kind"] == "Secret")


def run_objects(text: str) -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all(text) if o]


def test_secret_name_follows_the_values_but_reveals_no_plain_hash(project: Project) -> None:
    project.standard()
    first = project.render("--secret", "TOKEN=correct-horse")
    again = project.render("--secret", "TOKEN=correct-horse")
    changed = project.render("--secret", "TOKEN=correct-horse-2")
    elsewhere = project.render("--secret", "TOKEN=correct-horse", env="production")
    name = secret_name(first.out)
    assert name == secret_name(again.out)              # unchanged values: same object, no rollout
    assert name != secret_name(changed.out)            # a rotated secret rolls the pods
    suffix = name.rsplit("-", 1)[1]
    assert suffix != secret_name(elsewhere.out).rsplit("-", 1)[1]  # salted per environment
    plain = hashlib.sha256(json.dumps({"TOKEN": "correct-horse"}, separators=(",", ":")).encode()).hexdigest()
    assert suffix not in plain                         # not a bare hash that would confirm a guess cheaply


def test_secret_files_are_private(project: Project) -> None:
    project.standard()
    result = project.render("--secret", "TOKEN=private-value-1", "--output", "out", "--show-secrets")
    assert result.code == 0, result.err
    out = project.root / "out"
    secret_files = [p for p in out.iterdir() if "-secret-" in p.name]
    assert len(secret_files) == 1
    assert stat.S_IMODE(secret_files[0].stat().st_mode) == 0o600
    assert b64("private-value-1") in secret_files[0].read_text()
    others = [p for p in out.iterdir() if p not in secret_files]
    assert others and all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in others)
    assert set(rendered_files(out)) == {p.name for p in out.iterdir()}  # no temporary files left behind


def test_empty_env_input_value_is_warned_about(project: Project) -> None:
    project.standard()
    run_ = run_action(project.root, action_environ(project.root, env="LOG_LEVEL=\nFEATURE=on\n"))
    assert run_.code == 0
    warnings = [line for line in run_.lines if line.startswith("::warning ")]
    assert len(warnings) == 1 and "sets LOG_LEVEL to an empty value" in warnings[0]


def test_unreadable_event_file_does_not_break_a_long_lived_environment(project: Project) -> None:
    project.standard()
    environ = action_environ(project.root)
    environ.update(GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=str(project.root / "missing.json"))
    assert run_action(project.root, environ).code == 0
    environ["INPUT_ENVIRONMENT"] = "preview"
    failed = run_action(project.root, environ)
    assert failed.code == 2 and "needs a pull request number" in failed.log


HPA = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: hello}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: TARGET}
  minReplicas: 2
  maxReplicas: 6
"""


@pytest.mark.parametrize("target, kept", [("hello", False), ("other", True)])
def test_replicas_are_left_to_a_rendered_autoscaler(project: Project, target: str, kept: bool) -> None:
    project.standard()
    project.manifest("deployment.yaml", DEPLOYMENT.replace("spec:\n  selector:", "spec:\n  replicas: 3\n  selector:"))
    project.manifest("hpa.yaml", HPA.replace("TARGET", target))
    result = project.render()
    assert result.code == 0, result.err
    spec = result.one("Deployment")["spec"]
    assert ("replicas" in spec) is kept
    note = "note: Deployment/hello: spec.replicas left to HorizontalPodAutoscaler/hello"
    assert (note in result.err) is not kept
