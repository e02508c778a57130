"""Promotion rules (pure): which environments may feed which, and whether the release recorded in the
source environment is what actually runs there, healthy. engine/promotion.py reads the cluster."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import RefusedError
from . import health, workloads
from .config import Config, Environment
from .health import HealthRules
from .imageref import ImageRefError, parse_image_ref
from .plan import DeployRecord


@dataclass
class SourceState:
    """The source environment as the cluster has it."""

    record: DeployRecord
    live: dict[str, dict[str, Any] | None] = field(default_factory=dict)   # "Kind/name" -> live workload
    pods: list[dict[str, Any]] = field(default_factory=list)
    replicasets: list[dict[str, Any]] = field(default_factory=list)


def check_route(config: Config, source: Environment, target: Environment) -> None:
    """The target takes promotions only from its `promote-from` (when it names one), never from a preview
    (pull request code), and never from itself."""
    if source.name == target.name:
        raise RefusedError(f"cannot promote '{source.name}' to itself", "name two different environments")
    if source.preview:
        raise RefusedError(f"'{source.name}' is a preview environment: it runs pull request code and is never a "
                           "promotion source", f"promote from '{target.promote_from or 'staging'}'",
                           source.location)
    if target.promote_from and target.promote_from != source.name:
        raise RefusedError(f"'{target.name}' takes promotions only from '{target.promote_from}' (its promote-from), "
                           f"not from '{source.name}'", f"promote from '{target.promote_from}'", target.location)


def source_problems(state: SourceState, repository: str, rules: HealthRules | None = None) -> list[str]:
    """Why the recorded release is not a sound source: a workload gone, not healthy, changed since the
    record (drift: its template no longer runs the recorded image), or pods running another digest
    (checked on the imageID of their app containers, which says what the node really pulled)."""
    record = state.record
    rules = rules or HealthRules()
    problems: list[str] = []
    for obj in record.objects:
        kind, name = str(obj.get("kind")), str((obj.get("metadata") or {}).get("name"))
        if kind not in health.WORKLOAD_KINDS or kind == "Job":
            continue
        label = f"{kind}/{name}"
        live = state.live.get(label)
        if live is None:
            problems.append(f"{label} of revision {record.revision} is gone")
            continue
        live = {**live, "kind": kind}
        drifted = [image for image in _images(live) if _is_app(image, repository) and image != record.image]
        if drifted:
            problems.append(f"{label} runs {drifted[0]}, not the recorded {record.image} (changed outside envship)")
            continue
        pods = workloads.current_pods(live, state.pods, state.replicasets)
        verdict = health.object_health(live, pods, rules)
        if verdict.state != health.READY:
            problems.append(f"{label} is not healthy: {verdict.summary}")
            continue
        for pod in pods:
            for digest in _app_digests(pod, repository):
                if digest != record.digest:
                    problems.append(f"pod {pod['metadata']['name']} of {label} runs {digest}, not the recorded "
                                    f"{record.digest}")
    return problems


def _images(obj: Mapping[str, Any]) -> list[str]:
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [str(c.get("image", "")) for key in ("initContainers", "containers") for c in spec.get(key) or []]


def _is_app(image: str, repository: str) -> bool:
    try:
        return parse_image_ref(image).canonical == parse_image_ref(repository).canonical
    except ImageRefError:
        return False


def _app_digests(pod: Mapping[str, Any], repository: str) -> list[str]:
    status = pod.get("status") or {}
    found = []
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        image_id = str(cs.get("imageID", ""))
        if "@sha256:" in image_id and _is_app(str(cs.get("image", "")), repository):
            found.append("sha256:" + image_id.split("@sha256:", 1)[1])
    return found


def expected_digest_problem(record: DeployRecord, expected: str | None) -> str:
    if expected and expected != record.digest:
        return f"the source runs {record.digest}, not the expected {expected}"
    return ""


def promoted_from(source: Environment, record: DeployRecord) -> dict[str, str]:
    """What the target's release and GitHub deployment record about where the digest came from."""
    origin = {"environment": source.name, "revision": str(record.revision), "digest": record.digest}
    if record.git_sha:
        origin["git_sha"] = record.git_sha
    if record.run_url:
        origin["run_url"] = record.run_url
    return origin
