"""`envship action`: the GitHub Action glue, driven by INPUT_* variables as the runner passes them."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import BASE_CONFIG, DEPLOYMENT, DIGEST, EPOCH, IMAGE, Project, b64, location_of, parse_github_output

from envship.adapters.runtime import read_input
from envship.cli import main

TOKEN = "s3cr3t-Value-XYZ-123"
PEM_LINES = ["-----BEGIN PRIVATE KEY-----", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
             "bm90LWEtcmVhbC1rZXktYnV0LWNsb3NlLWVub3VnaC1mb3ItdGVzdHM=", "-----END PRIVATE KEY-----"]
PEM = "\n".join(PEM_LINES)
SECRETS_INPUT = f"API_TOKEN={TOKEN}\n# a comment\n\nTLS_KEY<<EOF\n{PEM}\nEOF\nEMPTYISH=a=b=c\n"
SPECS = Path("/work/shared/specs")


class Run:
    def __init__(self, code: int, log: str, root: Path) -> None:
        self.code = code
        self.log = log  # stdout and stderr interleaved, as in the workflow log
        self.lines = log.splitlines()
        output, summary = root / "github_output", root / "step_summary"
        self.output_text = output.read_text() if output.exists() else ""
        self.summary = summary.read_text() if summary.exists() else ""

    @property
    def outputs(self) -> dict[str, str]:
        return parse_github_output(self.output_text)

    @property
    def masks(self) -> list[str]:
        return [line for line in self.lines if line.startswith("::add-mask::")]

    @property
    def visible(self) -> str:
        """What the workflow log shows: the runner consumes ::add-mask:: lines."""
        return "\n".join(line for line in self.lines if not line.startswith("::add-mask::"))

    def errors(self) -> list[str]:
        return [line for line in self.lines if line.startswith("::error ")]


def action_environ(root: Path, **inputs: str) -> dict[str, str]:
    environ = {
        "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(root), "GITHUB_OUTPUT": str(root / "github_output"),
        "GITHUB_STEP_SUMMARY": str(root / "step_summary"), "GITHUB_EVENT_NAME": "push",
        "GITHUB_SHA": "0123abcd", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/hello",
        "GITHUB_RUN_ID": "4242", "SOURCE_DATE_EPOCH": EPOCH,
        # the runner passes every input, defaults included
        "INPUT_COMMAND": "render", "INPUT_ENVIRONMENT": "staging", "INPUT_IMAGE": IMAGE,
        "INPUT_CONFIG": "envship.yaml", "INPUT_ENV": "", "INPUT_SECRETS": "", "INPUT_PR": "", "INPUT_OUTPUT": "",
        "INPUT_GITHUB-TOKEN": "ghs_notarealtoken000000000000000000000",
    }
    for name, value in inputs.items():
        environ["INPUT_" + name.upper().replace("_", "-")] = value
    return environ


def run_action(root: Path, environ: dict[str, str]) -> Run:
    log = io.StringIO()
    code = main(["action"], environ=environ, out=log, err=log)
    return Run(code, log.getvalue(), root)


def test_the_action_through_the_real_entry_point_writes_all_its_files(project: Project) -> None:
    """The container runs `envship action` as a process, which ends without the interpreter's teardown
    (cli.exit_now): the outputs, the summary and the log must all be there, whole."""
    project.standard()
    environ = {**action_environ(project.root, secrets=SECRETS_INPUT), "PATH": os.environ.get("PATH", ""),
               "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "entrypoint")}
    proc = subprocess.run([sys.executable, "-m", "envship", "action"], cwd=project.root, env=environ,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    in_process = run_action(project.root, {**environ, "GITHUB_OUTPUT": str(project.root / "github_output2"),
                                           "GITHUB_STEP_SUMMARY": str(project.root / "step_summary2")})
    assert parse_github_output((project.root / "github_output").read_text()) == in_process.outputs
    assert (project.root / "step_summary").read_text() == (project.root / "step_summary2").read_text()

    def rendered(log: str) -> list[dict[str, object]]:
        return [d for d in yaml.safe_load_all("\n".join(line for line in log.splitlines()
                                                        if not line.startswith("::"))) if d]

    assert rendered(proc.stdout) == rendered(in_process.log) and len(rendered(proc.stdout)) == 4
    visible = [line for line in (proc.stdout + proc.stderr).splitlines() if not line.startswith("::add-mask::")]
    assert TOKEN not in "\n".join(visible)


def test_render_through_the_action(project: Project) -> None:
    project.standard()
    environ = action_environ(project.root, secrets=SECRETS_INPUT, env="FEATURE_X=on\nLOG_LEVEL=trace\n")
    result = run_action(project.root, environ)
    assert result.code == 0, result.log

    assert result.outputs == {"image": IMAGE, "digest": DIGEST, "environment": "staging",
                              "namespace": "hello-staging", "url": "https://staging.example.com"}
    assert "| namespace | `hello-staging` |" in result.summary
    assert f"| image | `{IMAGE}` |" in result.summary
    assert re.search(r"^\|---\|---\|$", result.summary, re.M)

    objects = [d for d in yaml.safe_load_all(
        "\n".join(line for line in result.lines if not line.startswith("::"))) if d]
    by_kind = {o["kind"]: o for o in objects}
    assert by_kind["ConfigMap"]["data"] == {"FEATURE_X": "on", "GREETING": "Hello", "LOG_LEVEL": "trace"}
    assert by_kind["Secret"]["data"] == {"API_TOKEN": "<redacted>", "EMPTYISH": "<redacted>", "TLS_KEY": "<redacted>"}
    assert by_kind["Deployment"]["metadata"]["annotations"]["envship.dev/run-url"] == \
        "https://github.com/acme/hello/actions/runs/4242"
    assert "::group::rendered manifests for staging" in result.lines and "::endgroup::" in result.lines


def test_masks_come_before_any_other_output(project: Project) -> None:
    project.standard()
    result = run_action(project.root, action_environ(project.root, secrets=SECRETS_INPUT))
    assert result.code == 0, result.log
    n = len(result.masks)
    assert n > 0 and result.lines[:n] == result.masks
    assert f"::add-mask::{TOKEN}" in result.masks
    assert "::add-mask::a=b=c" in result.masks
    for line in PEM_LINES:  # the runner masks line by line: each line of a multi-line value is registered
        assert f"::add-mask::{line}" in result.masks


def test_masks_come_first_even_when_the_run_fails(project: Project) -> None:
    project.config(BASE_CONFIG.replace("app: hello", "app: Hello"))
    result = run_action(project.root, action_environ(project.root, secrets=SECRETS_INPUT))
    assert result.code == 2
    n = len(result.masks)
    assert n > 0 and result.lines[:n] == result.masks and result.errors()


def test_malformed_secrets_input_is_masked_before_the_error(project: Project) -> None:
    project.standard()
    secrets = f"API_TOKEN={TOKEN}\nthis line is the secret itself oops\n"
    result = run_action(project.root, action_environ(project.root, secrets=secrets))
    assert result.code == 2
    assert result.lines[0].startswith("::add-mask::")
    assert "::add-mask::this line is the secret itself oops" in result.masks
    assert "this line is the secret itself" not in result.visible
    assert TOKEN not in result.visible
    assert any("input 'secrets', line 2: expected KEY=VALUE" in e for e in result.errors())


def test_unclosed_multiline_secret(project: Project) -> None:
    project.standard()
    result = run_action(project.root, action_environ(project.root, secrets=f"TLS_KEY<<EOF\n{PEM}\n"))
    assert result.code == 2
    # on malformed input every line is masked, the opening line included
    assert any("input 'secrets', line 1: the value is never closed" in e for e in result.errors())
    for line in PEM_LINES[1:3]:
        assert line not in result.visible


def test_outputs_use_random_heredoc_delimiters(project: Project) -> None:
    project.standard()
    environ = action_environ(project.root)
    first = run_action(project.root, environ)
    (project.root / "github_output").unlink()
    second = run_action(project.root, environ)
    assert first.code == second.code == 0
    delimiters = [re.findall(r"^\w+<<(.+)$", r.output_text, re.M) for r in (first, second)]
    assert len(delimiters[0]) == 5 and len(set(delimiters[0] + delimiters[1])) == 10
    for d in delimiters[0]:
        assert len(d) >= 20  # not guessable from the value
    assert first.outputs == second.outputs


def test_config_error_annotation(project: Project) -> None:
    text = BASE_CONFIG.replace("environments:", "enviroments:")
    project.config(text)
    project.manifest("d.yaml", DEPLOYMENT)
    result = run_action(project.root, action_environ(project.root))
    assert result.code == 2
    line, col = location_of(text, "enviroments")
    assert (f"::error file=envship.yaml,line={line},col={col},title=invalid envship config::"
            "unknown key 'enviroments' in the config%0Ahint: did you mean 'environments'?") in result.errors()
    assert result.outputs == {}
    assert result.summary == ""


def test_annotation_escaping_and_workspace_relative_paths(project: Project, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = tmp_path / "repo"
    text = BASE_CONFIG.replace("app: hello\n", "app: hello\n'50%off': true\n")
    (workspace / "my,ops").mkdir(parents=True)
    (workspace / "my,ops" / "envship.yaml").write_text(text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the annotation must still name the file relative to the workspace
    environ = action_environ(workspace, config=str(workspace / "my,ops" / "envship.yaml"))
    result = run_action(workspace, environ)
    assert result.code == 2
    line, col = location_of(text, "'50%off'")
    assert (f"::error file=my%2Cops/envship.yaml,line={line},col={col},title=invalid envship config::"
            "unknown key '50%25off' in the config%0Ahint: allowed keys: ") in result.errors()[0]


def test_every_config_problem_is_annotated(project: Project) -> None:
    project.config(BASE_CONFIG.replace("app: hello", "app: Hello").replace("ttl: 72h", "ttl: 3 days"))
    result = run_action(project.root, action_environ(project.root))
    assert result.code == 2
    errors = result.errors()
    assert len(errors) == 2
    assert all(e.startswith("::error file=envship.yaml,line=") for e in errors)


def test_manifest_error_annotation(project: Project) -> None:
    project.config()
    text = DEPLOYMENT.replace("https://${ENVSHIP_HOST}", "${MISSING_VALUE}")
    project.manifest("deployment.yaml", text)
    result = run_action(project.root, action_environ(project.root))
    assert result.code == 2
    line, col = location_of(text, "${MISSING_VALUE}")
    assert result.errors()[0].startswith(
        f"::error file=deploy/deployment.yaml,line={line},col={col},title=invalid manifests::"
        "unresolved variable ${MISSING_VALUE}%0Ahint: define MISSING_VALUE under 'env'")


def pull_request_event(root: Path, number: int) -> str:
    path = root / "event.json"
    path.write_text(json.dumps({"action": "synchronize", "number": number,
                                "pull_request": {"number": number, "head": {"ref": "feature/x"}}}))
    return str(path)


def test_preview_pr_number_from_the_pull_request_event(project: Project) -> None:
    project.standard()
    environ = {**action_environ(project.root, environment="preview"), "GITHUB_EVENT_NAME": "pull_request",
               "GITHUB_EVENT_PATH": pull_request_event(project.root, 42)}
    result = run_action(project.root, environ)
    assert result.code == 0, result.log
    assert result.outputs["namespace"] == "hello-pr-42"
    assert result.outputs["url"] == "https://hello-pr-42.example.com"
    assert "| pull request | `#42` |" in result.summary


def test_explicit_pr_input_wins_over_the_event(project: Project) -> None:
    project.standard()
    environ = {**action_environ(project.root, environment="preview", pr="7"), "GITHUB_EVENT_NAME": "pull_request",
               "GITHUB_EVENT_PATH": pull_request_event(project.root, 42)}
    result = run_action(project.root, environ)
    assert result.code == 0, result.log
    assert result.outputs["namespace"] == "hello-pr-7"


def test_pull_request_event_does_not_disturb_long_lived_environments(project: Project) -> None:
    project.standard()
    environ = {**action_environ(project.root), "GITHUB_EVENT_NAME": "pull_request",
               "GITHUB_EVENT_PATH": pull_request_event(project.root, 42)}
    result = run_action(project.root, environ)
    assert result.code == 0, result.log
    assert result.outputs["namespace"] == "hello-staging"


def test_preview_outside_a_pull_request_needs_pr(project: Project) -> None:
    project.standard()
    result = run_action(project.root, action_environ(project.root, environment="preview"))
    assert result.code == 2
    assert "needs a pull request number" in result.errors()[0]


def test_event_fields_used_exist_in_githubs_webhook_schema() -> None:
    """The fixture above only carries what envship reads; those fields are required in the real payload."""
    spec = json.loads((SPECS / "github-webhooks.json").read_text())
    schemas = spec["components"]["schemas"]
    for action in ("opened", "synchronize", "reopened", "closed"):
        assert {"number", "pull_request"} <= set(schemas[f"webhook-pull-request-{action}"]["required"])
    assert "number" in schemas["pull-request"]["required"]


@pytest.mark.parametrize("inputs, message", [
    ({"command": "undeploy"},
     "input 'command' is 'undeploy', which this version does not support%0Ahint: use one of: render, plan, "
     "deploy, build, resolve, routes, promote, preview, teardown, gc, status"),
    ({"command": ""}, "input 'command' is required: the action does nothing by default%0Ahint: set 'with: command:' to "
                      "one of: render, plan, deploy, build, resolve, routes, promote, preview, teardown, gc, status"),
    ({"environment": ""}, "input 'environment' is required"),
    ({"image": ""}, "input 'image' is required"),
    ({"environment": "prod"}, "unknown environment 'prod' (known: staging, production, preview)"),
    ({"pr": "abc", "environment": "preview"}, "input 'pr' must be a pull request number, not 'abc'"),
    ({"env": "NOT A PAIR"}, "input 'env', line 1: expected KEY=VALUE"),
    ({"pr": "3"}, "input 'pr' is only for preview environments; 'staging' is not one%0Ahint: drop input 'pr'"),
    ({"command": "deploy", "timeout": "forever"},
     "input 'timeout' must be a duration such as 10m, 90s or 1h30m, of at most 24h, not 'forever'"),
    ({"command": "deploy", "crashloop-restarts": "abc"},
     "input 'crashloop-restarts' must be a whole number from 1 to 1000, not 'abc'"),
    ({"command": "deploy", "rollback": "maybe"}, "input 'rollback' must be true or false, not 'maybe'"),
], ids=["unsupported-command", "no-command", "no-environment", "no-image", "unknown-environment", "bad-pr", "bad-env",
        "pr-for-a-long-lived-environment", "bad-timeout", "bad-crashloop-restarts", "bad-rollback"])
def test_bad_inputs_exit_2(project: Project, inputs: dict[str, str], message: str) -> None:
    project.standard()
    result = run_action(project.root, action_environ(project.root, **inputs))
    assert result.code == 2
    errors = result.errors()
    assert len(errors) == 1 and errors[0].startswith("::error title=bad usage::") and message in errors[0]
    assert "%0Ahint: " in errors[0]
    assert "Traceback" not in result.log


def test_output_input_writes_files(project: Project) -> None:
    project.standard()
    result = run_action(project.root, action_environ(project.root, output="rendered", secrets=SECRETS_INPUT))
    assert result.code == 0, result.log
    files = sorted(p.name for p in (project.root / "rendered").iterdir())
    assert files[-1] == "0004-deployment-hello.yaml" and len(files) == 4
    for path in (project.root / "rendered").iterdir():
        assert TOKEN not in path.read_text() and b64(TOKEN) not in path.read_text()
    assert result.outputs["namespace"] == "hello-staging"


def test_action_without_runner_files(project: Project) -> None:
    """Locally (no GITHUB_OUTPUT / GITHUB_STEP_SUMMARY) the action still renders."""
    project.standard()
    environ = action_environ(project.root)
    del environ["GITHUB_OUTPUT"], environ["GITHUB_STEP_SUMMARY"]
    result = run_action(project.root, environ)
    assert result.code == 0, result.log


def test_secrets_never_leak_from_the_action(project: Project) -> None:
    project.standard()
    runs = [run_action(project.root, action_environ(project.root, secrets=SECRETS_INPUT, output=out))
            for out in ("", "rendered")]
    project.manifest("deployment.yaml", DEPLOYMENT.replace("https://${ENVSHIP_HOST}", "${API_TOKEN}"))
    runs.append(run_action(project.root, action_environ(project.root, secrets=SECRETS_INPUT)))
    assert [r.code for r in runs] == [0, 0, 2]
    assert "'API_TOKEN' is a secret" in runs[2].visible
    forbidden = [TOKEN, PEM, b64(TOKEN), b64(PEM), PEM_LINES[1], PEM_LINES[2]]
    written = [p.read_text() for p in (project.root / "rendered").iterdir()]
    for run in runs:
        for text in (run.visible, run.output_text, run.summary, *written):
            for piece in forbidden:
                assert piece not in text


def test_input_names_keep_hyphens() -> None:
    """The runner upper-cases input names and keeps hyphens: github-token -> INPUT_GITHUB-TOKEN."""
    environ = {"INPUT_GITHUB-TOKEN": "  t0ken \n", "INPUT_GITHUB_TOKEN": "wrong"}
    assert read_input(environ, "github-token") == "t0ken"
    assert read_input(environ, "missing", "default") == "default"
