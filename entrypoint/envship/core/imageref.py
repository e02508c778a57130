"""Container image references, parsed the way the Docker/OCI reference grammar does.

`[registry[:port]/]path[:tag][@sha256:hex]`; the first component is a registry when it holds a dot or a
colon or is `localhost`, so `localhost:5000/app:1` is registry `localhost:5000`, path `app`, tag `1`.
Two spellings of one repository (`nginx`, `docker.io/library/nginx`) compare equal through `canonical`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
    r"|\[[0-9a-fA-F:.]+\](?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}
DOCKER_HUB_REGISTRY = "registry-1.docker.io"  # where Docker Hub's distribution API answers


class ImageRefError(ValueError):
    """The text is not a valid image reference; the message says which part is wrong."""


@dataclass(frozen=True)
class ImageRef:
    domain: str | None
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """The repository as the user wrote it (no tag, no digest)."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def canonical(self) -> str:
        """The fully-qualified repository, for comparing two spellings of the same one."""
        domain = self.domain or "docker.io"
        if domain in _DOCKER_HUB:
            domain = "docker.io"
            if "/" not in self.path:
                return f"{domain}/library/{self.path}"
        return f"{domain}/{self.path}"

    @property
    def registry(self) -> str:
        """The host[:port] that serves the distribution API (`registry-1.docker.io` for Docker Hub)."""
        domain = self.domain or "docker.io"
        return DOCKER_HUB_REGISTRY if domain in _DOCKER_HUB else domain

    @property
    def remote_path(self) -> str:
        """The repository name in distribution API URLs (`library/nginx` for Docker Hub's `nginx`)."""
        if self.registry == DOCKER_HUB_REGISTRY and "/" not in self.path:
            return f"library/{self.path}"
        return self.path

    def with_reference(self, *, tag: str | None = None, digest: str | None = None) -> ImageRef:
        return ImageRef(self.domain, self.path, tag, digest)

    def pinned(self, digest: str) -> str:
        return f"{self.repository}@{digest}"

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image_ref(text: str) -> ImageRef:
    """Parse `text`; raise ImageRefError naming the offending part."""
    if not isinstance(text, str) or not text:
        raise ImageRefError("an image reference must be a non-empty string")
    if text != text.strip() or any(c.isspace() for c in text):
        raise ImageRefError(f"image reference {text!r} contains white space")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST_RE.fullmatch(digest):
            raise ImageRefError(
                f"digest {digest!r} in {text!r} is not sha256: followed by 64 lowercase hex characters"
            )
    domain, path = _split_domain(rest)
    tag = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, tag = path.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            raise ImageRefError(f"tag {tag!r} in {text!r} is not a valid tag")
    if not path:
        raise ImageRefError(f"image reference {text!r} has no repository path")
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise ImageRefError(
                f"repository path component {component!r} in {text!r} is invalid "
                "(lowercase letters, digits and single separators . _ __ - only)"
            )
    return ImageRef(domain=domain, path=path, tag=tag, digest=digest)


def _split_domain(text: str) -> tuple[str | None, str]:
    if "/" not in text:
        return None, text
    first, rest = text.split("/", 1)
    if "." in first or ":" in first or first == "localhost" or first.startswith("["):
        if not _DOMAIN.fullmatch(first):
            raise ImageRefError(f"registry {first!r} is not a valid host[:port]")
        return first, rest
    return None, text
