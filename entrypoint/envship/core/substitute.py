"""`${NAME}` substitution in string values; `$${NAME}` stands for a literal `${NAME}`.

Kubernetes' own `$(NAME)` syntax is left alone. A `${NAME}` that no variable answers is an error with
the file and line, never an empty string that would deploy silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .yamlsrc import Path

_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}")


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


def substitute_tree(value: Any, variables: Mapping[str, str], path: Path = ()) -> tuple[Any, list[Unresolved]]:
    """Substitute every string value in a JSON-like tree (keys are left alone)."""
    unresolved: list[Unresolved] = []

    def walk(node: Any, here: Path) -> Any:
        if isinstance(node, str):
            if "${" not in node:
                return node
            return substitute_text(node, variables, lambda name: unresolved.append(Unresolved(name, here)))
        if isinstance(node, dict):
            return {k: walk(v, here + (k,)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, here + (i,)) for i, v in enumerate(node)]
        return node

    return walk(value, path), unresolved
