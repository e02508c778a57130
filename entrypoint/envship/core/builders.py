"""Image builders' command lines and the files they leave behind (pure: argv lists in, digests out).

- docker: `docker buildx build --push --metadata-file F ...`; buildx writes the pushed digest to F as
  `containerimage.digest` (the manifest's, or the index's for multi-platform builds and attestations).
- buildah (daemonless): `buildah build ... --iidfile F`, then `buildah push --digestfile F` per tag.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import OperationError
from .registry import valid_digest

BUILDERS = ("docker", "buildah")


@dataclass(frozen=True)
class BuildSpec:
    repository: str                       # REPO
    tags: tuple[str, ...]                 # pushed as REPO:TAG
    context: str
    file: str
    labels: Mapping[str, str] = field(default_factory=dict)
    build_args: Mapping[str, str] = field(default_factory=dict)
    platforms: tuple[str, ...] = ()       # docker only
    cache_from: tuple[str, ...] = ()      # docker only
    cache_to: tuple[str, ...] = ()        # docker only

    @property
    def references(self) -> list[str]:
        return [f"{self.repository}:{tag}" for tag in self.tags]


def _pairs(flag: str, values: Mapping[str, str]) -> list[str]:
    return [arg for key, value in values.items() for arg in (flag, f"{key}={value}")]


def _each(flag: str, values: tuple[str, ...]) -> list[str]:
    return [arg for value in values for arg in (flag, value)]


def docker_build_argv(spec: BuildSpec, metadata_file: str, docker: str = "docker") -> list[str]:
    argv = [docker, "buildx", "build", "--push", "--metadata-file", metadata_file]
    argv += _pairs("--label", spec.labels)
    argv += _each("--tag", tuple(spec.references))
    if spec.platforms:
        argv += ["--platform", ",".join(spec.platforms)]
    argv += _pairs("--build-arg", spec.build_args)
    argv += _each("--cache-from", spec.cache_from)
    argv += _each("--cache-to", spec.cache_to)
    return [*argv, "--file", spec.file, spec.context]


def buildah_build_argv(spec: BuildSpec, iid_file: str, buildah: str = "buildah",
                       isolation: str | None = "chroot") -> list[str]:
    """`isolation` None leaves the choice to buildah (BUILDAH_ISOLATION); chroot works without a daemon,
    user namespaces or a container runtime, as root or in a container."""
    argv = [buildah, "build"]
    if isolation:
        argv += ["--isolation", isolation]
    argv += ["--iidfile", iid_file]
    argv += _pairs("--label", spec.labels)
    argv += _pairs("--build-arg", spec.build_args)
    argv += _each("--tag", tuple(spec.references))
    return [*argv, "--file", spec.file, spec.context]


def buildah_push_argv(image_id: str, reference: str, digest_file: str, tls_verify: bool,
                      buildah: str = "buildah") -> list[str]:
    argv = [buildah, "push", "--digestfile", digest_file]
    if not tls_verify:
        argv.append("--tls-verify=false")
    return [*argv, image_id, f"docker://{reference}"]


@dataclass(frozen=True)
class DockerMetadata:
    digest: str
    names: tuple[str, ...]  # image.name: every REPO:TAG pushed


def parse_docker_metadata(text: str, where: str) -> DockerMetadata:
    """The `--metadata-file` buildx writes: `containerimage.digest` and `image.name` (comma-separated)."""
    hint = "this happens when the build did not push; check the builder's log above"
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise OperationError(f"{where} is not JSON: {e}", hint) from e
    if not isinstance(doc, dict):
        raise OperationError(f"{where} is not a JSON object", hint)
    digest = doc.get("containerimage.digest")
    if not isinstance(digest, str) or not valid_digest(digest):
        found = f"'containerimage.digest' is {digest!r}" if digest is not None else "it has no 'containerimage.digest'"
        raise OperationError(f"{where} does not name the pushed image: {found}", hint)
    names = doc.get("image.name")
    parsed = tuple(n.strip() for n in names.split(",") if n.strip()) if isinstance(names, str) else ()
    return DockerMetadata(digest, parsed)


def parse_digest_file(text: str, where: str) -> str:
    digest = text.strip()
    if not valid_digest(digest):
        raise OperationError(f"{where} holds {digest[:80]!r}, not a sha256 digest",
                             "the push did not complete; check the builder's log above")
    return digest
