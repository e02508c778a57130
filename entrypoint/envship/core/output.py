"""Rendered objects as YAML text (pure): one multi-document stream, or one file per object."""

from __future__ import annotations

import re
from typing import Any

import yaml

from .naming import sanitize_label
from .render import Rendering, redact_secrets

try:  # pragma: no cover
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]


_STYLE: dict[str, Any] = {"sort_keys": False, "default_flow_style": False, "allow_unicode": True, "width": 1 << 16}


def dump(obj: dict[str, Any]) -> str:
    return str(yaml.dump(obj, Dumper=_Dumper, **_STYLE))


def printable(rendering: Rendering, show_secrets: bool) -> list[dict[str, Any]]:
    return [o.obj if show_secrets else redact_secrets(o.obj) for o in rendering.objects]


def to_stream(rendering: Rendering, show_secrets: bool = False) -> str:
    # one emitter for the whole stream: a third faster than one per object
    return str(yaml.dump_all(printable(rendering, show_secrets), Dumper=_Dumper, explicit_start=True, **_STYLE))


def to_files(rendering: Rendering, show_secrets: bool = False) -> dict[str, str]:
    """`NNNN-kind-name.yaml` -> text; the number keeps apply order for `kubectl apply -f DIR`."""
    files: dict[str, str] = {}
    for index, obj in enumerate(printable(rendering, show_secrets), start=1):
        kind = sanitize_label(str(obj["kind"]))
        name = re.sub(r"[^a-z0-9.-]+", "-", obj["metadata"]["name"].lower())
        files[f"{index:04d}-{kind}-{name}.yaml"] = dump(obj)
    return files
