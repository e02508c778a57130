"""Rendered objects as YAML text (pure): one multi-document stream, or one file per object.

The text is safe to print in a GitHub Actions log: the runner takes any line that starts (after
whitespace) with `::` or `##[` as a workflow command, and manifests (a pull request's, for previews) may
hold such text in a value or a key. Every string that could put one at the start of a line is written
double-quoted, where line breaks are escapes, and nothing is wrapped: no output line can start with one.
The YAML means exactly the same."""

from __future__ import annotations

import re
from typing import Any

import yaml

from .naming import sanitize_label
from .render import Rendering, redact_secrets

try:  # pragma: no cover
    from yaml import CSafeDumper as _BaseDumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _BaseDumper  # type: ignore[assignment]

COMMAND_STARTS = ("::", "##[")  # workflow commands, and the runner's older form
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")


def could_start_a_command(text: str) -> bool:
    """Whether some line of `text` would reach the runner as a workflow command."""
    if "::" not in text and "##[" not in text:
        return False
    return any(line.lstrip().startswith(COMMAND_STARTS) for line in _LINE_BREAKS.split(text))


class _Dumper(_BaseDumper):
    """The safe dumper, with strings that could start a workflow command double-quoted."""


def _represent_str(dumper: yaml.representer.SafeRepresenter, data: str) -> yaml.ScalarNode:
    if could_start_a_command(data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_str(data)


_Dumper.add_representer(str, _represent_str)

# width -1: never fold a long line (a folded one could begin with a command)
_STYLE: dict[str, Any] = {"sort_keys": False, "default_flow_style": False, "allow_unicode": True, "width": -1}


def dump(obj: Any, sort_keys: bool = False) -> str:
    return str(yaml.dump(obj, Dumper=_Dumper, **{**_STYLE, "sort_keys": sort_keys}))


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
