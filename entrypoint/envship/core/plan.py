"""Deploy planning (pure): tiers, ownership, prune candidates, diffs and release records."""

from __future__ import annotations

import base64
import difflib
import gzip
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import Problem
from . import kinds
from .render import ANNOTATION_PREFIX, ENVIRONMENT, INSTANCE, MANAGED_BY, PR_LABEL, REDACTED, RenderedObject, Rendering

RECORD_LABEL = "envship.dev/record"  # marks envship's own bookkeeping objects, never pruned
Key = tuple[str, str, str, str]      # (group, kind, namespace, name)
RELEASE_ANNOTATIONS = tuple(f"{ANNOTATION_PREFIX}{n}" for n in ("digest", "git-sha", "run-url", "deployed-at"))
_VOLATILE_META = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp",
                  "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


def key_of(obj: Mapping[str, Any]) -> Key:
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    meta = obj.get("metadata") or {}
    return (group, str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name", "")))


def describe(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def tiers(objects: Iterable[RenderedObject]) -> list[list[RenderedObject]]:
    """Objects grouped by apply tier, in order; objects of one tier do not depend on each other."""
    grouped: dict[int, list[RenderedObject]] = {}
    for obj in objects:
        grouped.setdefault(kinds.tier(obj.kind), []).append(obj)
    return [grouped[t] for t in sorted(grouped)]


def owner_selector(app: str, environment: str, pr: int | None) -> str:
    selector = f"{MANAGED_BY}=envship,{INSTANCE}={app},{ENVIRONMENT}={environment}"
    return selector + (f",{PR_LABEL}={pr}" if pr is not None else "")


def is_owned(obj: Mapping[str, Any], app: str, environment: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return (labels.get(MANAGED_BY) == "envship" and labels.get(INSTANCE) == app
            and labels.get(ENVIRONMENT) == environment)


def foreign_objects(rendering: Rendering, live: Mapping[Key, Mapping[str, Any]], app: str,
                    adopt: bool) -> list[Problem]:
    """Rendered objects that already exist without this app's and environment's ownership labels."""
    if adopt:
        return []
    env = rendering.target.name
    problems = []
    for obj in rendering.objects:
        current = live.get(key_of(obj.obj))
        if current is None or is_owned(current, app, env):
            continue
        labels = (current.get("metadata") or {}).get("labels") or {}
        owner = (f"envship app '{labels.get(INSTANCE)}' environment '{labels.get(ENVIRONMENT)}'"
                 if labels.get(MANAGED_BY) == "envship" else f"'{labels.get(MANAGED_BY, 'someone else')}'")
        where = f" in namespace {obj.namespace}" if obj.namespace else ""
        problems.append(Problem(
            f"{obj.describe()}{where} already exists and is managed by {owner}, not by this app",
            obj.source,
            "envship never takes over objects it did not create: rename yours, delete the old one, or set "
            f"'adopt: true' on environment '{env}' to take it over deliberately"))
    return problems


def prune_candidates(live_owned: Iterable[Mapping[str, Any]], rendered: Iterable[RenderedObject],
                     app: str, environment: str) -> list[Mapping[str, Any]]:
    wanted = {key_of(o.obj) for o in rendered}
    return sorted(
        (o for o in live_owned
         if is_owned(o, app, environment) and key_of(o) not in wanted
         and RECORD_LABEL not in ((o.get("metadata") or {}).get("labels") or {})),
        key=lambda o: (-kinds.tier(str(o.get("kind"))), key_of(o)),  # dependents first
    )


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


def diff(live: Mapping[str, Any] | None, desired: Mapping[str, Any], name: str) -> str:
    before = yaml.safe_dump(comparable(live), sort_keys=True) if live else ""
    after = yaml.safe_dump(comparable(desired), sort_keys=True)
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
class ReleaseRecord:
    """What a healthy deploy left running: enough to re-apply it on rollback."""

    revision: int
    image: str
    digest: str
    git_sha: str
    run_url: str
    time: str
    objects: list[dict[str, Any]] = field(default_factory=list)

    def encode(self) -> str:
        raw = json.dumps(self.__dict__, separators=(",", ":"), sort_keys=True).encode()
        return base64.b64encode(gzip.compress(raw, mtime=0)).decode()

    @classmethod
    def decode(cls, data: str) -> ReleaseRecord:
        raw = json.loads(gzip.decompress(base64.b64decode(data)))
        return cls(**raw)


def release_record_object(record: ReleaseRecord, app: str, environment: str, namespace: str,
                          pr: int | None) -> dict[str, Any]:
    labels = {MANAGED_BY: "envship", INSTANCE: app, ENVIRONMENT: environment, RECORD_LABEL: "release",
              "envship.dev/revision": str(record.revision)}
    if pr is not None:
        labels[PR_LABEL] = str(pr)
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "envship.dev/release",
        "metadata": {"name": release_record_name(app, environment, record.revision), "namespace": namespace,
                     "labels": labels,
                     "annotations": {"envship.dev/digest": record.digest, "envship.dev/deployed-at": record.time}},
        "data": {"release": base64.b64encode(record.encode().encode()).decode()},
    }


def release_record_name(app: str, environment: str, revision: int) -> str:
    return f"envship.{app}.{environment}.v{revision}"


def decode_release_record(secret: Mapping[str, Any]) -> ReleaseRecord:
    data = (secret.get("data") or {}).get("release", "")
    return ReleaseRecord.decode(base64.b64decode(data).decode())
