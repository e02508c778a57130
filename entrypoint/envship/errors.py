"""Typed errors. Everything below the CLI raises these; only `cli.main` turns them into output.

Exit codes follow DESIGN.md: 2 for bad usage or bad input (nothing changed anywhere), 1 for a failure
while doing the work.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CHANGES = 3   # plan --exit-code: it ran, and deploy would change something (0: nothing to change)

# Messages name an option as `{--name}`; whoever prints them spells it as the user set it (`--name` on the
# command line, `input 'name'` in the action): below the entry point nothing knows which it was.
OPTION = re.compile(r"\{--([a-z][a-z-]*)\}")
Spelling = Callable[[str], str]


def cli_spelling(name: str) -> str:
    return f"--{name}"


def spell_options(text: str, spell: Spelling = cli_spelling) -> str:
    return OPTION.sub(lambda m: spell(m.group(1)), text) if "{--" in text else text


@dataclass(frozen=True)
class Location:
    """Where in a user's file a problem is; line and column are 1-based, 0 when unknown."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line and self.column:
            return f"{self.file}:{self.line}:{self.column}"
        if self.line:
            return f"{self.file}:{self.line}"
        return self.file


@dataclass(frozen=True)
class Problem:
    """One user mistake: what is wrong, where, and how to fix it."""

    message: str
    location: Location | None = None
    hint: str = ""

    def render(self, spell: Spelling = cli_spelling) -> str:
        where = f"{self.location}: " if self.location else ""
        text = f"{where}{spell_options(self.message, spell)}"
        if self.hint:
            text += f"\n  hint: {spell_options(self.hint, spell)}"
        return text

    def spelled(self, spell: Spelling) -> Problem:
        return Problem(spell_options(self.message, spell), self.location, spell_options(self.hint, spell))


@dataclass
class EnvshipError(Exception):
    """Base of every error envship reports to the user; carries one or more problems."""

    problems: list[Problem] = field(default_factory=list)
    exit_code: int = EXIT_FAILED
    title: str = "envship failed"

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)

    def __str__(self) -> str:
        return self.render()


def _single(message: str, hint: str, location: Location | None) -> list[Problem]:
    return [Problem(message=message, location=location, hint=hint)]


class UsageError(EnvshipError):
    """Bad command line: wrong flag value, unknown environment, malformed --set."""

    def __init__(self, message: str, hint: str = "", location: Location | None = None) -> None:
        super().__init__(_single(message, hint, location), exit_code=EXIT_USAGE, title="bad usage")


class ConfigError(EnvshipError):
    """envship.yaml is invalid; lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(list(problems), exit_code=EXIT_USAGE, title="invalid envship config")


class ManifestError(EnvshipError):
    """A manifest cannot be rendered for this environment (bad YAML, unresolved variable, ...)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(list(problems), exit_code=EXIT_USAGE, title="invalid manifests")


class OperationError(EnvshipError):
    """The work itself failed (I/O, remote system); exit code 1."""

    def __init__(self, message: str, hint: str = "", location: Location | None = None) -> None:
        super().__init__(_single(message, hint, location), exit_code=EXIT_FAILED, title="envship failed")


class RefusedError(EnvshipError):
    """A safety check stopped a command before it changed anything (a sweeping prune); exit code 2."""

    def __init__(self, message: str, hint: str = "", location: Location | None = None) -> None:
        super().__init__(_single(message, hint, location), exit_code=EXIT_USAGE, title="deploy refused")
