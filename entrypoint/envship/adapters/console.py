"""Where a run's words go. `Console` writes for a terminal; `GitHubActions` (github_actions.py) adds the
runner's workflow commands. Both scrub every registered secret value from everything they print.

stdout carries only a command's data (rendered YAML, a digest, a diff, a JSON document); everything else
(progress, warnings, errors, workflow commands) goes to stderr, so `envship render > file` writes the YAML alone.

Levels, as kubectl's and kapp's users expect them: `-q` keeps warnings, errors and the data only; `-v` adds
the details (each Kubernetes API request with its status and time). Colour only on a terminal, and never
when NO_COLOR is set to anything but an empty string (no-color.org) or TERM is `dumb`."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import TextIO

from ..errors import Problem, Spelling, cli_spelling, spell_options

SCRUBBED = "***"
QUIET, NORMAL, VERBOSE = -1, 0, 1
RED, YELLOW, GREEN, CYAN, RESET = "\x1b[31m", "\x1b[33m", "\x1b[32m", "\x1b[36m", "\x1b[0m"


def wants_color(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """no-color.org: NO_COLOR set to a non-empty value turns colour off; so do a dumb terminal and any stream
    that is not a terminal (a pipe, a file, a CI log)."""
    if environ.get("NO_COLOR", "") != "" or environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Console:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, spell: Spelling = cli_spelling,
                 environ: Mapping[str, str] | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.spell = spell  # how options named `{--name}` in messages are written for this user
        self._secrets: list[str] = []
        self.verbosity = NORMAL
        self.outputs: dict[str, str] = {}   # what set_output was given, for --output json documents
        environ = {} if environ is None else environ
        self.color_err = wants_color(self.err, environ)
        self.color_out = wants_color(self.out, environ)

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
        """Progress: what is being done. Silenced by -q."""
        if self.verbosity >= NORMAL:
            self.say(text)

    def detail(self, text: str) -> None:
        """What only -v shows: requests, timings."""
        if self.verbosity >= VERBOSE:
            self.say(text)

    def say(self, text: str, color: str = "") -> None:
        """A line on stderr whatever the level (warnings and errors use it directly)."""
        line = self.words(text)
        if color and self.color_err:
            line = color + line + RESET
        self.err.write(line + "\n")
        self.err.flush()

    def diff(self, text: str) -> None:
        """A diff as data on stdout; on a terminal its added and removed lines in colour."""
        if not self.color_out:
            self.result(text)
            return
        colored = []
        for line in text.splitlines(keepends=True):
            body = line.rstrip("\n")
            color = RED if body.lstrip().startswith("-") else GREEN if body.lstrip().startswith("+") else \
                CYAN if body.startswith("#") else ""
            colored.append(f"{color}{body}{RESET}{line[len(body):]}" if color and body else line)
        self.result("".join(colored))

    def untrusted(self, text: str) -> None:
        """Log lines that come from outside envship (events, pod logs, echoed manifests), printed as they
        are but for secrets; in GitHub Actions they are fenced off so none of them can act as a command."""
        self.err.write(self.scrub(text) + "\n")
        self.err.flush()

    def warn(self, problem: Problem) -> None:
        self.say("warning: " + problem.render(self.spell), YELLOW)

    def error(self, problem: Problem, title: str, details: str = "") -> None:
        """An error; `details` (events, log lines from the cluster) follow it as untrusted text."""
        self.say("error: " + problem.render(self.spell), RED)
        if details:
            self.untrusted(details)

    @contextlib.contextmanager
    def group(self, title: str) -> Iterator[None]:
        yield

    def set_output(self, name: str, value: str) -> None:
        """Step outputs exist only in GitHub Actions; a terminal has the stdout result (and --output json,
        which reads them back from `outputs`) instead."""
        self.outputs[name] = value

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
