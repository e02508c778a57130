"""Where a run's words go. `Console` writes for a terminal; `GitHubActions` (github_actions.py) adds the
runner's workflow commands. Both scrub every registered secret value from everything they print.

stdout carries only a command's data (rendered YAML, a digest, a diff); everything else (progress,
warnings, errors, workflow commands) goes to stderr, so `envship render > file` writes the YAML alone."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import TextIO

from ..errors import Problem, Spelling, cli_spelling, spell_options

SCRUBBED = "***"


class Console:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, spell: Spelling = cli_spelling) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.spell = spell  # how options named `{--name}` in messages are written for this user
        self._secrets: list[str] = []

    # -- secrets --------------------------------------------------------------------------------
    def mask(self, values: Iterable[str]) -> None:
        """Register secret values; they are replaced by *** in anything printed afterwards."""
        for value in values:
            for piece in (p.strip() for p in secret_forms(value)):
                if len(piece) < 3:
                    continue  # very short values would scrub ordinary text
                if piece not in self._secrets:
                    self._secrets.append(piece)
        self._secrets.sort(key=len, reverse=True)  # longest first, so a secret containing another goes whole

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, SCRUBBED)
        return text

    # -- output ---------------------------------------------------------------------------------
    def result(self, text: str) -> None:
        """The command's product (rendered YAML, a digest): stdout, nothing else there. Not scrubbed: it
        must stay exactly what would be applied (a secret "admin" must not turn a user name into ***).
        Commands keep secrets out of results by construction (Secret data is <redacted>), and in a
        workflow log the runner masks them anyway."""
        self.out.write(text)
        self.out.flush()

    def words(self, text: str) -> str:
        """Text as it may be shown: options spelled for this user, secrets scrubbed."""
        return self.scrub(spell_options(text, self.spell))

    def info(self, text: str) -> None:
        self.err.write(self.words(text) + "\n")
        self.err.flush()

    def untrusted(self, text: str) -> None:
        """Log lines that come from outside envship (events, pod logs, echoed manifests), printed as they
        are but for secrets; in GitHub Actions they are fenced off so none of them can act as a command."""
        self.err.write(self.scrub(text) + "\n")
        self.err.flush()

    def warn(self, problem: Problem) -> None:
        self.info("warning: " + problem.render(self.spell))

    def error(self, problem: Problem, title: str, details: str = "") -> None:
        """An error; `details` (events, log lines from the cluster) follow it as untrusted text."""
        self.info("error: " + problem.render(self.spell))
        if details:
            self.untrusted(details)

    @contextlib.contextmanager
    def group(self, title: str) -> Iterator[None]:
        yield

    def set_output(self, name: str, value: str) -> None:
        """Step outputs exist only in GitHub Actions; a terminal has the stdout result instead."""

    def summary(self, markdown: str) -> None:
        """The step summary exists only in GitHub Actions."""


def secret_forms(value: str) -> list[str]:
    """The forms of a secret value to hide: the value itself, its base64 form (what a Secret object
    carries) and each line of a multi-line value (the runner masks line by line)."""
    import base64

    return [value, base64.b64encode(value.encode()).decode(), *value.splitlines()]


def fenced(text: str) -> str:
    """`text` as a Markdown code block that nothing inside it can close (a fence longer than any run of
    backticks in it): pod logs in a step summary must not turn into markup."""
    import re

    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"
