"""Find the previews of an app on a cluster: the namespaces envship created for them (labelled with the
app, the preview environment and the pull request), confirmed by their ApplySet's parent (the same
applyset id, and the same repository: previews of another repository with the same names are not
ours), with the time of their last deploy from the newest release record."""

from __future__ import annotations

from datetime import UTC, datetime

from ..adapters.kube import Kube
from ..core import plan
from ..core.ownership import ENVIRONMENT, INSTANCE, MANAGED_BY, PR_LABEL, REPOSITORY, ApplySet, parent_name
from ..core.preview import LivePreview
from .session import NAMESPACES


def live_previews(kube: Kube, app: str, environment: str, repository: str) -> list[LivePreview]:
    selector = f"{MANAGED_BY}=envship,{INSTANCE}={app},{ENVIRONMENT}={environment},{PR_LABEL}"
    namespaces, _ = kube.list(NAMESPACES, None, selector)
    secrets = kube.resource("v1", "Secret")
    found = []
    for namespace in namespaces:
        meta = namespace["metadata"]
        pr_text = str((meta.get("labels") or {}).get(PR_LABEL, ""))
        if not pr_text.isdigit():
            continue
        applyset = ApplySet(app, environment, str(meta["name"]), int(pr_text))
        if not applyset.owns(namespace):
            continue   # labelled like ours but not created by this target
        parent = kube.get(secrets, applyset.namespace, parent_name(app, environment))
        if parent is None:
            continue
        annotations = parent["metadata"].get("annotations") or {}
        if repository and annotations.get(REPOSITORY, repository) != repository:
            continue   # the same names from another repository
        records, _ = kube.list(secrets, applyset.namespace, plan.record_selector(applyset))
        found.append(LivePreview(applyset.pr or 0, applyset.namespace, last_deploy(records)))
    return sorted(found, key=lambda p: p.pr)


def last_deploy(records: list[dict[str, object]]) -> datetime | None:
    times = []
    for record in records:
        try:
            decoded = plan.decode_release_record(record)
        except (ValueError, TypeError, KeyError):
            continue
        try:
            times.append(datetime.fromisoformat(decoded.time.replace("Z", "+00:00")))
        except ValueError:
            continue
    newest = max(times, default=None)
    return newest.astimezone(UTC) if newest else None
