"""The GitHub workflows: the repository's own (.github/workflows: test.yml, release.yml) and the examples users
copy (workflows-examples/hello/.github), plus scripts/pin-action-image, which the release runs.

- every workflow against SchemaStore's schema (check-jsonschema's built-in copy), the Dependabot configs too;
- zizmor --offline: nothing at low severity or above in the examples (with the examples' own zizmor.yml, which
  lets only the acme/envship placeholder follow a tag), nothing at medium or above in the root workflows and,
  at low, only `self-repository` on test.yml's `uses: ./` (the issue asks for exactly that form);
- every third-party action pinned by a 40-hex commit with its version in a comment, each pin one of the
  verified pins below, the same everywhere;
- every job with timeout-minutes, every checkout without persisted credentials;
- release.yml builds the image test.yml runs: the same Dockerfile and context, both platforms, every ARG;
  its version check runs for real here;
- test.yml: .ci/run, and `uses: ./` with render, plan, deploy twice (the second must change nothing), a preview
  deploy and its teardown, on a config that is the bundled example's but for the environments' targets;
- scripts/pin-action-image run as the release runs it, on copies of action.yml.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
HELLO = ROOT / "workflows-examples" / "hello"
EXAMPLE_WORKFLOWS = HELLO / ".github" / "workflows"
PIN_SCRIPT = ROOT / "scripts" / "pin-action-image"
DIGEST = "sha256:" + "0123456789abcdef" * 4

# The pins, each checked against public repositories before it was written here (no network in the tests):
# a pin is accepted when several independent repositories use that commit with the same version comment.
# Dependabot (.github/dependabot.yml) proposes the updates; update this table with them.
VERIFIED_PINS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "docker/setup-qemu-action": ("99012661954931238ded8c8b007157a8430204e1", "v4.4.0"),
    "docker/setup-buildx-action": ("f87e5991a6d7451dcb8d9637bfbc97413f497069", "v4.4.1"),
    "docker/login-action": ("dbcb813823bdd20940b903addbd779551569679f", "v4.6.0"),
    "docker/build-push-action": ("c3c9e263c25d99ce0380d002d59b67737d91b0dc", "v7.4.0"),
    "google-github-actions/auth": ("7c6bc770dae815cd3e89ee6cdf493a5fab2cc093", "v3.0.0"),
    "helm/kind-action": ("ef37e7f390d99f746eb8b610417061a60e82a6cc", "v1.14.0"),
}
# The oldest major of each action that runs on node24 (GitHub retires node20 on its runners).
NODE24_MAJORS = {"actions/checkout": 5, "actions/setup-python": 6, "docker/setup-qemu-action": 4,
                 "docker/setup-buildx-action": 4, "docker/login-action": 4, "docker/build-push-action": 7,
                 "google-github-actions/auth": 3, "helm/kind-action": 1}
PLACEHOLDER = "acme/envship"   # the product itself in the examples: replaced by its publisher's repository


def run(cmd: list[str], timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


def explain(proc: subprocess.CompletedProcess[str]) -> str:
    return (f"$ {shlex.join(map(str, proc.args))}\nexit {proc.returncode}\nstdout:\n{proc.stdout}\n"
            f"stderr:\n{proc.stderr}")


def tool(name: str, package: str) -> str:
    """A console tool next to this interpreter or on PATH; missing fails (.ci/run installs the test extra)."""
    for candidate in (Path(sys.executable).parent / name, shutil.which(name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(f"{name} is not installed: pip install {package} (the project's `test` extra)")


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), path
    return doc


def root_workflows() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def example_workflows() -> list[Path]:
    return sorted(EXAMPLE_WORKFLOWS.glob("*.yml"))


def all_workflows() -> list[Path]:
    return root_workflows() + example_workflows()


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def step(job: dict[str, Any], **match: str) -> dict[str, Any]:
    found = [s for s in job["steps"] if all(str(s.get(k, "")).startswith(v) for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def check_jsonschema(schema: str, files: list[Path]) -> subprocess.CompletedProcess[str]:
    tool("check-jsonschema", "check-jsonschema")
    return run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)])


def zizmor(*args: str) -> list[dict[str, Any]]:
    proc = run([tool("zizmor", "zizmor"), "--offline", "--format", "json", *args], timeout=120, cwd=ROOT)
    assert proc.returncode in (0, 11, 12, 13, 14), explain(proc)   # 1x: findings of a given severity
    findings: list[dict[str, Any]] = json.loads(proc.stdout)
    return [f for f in findings if not f.get("ignored")]


def described(findings: list[dict[str, Any]]) -> list[tuple[str, str, str, int]]:
    out = []
    for f in findings:
        where = f["locations"][0]
        local = where["symbolic"]["key"].get("Local", {})
        path = local.get("given_path") or local.get("verbatim_path") or str(where["symbolic"]["key"])
        row = where["concrete"]["location"]["start_point"]["row"] + 1
        out.append((f["ident"], f["determinations"]["severity"], path, row))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Schemas and zizmor


def test_the_workflows_are_there() -> None:
    assert [p.name for p in root_workflows()] == ["release.yml", "test.yml"]
    assert [p.name for p in example_workflows()] == ["build-deploy.yml", "preview-gc.yml", "preview.yml",
                                                      "promote.yml"]


def test_every_workflow_is_a_valid_workflow() -> None:
    proc = check_jsonschema("vendor.github-workflows", all_workflows())
    assert proc.returncode == 0, explain(proc)


def test_the_dependabot_configs_are_valid_and_cover_actions_and_the_dockerfile() -> None:
    configs = [ROOT / ".github" / "dependabot.yml", HELLO / ".github" / "dependabot.yml"]
    proc = check_jsonschema("vendor.dependabot", configs)
    assert proc.returncode == 0, explain(proc)
    root, example = (load(c) for c in configs)
    assert {u["package-ecosystem"] for u in root["updates"]} == {"github-actions", "docker"}
    assert {u["package-ecosystem"] for u in example["updates"]} == {"github-actions"}
    for update in root["updates"] + example["updates"]:
        assert update["directory"] == "/"   # the workflows and the Dockerfile are at the repository root
        assert update["schedule"]["interval"] == "weekly"
        assert update["groups"], "one grouped pull request, not one per action"


def test_zizmor_finds_nothing_in_the_examples() -> None:
    """Nothing at all at low severity or above, with the examples' zizmor.yml (a user's copy finds it at their
    repository's .github/zizmor.yml; here it is passed, being below this repository's root)."""
    config = HELLO / ".github" / "zizmor.yml"
    findings = zizmor("--collect=all", "--config", str(config), str(HELLO))
    assert [f for f in described(findings) if f[1] != "Informational"] == []


def test_the_examples_zizmor_config_lets_only_the_placeholder_follow_a_tag(tmp_path: Path) -> None:
    policies = load(HELLO / ".github" / "zizmor.yml")["rules"]["unpinned-uses"]["config"]["policies"]
    assert policies == {"acme/*": "ref-pin", "*": "hash-pin"}
    # An action on a tag is still a high finding with this config: only acme/* is exempt.
    text = (EXAMPLE_WORKFLOWS / "promote.yml").read_text()
    pin = "actions/checkout@{} # {}".format(*VERIFIED_PINS["actions/checkout"])
    assert pin in text
    (tmp_path / "promote.yml").write_text(text.replace(pin, "actions/checkout@v7"))
    findings = zizmor("--config", str(HELLO / ".github" / "zizmor.yml"), str(tmp_path / "promote.yml"))
    assert [(f[0], f[1]) for f in described(findings)] == [("unpinned-uses", "High")]
    # And without it, the placeholder is flagged: the config is what exempts it.
    (tmp_path / "original.yml").write_text(text)
    findings = zizmor("--no-config", str(tmp_path / "original.yml"))
    assert {(f[0], f[1]) for f in described(findings)} == {("unpinned-uses", "High")}


def test_zizmor_finds_nothing_of_medium_severity_in_the_repository_workflows() -> None:
    """Nothing at medium or above. At low, only `self-repository` on test.yml's `uses: ./`: zizmor suggests
    GitHub's newer `$/` form for it, while the self-test is to use the action exactly as the issue and the
    README write it (`uses: ./`)."""
    findings = described(zizmor(str(WORKFLOWS), str(ROOT / ".github" / "dependabot.yml")))
    assert [f for f in findings if f[1] in ("Medium", "High")] == []
    low = [f for f in findings if f[1] == "Low"]
    assert {(ident, Path(path).name) for ident, _, path, _ in low} <= {("self-repository", "test.yml")}, low
    assert len(low) == sum(1 for s in steps(load(WORKFLOWS / "test.yml")) if s.get("uses") == "./")


# ---------------------------------------------------------------------------------------------------------------
# Pins, timeouts, credentials


USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>\s+#.*)?$")


def uses_lines(path: Path) -> list[tuple[str, str]]:
    return [(m["ref"], (m["comment"] or "").strip()) for line in path.read_text().splitlines()
            if (m := USES.match(line))]


def test_every_third_party_action_is_pinned_by_commit_with_its_version() -> None:
    seen: dict[str, set[tuple[str, str]]] = {}
    for path in all_workflows():
        for ref, comment in uses_lines(path):
            if ref.startswith("./") or ref.split("@")[0] == PLACEHOLDER:
                continue
            m = re.fullmatch(r"(?P<action>[\w.-]+/[\w.-]+)(?:/[\w./-]+)?@(?P<sha>[0-9a-f]{40})", ref)
            assert m, f"{path.name}: {ref} is not pinned by a full commit hash"
            v = re.fullmatch(r"# (v\d+\.\d+\.\d+)", comment)
            assert v, f"{path.name}: {ref} has no `# vX.Y.Z` comment (Dependabot updates both together)"
            seen.setdefault(m["action"], set()).add((m["sha"], v[1]))
    for action, pins in seen.items():
        assert pins == {VERIFIED_PINS[action]}, f"{action}: {pins}, verified: {VERIFIED_PINS.get(action)}"
        major = int(VERIFIED_PINS[action][1][1:].split(".")[0])
        assert major >= NODE24_MAJORS[action], f"{action} {VERIFIED_PINS[action][1]} is not a node24 major"
    assert set(seen) == set(VERIFIED_PINS)   # no stale entry in the table


def test_the_placeholder_is_the_only_action_on_a_tag_and_only_in_the_examples() -> None:
    for path in root_workflows():
        assert all(ref.split("@")[0] != PLACEHOLDER for ref, _ in uses_lines(path))
    refs = {ref for path in example_workflows() for ref, _ in uses_lines(path) if ref.split("@")[0] == PLACEHOLDER}
    assert refs == {f"{PLACEHOLDER}@v1"}


def test_every_job_has_a_timeout_and_no_checkout_keeps_credentials() -> None:
    for path in all_workflows():
        doc = load(path)
        for name, job in doc["jobs"].items():
            assert isinstance(job.get("timeout-minutes"), int), f"{path.name}: job {name} has no timeout-minutes"
            for s in job.get("steps", []):
                if str(s.get("uses", "")).startswith("actions/checkout@"):
                    assert s.get("with", {}).get("persist-credentials") is False, f"{path.name}: {name}"


def test_every_workflow_starts_from_read_only_permissions() -> None:
    for path in all_workflows():
        doc = load(path)
        assert doc["permissions"] in ({}, {"contents": "read"}), path.name
        for name, job in doc["jobs"].items():
            granted = {k for k, v in job.get("permissions", {}).items() if v == "write"}
            if path.name in ("test.yml",):
                assert granted == set(), f"{path.name}: {name} needs no write permission"


# ---------------------------------------------------------------------------------------------------------------
# The examples


def test_example_workflows_use_the_action_as_documented() -> None:
    """The examples pass only inputs action.yml declares, always a command, and pin the image by the build
    job's digest."""
    action = load(ROOT / "action.yml")
    for workflow in example_workflows():
        doc = load(workflow)
        uses = [s for s in steps(doc) if str(s.get("uses", "")).split("@")[0] == PLACEHOLDER]
        assert uses, f"{workflow.name} does not use envship"
        for s in uses:
            assert set(s["with"]) <= set(action["inputs"]), f"{workflow.name}: unknown inputs"
            if s["with"]["command"] in ("promote", "gc"):   # promote reads the digest from the source's cluster
                assert "image" not in s["with"]
            else:
                assert "needs.build.outputs.image" in s["with"]["image"]
        for job in doc["jobs"].values():
            if "image" in job.get("outputs", {}):
                assert "@${{ steps.build.outputs.digest }}" in job["outputs"]["image"]


def test_example_builds_push_lowercase_names_with_the_buildkit_cache() -> None:
    for name in ("build-deploy.yml", "preview.yml"):
        job = load(EXAMPLE_WORKFLOWS / name)["jobs"]["build"]
        lower = step(job, id="name")
        assert lower["run"] == 'echo "image=ghcr.io/${GITHUB_REPOSITORY,,}" >> "$GITHUB_OUTPUT"'
        assert job["outputs"]["image"] == "${{ steps.name.outputs.image }}@${{ steps.build.outputs.digest }}"
        build = step(job, uses="docker/build-push-action@")
        assert build["with"]["tags"].startswith("${{ steps.name.outputs.image }}:")
        assert build["with"]["cache-from"] == "type=gha"
        assert build["with"]["cache-to"] == "type=gha,mode=max"
        # the gha cache needs a buildx builder (the default docker driver cannot export it)
        names = [str(s.get("uses", s.get("id", ""))).split("@")[0] for s in job["steps"]]
        assert names.index("docker/setup-buildx-action") < names.index("docker/build-push-action")
        assert "${{ github.repository }}" not in json.dumps(job)   # never the mixed-case name


def test_production_is_reached_only_through_promote_on_a_protected_environment() -> None:
    for workflow in example_workflows():
        doc = load(workflow)
        for name, job in doc["jobs"].items():
            environment = job.get("environment")
            environment = environment.get("name") if isinstance(environment, dict) else environment
            if environment == "production":
                assert workflow.name == "promote.yml", f"{workflow.name}: {name} deploys production"
                assert set(doc[True]) == {"workflow_dispatch"}   # by hand, after the environment's approval
                commands = [s["with"]["command"] for s in job["steps"]
                            if str(s.get("uses", "")).startswith(PLACEHOLDER)]
                assert commands == ["promote"]
            for s in job.get("steps", []):
                if str(s.get("uses", "")).startswith(PLACEHOLDER):
                    assert s["with"].get("environment") != "production" or workflow.name == "promote.yml"
    envship = load(HELLO / "envship.yaml")
    assert envship["environments"]["production"]["protected"] is True


def test_preview_workflow_skips_forks() -> None:
    doc = load(EXAMPLE_WORKFLOWS / "preview.yml")
    # YAML 1.1: on -> True; closed tears the preview down
    assert set(doc[True]["pull_request"]["types"]) == {"opened", "synchronize", "reopened", "closed"}
    for name, job in doc["jobs"].items():   # no job of a fork's pull request runs with the repository's secrets
        assert "github.event.pull_request.head.repo.full_name == github.repository" in job.get("if", ""), name


# ---------------------------------------------------------------------------------------------------------------
# release.yml


def dockerfile_args() -> set[str]:
    return {line.split()[1].split("=")[0] for line in (ROOT / "Dockerfile").read_text().splitlines()
            if line.startswith("ARG ")}


def test_release_builds_the_action_image_from_the_dockerfile_for_both_platforms() -> None:
    doc = load(WORKFLOWS / "release.yml")
    assert doc[True] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    job = doc["jobs"]["build"]
    build = step(job, uses="docker/build-push-action@")["with"]
    assert build["context"] == "." and build["file"] == "Dockerfile"
    assert set(build["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["push"] is True
    assert build["cache-from"] == "type=gha" and build["cache-to"] == "type=gha,mode=max"
    args = dict(line.split("=", 1) for line in build["build-args"].splitlines())
    assert set(args) == dockerfile_args() == {"VERSION", "SOURCE_URL"}
    assert args["VERSION"] == "${{ needs.check.outputs.version }}"
    assert args["SOURCE_URL"] == "${{ github.server_url }}/${{ github.repository }}"
    assert build["tags"].startswith("${{ needs.check.outputs.image }}:")
    qemu = step(job, uses="docker/setup-qemu-action@")
    assert qemu["with"]["platforms"] == "arm64"   # the arm64 half runs the builder stage's pip under emulation
    login = step(job, uses="docker/login-action@")["with"]
    assert login["registry"] == "ghcr.io" and login["password"] == "${{ secrets.GITHUB_TOKEN }}"
    assert job["outputs"]["digest"] == "${{ steps.build.outputs.digest }}"


def test_release_jobs_have_least_privilege() -> None:
    doc = load(WORKFLOWS / "release.yml")
    assert doc["permissions"] == {}
    granted = {name: job["permissions"] for name, job in doc["jobs"].items()}
    assert granted == {"check": {"contents": "read"},
                       "build": {"contents": "read", "packages": "write"},
                       "publish": {"contents": "write"}}
    for name in ("build", "publish"):   # an already pinned tag rebuilds and republishes nothing
        assert doc["jobs"][name]["if"] == "needs.check.outputs.pinned == 'false'"


def test_release_publishes_a_pinned_commit_and_moves_the_tags_with_the_token_in_the_url_only() -> None:
    job = load(WORKFLOWS / "release.yml")["jobs"]["publish"]
    commit = step(job, name="release commit")
    assert 'python3 scripts/pin-action-image "$IMAGE" "$DIGEST"' in commit["run"]
    assert commit["env"] == {"IMAGE": "${{ needs.check.outputs.image }}",
                             "DIGEST": "${{ needs.build.outputs.digest }}"}
    assert "git add action.yml\n" in commit["run"] and "git add -A" not in commit["run"]
    move = step(job, name="move the version tag")
    assert move["env"]["TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    assert 'remote="https://x-access-token:${TOKEN}@' in move["run"]
    assert 'git push --force "$remote" "${refs[@]}"' in move["run"]
    assert "git config" not in move["run"] and "extraheader" not in move["run"]   # nothing persisted
    release = step(job, name="GitHub release")
    assert "gh release create" in release["run"] and "--verify-tag" in release["run"]


def check_step_script() -> str:
    return str(step(load(WORKFLOWS / "release.yml")["jobs"]["check"], id="check")["run"])


def run_check(workdir: Path, tag: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    output = workdir / "github_output"
    output.write_text("")
    env = {**os.environ, "GITHUB_REF_NAME": tag, "GITHUB_REPOSITORY": "Acme-Corp/EnvShip",
           "GITHUB_OUTPUT": str(output)}
    proc = run(["bash", "-e", "-c", check_step_script()], cwd=workdir, env=env)
    values = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return proc, values


def test_release_check_reads_the_tag_and_finds_an_already_pinned_action(tmp_path: Path) -> None:
    """The check job's script, run here: version, major, the lowercase image, and whether the tag already
    points at a release commit (then the release does nothing)."""
    shutil.copy(ROOT / "action.yml", tmp_path / "action.yml")
    proc, out = run_check(tmp_path, "v1.12.3")
    assert proc.returncode == 0, explain(proc)
    assert out == {"version": "1.12.3", "major": "v1", "image": "ghcr.io/acme-corp/envship", "pinned": "false"}

    pin = run([sys.executable, str(PIN_SCRIPT), out["image"], DIGEST, "--action-file", str(tmp_path / "action.yml")])
    assert pin.returncode == 0, explain(pin)
    proc, out = run_check(tmp_path, "v1.12.3")
    assert proc.returncode == 0 and out["pinned"] == "true", explain(proc)
    assert "nothing to do" in proc.stdout

    proc, _ = run_check(tmp_path, "v1.2")
    assert proc.returncode == 1 and "is not vX.Y.Z" in proc.stdout


# ---------------------------------------------------------------------------------------------------------------
# test.yml


def test_ci_job_runs_the_test_suite() -> None:
    job = load(WORKFLOWS / "test.yml")["jobs"]["ci"]
    assert job["runs-on"] == "ubuntu-latest"
    assert [s["run"] for s in job["steps"] if "run" in s] == ["bash .ci/run"]
    doc = load(WORKFLOWS / "test.yml")
    assert doc[True]["push"] == {"branches": ["main"]} and "pull_request" in doc[True]


def test_action_job_uses_the_action_as_users_do_against_kind() -> None:
    job = load(WORKFLOWS / "test.yml")["jobs"]["action"]
    kind = step(job, uses="helm/kind-action@")["with"]
    assert kind["cluster_name"] == "envship"   # the example's `local` uses the context kind-envship
    action = load(ROOT / "action.yml")
    own = [s for s in job["steps"] if s.get("uses") == "./"]
    for s in own:
        assert "command" in s["with"], "command is required"
        assert set(s["with"]) <= set(action["inputs"])
        assert s["with"]["config"] == "workflows-examples/hello/envship.selftest.yaml"
        assert s["env"]["KUBECONFIG"] == "${{ github.workspace }}/kind-internal.kubeconfig"
    assert [(s["with"]["command"], s["with"].get("environment"), s["with"].get("pr")) for s in own] == [
        ("render", "local", None), ("plan", "local", None), ("deploy", "local", None), ("deploy", "local", None),
        ("deploy", "preview", "1"), ("teardown", "preview", "1")]
    first, second = (s for s in own if s["with"]["command"] == "deploy" and s["with"]["environment"] == "local")
    assert {k: v for k, v in first["with"].items()} == {k: v for k, v in second["with"].items()}
    assert (first["id"], second["id"]) == ("deploy", "redeploy")
    check = step(job, name="check the deploys")
    assert check["env"]["SECOND"] == "${{ steps.redeploy.outputs.changes }}"
    assert '[ "$SECOND" = 0 ]' in check["run"]
    assert "kubectl --context kind-envship wait --for=delete namespace/hello-pr-1" in \
        step(job, name="check the teardown")["run"]


def test_action_job_gives_the_action_a_network_on_which_it_reaches_kind() -> None:
    job = load(WORKFLOWS / "test.yml")["jobs"]["action"]
    registry = job["services"]["registry"]
    assert re.fullmatch(r"registry:3@sha256:[0-9a-f]{64}", registry["image"])
    connect = step(job, name="connect the cluster")
    assert connect["env"] == {"JOB_NETWORK": "${{ job.container.network }}",
                              "REGISTRY_CONTAINER": "${{ job.services.registry.id }}"}
    script = connect["run"]
    assert 'docker network connect "$JOB_NETWORK" envship-control-plane' in script
    assert "kind get kubeconfig --internal --name envship" in script
    assert 'docker network connect --alias registry kind "$REGISTRY_CONTAINER"' in script


def selftest_config() -> dict[str, Any]:
    script = step(load(WORKFLOWS / "test.yml")["jobs"]["action"], name="the example's config")["run"]
    m = re.search(r"<<'EOF'\n(.*?)\nEOF", textwrap.dedent(script), re.S)
    assert m, script
    doc = yaml.safe_load(m[1])
    assert isinstance(doc, dict)
    return doc


def test_the_self_test_deploys_the_bundled_example_unchanged_but_for_its_targets() -> None:
    copy, example = selftest_config(), load(HELLO / "envship.yaml")
    for key in ("app", "image", "manifests", "env"):
        assert copy[key] == example[key], key
    assert set(copy["environments"]) == {"local", "preview"}
    assert copy["environments"]["local"] == example["environments"]["local"]
    preview = dict(example["environments"]["preview"])
    assert preview.pop("cluster").startswith("projects/")   # GKE: not reachable from the job
    assert copy["environments"]["preview"] == {**preview, "context": "kind-envship", "routes": False}
    assert "routes" not in copy   # no Cloudflare


def test_the_self_test_image_is_built_from_the_action_images_base() -> None:
    script = step(load(WORKFLOWS / "test.yml")["jobs"]["action"], id="image")["run"]
    pattern = re.search(r"grep -m1 -oE '([^']+)' Dockerfile", script)
    assert pattern, script
    bases = set(re.findall(pattern[1], (ROOT / "Dockerfile").read_text()))
    assert len(bases) == 1   # both python stages on one digest, and the self-test image on it too
    assert "http://localhost:5000/v2/acme/hello/manifests/selftest" in script
    assert 'echo "image=ghcr.io/acme/hello@$digest"' in script


# ---------------------------------------------------------------------------------------------------------------
# scripts/pin-action-image


def pin(action_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, str(PIN_SCRIPT), *args, "--action-file", str(action_file)])


def test_pin_action_image_pins_runs_image_and_changes_nothing_else(tmp_path: Path) -> None:
    action_file = tmp_path / "action.yml"
    shutil.copy(ROOT / "action.yml", action_file)
    before = action_file.read_bytes()
    assert load(action_file)["runs"]["image"] == "Dockerfile"

    proc = pin(action_file, "ghcr.io/acme/envship", DIGEST)
    assert proc.returncode == 0, explain(proc)
    after = action_file.read_bytes()
    reference = f"docker://ghcr.io/acme/envship@{DIGEST}"
    assert load(action_file)["runs"]["image"] == reference
    old_lines, new_lines = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(old_lines) == len(new_lines)
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert changed == [(b"  image: Dockerfile\n", f"  image: {reference}\n".encode())]
    assert {k: v for k, v in load(action_file).items() if k != "runs"} == \
        {k: v for k, v in yaml.safe_load(before).items() if k != "runs"}

    again = pin(action_file, "ghcr.io/acme/envship", DIGEST)   # idempotent
    assert again.returncode == 0 and "nothing to change" in again.stdout, explain(again)
    assert action_file.read_bytes() == after


def test_pin_action_image_keeps_line_endings_quotes_and_comments(tmp_path: Path) -> None:
    action_file = tmp_path / "action.yml"
    text = ("name: x\r\ndescription: y\r\nruns:\r\n  using: 'docker'\r\n  image: \"Dockerfile\"   # built per job\r\n"
            "  args:\r\n    - action\r\nbranding:\r\n  image: Dockerfile\r\n")
    action_file.write_bytes(text.encode())
    proc = pin(action_file, "ghcr.io/acme/envship", DIGEST)
    assert proc.returncode == 0, explain(proc)
    assert action_file.read_bytes().decode() == text.replace(
        'image: "Dockerfile"', f"image: docker://ghcr.io/acme/envship@{DIGEST}", 1)


@pytest.mark.parametrize(("args", "argument"), [
    (("ghcr.io/acme/envship", "sha256:" + "0" * 63), "argument digest"),
    (("ghcr.io/acme/envship", "sha256:" + "A" * 64), "argument digest"),
    (("ghcr.io/acme/envship", "0" * 64), "argument digest"),
    (("ghcr.io/Acme/envship", DIGEST), "argument repository"),
    (("ghcr.io/acme/envship:v1", DIGEST), "argument repository"),
    (("ghcr.io/acme/envship@" + DIGEST, DIGEST), "argument repository"),
    (("envship", DIGEST), "argument repository"),
])
def test_pin_action_image_refuses_bad_arguments_and_changes_nothing(
        tmp_path: Path, args: tuple[str, str], argument: str) -> None:
    action_file = tmp_path / "action.yml"
    shutil.copy(ROOT / "action.yml", action_file)
    before = action_file.read_bytes()
    proc = pin(action_file, *args)
    assert proc.returncode == 2, explain(proc)
    assert f"error: {argument}: " in proc.stderr and repr(args[0 if "repository" in argument else 1]) in proc.stderr
    assert action_file.read_bytes() == before


@pytest.mark.parametrize(("text", "problem"), [
    ("name: x\nruns:\n  using: node24\n  main: index.js\n", "runs.using is node24, not docker"),
    ("name: x\nruns:\n  using: docker\n  args: [action]\n", "expected one runs.image line, found 0"),
    ("name: x\nruns:\n  using: docker\n  image: ghcr.io/acme/envship:v1\n", "expected 'Dockerfile'"),
    ("name: x\n", "expected one top-level 'runs:' mapping, found 0"),
])
def test_pin_action_image_refuses_an_action_file_it_does_not_understand(
        tmp_path: Path, text: str, problem: str) -> None:
    action_file = tmp_path / "action.yml"
    action_file.write_text(text)
    proc = pin(action_file, "ghcr.io/acme/envship", DIGEST)
    assert proc.returncode == 2 and "argument --action-file" in proc.stderr and problem in proc.stderr, explain(proc)
    assert action_file.read_text() == text


def test_pin_action_image_refuses_a_missing_file(tmp_path: Path) -> None:
    proc = pin(tmp_path / "nope.yml", "ghcr.io/acme/envship", DIGEST)
    assert proc.returncode == 2 and "argument --action-file: cannot read" in proc.stderr, explain(proc)
