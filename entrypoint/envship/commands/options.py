"""The options of render, plan and deploy, once: the command line and the action are both built from this
table, so every option exists in both, takes the same values and is checked by the same rules.

Messages name an option as `{--name}`; the error boundary spells it the way the user set it: `--name` on
the command line (errors.cli_spelling), `input 'name'` in the action (`spell_for_action`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from ..errors import UsageError

MAX_WAIT = timedelta(hours=24)  # a rollout or a lock wait longer than a day is a typo


@dataclass(frozen=True)
class Option:
    name: str                    # `--name` on the command line
    commands: tuple[str, ...]
    kind: str                    # flag | duration | count
    help: str
    default: str = ""
    metavar: str = ""
    action_input: str | None = None   # the action's input when it differs from `name`
    action_inverted: bool = False     # the input says the opposite of the flag (rollback vs --no-rollback)

    @property
    def input(self) -> str:
        return self.name if self.action_input is None else self.action_input


ROLLOUT = ("deploy", "promote", "preview")    # the commands that roll a release out
CHANGING = ("plan", *ROLLOUT)                 # ... and plan, which shows what they would change

OPTIONS: tuple[Option, ...] = (
    Option("allow-tag", ("render", "plan", "deploy"), "flag",
           "accept --image REPO:TAG for a protected environment: the tag is resolved to the digest the registry "
           "serves now, and that digest is recorded (other environments accept a tag without this flag)"),
    Option("skip-image-check", CHANGING, "flag",
           "do not check that the digest exists in the registry before touching the cluster (for registries "
           "only the cluster can reach)"),
    Option("allow-mass-prune", CHANGING, "flag",
           "let a deploy prune more than half of the app's objects, every workload, or a Namespace envship "
           "created (otherwise it stops before changing anything)"),
    Option("timeout", ROLLOUT, "duration", "how long the rollout may take before it counts as failed "
           "(default 10m, at most 24h)", "10m", "DURATION"),
    Option("no-rollback", ROLLOUT, "flag", "leave a failed release in place instead of re-applying the "
           "previous healthy one (protected environments always roll back)", action_input="rollback",
           action_inverted=True),
    Option("lock-timeout", ROLLOUT, "duration", "how long to wait for another deploy of the same app and "
           "environment (default 10m, at most 24h)", "10m", "DURATION"),
    Option("exit-code", ("plan",), "flag",
           "exit 3 when deploy would change something, 0 when nothing (1 failed and 2 bad input as always), "
           "as a drift check needs; without it plan exits 0 either way"),
    Option("crashloop-restarts", ROLLOUT, "count", "fail once a container in CrashLoopBackOff has "
           "restarted N times (default 1: at the first back-off; raise it for containers that may crash once "
           "while dependencies start)", "1", "N"),
)

# the action's inputs for what the command line spells otherwise
ACTION_SPELLING = {"env": "input 'environment'", "set": "input 'env'", "secret": "input 'secrets'",
                   "config": "input 'config'", "image": "input 'image'", "pr": "input 'pr'",
                   **{o.name: (f"input '{o.input}: false'" if o.action_inverted else f"input '{o.input}: true'")
                      for o in OPTIONS if o.kind == "flag"}}


def spell_for_action(name: str) -> str:
    """`{--name}` as the action's user wrote it: the input, with the value that turns a flag on."""
    return ACTION_SPELLING.get(name, f"input '{name}'")


def options_for(command: str) -> list[Option]:
    return [o for o in OPTIONS if command in o.commands]


def named(name: str) -> Option:
    return next(o for o in OPTIONS if o.name == name)


def convert(option: Option, text: str) -> bool | float | int:
    """The option's value from its text; a bad one is a usage error naming `{--option}`."""
    if option.kind == "flag":  # only the action passes flags as text
        lowered = text.strip().lower() or ("true" if option.action_inverted else "false")
        if lowered not in ("true", "false"):
            raise UsageError(f"input '{option.input}' must be true or false, not {text!r}",
                             f"set 'with: {option.input}: true' or 'false', or leave it out")
        value = lowered == "true"
        return not value if option.action_inverted else value
    if option.kind == "duration":
        from ..core.config import parse_duration  # PyYAML comes with it: not for --help

        parsed = parse_duration(text or option.default, MAX_WAIT)
        if parsed is None:
            raise UsageError(f"{{--{option.name}}} must be a duration such as 10m, 90s or 1h30m, of at most 24h, "
                             f"not {text!r}", f"set {{--{option.name}}} to e.g. {option.default}")
        return parsed.total_seconds()
    if option.kind == "count":
        text = text or option.default
        if not text.isdigit() or not 1 <= int(text) <= 1000:
            raise UsageError(f"{{--{option.name}}} must be a whole number from 1 to 1000, not {text!r}",
                             f"set {{--{option.name}}} to e.g. {option.default}")
        return int(text)
    raise AssertionError(option.kind)  # pragma: no cover - the table has no other kinds


def from_cli(command: str, args: object) -> dict[str, bool | float | int]:
    """`command`'s options from parsed arguments (flags are booleans there; the rest is text), by name with
    underscores."""
    found: dict[str, bool | float | int] = {}
    for option in options_for(command):
        key = option.name.replace("-", "_")
        value = getattr(args, key)
        found[key] = bool(value) if option.kind == "flag" else convert(option, str(value))
    return found


def from_action(command: str, environ: Mapping[str, str],
                read_input: Callable[[Mapping[str, str], str], str]) -> dict[str, bool | float | int]:
    """`command`'s options from the action's inputs, by name with underscores."""
    return {o.name.replace("-", "_"): convert(o, read_input(environ, o.input)) for o in options_for(command)}
