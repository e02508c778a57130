"""The GitHub Actions runner: inputs, workflow commands, step outputs and the step summary.

Reference: docs.github.com "Workflow commands for GitHub Actions". Inputs arrive as INPUT_<NAME> with
the name upper-cased and hyphens kept (`github-token` -> `INPUT_GITHUB-TOKEN`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import TextIO

from ..core.output import could_start_a_command
from ..errors import Problem, Spelling, UsageError, cli_spelling
from .console import Console, secret_forms


def parse_assignments(text: str, source: str, sensitive: bool = False) -> dict[str, str]:
    """Multi-line `KEY=VALUE` lists; blank lines and `#` comments are skipped. A multi-line value (a PEM
    key) is written as `KEY<<DELIM`, its lines, then `DELIM` alone on a line, as in GITHUB_OUTPUT.
    `sensitive` (the secrets input): errors never quote the line's text, which may be a value."""
    result: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line, number = lines[i], i + 1
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "<<" in stripped and ("=" not in stripped or stripped.index("<<") < stripped.index("=")):
            key, delimiter = (part.strip() for part in stripped.split("<<", 1))
            body: list[str] = []
            while i < len(lines) and lines[i].strip() != delimiter:
                body.append(lines[i])
                i += 1
            if i >= len(lines) or not delimiter:
                shown = "the value" if sensitive else f"'{key}<<{delimiter}'"
                raise UsageError(f"{source}, line {number}: {shown} is never closed",
                                 f"end the value with a line holding only {delimiter or 'the delimiter'}")
            i += 1
            result[_checked_key(key, source, number, sensitive)] = "\n".join(body)
            continue
        if "=" not in stripped:
            raise UsageError(f"{source}, line {number}: expected KEY=VALUE"
                             + (" (the line is not shown: it may be a secret value)" if sensitive else ""),
                             "write one KEY=VALUE per line (the value may contain '=')")
        key, value = stripped.split("=", 1)
        if sensitive and value and not value.strip("="):
            raise UsageError(f"{source}, line {number}: the value is only '=' (the line is not shown: it may be a "
                             "base64 secret value without its KEY=)", "write one KEY=VALUE per line")
        result[_checked_key(key.strip(), source, number, sensitive)] = value
    return result


def _checked_key(key: str, source: str, number: int, sensitive: bool = False) -> str:
    from ..core.naming import ENV_KEY

    if not ENV_KEY.fullmatch(key):
        shown = "the name before '=' (not shown: the line may hold a secret value)" if sensitive else f"'{key}'"
        raise UsageError(f"{source}, line {number}: {shown} is not a valid variable name",
                         "use letters, digits, '_', '-' and '.', not starting with a digit")
    return key


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


class GitHubActions(Console):
    """Console plus workflow commands: masks, annotations, groups, outputs and the step summary.

    Workflow commands go to stderr with the log (the runner reads commands from both streams), so stdout
    stays the command's data. Text from outside envship is fenced with `::stop-commands::<token>` ...
    `::<token>::` (a random token per block, which the text cannot guess), as the runner documents for
    printing untrusted content; any other log line that could act as a command is fenced the same way.
    With `stdout_is_log` (the action, whose stdout only the log reads) the data is fenced too."""

    def __init__(self, environ: Mapping[str, str], out: TextIO | None = None, err: TextIO | None = None,
                 stdout_is_log: bool = False, spell: Spelling = cli_spelling) -> None:
        super().__init__(out, err, spell)
        self.environ = environ
        self.workspace = environ.get("GITHUB_WORKSPACE", "")
        self.stdout_is_log = stdout_is_log
        self._registered: set[str] = set()

    def mask(self, values: Iterable[str]) -> None:
        values = [v for v in values if v]
        for value in values:
            for piece in secret_forms(value):
                if piece.strip() and piece not in self._registered:
                    self._registered.add(piece)
                    self._command(f"::add-mask::{escape_data(piece)}")
        super().mask(values)

    def say(self, text: str, color: str = "") -> None:
        if could_start_a_command(text):
            self.untrusted(text)
        else:
            super().say(text)

    def untrusted(self, text: str) -> None:
        token = secrets.token_hex(16)
        self._command(f"::stop-commands::{token}")
        Console.untrusted(self, text)
        self._command(f"::{token}::")

    def result(self, text: str) -> None:
        if not self.stdout_is_log:
            super().result(text)  # data that may go to a file or a pipe: written as it is
            return
        token = secrets.token_hex(16)
        end = "" if text.endswith("\n") else "\n"
        super().result(f"::stop-commands::{token}\n{text}{end}::{token}::\n")

    def error(self, problem: Problem, title: str, details: str = "") -> None:
        annotated = Problem(problem.message + (f"\n{details}" if details else ""), problem.location, problem.hint)
        self._command(self._annotation("error", annotated, title))  # escaped: one line whatever it holds
        super().error(problem, title, details)

    def warn(self, problem: Problem) -> None:
        self._command(self._annotation("warning", problem, "envship"))

    @contextlib.contextmanager
    def group(self, title: str) -> Iterator[None]:
        self._command(f"::group::{escape_data(self.words(title))}")
        try:
            yield
        finally:
            self._command("::endgroup::")

    def set_output(self, name: str, value: str) -> None:
        """Written verbatim: an output is a value for later steps, and the runner masks registered secrets
        wherever an output is shown (scrubbing here would change the value itself)."""
        self.outputs[name] = value
        path = self.environ.get("GITHUB_OUTPUT")
        if not path:
            return
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{name}<<{delimiter}{os.linesep}{value}{os.linesep}{delimiter}{os.linesep}")

    def summary(self, markdown: str) -> None:
        path = self.environ.get("GITHUB_STEP_SUMMARY")
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(self.words(markdown) + "\n")

    def _annotation(self, level: str, problem: Problem, title: str) -> str:
        props = [f"title={escape_property(title)}"]
        loc = problem.location
        if loc is not None:
            props.insert(0, f"file={escape_property(self._relative(loc.file))}")
            if loc.line:
                props.insert(1, f"line={loc.line}")
            if loc.column:
                props.insert(2, f"col={loc.column}")
        message = problem.message + (f"\nhint: {problem.hint}" if problem.hint else "")
        return f"::{level} {','.join(props)}::{escape_data(self.words(message))}"

    def _relative(self, file: str) -> str:
        """Annotations attach to files by path relative to the repository root (the workspace)."""
        if self.workspace and os.path.isabs(file):
            with contextlib.suppress(ValueError):
                rel = os.path.relpath(file, self.workspace)
                if not rel.startswith(".."):
                    return rel
        return file

    def _command(self, line: str) -> None:
        self.err.write(line + "\n")
        self.err.flush()
