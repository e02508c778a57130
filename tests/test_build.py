"""`envship build`: buildah end to end against a real registry, the docker builder through a fake `docker` on
PATH (its command line, a recorded buildx metadata file, and the post-push verification), the release
record against its JSON Schema, tags and labels, and the action's outputs."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import EPOCH, Project, Result, parse_github_output, run
from registry_fixture import Buildah, Registry, require, write_context

from envship.core.builders import (
    BuildSpec,
    buildah_build_argv,
    buildah_push_argv,
    docker_build_argv,
    parse_docker_metadata,
)
from envship.core.release import ReleaseRecord, image_tags, oci_labels, sanitize_tag, source_url, tags_for
from envship.errors import EnvshipError

pytest_plugins = ["registry_fixture"]  # the registry and buildah fixtures

TESTS = Path(__file__).resolve().parent
SHA = "0123456789abcdef0123456789abcdef01234567"
GITHUB = {"GITHUB_SHA": SHA, "GITHUB_REF": "refs/heads/feature/Login", "GITHUB_SERVER_URL": "https://github.com",
          "GITHUB_REPOSITORY": "acme/hello", "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "1"}
CREATED = "2023-11-14T22:13:20Z"  # SOURCE_DATE_EPOCH=1700000000


def schema() -> dict[str, Any]:
    text = resources.files("envship").joinpath("schemas/release.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


# ------------------------------------------------------------------------------------------------
# pure pieces: tags, labels, the record, command lines, buildx's metadata file
# ------------------------------------------------------------------------------------------------

def test_tags() -> None:
    assert tags_for(SHA, "refs/heads/main") == ["sha-0123456", "main"]
    assert tags_for(SHA, "refs/heads/feature/Login_v2") == ["sha-0123456", "feature-login_v2"]
    assert tags_for(SHA, "refs/tags/v1.2.0") == ["sha-0123456", "v1.2.0"]
    assert tags_for(SHA, "refs/pull/42/merge") == ["sha-0123456", "pr-42"]
    assert tags_for("", "") == []
    assert sanitize_tag("--.weird//Branch..") == "weird-branch"
    assert len(sanitize_tag("x" * 300)) == 128
    assert image_tags(SHA, "refs/heads/main", ["v1", "main"]) == ["sha-0123456", "main", "v1"]
    with pytest.raises(EnvshipError) as bad:
        image_tags(SHA, "", ["-nope"])
    assert bad.value.exit_code == 2 and "--tag '-nope' is not a valid image tag" in str(bad.value)


def test_labels_and_source() -> None:
    assert oci_labels(SHA, "https://github.com/acme/hello", CREATED) == {
        "org.opencontainers.image.revision": SHA, "org.opencontainers.image.source": "https://github.com/acme/hello",
        "org.opencontainers.image.created": CREATED}
    assert oci_labels("", "", CREATED) == {"org.opencontainers.image.created": CREATED}
    assert source_url("https://ghes.example.com/", "acme/hello") == "https://ghes.example.com/acme/hello"


def test_release_record_matches_its_schema() -> None:
    record = ReleaseRecord(repository="ghcr.io/acme/hello", digest="sha256:" + "ab" * 32, tags=("sha-0123456", "main"),
                           git_sha=SHA, ref="refs/heads/main", source="https://github.com/acme/hello",
                           run_url="https://github.com/acme/hello/actions/runs/42/attempts/1", built_at=CREATED,
                           builder="docker")
    doc = json.loads(record.to_json())
    jsonschema.validate(doc, schema())
    assert list(doc) == ["schema_version", "repository", "image", "digest", "tags", "git_sha", "ref", "source",
                         "run_url", "built_at", "builder"]
    assert doc["image"] == "ghcr.io/acme/hello@sha256:" + "ab" * 32
    assert json.loads(record.to_json(indent=None)) == doc and "\n" not in record.to_json(indent=None)
    # outside Actions the provenance fields are empty, still valid
    jsonschema.validate(json.loads(ReleaseRecord("localhost:5000/app", "sha256:" + "0" * 64, built_at=CREATED,
                                                 builder="buildah").to_json()), schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**doc, "digest": "sha256:short"}, schema())


SPEC = BuildSpec(repository="ghcr.io/acme/hello", tags=("sha-0123456", "main"), context=".", file="Dockerfile",
                 labels={"org.opencontainers.image.revision": SHA, "org.opencontainers.image.created": CREATED},
                 build_args={"VERSION": "1.2"}, platforms=("linux/amd64", "linux/arm64"),
                 cache_from=("type=gha",), cache_to=("type=gha,mode=max",))


def test_docker_command_line() -> None:
    assert docker_build_argv(SPEC, "/tmp/m/metadata.json") == [
        "docker", "buildx", "build", "--push", "--metadata-file", "/tmp/m/metadata.json",
        "--label", f"org.opencontainers.image.revision={SHA}", "--label", f"org.opencontainers.image.created={CREATED}",
        "--tag", "ghcr.io/acme/hello:sha-0123456", "--tag", "ghcr.io/acme/hello:main",
        "--platform", "linux/amd64,linux/arm64", "--build-arg", "VERSION=1.2",
        "--cache-from", "type=gha", "--cache-to", "type=gha,mode=max", "--file", "Dockerfile", "."]


def test_buildah_command_lines() -> None:
    assert buildah_build_argv(SPEC, "/tmp/iid") == [
        "buildah", "build", "--isolation", "chroot", "--iidfile", "/tmp/iid",
        "--label", f"org.opencontainers.image.revision={SHA}", "--label", f"org.opencontainers.image.created={CREATED}",
        "--build-arg", "VERSION=1.2", "--tag", "ghcr.io/acme/hello:sha-0123456", "--tag", "ghcr.io/acme/hello:main",
        "--file", "Dockerfile", "."]
    assert buildah_build_argv(SPEC, "/tmp/iid", isolation=None)[:4] == ["buildah", "build", "--iidfile", "/tmp/iid"]
    assert buildah_push_argv("sha256:abc", "localhost:5000/app:1", "/tmp/d", tls_verify=False) == [
        "buildah", "push", "--digestfile", "/tmp/d", "--tls-verify=false", "sha256:abc", "docker://localhost:5000/app:1"]
    assert "--tls-verify=false" not in buildah_push_argv("sha256:abc", "ghcr.io/a/b:1", "/tmp/d", tls_verify=True)


def test_recorded_buildx_metadata() -> None:
    parsed = parse_docker_metadata((TESTS / "data" / "buildx-metadata.json").read_text(), "metadata.json")
    assert parsed.digest == "sha256:9b2a7c1d5e3f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b"
    assert parsed.names == ("ghcr.io/acme/hello:sha-0123456", "ghcr.io/acme/hello:main")


@pytest.mark.parametrize(("text", "message"), [
    ("{}", "metadata.json does not name the pushed image: it has no 'containerimage.digest'"),
    ('{"containerimage.digest": "sha256:12"}', "'containerimage.digest' is 'sha256:12'"),
    ("not json", "metadata.json is not JSON"),
    ("[]", "metadata.json is not a JSON object"),
])
def test_bad_buildx_metadata(text: str, message: str) -> None:
    with pytest.raises(EnvshipError) as bad:
        parse_docker_metadata(text, "metadata.json")
    assert message in str(bad.value) and bad.value.exit_code == 1


# ------------------------------------------------------------------------------------------------
# buildah, end to end against the local registry
# ------------------------------------------------------------------------------------------------

def build_project(project: Project, registry: Registry, repo: str = "acme/built") -> Project:
    project.config(f"""\
        app: built
        image: {registry.host}/{repo}
        manifests: deploy
        environments:
          staging:
            context: kind-dev
        """)
    project.manifest("app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    write_context(project.root)
    return project


def actions_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    output, summary = tmp_path / "github_output", tmp_path / "summary.md"
    output.touch()
    summary.touch()
    return {"SOURCE_DATE_EPOCH": EPOCH, "DOCKER_CONFIG": str(tmp_path / "docker"), "HOME": str(tmp_path),
            "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
            **GITHUB, **extra}


def skopeo_inspect(reference: str) -> dict[str, Any]:
    proc = subprocess.run([require("skopeo", "skopeo"), "inspect", "--tls-verify=false", f"docker://{reference}"],
                          capture_output=True, text=True, timeout=60, check=True)
    return dict(json.loads(proc.stdout))


def test_buildah_build_end_to_end(registry: Registry, buildah: Buildah, project: Project, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    build_project(project, registry)
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(buildah.storage_conf))
    env = actions_env(tmp_path)
    result = run(["build", "--config", "envship.yaml", "--builder", "buildah", "--tag", "v1.0.0"], env)
    assert result.code == 0, result.err
    repo = f"{registry.host}/acme/built"
    image = result.out.splitlines()[-1]
    digest = image.split("@", 1)[1]
    assert image == f"{repo}@{digest}"
    # the digest printed is the digest the registry serves, for every tag
    for tag in ("sha-0123456", "feature-login", "v1.0.0"):
        inspected = skopeo_inspect(f"{repo}:{tag}")
        assert inspected["Digest"] == digest, tag
    labels = inspected["Labels"]
    assert labels["org.opencontainers.image.revision"] == SHA
    assert labels["org.opencontainers.image.source"] == "https://github.com/acme/hello"
    assert labels["org.opencontainers.image.created"] == CREATED
    # the release record: a file and an output, valid against the schema
    record = json.loads((project.root / "release.json").read_text())
    jsonschema.validate(record, schema())
    assert record == {
        "schema_version": 1, "repository": repo, "image": image, "digest": digest,
        "tags": ["sha-0123456", "feature-login", "v1.0.0"], "git_sha": SHA, "ref": "refs/heads/feature/Login",
        "source": "https://github.com/acme/hello", "run_url": "https://github.com/acme/hello/actions/runs/42/attempts/1",
        "built_at": CREATED, "builder": "buildah"}
    outputs = parse_github_output(Path(env["GITHUB_OUTPUT"]).read_text())
    assert outputs["image"] == image and outputs["digest"] == digest
    assert json.loads(outputs["release"]) == record
    assert "::group::buildah build" in result.err
    assert f"verified: {registry.host} serves {digest} for sha-0123456, feature-login, v1.0.0" in result.err
    assert f"| image | `{image}` |" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()


def test_the_action_builds(registry: Registry, buildah: Buildah, project: Project, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    build_project(project, registry, "acme/action-built")
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(buildah.storage_conf))
    env = actions_env(tmp_path, INPUT_COMMAND="build", INPUT_BUILDER="buildah", INPUT_TAGS="v2, stable",
                      **{"INPUT_RELEASE-FILE": "out/release.json", "INPUT_BUILD-ARGS": "UNUSED=1"})
    result = run(["action"], env)
    assert result.code == 0, result.err
    outputs = parse_github_output(Path(env["GITHUB_OUTPUT"]).read_text())
    record = json.loads((project.root / "out" / "release.json").read_text())
    assert json.loads(outputs["release"]) == record and record["tags"] == ["sha-0123456", "feature-login", "v2",
                                                                           "stable"]
    assert skopeo_inspect(f"{registry.host}/acme/action-built:stable")["Digest"] == outputs["digest"]


def test_buildah_outside_actions_uses_the_local_checkout(registry: Registry, buildah: Buildah, project: Project,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_project(project, registry, "acme/local")
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(buildah.storage_conf))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q", "-b", "trunk"], ["add", "."], ["commit", "-q", "-m", "x"]):
        subprocess.run([*git, *args], cwd=project.root, check=True, capture_output=True, timeout=30)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project.root, check=True, capture_output=True, text=True,
                         timeout=30).stdout.strip()
    result = run(["build", "--builder", "buildah", "--release-file", "r.json"],
                 {"SOURCE_DATE_EPOCH": EPOCH, "DOCKER_CONFIG": str(tmp_path / "docker")})
    assert result.code == 0, result.err
    record = json.loads((project.root / "r.json").read_text())
    assert (record["git_sha"], record["ref"], record["tags"]) == (sha, "refs/heads/trunk", [f"sha-{sha[:7]}", "trunk"])
    assert (record["source"], record["run_url"]) == ("", "")


# ------------------------------------------------------------------------------------------------
# docker, through a fake docker CLI that records its command line
# ------------------------------------------------------------------------------------------------

FAKE_DOCKER = """\
#!{python}
# A stand-in for the docker CLI: records argv, writes buildx's metadata file, pushes (or not) over HTTP.
import json, os, sys
sys.path.insert(0, {tests!r})
argv = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(argv) + "\\n")
if os.environ.get("FAKE_DOCKER_CONFIG_LOG"):  # the docker config this docker would log in with
    config = os.path.join(os.environ.get("DOCKER_CONFIG", ""), "config.json")
    with open(os.environ["FAKE_DOCKER_CONFIG_LOG"], "w") as seen:
        json.dump({{"dir": os.environ.get("DOCKER_CONFIG", ""),
                   "config": open(config).read() if os.path.exists(config) else None}}, seen)
def values(flag):
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]
tags = values("--tag")
print("#1 [internal] load build definition from Dockerfile")
if os.environ["FAKE_DOCKER_MODE"] == "split":  # the second tag gets another image, as if a push raced
    from registry_fixture import Registry
    host, _, first = tags[0].partition("/")
    repo, _, tag = first.rpartition(":")
    digest = Registry(host).upload_image(repo, tag)
    Registry(host).upload_image(repo, tags[1].rpartition(":")[2], content=b"someone else's build\\n")
elif os.environ["FAKE_DOCKER_MODE"] == "push":
    import requests
    from registry_fixture import Registry, OCI_MANIFEST
    host, _, first = tags[0].partition("/")
    repo, _, tag = first.rpartition(":")
    reg = Registry(host)
    digest = reg.upload_image(repo, tag)
    body = requests.get(f"{{reg.url}}/v2/{{repo}}/manifests/{{digest}}", headers={{"Accept": OCI_MANIFEST}}).content
    for other in tags[1:]:
        reg.put_manifest(repo, other.rpartition(":")[2], body, OCI_MANIFEST)
else:
    digest = "sha256:" + "5" * 64  # reported, never pushed
print("#9 pushing manifest for " + tags[0] + "@" + digest)
metadata = {{"buildx.build.ref": "default/default/q8k2m1x7v3n9b4c6z0a5s2d8f",
            "containerimage.descriptor": {{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                          "digest": digest, "size": 501}},
            "containerimage.digest": digest, "image.name": ",".join(tags)}}
with open(values("--metadata-file")[0], "w") as f:
    json.dump(metadata, f)
"""


def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable, tests=str(TESTS)))
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "docker-argv.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    monkeypatch.setenv("FAKE_DOCKER_MODE", mode)
    return log


def recorded(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_docker_builder_that_did_not_push_fails_verification(registry: Registry, project: Project, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    build_project(project, registry, "acme/docker-nopush")
    log = fake_docker(tmp_path, monkeypatch, "nopush")
    env = actions_env(tmp_path)  # in Actions the builder defaults to docker
    result = run(["build", "--platform", "linux/amd64", "--cache-from", "type=gha", "--cache-to", "type=gha,mode=max",
                  "--build-arg", "VERSION=1.2"], env)
    repo = f"{registry.host}/acme/docker-nopush"
    assert result.code == 1, result.err
    _, hint = result.problem("the registry does not serve the digest the builder reported: "
                                f"{repo}@sha256:{'5' * 64} is not in {registry.host}")
    assert "the push did not happen or went elsewhere" in hint
    [argv] = recorded(log)
    metadata_file = argv[argv.index("--metadata-file") + 1]
    assert argv == [
        "buildx", "build", "--push", "--metadata-file", metadata_file,
        "--label", f"org.opencontainers.image.revision={SHA}",
        "--label", "org.opencontainers.image.source=https://github.com/acme/hello",
        "--label", f"org.opencontainers.image.created={CREATED}",
        "--tag", f"{repo}:sha-0123456", "--tag", f"{repo}:feature-login",
        "--platform", "linux/amd64", "--build-arg", "VERSION=1.2",
        "--cache-from", "type=gha", "--cache-to", "type=gha,mode=max", "--file", "Containerfile", "."]
    assert "#9 pushing manifest for" in result.err  # the builder's output is streamed
    assert not (project.root / "release.json").exists()
    assert "digest" not in parse_github_output(Path(env["GITHUB_OUTPUT"]).read_text())


def test_docker_builder_that_pushed(registry: Registry, project: Project, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    build_project(project, registry, "acme/docker-pushed")
    log = fake_docker(tmp_path, monkeypatch, "push")
    result = run(["build", "--builder", "docker", "--tag", "latest-green"], actions_env(tmp_path))
    assert result.code == 0, result.err
    repo = f"{registry.host}/acme/docker-pushed"
    digest = result.out.splitlines()[-1].split("@", 1)[1]
    for tag in ("sha-0123456", "feature-login", "latest-green"):
        assert skopeo_inspect(f"{repo}:{tag}")["Digest"] == digest
    record = json.loads((project.root / "release.json").read_text())
    assert record["builder"] == "docker" and record["digest"] == digest
    assert len(recorded(log)) == 1


def test_a_tag_that_serves_another_digest_fails_verification(registry: Registry, project: Project, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    build_project(project, registry, "acme/raced")
    fake_docker(tmp_path, monkeypatch, "split")
    result = run(["build", "--builder", "docker"], actions_env(tmp_path))
    assert result.code == 1, result.err
    repo = f"{registry.host}/acme/raced"
    reported = skopeo_inspect(f"{repo}:sha-0123456")["Digest"]
    served = skopeo_inspect(f"{repo}:feature-login")["Digest"]
    _, hint = result.problem(f"the registry serves {served} for {repo}:feature-login, but the builder reported "
                             f"{reported}")
    assert "re-run the build" in hint


# ------------------------------------------------------------------------------------------------
# bad input and missing tools
# ------------------------------------------------------------------------------------------------

def test_missing_builder_binary(registry: Registry, project: Project, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    build_project(project, registry)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    cases = [("buildah", True, "apt-get install buildah"), ("docker", False, "docker-buildx-plugin"),
             ("docker", True, "run 'envship build' in a run: step on the runner")]  # the action's image
    for builder, in_actions, package in cases:
        env = actions_env(tmp_path) if in_actions else {"SOURCE_DATE_EPOCH": EPOCH, "GITHUB_SHA": SHA}
        result = run(["build", "--builder", builder], env)
        assert result.code == 1, result.err
        _, hint = result.problem(f"{builder} is not installed (not found on PATH)")
        assert package in hint


@pytest.mark.parametrize(("args", "message", "hint"), [
    (["--builder", "buildah", "--platform", "linux/arm64"], "--platform works with --builder docker only",
     "use --builder docker"),
    (["--builder", "buildah", "--cache-to", "type=gha"], "--cache-to works with --builder docker only", "drop"),
    (["--context", "nowhere"], "--context nowhere is not a directory", "directory the image is built from"),
    (["--file", "Nope.Dockerfile"], "--file Nope.Dockerfile does not exist", "pass the path"),
    (["--tag", "bad tag"], "--tag 'bad tag' is not a valid image tag", "letters, digits"),
    (["--build-arg", "NOVALUE"], "--build-arg NOVALUE: expected KEY=VALUE", "--build-arg NAME=value"),
    (["--repository", "ghcr.io/acme/hello:1"], "--repository is ghcr.io/acme/hello:1; the build needs the "
     "repository alone", "write ghcr.io/acme/hello"),
    (["--builder", "podman"], "argument --builder: invalid choice: 'podman'", "see 'envship build --help'"),
])
def test_bad_usage(registry: Registry, project: Project, tmp_path: Path, args: list[str], message: str,
                   hint: str) -> None:
    build_project(project, registry)
    result = run(["build", *args], actions_env(tmp_path))
    check_usage(result, message, hint)


def test_no_dockerfile_and_no_config(project: Project, tmp_path: Path) -> None:
    result = run(["build", "--builder", "buildah"], {"SOURCE_DATE_EPOCH": EPOCH})
    check_usage(result, "config file envship.yaml not found, and no --repository given", "--repository REPO")
    result = run(["build", "--builder", "buildah", "--repository", "localhost:5000/app"], {"SOURCE_DATE_EPOCH": EPOCH})
    check_usage(result, "no Dockerfile or Containerfile in .", "pass --file PATH")


def test_nothing_to_tag(registry: Registry, project: Project, tmp_path: Path) -> None:
    build_project(project, registry)  # not a git checkout, no GITHUB_SHA, no --tag
    result = run(["build", "--builder", "buildah"], {"SOURCE_DATE_EPOCH": EPOCH})
    check_usage(result, "no tag to push the image to", "pass --tag NAME")


def check_usage(result: Result, message: str, hint: str) -> None:
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    _, hint_line = result.problem(message)
    assert hint in hint_line, hint_line


def test_inside_the_action_image_docker_gets_the_registry_login(project: Project, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """In the action's container the runner's docker logins are invisible: envship hands docker the GHCR
    login from the workflow token, in a private config that is gone after the build."""
    project.config("app: hello\nimage: ghcr.io/acme/hello\nmanifests: deploy\n"
                   "environments:\n  staging:\n    context: kind-dev\n")
    project.manifest("app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    write_context(project.root)
    fake_docker(tmp_path, monkeypatch, "nopush")
    seen = tmp_path / "seen-config.json"
    monkeypatch.setenv("FAKE_DOCKER_CONFIG_LOG", str(seen))
    token = "ghs_workflowtoken0123456789abcdefghij"
    env = actions_env(tmp_path, ENVSHIP_ACTION_IMAGE="1", GITHUB_TOKEN=token, GITHUB_ACTOR="octocat",
                      ENVSHIP_REGISTRY_RETRIES="0")
    result = run(["build", "--builder", "docker"], env)
    assert result.code == 1   # ghcr.io is unreachable here: the push cannot be verified
    docker_saw = json.loads(seen.read_text())
    auth = base64.b64encode(f"octocat:{token}".encode()).decode()
    assert json.loads(docker_saw["config"]) == {"auths": {"ghcr.io": {"auth": auth}}}
    assert docker_saw["dir"] != env["DOCKER_CONFIG"] and not Path(docker_saw["dir"]).exists()  # private, removed
    assert "pushing to ghcr.io with credentials from GITHUB_TOKEN (user octocat)" in result.err
    assert token not in result.out + result.err.replace(f"::add-mask::{token}", "")   # masked, never shown


def test_outside_the_action_image_docker_keeps_its_own_logins(project: Project, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               registry: Registry) -> None:
    build_project(project, registry, "acme/own-logins")
    fake_docker(tmp_path, monkeypatch, "push")
    seen = tmp_path / "seen-config.json"
    monkeypatch.setenv("FAKE_DOCKER_CONFIG_LOG", str(seen))
    result = run(["build", "--builder", "docker"], actions_env(tmp_path, GITHUB_TOKEN="ghs_unused"))
    assert result.code == 0, result.err
    assert json.loads(seen.read_text())["dir"] == os.environ.get("DOCKER_CONFIG", "")  # the runner's own, untouched
