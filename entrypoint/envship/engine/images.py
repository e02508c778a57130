"""Pinning the image a command was given, before anything touches a cluster (render, plan, deploy, promote).

- `REPO@sha256:D`: verified to exist in the registry (HEAD by digest), so a typo fails here with a clear
  message instead of as an ImagePullBackOff minutes into a rollout. `verify=False` (render) stays offline.
- `REPO:TAG`: resolved to the digest the registry serves now; the result records both. A protected
  environment refuses a tag (exit 2, without asking the registry) unless `allow_tag`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..core.config import Config, Environment
from ..core.imageref import ImageRef
from ..core.render import release_image_ref
from ..errors import UsageError


class Resolution(Protocol):
    @property
    def digest(self) -> str: ...


class ImageRegistry(Protocol):
    def resolve(self, ref: ImageRef) -> Resolution: ...


@dataclass(frozen=True)
class PinnedImage:
    image: str                            # REPO@sha256:D, in the config's spelling of REPO
    digest: str                           # sha256:D
    resolved_from_tag: str | None = None  # the tag it was resolved from, if it was


def pin_image(config: Config, environment: Environment, image_arg: str, allow_tag: bool,
              registry: Callable[[], ImageRegistry], verify: bool = True) -> PinnedImage:
    """`registry` is called only when the registry must be asked (a tag, or `verify` of a digest)."""
    ref = release_image_ref(config, image_arg)
    repository = config.image
    if ref.digest:
        if verify:
            registry().resolve(ref)  # raises ImageNotFound (exit 2) when the registry lacks it
        return PinnedImage(f"{repository}@{ref.digest}", ref.digest)
    tag = ref.tag or ""
    if environment.protected and not allow_tag:
        raise UsageError(
            f"environment '{environment.name}' is protected and takes an image digest, not the tag '{tag}' "
            f"({image_arg})",
            f"pass {repository}@sha256:... from the build job ('envship resolve {image_arg}' prints it), "
            "or set {--allow-tag} to resolve the tag now (the digest it resolves to is recorded)")
    resolved = registry().resolve(ref)
    return PinnedImage(f"{repository}@{resolved.digest}", resolved.digest, tag)
