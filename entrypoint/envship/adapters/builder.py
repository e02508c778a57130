"""Image builders as processes: `docker buildx build --push` or `buildah build` + `buildah push`.
Their output is streamed to stderr, line by line, through the console (so secrets stay scrubbed and, in
Actions, it sits in a collapsible group). The command lines themselves are built in core/builders.py."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.builders import (
    BuildSpec,
    buildah_build_argv,
    buildah_push_argv,
    docker_build_argv,
    parse_digest_file,
    parse_docker_metadata,
)
from ..errors import OperationError
from .console import Console

INSTALL_HINTS = {
    "docker": "install the Docker CLI with the buildx plugin (Debian/Ubuntu: docker-ce-cli and docker-buildx-plugin "
              "from Docker's apt repository), or use --builder buildah",
    "buildah": "install buildah (Debian/Ubuntu: apt-get install buildah), or use --builder docker",
}


def find_program(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise OperationError(f"{name} is not installed (not found on PATH)", INSTALL_HINTS.get(name, f"install {name}"))
    return path


def available(name: str) -> bool:
    return shutil.which(name) is not None


def stream(argv: Sequence[str], console: Console, environ: Mapping[str, str] | None = None) -> None:
    """Run `argv`, copying its output to stderr as it comes; a non-zero exit is a failure."""
    console.info("$ " + " ".join(argv))
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", env=dict(environ) if environ is not None else None)
    except OSError as e:
        hint = INSTALL_HINTS.get(Path(argv[0]).name, "")
        raise OperationError(f"cannot run {argv[0]}: {e.strerror or e}", hint) from e
    assert proc.stdout is not None
    tail: list[str] = []
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        console.info(line)
        tail = [*tail[-9:], line]
    code = proc.wait()
    if code != 0:
        name = Path(argv[0]).name
        raise OperationError(f"{name} {argv[1]} failed with exit code {code}",
                             "its output is above; the last line was: " + (tail[-1] if tail else "(none)"))


def build_docker(spec: BuildSpec, console: Console,
                 login: tuple[str, str, str] | None = None) -> tuple[str, tuple[str, ...]]:
    """Build and push with buildx; return (digest, image names) from its metadata file. `login`
    (registry host, user, password) gives docker a private config holding just that login, for where
    the caller's docker config cannot be seen (inside the action's container)."""
    docker = find_program("docker")
    with tempfile.TemporaryDirectory(prefix="envship-build-") as tmp:
        metadata = Path(tmp) / "metadata.json"
        environ = None
        if login is not None:
            environ = {**os.environ, "DOCKER_CONFIG": write_docker_config(Path(tmp) / "docker", *login)}
        with console.group("docker buildx build"):
            stream(docker_build_argv(spec, str(metadata), docker), console, environ)
        try:
            text = metadata.read_text(encoding="utf-8")
        except OSError as e:
            raise OperationError("docker buildx build wrote no metadata file",
                                 "envship needs buildx with --metadata-file (Docker 23+, buildx 0.9+)") from e
        parsed = parse_docker_metadata(text, "the buildx metadata file")
    return parsed.digest, parsed.names


def write_docker_config(directory: Path, host: str, user: str, password: str) -> str:
    """A docker config directory with one login, readable by its owner only; removed with the build."""
    directory.mkdir(mode=0o700)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    path = directory / "config.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"auths": {host: {"auth": auth}}}, f)
    return str(directory)


def build_buildah(spec: BuildSpec, console: Console, environ: Mapping[str, str], insecure: bool) -> str:
    """Build, then push the image to every tag; return the digest the pushes reported (all the same)."""
    buildah = find_program("buildah")
    isolation = None if environ.get("BUILDAH_ISOLATION") else "chroot"
    digests: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="envship-build-") as tmp:
        iid_file = Path(tmp) / "iid"
        with console.group("buildah build"):
            stream(buildah_build_argv(spec, str(iid_file), buildah, isolation), console)
        image_id = iid_file.read_text(encoding="utf-8").strip() if iid_file.exists() else ""
        if not image_id:
            raise OperationError("buildah build wrote no image ID", "check the builder's log above")
        for i, reference in enumerate(spec.references):
            digest_file = Path(tmp) / f"digest-{i}"
            with console.group(f"buildah push {reference}"):
                stream(buildah_push_argv(image_id, reference, str(digest_file), not insecure, buildah), console)
            text = digest_file.read_text(encoding="utf-8") if digest_file.exists() else ""
            digests[reference] = parse_digest_file(text, "buildah's digest file")
    if len(set(digests.values())) != 1:
        listing = ", ".join(f"{ref} -> {digest}" for ref, digest in digests.items())
        raise OperationError(f"buildah pushed different digests for one image: {listing}",
                             "the registry converted the manifest; push to a registry that stores it as sent")
    return next(iter(digests.values()))


def local_git(context: str) -> tuple[str, str]:
    """(commit sha, refs/heads/BRANCH) of the checkout holding `context`, for runs outside Actions;
    ("", "") when it is not a git checkout or git is missing."""
    git = shutil.which("git")
    if not git:
        return "", ""

    def ask(*args: str) -> str:
        try:
            proc = subprocess.run([git, "-C", context, *args], capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return proc.stdout.strip() if proc.returncode == 0 else ""

    sha = ask("rev-parse", "HEAD")
    ref = ask("symbolic-ref", "-q", "HEAD") if sha else ""
    return sha, ref
