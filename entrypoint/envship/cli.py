"""Command line and the one error boundary. Commands are imported lazily so `--help` starts fast."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO

from . import __version__
from .errors import EXIT_FAILED, EXIT_USAGE, EnvshipError, Problem, UsageError

if TYPE_CHECKING:
    from .adapters.console import Console

DEFAULT_CONFIG = "envship.yaml"

DESCRIPTION = """\
envship takes one immutable image digest to an environment: it injects the environment's
variables and secrets into environment-agnostic Kubernetes manifests and renders exactly
what that environment receives.

exit codes: 0 done, 1 failed, 2 bad usage or bad input (nothing changed anywhere)"""

RENDER_HELP = """\
Render the objects an environment would receive, without touching any cluster: namespace set,
the app's images pinned to the digest, ownership labels and release annotations added, and the
environment's variables (and --secret values) injected as a hashed ConfigMap (and Secret)
referenced by envFrom from the app's containers. Secret values print as <redacted>."""

RENDER_EPILOG = """\
examples:
  envship render --env staging --image ghcr.io/acme/hello@sha256:<64 hex>
  envship render --env preview --pr 42 --image ... --set FEATURE_X=on --output rendered/
  DB_PASSWORD=... envship render --env production --image ... --secret DB_PASSWORD"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports through envship's error boundary (annotations in Actions, exit code 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", f"see '{self.prog} --help'")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="envship", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"envship {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    render = commands.add_parser(
        "render", help="print the exact objects an environment would receive", description=RENDER_HELP,
        epilog=RENDER_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(render)
    render.add_argument("--env", required=True, metavar="E", help="environment name from the config")
    render.add_argument("--image", required=True, metavar="REPO@sha256:D",
                        help="the app image, pinned by digest (as printed by the build job)")
    render.add_argument("--pr", type=positive_int, metavar="N", help="pull request number (preview environments)")
    render.add_argument("--set", dest="values", action="append", default=[], metavar="K=V",
                        help="a non-secret variable, over the config's env (repeatable)")
    render.add_argument("--secret", dest="secrets", action="append", default=[], metavar="K[=V]",
                        help="a secret variable; K alone reads the value from the environment variable K, "
                             "which keeps it out of the process list (repeatable)")
    render.add_argument("--output", metavar="DIR",
                        help="write one file per object (NNNN-kind-name.yaml, in apply order) instead of stdout")
    render.add_argument("--show-secrets", action="store_true",
                        help="print Secret values instead of <redacted> (never use in CI logs)")

    commands.add_parser(
        "action", help="run as the GitHub Action (reads INPUT_* variables; used by action.yml)",
        description="Run as the GitHub Action: read the inputs from INPUT_* variables, as the runner "
                    "passes them, and write outputs, annotations and the step summary.")
    return parser


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, metavar="PATH",
                        help=f"config file (default: $ENVSHIP_CONFIG or {DEFAULT_CONFIG})")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a pull request number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {value}")
    return value


def parse_values(items: Sequence[str]) -> dict[str, str]:
    from .core.naming import ENV_KEY

    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set {item}: expected KEY=VALUE", "write --set NAME=value")
        check_key(key, "--set", ENV_KEY.fullmatch(key) is not None)
        values[key] = value
    return values


def parse_secrets(items: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    from .core.naming import ENV_KEY

    secrets: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        check_key(key, "--secret", ENV_KEY.fullmatch(key) is not None)
        if not sep:
            if key not in environ:
                raise UsageError(f"--secret {key}: the environment variable {key} is not set",
                                 f"export {key}=... before running, or pass --secret {key}=VALUE")
            value = environ[key]
        secrets[key] = value
    return secrets


def check_key(key: str, flag: str, valid: bool) -> None:
    if not valid:
        raise UsageError(f"{flag} {key}: '{key}' is not a valid variable name",
                         "use letters, digits, '_', '-' and '.', not starting with a digit")
    if key.startswith("ENVSHIP_"):
        raise UsageError(f"{flag} {key}: names starting with ENVSHIP_ are reserved", "rename the variable")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None,
         out: TextIO | None = None, err: TextIO | None = None) -> int:
    environ = os.environ if environ is None else environ
    argv = list(sys.argv[1:] if argv is None else argv)
    console = make_console(argv[0] if argv else "", environ, out, err)
    console.mask(secret_values_in(argv))  # before anything, argparse's own messages included
    try:
        args = build_parser().parse_args(argv)
        return dispatch(args, console, environ)
    except SystemExit as e:  # --help and --version
        return e.code if isinstance(e.code, int) else 0
    except EnvshipError as e:
        for problem in e.problems:
            console.error(problem, e.title)
        return e.exit_code
    except KeyboardInterrupt:
        console.info("interrupted; every envship command can be re-run and converges")
        return 130
    except Exception as e:  # noqa: BLE001 - the one boundary: no traceback for users, never an unscrubbed message
        if environ.get("ENVSHIP_DEBUG"):
            import traceback

            console.info(traceback.format_exc())
        console.error(Problem(f"internal error: {type(e).__name__}: {e}", None,
                              "this is a bug in envship; re-run with ENVSHIP_DEBUG=1 and report the traceback"),
                      "envship internal error")
        return EXIT_FAILED


def secret_values_in(argv: Sequence[str]) -> list[str]:
    """Values of `--secret K=V` and `--secret=K=V` arguments, found without parsing."""
    values = []
    for i, arg in enumerate(argv):
        if arg == "--secret" and i + 1 < len(argv):
            item = argv[i + 1]
        elif arg.startswith("--secret="):
            item = arg.removeprefix("--secret=")
        else:
            continue
        value = item.partition("=")[2]
        if value:
            values.append(value)
    return values


def make_console(command: str, environ: Mapping[str, str], out: TextIO | None, err: TextIO | None) -> Console:
    if command == "action" or environ.get("GITHUB_ACTIONS") == "true":
        from .adapters.github_actions import GitHubActions

        return GitHubActions(environ, out, err)
    from .adapters.console import Console

    return Console(out, err)


def dispatch(args: argparse.Namespace, console: Console, environ: Mapping[str, str]) -> int:
    if args.command == "action":
        from .commands import action

        return action.run(console, environ)
    if args.command == "render":
        from .commands import render

        secrets = parse_secrets(args.secrets, environ)
        console.mask(secrets.values())  # values read from the environment (--secret K)
        opts = render.RenderOptions(
            config=args.config or environ.get("ENVSHIP_CONFIG") or DEFAULT_CONFIG, env=args.env,
            image=args.image, pr=args.pr, values=parse_values(args.values), secrets=secrets,
            output_dir=args.output, show_secrets=args.show_secrets)
        return render.run(opts, console, environ)
    raise UsageError(f"unknown command {args.command}")  # pragma: no cover - argparse rejects it first


def run() -> None:
    sys.exit(main())


__all__ = ["EXIT_USAGE", "main", "run"]
