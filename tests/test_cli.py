"""The command line: bad usage (exit 2 with a hint), the real entry point, and secrets never printed."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import BASE_CONFIG, DEPLOYMENT, DIGEST, EPOCH, IMAGE, SERVICE, Project, Result, b64, rendered_files, run

# ------------------------------------------------------------------------------------------------
# bad usage: exit 2, message, hint
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadUsage:
    args: tuple[str, ...]
    message: str
    hint: str
    env: str = "staging"
    image: str = IMAGE
    environ: tuple[tuple[str, str], ...] = ()


USAGE_CASES = {
    "preview-without-pr": BadUsage(
        (), "environment 'preview' is a preview environment and needs a pull request number",
        "set --pr to the pull request number", env="preview"),
    "pr-on-non-preview": BadUsage(
        ("--pr", "5"), "--pr is only for preview environments; 'staging' is not one", "drop --pr"),
    # A tag is resolved through the registry, except for a protected environment: refused there before
    # any network call (the registry tests cover resolving, and an unreachable registry).
    "tag-for-protected-environment": BadUsage(
        (), "environment 'production' is protected and takes an image digest, not the tag '1.0'",
        "envship resolve ghcr.io/acme/hello:1.0", env="production", image="ghcr.io/acme/hello:1.0"),
    "image-without-tag-or-digest": BadUsage(
        (), "--image ghcr.io/acme/hello has neither a digest nor a tag", "ghcr.io/acme/hello@sha256:...",
        image="ghcr.io/acme/hello"),
    "image-from-another-repository": BadUsage(
        (), f"--image ghcr.io/acme/other@{DIGEST} is not from the app's repository ghcr.io/acme/hello",
        "pass ghcr.io/acme/hello@sha256:...", image=f"ghcr.io/acme/other@{DIGEST}"),
    "image-malformed-digest": BadUsage(
        (), "--image: digest 'sha256:1234' in 'ghcr.io/acme/hello@sha256:1234' is not sha256:",
        "REPO@sha256:DIGEST", image="ghcr.io/acme/hello@sha256:1234"),
    "image-malformed-repository": BadUsage(
        (), "--image: repository path component 'Hello'", "REPO@sha256:DIGEST", image=f"ghcr.io/acme/Hello@{DIGEST}"),
    "image-with-space": BadUsage(
        (), "contains white space", "REPO@sha256:DIGEST", image=f"ghcr.io/acme/hello @{DIGEST}"),
    "set-without-equals": BadUsage(
        ("--set", "LOG_LEVEL"), "--set LOG_LEVEL: expected KEY=VALUE", "--set NAME=value"),
    "set-reserved-name": BadUsage(
        ("--set", "ENVSHIP_HOST=evil.example.com"), "--set ENVSHIP_HOST: names starting with ENVSHIP_ are reserved",
        "rename"),
    "set-invalid-name": BadUsage(
        ("--set", "9LIVES=1"), "--set 9LIVES: '9LIVES' is not a valid variable name", "not starting with a digit"),
    "set-unknown-reference": BadUsage(
        ("--set", "URL=${NOPE}"), "variable 'URL' refers to ${NOPE}, which is not set", "ENVSHIP_NAMESPACE"),
    "secret-from-unset-variable": BadUsage(
        ("--set", "A=1", "--secret", "X=1", "--secret", "DB_PASSWORD"),
        "--secret: the 2nd --secret argument names an environment variable that is not set (the name is not shown",
        "export NAME=... before running (--secret NAME reads $NAME)"),
    "secret-value-without-name": BadUsage(
        ("--secret", "p@ss w0rd!"), "--secret: the 1st --secret argument is not NAME=VALUE or NAME (it is not shown",
        "write --secret NAME=VALUE"),
    "secret-base64-value-without-name": BadUsage(
        ("--secret", "c2VjcmV0LXZhbHVlLTE=="), "--secret: the 1st --secret argument has a value of only '='",
        "write --secret NAME=VALUE"),
    "secret-reserved-name": BadUsage(
        ("--secret", "ENVSHIP_TOKEN=x"), "--secret ENVSHIP_TOKEN: names starting with ENVSHIP_ are reserved", "rename"),
    "unknown-environment": BadUsage(
        (), "unknown environment 'stagin' (known: staging, production, preview)", "did you mean 'staging'?",
        env="stagin"),
    "unknown-environment-no-suggestion": BadUsage(
        (), "unknown environment 'qa' (known: staging, production, preview)",
        "pass --env with one of: staging, production, preview", env="qa"),
    "bad-source-date-epoch": BadUsage(
        (), "SOURCE_DATE_EPOCH must be whole seconds since 1970, not 'yesterday'", "unset it",
        environ=(("SOURCE_DATE_EPOCH", "yesterday"),)),
}


@pytest.mark.parametrize("case", USAGE_CASES.values(), ids=USAGE_CASES.keys())
def test_bad_usage(project: Project, case: BadUsage) -> None:
    project.standard()
    environ = {"SOURCE_DATE_EPOCH": EPOCH, **dict(case.environ)}
    result = project.render(*case.args, env=case.env, image=case.image, environ=environ)
    assert result.code == 2, result.err
    assert result.out == ""
    assert "Traceback" not in result.err
    _, hint = result.problem(case.message)
    assert hint.startswith("hint: ") and case.hint in hint, hint


def test_secret_value_read_from_the_environment(project: Project) -> None:
    project.standard()
    result = project.render("--secret", "DB_PASSWORD", "--show-secrets",
                            environ={"SOURCE_DATE_EPOCH": EPOCH, "DB_PASSWORD": "from-env-123"})
    assert result.code == 0, result.err
    assert result.one("Secret")["data"] == {"DB_PASSWORD": b64("from-env-123")}


# ------------------------------------------------------------------------------------------------
# the real entry point
# ------------------------------------------------------------------------------------------------

def envship(args: list[str], cwd: Path, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": os.environ.get("PATH", ""), "SOURCE_DATE_EPOCH": EPOCH, **(extra or {})}
    return subprocess.run([sys.executable, "-m", "envship", *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=60, check=False)


def test_entry_point_renders(project: Project) -> None:
    project.standard()
    proc = envship(["render", "--env", "staging", "--image", IMAGE], project.root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    # same bytes as the in-process run
    assert proc.stdout == project.render().out
    assert [o["kind"] for o in yaml.safe_load_all(proc.stdout)] == ["ConfigMap", "Service", "Deployment"]


def test_entry_point_bad_config_exit_2_without_traceback(project: Project) -> None:
    project.config(BASE_CONFIG.replace("environments:", "enviroments:"))
    project.manifest("d.yaml", DEPLOYMENT)
    proc = envship(["render", "--env", "staging", "--image", IMAGE], project.root)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "error: envship.yaml:7:1: unknown key 'enviroments' in the config" in proc.stderr
    assert "hint: did you mean 'environments'?" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, fragment", [
    ([], "the following arguments are required: COMMAND"),
    (["render", "--env", "staging"], "the following arguments are required: --image"),
    (["render", "--env", "staging", "--image", IMAGE, "--pr", "abc"], "expected a pull request number, not 'abc'"),
    (["render", "--env", "staging", "--image", IMAGE, "--pr", "0"],
     "argument --pr: expected a pull request number, not '0'"),
    (["deploy-everything"], "invalid choice: 'deploy-everything'"),
], ids=["no-command", "missing-image", "pr-not-a-number", "pr-zero", "unknown-command"])
def test_entry_point_argument_errors_exit_2(project: Project, args: list[str], fragment: str) -> None:
    proc = envship(args, project.root)
    assert proc.returncode == 2
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr


def test_entry_point_help_and_version(project: Project) -> None:
    proc = envship(["--help"], project.root)
    assert proc.returncode == 0 and "2 bad usage or bad input" in proc.stdout
    proc = envship(["render", "--help"], project.root)
    assert proc.returncode == 0 and "--show-secrets" in proc.stdout and "--output DIR" in proc.stdout
    proc = envship(["--version"], project.root)
    assert proc.returncode == 0 and proc.stdout.startswith("envship ")


def test_entry_point_in_github_actions_annotates(project: Project) -> None:
    project.config()
    project.manifest("d.yaml", DEPLOYMENT.replace("${ENVSHIP_HOST}", "${NOT_DEFINED}"))
    proc = envship(["render", "--env", "staging", "--image", IMAGE], project.root, {"GITHUB_ACTIONS": "true"})
    assert proc.returncode == 2
    assert "::error file=deploy/d.yaml,line=17,col=22,title=invalid manifests::unresolved variable ${NOT_DEFINED}" \
        in proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr


def test_config_path_relative_to_working_directory(project: Project) -> None:
    """--config elsewhere: manifests resolve relative to the config file, not the working directory."""
    project.write("app/envship.yaml", BASE_CONFIG)
    project.write("app/deploy/s.yaml", SERVICE)
    result = run(["render", "--config", "app/envship.yaml", "--env", "production", "--image", IMAGE])
    assert result.code == 0, result.err
    assert result.one("Service")["metadata"]["namespace"] == "hello"


# ------------------------------------------------------------------------------------------------
# secrets never appear in stdout, stderr or written files
# ------------------------------------------------------------------------------------------------

TOKEN = "s3cr3t-Value-XYZ-123"
PEM = ("-----BEGIN PRIVATE KEY-----\n"
       "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
       "bm90LWEtcmVhbC1rZXktYnV0LWNsb3NlLWVub3VnaC1mb3ItdGVzdHM=\n"
       "-----END PRIVATE KEY-----")
SECRET_ENVIRON = {"SOURCE_DATE_EPOCH": EPOCH, "TLS_KEY": PEM}
SECRET_ARGS = ("--secret", f"API_TOKEN={TOKEN}", "--secret", "TLS_KEY")


def forbidden() -> list[str]:
    """Everything that would reveal a secret: the values, their base64 forms, each line of the PEM body."""
    values = [TOKEN, PEM]
    pieces = values + [b64(v) for v in values] + [line for line in PEM.splitlines() if "PRIVATE KEY" not in line]
    return pieces


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for piece in forbidden():
            assert piece not in text, f"secret {piece[:12]}... leaked in:\n{text}"


def test_scan_is_able_to_fail(project: Project) -> None:
    """--show-secrets prints the Secret's real data: the same scan would catch it."""
    project.standard()
    result = project.render(*SECRET_ARGS, "--show-secrets", environ=SECRET_ENVIRON)
    assert result.code == 0, result.err
    assert result.one("Secret")["data"] == {"API_TOKEN": b64(TOKEN), "TLS_KEY": b64(PEM)}
    assert b64(TOKEN) in result.out and b64(PEM) in result.out
    with pytest.raises(AssertionError):
        assert_no_secret(result.out)
    assert_no_secret(result.err)


def test_secrets_not_printed_by_render(project: Project) -> None:
    project.standard()
    result = project.render(*SECRET_ARGS, environ=SECRET_ENVIRON)
    assert result.code == 0, result.err
    assert result.one("Secret")["data"] == {"API_TOKEN": "<redacted>", "TLS_KEY": "<redacted>"}
    assert_no_secret(result.out, result.err)


def test_secrets_not_written_by_render_to_a_directory(project: Project) -> None:
    project.standard()
    result = project.render(*SECRET_ARGS, "--output", "out", environ=SECRET_ENVIRON)
    assert result.code == 0, result.err
    files = rendered_files(project.root / "out")
    assert any("<redacted>" in text for text in files.values())
    assert_no_secret(result.out, result.err, *files.values())


def test_show_secrets_writes_them_to_a_directory(project: Project) -> None:
    project.standard()
    result = project.render(*SECRET_ARGS, "--output", "out", "--show-secrets", environ=SECRET_ENVIRON)
    assert result.code == 0, result.err
    assert any(b64(TOKEN) in text for text in rendered_files(project.root / "out").values())
    assert_no_secret(result.out, result.err)


@pytest.mark.parametrize("breakage", ["secret-name-as-variable", "bad-config", "secret-value-in-message",
                                      "unknown-variable-in-set"])
def test_secrets_not_printed_when_render_fails(project: Project, breakage: str) -> None:
    project.standard()
    env = "staging"
    extra: tuple[str, ...] = ()
    if breakage == "secret-name-as-variable":
        project.manifest("deployment.yaml", DEPLOYMENT.replace("https://${ENVSHIP_HOST}", "${API_TOKEN}"))
    elif breakage == "bad-config":
        project.config(BASE_CONFIG.replace("app: hello", "app: Hello"))
    elif breakage == "secret-value-in-message":
        env = TOKEN  # a user pasting the wrong thing: the message quotes it, the scrubber must catch it
    else:
        extra = ("--set", f"X={TOKEN}${{UNDEFINED}}")
    result = project.render(*SECRET_ARGS, *extra, env=env, environ=SECRET_ENVIRON)
    assert result.code == 2
    assert result.err.startswith("error: ")
    assert_no_secret(result.out, result.err)
    if breakage == "secret-name-as-variable":
        assert "'API_TOKEN' is a secret" in result.err
    if breakage == "secret-value-in-message":
        assert "unknown environment '***'" in result.err


def test_secrets_not_printed_in_github_actions_mode(project: Project) -> None:
    project.standard()
    environ = {**SECRET_ENVIRON, "GITHUB_ACTIONS": "true"}
    result: Result = project.render(*SECRET_ARGS, environ=environ)
    assert result.code == 0, result.err
    lines = result.err.splitlines()   # workflow commands go to stderr with the log
    masks = [line for line in lines if line.startswith("::add-mask::")]
    assert masks and lines[: len(masks)] == masks  # masks come first
    assert f"::add-mask::{TOKEN}" in masks and f"::add-mask::{b64(TOKEN)}" in masks  # and the base64 form
    for line in PEM.splitlines():
        assert f"::add-mask::{line}" in masks
    assert "::add-mask::" not in result.out        # stdout is the YAML alone
    assert_no_secret(result.out, "\n".join(lines[len(masks):]))


# -- one option table for the command line and the action ----------------------------------------
def test_every_deploy_option_is_both_a_flag_and_an_input() -> None:
    from envship.cli import build_parser
    from envship.commands.options import OPTIONS

    inputs = yaml.safe_load((Path(__file__).resolve().parents[1] / "action.yml").read_text())["inputs"]
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for option in OPTIONS:
        assert option.input in inputs, f"action.yml lacks the input {option.input}"
        for command in option.commands:
            flags = {f for a in subcommands[command]._actions for f in a.option_strings}
            assert f"--{option.name}" in flags, f"envship {command} lacks --{option.name}"
    deploy_flags = {f for a in subcommands["deploy"]._actions for f in a.option_strings}
    table = {f"--{o.name}" for o in OPTIONS if "deploy" in o.commands or "plan" not in o.commands}
    target = {"--config", "--env", "--image", "--pr", "--set", "--secret", "--dry-run", "-h", "--help", "--output",
              "-q", "--quiet", "-v", "--verbose"}
    assert deploy_flags - target == table   # nothing on the command line that the action lacks


# the command line's name -> the action's input, where they differ
RENAMED = {"--env": "environment", "--set": "env", "--secret": "secrets", "--to": "environment", "--tag": "tags",
           "--build-arg": "build-args", "--platform": "platforms"}
# what only the command line has, and why the action does without it
CLI_ONLY = {
    "--help": "", "--quiet": "the action's log is the place for everything; there is nothing to silence",
    "--verbose": "in the action the runner's debug logging (RUNNER_DEBUG=1) turns the details on",
    "--output": "plan/deploy/status/resolve: the action's step outputs carry the values (its `output` input is "
                "render's directory, which it does take)",
    "--show-secrets": "secret values must never reach a CI log",
    "--event": "the action reads the event the runner gives it (GITHUB_EVENT_PATH)",
}


def test_every_command_line_option_is_an_action_input_or_has_a_reason() -> None:
    """A workflow can do whatever the command line can: each option of each command is an input of
    action.yml (same name, or RENAMED), or is in CLI_ONLY with the reason the action does without it."""
    from envship.cli import build_parser

    inputs = yaml.safe_load((Path(__file__).resolve().parents[1] / "action.yml").read_text())["inputs"]
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    missing = []
    for command, sub in subcommands.items():
        if command == "action":
            continue
        for action in sub._actions:
            longs = [f for f in action.option_strings if f.startswith("--")]
            if not longs:
                continue
            flag = longs[0]
            if flag in CLI_ONLY and not (flag == "--output" and command == "render"):
                continue
            name = RENAMED.get(flag, flag.removeprefix("--").removeprefix("no-"))
            if name not in inputs:
                missing.append(f"envship {command} {flag}")
    assert not missing, f"options without an action input: {missing}"


@pytest.mark.parametrize("args, message", [
    (["--crashloop-restarts", "abc"], "--crashloop-restarts must be a whole number from 1 to 1000, not 'abc'"),
    (["--crashloop-restarts", "0"], "--crashloop-restarts must be a whole number from 1 to 1000, not '0'"),
    (["--timeout", "99999999999d"], "--timeout must be a duration such as 10m, 90s or 1h30m, of at most 24h, "
                                    "not '99999999999d'"),
    (["--lock-timeout", "25h"], "--lock-timeout must be a duration such as 10m, 90s or 1h30m, of at most 24h"),
])
def test_deploy_numbers_are_range_checked(project: Project, args: list[str], message: str) -> None:
    project.standard()
    result = run(["deploy", "--env", "staging", "--image", IMAGE, *args])
    assert result.code == 2 and "Traceback" not in result.err
    _, hint = result.problem(message)
    assert hint.startswith("hint: set --")


def test_a_huge_source_date_epoch_is_refused(project: Project) -> None:
    project.standard()
    result = project.render(environ={"SOURCE_DATE_EPOCH": "99999999999999"})
    assert result.code == 2
    result.problem("SOURCE_DATE_EPOCH 99999999999999 is not a time between 1970 and 9999")
