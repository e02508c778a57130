"""Command line and the one error boundary. Commands are imported lazily so `--help` starts fast."""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO

from . import __version__
from .errors import EXIT_FAILED, EXIT_USAGE, EnvshipError, Problem, UsageError

if TYPE_CHECKING:
    from .adapters.console import Console
    from .commands.render import RenderOptions

DEFAULT_CONFIG = "envship.yaml"

DESCRIPTION = """\
envship takes one immutable image digest to an environment: it injects the environment's
variables and secrets into environment-agnostic Kubernetes manifests and renders exactly
what that environment receives.

exit codes: 0 done, 1 failed, 2 bad usage or bad input (nothing changed anywhere),
            3 plan --exit-code: deploy would change something

output: -q prints only warnings, errors and the data; -v adds each Kubernetes API request;
        --output json (plan, deploy, status, resolve) prints one JSON document on stdout;
        colour only on a terminal, never with NO_COLOR set"""

RENDER_HELP = """\
Render the objects an environment would receive, without touching any cluster: namespace set,
the app's images pinned to the digest, ownership labels and release annotations added, and the
environment's variables (and --secret values) injected as a hashed ConfigMap (and Secret)
referenced by envFrom from the app's containers. Secret values print as <redacted>."""

PLAN_HELP = """\
Show what 'envship deploy' would change, without changing anything: every rendered object is
applied with the server's dry-run (so defaulting, admission and validation run), compared with
what is live, and shown as a diff; objects deploy would prune are listed. Secret values are
masked. Exits 0 with or without changes (the 'changes' output counts them); with --exit-code, 3 when
deploy would change something, 0 when nothing would change, 1 failed, 2 bad input."""

DEPLOY_HELP = """\
Deploy one image digest to an environment: render, take the environment's deploy lock, apply
with server-side apply in dependency order (objects of one tier in parallel), wait until every
workload is healthy (watch-based; fails fast on CrashLoopBackOff, ImagePullBackOff, missing
Secret keys, unschedulable pods, or the progress deadline), prune what is no longer rendered,
and record the release. On failure the previous healthy release is re-applied (always for
protected environments; --no-rollback opts out elsewhere). The deploy's objects are one ApplySet
(applyset.kubernetes.io labels, parent Secret envship.<app>.<env>): objects of anyone else are never
changed or pruned, nor taken over (unless the environment sets 'adopt: true'), an existing namespace
envship did not create is used as it is, and a prune of most of the app stops the deploy unless
--allow-mass-prune."""

BUILD_HELP = """\
Build the app image once, push it, and print the one immutable thing deploy jobs take: REPO@sha256:D,
the digest the registry serves (envship asks the registry after the push and fails if it differs).
Tags (sha-<7 hex>, the branch, --tag) are extra pointers for humans; deploys use the digest.
The image gets the OCI labels org.opencontainers.image.revision, .source and .created, and a release
record (repository, digest, tags, git sha, ref, source URL, run URL, build time, builder) is written
to --release-file as JSON; in GitHub Actions also to the outputs image, digest and release.

builders:
  docker   docker buildx build --push --metadata-file (the default in GitHub Actions, where the
           runner mounts the Docker socket into the action); --platform and --cache-* pass through
  buildah  daemonless: buildah build --isolation chroot, then buildah push to each tag (the default
           elsewhere when buildah is installed; docker otherwise). Pushes use each tool's own login
           (docker login / buildah login)."""

BUILD_EPILOG = """\
examples:
  envship build                                    # envship.yaml's image, ./Dockerfile
  envship build --builder buildah --context app --tag v1.2.0
  envship build --builder docker --platform linux/amd64,linux/arm64 \\
      --cache-from type=gha --cache-to type=gha,mode=max"""

PROMOTE_HELP = """\
Deploy to the target environment exactly the digest that runs in the source, with the target's variables
and secrets: the usual manual promotion (workflow_dispatch) from staging to production. The digest is
read from the source's cluster (its last release record) and checked there: its workloads still run the
recorded image, are healthy, and their pods' imageID is the recorded digest; the target's promote-from
must name the source. The target's release and GitHub deployment record where the digest came from
(environment, revision, commit), and the deployment's ref is the commit the digest was built from.

exit codes: 0 promoted, 1 the deploy failed (rolled back), 2 refused (unhealthy or drifted source, not
the --expect-digest, not the target's promote-from): nothing changed"""

ROUTES_HELP = """\
Apply (or with --delete remove) an environment's Cloudflare route alone, to re-point its host without a
redeploy; deploy runs the same code after a healthy rollout. dns mode: one proxied record per host (A/AAAA
to an IP, CNAME to a hostname; target 'ingress' takes the address the cluster's Ingress published).
tunnel mode: the host's ingress rule in the tunnel's configuration (every other rule kept, the catch-all
last) and a proxied CNAME to <tunnel>.cfargotunnel.com. Records carry the comment
'envship app=A env=E ns=N repo=R'; a record or rule without this environment's mark is never changed.
--dry-run prints the plan as a table and sends no write. The token comes from CLOUDFLARE_API_TOKEN, the
API from CLOUDFLARE_API_URL (default https://api.cloudflare.com/client/v4).

exit codes: 0 done (or nothing to do), 1 failed (Cloudflare unreachable, smoke check failed: the
previous route restored), 2 bad input or a record that is not this environment's in the way"""

RESOLVE_HELP = """\
Print REPO@sha256:D for REPO:TAG: the digest the registry serves for the tag, read through the OCI
distribution API (for a multi-arch image, the index's digest). REPO@sha256:D checks that the digest
exists. Credentials, first match: GITHUB_TOKEN for ghcr.io; Google application default credentials
for *.pkg.dev and gcr.io; the docker config ($DOCKER_CONFIG/config.json or ~/.docker/config.json,
credential helpers included); else anonymous. Plain HTTP is used only for localhost, 127.0.0.1, [::1]
and the hosts in ENVSHIP_INSECURE_REGISTRIES (comma-separated). 429 and 5xx answers are retried.

exit codes: 0 resolved, 1 registry unreachable, unauthorized or failing, 2 malformed reference or
no such repository, tag or digest"""

RENDER_EPILOG = """\
examples:
  envship render --env staging --image ghcr.io/acme/hello@sha256:<64 hex>
  envship render --env preview --pr 42 --image ... --set FEATURE_X=on --output rendered/
  DB_PASSWORD=... envship render --env production --image ... --secret DB_PASSWORD"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports through envship's error boundary (annotations in Actions, exit code 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", f"see '{self.prog} --help'")


def level_options(suppress: bool) -> argparse.ArgumentParser:
    """-q/-v, accepted before the command and after it (`envship -v deploy`, `envship deploy -v`); after it,
    the defaults are suppressed so that they do not undo what was given before it."""
    levels = argparse.ArgumentParser(add_help=False)
    default = argparse.SUPPRESS if suppress else False
    group = levels.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="print only warnings, errors and the command's data")
    group.add_argument("-v", "--verbose", action="store_true", default=default,
                       help="also print details: each Kubernetes API request, its status and time")
    return levels


class _Commands:
    """add_parser with the -q/-v options every command takes."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.actions = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
        self.actions.required = True
        self.levels = level_options(suppress=True)

    def add_parser(self, name: str, **kwargs: object) -> argparse.ArgumentParser:
        return self.actions.add_parser(name, parents=[self.levels], **kwargs)  # type: ignore[arg-type,list-item]


def add_output_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", choices=("text", "json"), default="text", metavar="text|json",
                        help="json: one JSON document on stdout instead of text (schema: README, Command line "
                             "conventions)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="envship", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[level_options(suppress=False)])
    parser.add_argument("--version", action="version", version=f"envship {__version__}")
    commands = _Commands(parser)

    render = commands.add_parser(
        "render", help="print the exact objects an environment would receive", description=RENDER_HELP,
        epilog=RENDER_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_target_options(render)
    render.add_argument("--output", metavar="DIR",
                        help="write one file per object (NNNN-kind-name.yaml, in apply order) instead of stdout")
    render.add_argument("--show-secrets", action="store_true",
                        help="print Secret values instead of <redacted> (never use in CI logs)")
    add_table_options(render, "render")

    plan = commands.add_parser(
        "plan", help="show what deploy would change (server-side dry-run); changes nothing",
        description=PLAN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_target_options(plan)
    add_table_options(plan, "plan")
    add_output_format(plan)

    deploy = commands.add_parser(
        "deploy", help="apply to the cluster, wait until healthy, prune; roll back on failure",
        description=DEPLOY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_target_options(deploy)
    add_table_options(deploy, "deploy")
    add_output_format(deploy)
    deploy.add_argument("--dry-run", action="store_true", help="only plan: same as 'envship plan'")

    build = commands.add_parser(
        "build", help="build and push the app image; print REPO@sha256:D (the digest the registry serves)",
        description=BUILD_HELP, epilog=BUILD_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(build)
    build.add_argument("--repository", metavar="REPO",
                       help="image repository to push to, instead of the config's 'image' (e.g. ghcr.io/acme/hello)")
    build.add_argument("--context", default=".", metavar="DIR", help="build context directory (default: .)")
    build.add_argument("--file", metavar="PATH",
                       help="the Dockerfile (default: Dockerfile, else Containerfile, in the context)")
    build.add_argument("--builder", choices=("docker", "buildah"),
                       help="docker (buildx) or buildah (daemonless); default: docker in GitHub Actions, "
                            "else buildah if installed, else docker")
    build.add_argument("--tag", dest="tags", action="append", default=[], metavar="TAG",
                       help="an extra tag to push, besides sha-<7 hex> and the branch (repeatable)")
    build.add_argument("--build-arg", dest="build_args", action="append", default=[], metavar="K=V",
                       help="a build argument (repeatable)")
    build.add_argument("--platform", dest="platforms", action="append", default=[], metavar="OS/ARCH",
                       help="target platform(s), e.g. linux/amd64,linux/arm64 (docker only; repeatable)")
    build.add_argument("--cache-from", action="append", default=[], metavar="SPEC",
                       help="passed to docker buildx build --cache-from, e.g. type=gha (docker only; repeatable)")
    build.add_argument("--cache-to", action="append", default=[], metavar="SPEC",
                       help="passed to docker buildx build --cache-to, e.g. type=gha,mode=max (docker only; "
                            "repeatable)")
    build.add_argument("--release-file", default="release.json", metavar="PATH",
                       help="where to write the release record, JSON (default: release.json; for "
                            "actions/upload-artifact)")

    resolve = commands.add_parser(
        "resolve", help="print REPO@sha256:D for REPO:TAG, from the registry", description=RESOLVE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    resolve.add_argument("reference", metavar="REPO:TAG", help="the image to resolve, e.g. ghcr.io/acme/hello:main")
    add_output_format(resolve)

    promote = commands.add_parser(
        "promote", help="deploy to one environment the digest that runs, healthy, in another",
        description=PROMOTE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(promote)
    promote.add_argument("--from", dest="source", required=True, metavar="E",
                         help="the environment whose running digest is promoted (the target's promote-from)")
    promote.add_argument("--to", dest="target", required=True, metavar="E", help="the environment to deploy to")
    promote.add_argument("--expect-digest", metavar="sha256:D",
                         help="refuse unless the source runs exactly this digest")
    add_value_options(promote)
    add_table_options(promote, "promote")

    preview = commands.add_parser(
        "preview", help="deploy, update or tear down a pull request's preview (from its pull_request event)",
        description="Read the pull_request event (--event, default $GITHUB_EVENT_PATH): opened, reopened and "
                    "synchronize (and labeled, with require-label) deploy or update the pull request's preview "
                    "environment; closed (and unlabeled) tear it down (route, objects, the namespace envship "
                    "created, GitHub deployments inactive, the GitHub environment preview/pr-N deleted when the "
                    "token may). One sticky comment on the pull request says where and in which state. Pull "
                    "requests from forks get no preview unless --allow-forks; 'max' is enforced.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(preview)
    preview.add_argument("--image", default="", metavar="REPO@sha256:D",
                         help="the pull request's image (needed to deploy, not to tear down)")
    preview.add_argument("--event", metavar="PATH", help="the pull_request event (default: $GITHUB_EVENT_PATH)")
    preview.add_argument("--allow-forks", action="store_true",
                         help="give pull requests from forks a preview too (their code runs with your credentials)")
    preview.add_argument("--env", metavar="E", help="the preview environment, when the config has several")
    add_value_options(preview)
    add_table_options(preview, "preview")

    gc = commands.add_parser(
        "gc", help="remove previews of closed pull requests and idle ones (for a schedule)",
        description="Find the previews on each preview environment's cluster (the namespaces envship created "
                    "for them, this repository's only) and remove those whose pull request is closed or gone, or "
                    "that had no deploy for longer than the environment's ttl: route, objects, namespace, GitHub "
                    "deployments and environment, with a last word in the sticky comment.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(gc)
    gc.add_argument("--env", metavar="E", help="one preview environment (default: all)")
    gc.add_argument("--dry-run", action="store_true", help="list what would go and why; change nothing")

    teardown = commands.add_parser(
        "teardown", help="remove an environment's objects, route and (if envship created it) namespace",
        description="Remove a deploy target, a preview usually: its Cloudflare route first, then the members "
                    "of its ApplySet (each by uid), its release records and inventory, and its namespace when "
                    "envship created it. Objects of anyone else are left alone. Refused (exit 2) for protected "
                    "environments. Re-runnable: a teardown cut short is finished by running it again.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(teardown)
    teardown.add_argument("--env", required=True, metavar="E", help="environment name from the config")
    teardown.add_argument("--pr", type=pr_number, metavar="N", help="pull request number (preview environments)")

    status = commands.add_parser(
        "status", help="which digest runs where, from which commit, healthy or not",
        description="Per environment (previews aside): the running release read from its cluster (revision, "
                    "digest, commit, where it was promoted from), whether it is healthy (its workloads run the "
                    "recorded image, ready, and their pods the recorded digest), its URL, and GitHub's latest "
                    "deployment of it when GITHUB_TOKEN and GITHUB_REPOSITORY are set. Exit 1 when an "
                    "environment could not be read.", formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(status)
    status.add_argument("--env", metavar="E", help="one environment (default: all but previews)")
    status.add_argument("--output", default="table", metavar="table|json", help="table (default) or json")

    routes = commands.add_parser(
        "routes", help="apply (or remove) an environment's Cloudflare route alone, owned records only",
        description=ROUTES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(routes)
    routes.add_argument("--env", required=True, metavar="E", help="environment name from the config")
    routes.add_argument("--pr", type=pr_number, metavar="N", help="pull request number (preview environments)")
    routes.add_argument("--dry-run", action="store_true",
                        help="print the plan (host, current, desired, action) and send no write")
    routes.add_argument("--delete", action="store_true",
                        help="remove this environment's records and tunnel rule (refused for protected "
                             "environments); nothing else is touched")

    commands.add_parser(
        "action", help="run as the GitHub Action (reads INPUT_* variables; used by action.yml)",
        description="Run as the GitHub Action: read the inputs from INPUT_* variables, as the runner "
                    "passes them, and write outputs, annotations and the step summary.")
    return parser


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, metavar="PATH",
                        help=f"config file (default: $ENVSHIP_CONFIG or {DEFAULT_CONFIG})")


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """What render, plan and deploy share: which environment, which image, which values."""
    add_config_option(parser)
    parser.add_argument("--env", required=True, metavar="E", help="environment name from the config")
    parser.add_argument("--image", required=True, metavar="REPO@sha256:D",
                        help="the app image, pinned by digest (as printed by the build job)")
    parser.add_argument("--pr", type=pr_number, metavar="N", help="pull request number (preview environments)")
    add_value_options(parser)


def add_value_options(parser: argparse.ArgumentParser) -> None:
    """The environment's values for this run: --set and --secret."""
    parser.add_argument("--set", dest="values", action="append", default=[], metavar="K=V",
                        help="a non-secret variable, over the config's env (repeatable)")
    parser.add_argument("--secret", dest="secrets", action="append", default=[], metavar="K[=V]",
                        help="a secret variable; K alone reads the value from the environment variable K, "
                             "which keeps it out of the process list (repeatable)")


def add_table_options(parser: argparse.ArgumentParser, command: str) -> None:
    """The options commands/options.py lists for `command` (the action reads the same table)."""
    from .commands.options import options_for

    for option in options_for(command):
        if option.kind == "flag":
            parser.add_argument(f"--{option.name}", action="store_true", help=option.help)
        else:  # text, converted after parsing by the same rules as the action's inputs
            parser.add_argument(f"--{option.name}", default=option.default, metavar=option.metavar,
                                help=option.help)


def pr_number(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10**9:
        raise argparse.ArgumentTypeError(f"expected a pull request number, not {text!r}")
    return int(text)


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
    """`--secret NAME=VALUE` and `--secret NAME` (the value from the environment variable NAME). A common
    slip is `--secret "$VALUE"`: whatever does not parse as a name is never quoted back, since it may be
    the secret itself; the argument is named by its position instead."""
    from .core.naming import ENV_KEY

    secrets: dict[str, str] = {}
    for index, item in enumerate(items, start=1):
        which = f"the {ordinal(index)} --secret argument"
        key, sep, value = item.partition("=")
        if not ENV_KEY.fullmatch(key):
            raise UsageError(f"--secret: {which} is not NAME=VALUE or NAME (it is not shown: it may be a secret value)",
                             "write --secret NAME=VALUE, or --secret NAME to read the value of the environment "
                             "variable NAME")
        if sep and value and not value.strip("="):
            raise UsageError(f"--secret: {which} has a value of only '=' (it is not shown: it may be a base64 "
                             "secret value passed without its name)", "write --secret NAME=VALUE")
        if not sep:
            if key not in environ:
                raise UsageError(f"--secret: {which} names an environment variable that is not set (the name is not "
                                 "shown: it may be a secret value passed without its name)",
                                 "export NAME=... before running (--secret NAME reads $NAME), or pass "
                                 "--secret NAME=VALUE")
            value = environ[key]
        if key.startswith("ENVSHIP_"):
            raise UsageError(f"--secret {key}: names starting with ENVSHIP_ are reserved", "rename the variable")
        secrets[key] = value
    return secrets


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def parse_build_args(items: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--build-arg {item}: expected KEY=VALUE", "write --build-arg NAME=value")
        values[key] = value
    return values


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
    console.mask(secret_values_in(argv, environ))  # before anything, argparse's own messages included
    interrupt_on_sigterm()
    try:
        args = build_parser().parse_args(argv)
        set_level(console, args, environ)
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


def set_level(console: Console, args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    """-q / -v; in Actions, the runner's debug logging (RUNNER_DEBUG=1, "Enable debug logging" on a
    re-run) turns on the details as -v does."""
    from .adapters.console import NORMAL, QUIET, VERBOSE

    if getattr(args, "quiet", False):
        console.verbosity = QUIET
    elif getattr(args, "verbose", False) or environ.get("RUNNER_DEBUG") == "1":
        console.verbosity = VERBOSE
    else:
        console.verbosity = NORMAL


def interrupt_on_sigterm() -> None:
    """A cancelled GitHub job gets SIGINT, then SIGTERM: both unwind like Ctrl-C, so a deploy releases its
    lock and says where it stopped instead of dying mid-step."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:
        pass  # not the main thread (envship used as a library): leave signals to the host program


def secret_values_in(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """Values of `--secret K=V` and `--secret=K=V` arguments, found without parsing, so that they are masked
    before anything is printed. An argument that is not the name of a set environment variable may be a
    value passed without its name (`--secret "$TOKEN"`): it is masked whole, and its part before any `=`
    too (a base64 value)."""
    from .core.naming import ENV_KEY

    values = []
    for i, arg in enumerate(argv):
        if arg == "--secret" and i + 1 < len(argv):
            item = argv[i + 1]
        elif arg.startswith("--secret="):
            item = arg.removeprefix("--secret=")
        else:
            continue
        key, sep, value = item.partition("=")
        if value.strip("="):
            values.append(value)
        elif sep or not (ENV_KEY.fullmatch(key) and key in environ):
            values.extend([item, key])
    return values


def make_console(command: str, environ: Mapping[str, str], out: TextIO | None, err: TextIO | None) -> Console:
    """The console for this run; it also spells options in messages as the user set them (`--pr` on the
    command line, `input 'pr'` in the action)."""
    if command == "action" or environ.get("GITHUB_ACTIONS") == "true":
        from .adapters.github_actions import GitHubActions
        from .commands.options import spell_for_action

        if command == "action":
            return GitHubActions(environ, out, err, stdout_is_log=True, spell=spell_for_action)
        return GitHubActions(environ, out, err)
    from .adapters.console import Console

    return Console(out, err, environ=environ)


def render_options(args: argparse.Namespace, console: Console, environ: Mapping[str, str]) -> RenderOptions:
    from .commands.render import RenderOptions

    secrets = parse_secrets(args.secrets, environ)
    console.mask(secrets.values())  # values read from the environment (--secret K)
    return RenderOptions(
        config=args.config or environ.get("ENVSHIP_CONFIG") or DEFAULT_CONFIG, env=args.env,
        image=args.image, pr=args.pr, values=parse_values(args.values), secrets=secrets,
        output_dir=getattr(args, "output", None), show_secrets=getattr(args, "show_secrets", False),
        allow_tag=getattr(args, "allow_tag", False))


def dispatch(args: argparse.Namespace, console: Console, environ: Mapping[str, str]) -> int:
    if args.command == "action":
        from .commands import action

        return action.run(console, environ)
    if args.command == "render":
        from .commands import render

        return render.run(render_options(args, console, environ), console, environ)
    if args.command in ("plan", "deploy"):
        from .commands import deploy, options, plan

        values = options.from_cli(args.command, args)
        opts = deploy.DeployOptions.from_values(render_options(args, console, environ), values)
        opts = dataclasses.replace(opts, output=args.output)
        if args.command == "plan" or args.dry_run:
            return plan.run(opts, console, environ)
        return deploy.run(opts, console, environ)
    if args.command == "build":
        from .commands import build

        build_opts = build.BuildOptions(
            config=args.config or environ.get("ENVSHIP_CONFIG") or DEFAULT_CONFIG, repository=args.repository,
            context=args.context, file=args.file, builder=args.builder, tags=tuple(args.tags),
            cache_from=tuple(args.cache_from), cache_to=tuple(args.cache_to), release_file=args.release_file,
            platforms=tuple(p for item in args.platforms for p in item.split(",") if p),
            build_args=parse_build_args(args.build_args))
        return build.run(build_opts, console, environ)
    if args.command == "promote":
        from .commands import options, promote

        secrets = parse_secrets(args.secrets, environ)
        console.mask(secrets.values())
        return promote.run(promote.PromoteOptions(
            config=args.config or environ.get("ENVSHIP_CONFIG") or DEFAULT_CONFIG, source=args.source,
            target=args.target, expect_digest=args.expect_digest, values=parse_values(args.values), secrets=secrets,
            settings=options.from_cli("promote", args)), console, environ)
    if args.command == "preview":
        from .commands import options
        from .commands import preview as preview_command

        secrets = parse_secrets(args.secrets, environ)
        console.mask(secrets.values())
        return preview_command.run(preview_command.PreviewOptions(
            config=args.config or environ.get("ENVSHIP_CONFIG") or DEFAULT_CONFIG, image=args.image,
            event=args.event or "", allow_forks=args.allow_forks, env=args.env, values=parse_values(args.values),
            secrets=secrets, settings=options.from_cli("preview", args)), console, environ)
    if args.command == "gc":
        from .commands import preview as preview_command

        return preview_command.gc(args.config or environ.get("ENVSHIP_CONFIG") or DEFAULT_CONFIG, args.env,
                                  args.dry_run, console, environ)
    if args.command == "teardown":
        from .commands import teardown as teardown_command

        return teardown_command.run(teardown_command.TeardownOptions(
            config=args.config or environ.get("ENVSHIP_CONFIG") or DEFAULT_CONFIG, env=args.env, pr=args.pr),
            console, environ)
    if args.command == "status":
        from .commands import status as status_command

        return status_command.run(args.config or environ.get("ENVSHIP_CONFIG") or DEFAULT_CONFIG, args.env,
                                  args.output, console, environ)
    if args.command == "routes":
        from .commands import routes as routes_command

        return routes_command.run(routes_command.RoutesOptions(
            config=args.config or environ.get("ENVSHIP_CONFIG") or DEFAULT_CONFIG, env=args.env, pr=args.pr,
            dry_run=args.dry_run, delete=args.delete), console, environ)
    if args.command == "resolve":
        from .commands import resolve

        return resolve.run(args.reference, console, environ, args.output)
    raise UsageError(f"unknown command {args.command}")  # pragma: no cover - argparse rejects it first


def run() -> None:
    exit_now(main())


def exit_now(code: int) -> NoReturn:
    """End the process without the interpreter's teardown of every imported module and object, which
    after a deploy takes 25-60 ms here (bench/kube.py's finish phase) and does nothing a user needs.
    What an ordinary exit does that matters still happens: atexit handlers run (they remove the private
    folder of credential files) and buffered output is flushed. Should a thread that is not a daemon
    still run (a library's pool), the ordinary exit winds it down instead."""
    current = threading.current_thread()
    if any(t is not current and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a closed pipe or stream: nothing left to tell it
            pass
    os._exit(code)


__all__ = ["EXIT_USAGE", "main", "run"]
