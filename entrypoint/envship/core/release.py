"""The build job's product (pure): the release record, the image's tags and its OCI labels.

The record is what deploy jobs trust: one repository and one digest, and where they came from. Its JSON
form is described by `envship/schemas/release.schema.json` (shipped with the package).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import UsageError

SCHEMA_VERSION = 1
SCHEMA_FILE = "schemas/release.schema.json"  # relative to the envship package
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_SOURCE = "org.opencontainers.image.source"
LABEL_CREATED = "org.opencontainers.image.created"


@dataclass(frozen=True)
class ReleaseRecord:
    repository: str          # REPO, as in the config (no tag, no digest)
    digest: str              # sha256:...
    tags: tuple[str, ...] = ()
    git_sha: str = ""
    ref: str = ""            # refs/heads/main, refs/tags/v1, refs/pull/42/merge
    source: str = ""         # https://github.com/OWNER/REPO
    run_url: str = ""
    built_at: str = ""       # RFC 3339, UTC
    builder: str = ""        # docker | buildah
    schema_version: int = field(default=SCHEMA_VERSION)

    @property
    def image(self) -> str:
        return f"{self.repository}@{self.digest}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = list(self.tags)
        order = ("schema_version", "repository", "image", "digest", "tags", "git_sha", "ref", "source",
                 "run_url", "built_at", "builder")
        data["image"] = self.image
        return {key: data[key] for key in order}

    def to_json(self, indent: int | None = 2) -> str:
        separators = (",", ": ") if indent else (",", ":")
        return json.dumps(self.to_dict(), indent=indent, separators=separators)


def sanitize_tag(text: str) -> str:
    """A branch or git tag name as an image tag: `feature/Login_v2` -> `feature-login_v2`; at most 128
    characters, never starting with `.` or `-`. Empty when nothing usable is left."""
    tag = re.sub(r"[^a-z0-9_.-]+", "-", text.lower())
    tag = tag.lstrip(".-")[:128].rstrip(".-")
    return tag


def tags_for(git_sha: str, ref: str) -> list[str]:
    """`sha-<7>` and the branch (or git tag, or `pr-N`) the build is of. Pointers for humans: deploys use
    the digest."""
    tags = []
    if re.fullmatch(r"[0-9a-f]{7,64}", git_sha):
        tags.append(f"sha-{git_sha[:7]}")
    name = ""
    if ref.startswith("refs/heads/"):
        name = sanitize_tag(ref.removeprefix("refs/heads/"))
    elif ref.startswith("refs/tags/"):
        name = sanitize_tag(ref.removeprefix("refs/tags/"))
    elif match := re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", ref):
        name = f"pr-{match[1]}"
    if name and name not in tags:
        tags.append(name)
    return tags


def image_tags(git_sha: str, ref: str, extra: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The computed tags, then `--tag` values (checked, not rewritten), without duplicates."""
    tags = tags_for(git_sha, ref)
    for tag in extra:
        if not TAG_RE.fullmatch(tag):
            raise UsageError(f"--tag {tag!r} is not a valid image tag",
                             "use letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')")
        if tag not in tags:
            tags.append(tag)
    return tags


def oci_labels(git_sha: str, source: str, created: str) -> dict[str, str]:
    """The standard OCI annotations envship puts on the image (those that are known)."""
    labels = {LABEL_REVISION: git_sha, LABEL_SOURCE: source, LABEL_CREATED: created}
    return {key: value for key, value in labels.items() if value}


def source_url(server: str, repository: str) -> str:
    """`GITHUB_SERVER_URL` + `GITHUB_REPOSITORY` -> https://github.com/OWNER/REPO (empty when unknown)."""
    if not (server and repository):
        return ""
    return f"{server.rstrip('/')}/{repository}"
