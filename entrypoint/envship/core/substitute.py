"""`${NAME}` substitution in string values; `$${NAME}` stands for a literal `${NAME}`.

Kubernetes' own `$(NAME)` syntax is left alone. A `${NAME}` that no variable answers is an error with
the file and line, never an empty string that would deploy silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from .yamlsrc import Path

_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
_WHOLE_REFERENCE = re.compile(r"\$\{[^{}]*\}")
_RETYPED_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null")}
_LOADER = yaml.SafeLoader("")


@dataclass(frozen=True)
class Unresolved:
    name: str
    path: Path


def substitute_text(text: str, variables: Mapping[str, str], missing: Callable[[str], None]) -> str:
    """Substitute one string; report each unknown name through `missing`."""
    if "${" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "${"
        name = match.group(1)
        if name in variables:
            return variables[name]
        missing(name)
        return match.group(0)

    return _TOKEN.sub(replace, text)


def retype(text: str) -> Any:
    """The value an unquoted YAML scalar `text` would have: `3` -> 3, `true` -> True, else the text."""
    tag = _LOADER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    if tag in _RETYPED_TAGS:
        return _LOADER.construct_object(yaml.ScalarNode(tag, text))
    return text


def substitute_tree(value: Any, variables: Mapping[str, str], path: Path = (),
                    plain: Container[Path] = ()) -> tuple[Any, list[Unresolved]]:
    """Substitute every string value in a JSON-like tree (keys are left alone). A string at a path in
    `plain` (an unquoted scalar) that is exactly one `${X}` takes the YAML type of its value, as if the
    text had been substituted before parsing: `replicas: ${REPLICAS}` gives a number, `"${PORT}"` a string."""
    unresolved: list[Unresolved] = []

    def walk(node: Any, here: Path) -> Any:
        if isinstance(node, str):
            if "${" not in node:
                return node
            text = substitute_text(node, variables, lambda name: unresolved.append(Unresolved(name, here)))
            if here in plain and _WHOLE_REFERENCE.fullmatch(node) and text != node:
                return retype(text)
            return text
        if isinstance(node, dict):
            return {k: walk(v, here + (k,)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, here + (i,)) for i, v in enumerate(node)]
        return node

    return walk(value, path), unresolved
