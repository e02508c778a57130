"""Deploy planning (pure): apply tiers, diffs and release records. Ownership is core/ownership.py."""

from __future__ import annotations

import base64
import difflib
import gzip
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import kinds, output
from .naming import secret_content_hash
from .ownership import PART_OF, ApplySet
from .render import ANNOTATION_PREFIX, REDACTED, RenderedObject

RECORD_LABEL = "envship.dev/record"  # marks envship's own bookkeeping objects, never members of the applyset
VALUES_HASH = "envship.dev/values-hash"  # on a Secret in a release record whose values were left out
RELEASE_ANNOTATIONS = tuple(f"{ANNOTATION_PREFIX}{n}" for n in ("digest", "git-sha", "run-url", "deployed-at"))
_VOLATILE_META = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp",
                  "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


def tiers(objects: Iterable[RenderedObject]) -> list[list[RenderedObject]]:
    """Objects grouped by apply tier, in order; objects of one tier do not depend on each other."""
    grouped: dict[int, list[RenderedObject]] = {}
    for obj in objects:
        grouped.setdefault(kinds.tier(obj.kind), []).append(obj)
    return [grouped[t] for t in sorted(grouped)]


def record_selector(applyset: ApplySet) -> str:
    """Release records are found by the human labels: they are bookkeeping, not members of the applyset."""
    labels = {**applyset.human_labels(), RECORD_LABEL: "release"}
    return ",".join(f"{k}={v}" for k, v in labels.items())


# -- diffs ----------------------------------------------------------------------------------------
def comparable(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a user cares about in a diff: no status, no server bookkeeping, Secret values masked."""
    if obj is None:
        return {}
    copy = json.loads(json.dumps(obj))
    copy.pop("status", None)
    meta = copy.get("metadata") or {}
    for key in _VOLATILE_META:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    # Release annotations change with every run (run URL, time); they are not a change of the object.
    for name in RELEASE_ANNOTATIONS:
        annotations.pop(name, None)
    if not annotations:
        meta.pop("annotations", None)
    if copy.get("kind") == "Secret":
        copy = _masked_secret(copy)
    return dict(copy)


def _masked_secret(secret: dict[str, Any]) -> dict[str, Any]:
    """Secret values become a fingerprint-free marker: changed values still show as a change."""
    for field_name in ("data", "stringData"):
        values = secret.get(field_name)
        if isinstance(values, dict):
            secret[field_name] = {k: REDACTED for k in values}
    return secret


def without_release_annotations(obj: Mapping[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(obj))
    annotations = (copy.get("metadata") or {}).get("annotations") or {}
    for name in (*RELEASE_ANNOTATIONS, f"{ANNOTATION_PREFIX}image-tag"):
        annotations.pop(name, None)
    return dict(copy)


def contained(wanted: Any, live: Any) -> bool:
    """Whether every field of `wanted` is in `live` with the same value (lists: the same length and each
    item contained): what the server keeps beside them (defaults, status, other managers' fields) is not
    a difference."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(k in live and contained(v, live[k]) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(live, list) and len(wanted) == len(live) and all(
            contained(w, x) for w, x in zip(wanted, live, strict=True))
    return bool(wanted == live)


def unchanged(rendered: Mapping[str, Any], recorded: Mapping[str, Any] | None, live: Mapping[str, Any] | None,
              salt: str) -> bool:
    """Whether applying `rendered` would change nothing, so it can be skipped: it is what the last healthy
    release applied (so no field envship set is being dropped either; release annotations aside) and
    every field it sets is live with that value (nothing drifted). Anything else is applied."""
    if recorded is None or live is None:
        return False
    if without_release_annotations(without_secret_values(rendered, salt)) != \
            without_release_annotations(recorded):
        return False
    return contained(without_release_annotations(rendered), live)


def diff(live: Mapping[str, Any] | None, desired: Mapping[str, Any], name: str) -> str:
    """A unified diff of what a user cares about; no line of it can be a workflow command (output.dump)."""
    before = output.dump(comparable(live), sort_keys=True) if live else ""
    after = output.dump(comparable(desired), sort_keys=True)
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 fromfile=f"live/{name}", tofile=f"envship/{name}", n=3)
    return "".join(lines)


def changed(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
    """Whether applying changed anything a user cares about (Secret values compared, not shown)."""
    if before is None:
        return True
    if before.get("kind") == "Secret" and before.get("data") != after.get("data"):
        return True
    return comparable(before) != comparable(after)


# -- release records ------------------------------------------------------------------------------
@dataclass
class DeployRecord:
    """What a healthy deploy left running, kept in the cluster: enough to re-apply it on rollback. (The
    build job's record of an image is core/release.py's ReleaseRecord.) Secrets are kept without
    their values (a fingerprint instead): a rotated secret must not live on in old records."""

    revision: int
    image: str
    digest: str
    git_sha: str
    run_url: str
    time: str
    objects: list[dict[str, Any]] = field(default_factory=list)
    applyset: str = ""  # the applyset id; empty in records written before ApplySets
    promoted_from: dict[str, str] = field(default_factory=dict)  # the source environment, revision, commit

    def encode(self) -> str:
        raw = json.dumps(self.__dict__, separators=(",", ":"), sort_keys=True).encode()
        return base64.b64encode(gzip.compress(raw, mtime=0)).decode()

    @classmethod
    def decode(cls, data: str) -> DeployRecord:
        raw = json.loads(gzip.decompress(base64.b64decode(data)))
        return cls(**raw)

    def holds_secret_values(self) -> bool:
        return any(_has_values(o) for o in self.objects)


def _has_values(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and bool(obj.get("data") or obj.get("stringData"))


def secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's values as the API server stores them: base64 `data`, with `stringData` merged in."""
    data = {str(k): str(v) for k, v in (secret.get("data") or {}).items()}
    for key, value in (secret.get("stringData") or {}).items():
        data[str(key)] = base64.b64encode(str(value).encode()).decode()
    return data


def values_fingerprint(secret: Mapping[str, Any], salt: str) -> str:
    return secret_content_hash(secret_data(secret), salt)


def without_secret_values(obj: Mapping[str, Any], salt: str) -> dict[str, Any]:
    """The object as a release record keeps it: a Secret loses its values and gains their salted,
    stretched fingerprint, so a rollback can tell whether the live Secret still holds them."""
    if not _has_values(obj):
        return dict(obj)
    copy = {k: v for k, v in obj.items() if k not in ("data", "stringData")}
    meta = dict(copy.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), VALUES_HASH: values_fingerprint(obj, salt)}
    copy["metadata"] = meta
    return copy


def values_left_out(obj: Mapping[str, Any]) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return obj.get("kind") == "Secret" and VALUES_HASH in annotations


def record_salt(applyset: ApplySet) -> str:
    return f"envship:{applyset.app}:{applyset.environment}:{applyset.namespace}"


def as_member(obj: Mapping[str, Any], applyset: ApplySet) -> dict[str, Any]:
    """An object from a release record, labelled as a member of the applyset (records written before
    ApplySets lack the label; applying without it would drop the membership)."""
    copy = json.loads(json.dumps(obj))
    meta = copy.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), PART_OF: applyset.id}
    return dict(copy)


def release_record_object(record: DeployRecord, applyset: ApplySet) -> dict[str, Any]:
    labels = {**applyset.human_labels(), RECORD_LABEL: "release", "envship.dev/revision": str(record.revision)}
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "envship.dev/release",
        "metadata": {"name": release_record_name(applyset.app, applyset.environment, record.revision),
                     "namespace": applyset.namespace, "labels": labels,
                     "annotations": {"envship.dev/digest": record.digest, "envship.dev/deployed-at": record.time}},
        "data": {"release": base64.b64encode(record.encode().encode()).decode()},
    }


def release_record_name(app: str, environment: str, revision: int) -> str:
    return f"envship.{app}.{environment}.v{revision}"


def decode_release_record(secret: Mapping[str, Any]) -> DeployRecord:
    data = (secret.get("data") or {}).get("release", "")
    return DeployRecord.decode(base64.b64decode(data).decode())
