"""`--output json`: one JSON document on stdout per run of plan, deploy, status and resolve, for scripts.

Each document carries `schema_version` and `command`; its JSON Schema is `schemas/<command>.output.schema.json`
in the package (README, Command line conventions). New fields may be added within a schema version;
a field is never removed or changed in meaning without a new one. Secret values never appear: plan's
diffs mask them as the text diff does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..adapters.console import Console
from ..core.deployments import Outcome
from ..core.render import Rendering

SCHEMA_VERSION = 1
FORMATS = ("text", "json")


def emit(console: Console, document: Mapping[str, Any]) -> None:
    console.result(json.dumps(document, indent=2) + "\n")


def release_fields(rendering: Rendering) -> dict[str, Any]:
    target = rendering.target
    return {"environment": target.name, "namespace": target.namespace, "pr": target.pr,
            "image": rendering.release.image, "digest": rendering.release.digest, "url": rendering.url}


def plan_document(rendering: Rendering, changed: Sequence[tuple[str, str, str]], pruned: Sequence[str],
                  route_changes: int) -> dict[str, Any]:
    objects = [{"object": name, "action": "delete", "diff": ""} for name in pruned]
    objects += [{"object": name, "action": action, "diff": text} for name, action, text in changed]
    return {"schema_version": SCHEMA_VERSION, "command": "plan", **release_fields(rendering),
            "changes": len(changed) + len(pruned) + route_changes,
            "unchanged": len(rendering.objects) - len(changed), "objects": objects,
            "route_changes": route_changes}


def deploy_document(rendering: Rendering, outcome: Outcome, outputs: Mapping[str, str],
                    error: str = "") -> dict[str, Any]:
    previous = outputs.get("previous-digest", "")
    return {"schema_version": SCHEMA_VERSION, "command": "deploy", "ok": outcome.ok and not error,
            **release_fields(rendering), "revision": outcome.revision or None, "changes": outcome.changes,
            "previous_digest": previous or None, "deployment_id": outputs.get("deployment-id") or None,
            "rollout_seconds": round(outcome.rollout_seconds, 3), "error": error or (outcome.message if not
                                                                                      outcome.ok else "")}


def resolve_document(reference: str, image: str, digest: str, kind: str) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "command": "resolve", "reference": reference, "image": image,
            "digest": digest, "kind": kind}


def status_document(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "command": "status", "environments": list(rows)}
