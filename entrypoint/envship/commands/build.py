"""`envship build`: build the app image once, push it, and hand the deploy jobs one immutable thing: the
digest the registry serves (checked after the push), plus a release record saying where it came from."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..adapters import builder, files, runtime
from ..adapters.console import Console
from ..core.builders import BUILDERS, BuildSpec
from ..core.imageref import DOCKER_HUB_REGISTRY, ImageRef, ImageRefError, parse_image_ref
from ..core.registry import is_insecure
from ..core.release import ReleaseRecord, image_tags, oci_labels, source_url
from ..errors import ConfigError, OperationError, UsageError

DEFAULT_FILES = ("Dockerfile", "Containerfile")
DEFAULT_RELEASE_FILE = "release.json"


@dataclass(frozen=True)
class BuildOptions:
    config: str
    repository: str | None = None     # overrides the config's `image`
    context: str = "."
    file: str | None = None           # default: Dockerfile, else Containerfile, in the context
    builder: str | None = None        # docker | buildah; None: docker in GitHub Actions, else what is installed
    tags: tuple[str, ...] = ()
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    release_file: str = DEFAULT_RELEASE_FILE
    platforms: tuple[str, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)


def repository_of(opts: BuildOptions) -> ImageRef:
    if opts.repository:
        text, where = opts.repository, "{--repository}"
    else:
        try:
            text, where = files.read_config(opts.config).image, f"'image' in {opts.config}"
        except ConfigError as e:
            if not Path(opts.config).exists():
                raise UsageError(f"config file {opts.config} not found, and no {{--repository}} given",
                                 "run from the repository root, pass {--config} PATH, or {--repository} REPO") from e
            raise
    try:
        ref = parse_image_ref(text)
    except ImageRefError as e:
        raise UsageError(f"{where}: {e}", "write the repository only, e.g. ghcr.io/acme/hello") from e
    if ref.tag or ref.digest:
        raise UsageError(f"{where} is {text}; the build needs the repository alone",
                         f"write {ref.repository}; tags come from the commit and --tag, the digest from the push")
    return ref


def build_file(context: str, file: str | None) -> str:
    if not Path(context).is_dir():
        raise UsageError(f"--context {context} is not a directory", "pass the directory the image is built from")
    if file:
        if not Path(file).is_file():
            raise UsageError(f"--file {file} does not exist", "pass the path of the Dockerfile (or Containerfile)")
        return file
    for name in DEFAULT_FILES:
        candidate = Path(context) / name
        if candidate.is_file():
            return str(candidate)
    raise UsageError(f"no Dockerfile or Containerfile in {context}", "pass --file PATH")


def choose_builder(requested: str | None, environ: Mapping[str, str]) -> str:
    if requested:
        if requested not in BUILDERS:
            raise UsageError(f"--builder {requested}: unknown builder", f"use one of: {', '.join(BUILDERS)}")
        return requested
    if environ.get("GITHUB_ACTIONS") == "true":
        return "docker"
    for name in ("buildah", "docker"):
        if builder.available(name):
            return name
    raise OperationError("neither buildah nor docker is installed",
                         "install one of them, or pass --builder to say which one to expect")


def container_login(repo: ImageRef, console: Console, environ: Mapping[str, str]) -> tuple[str, str, str] | None:
    """Inside the action's image, docker cannot see the logins made on the runner (docker/login-action
    writes the runner's ~/.docker/config.json), so envship hands docker the credential it would use to
    resolve this registry itself: GITHUB_TOKEN (the `github-token` input) for ghcr.io, a Google access
    token for Artifact Registry and gcr.io, or a docker config in the container."""
    if environ.get("ENVSHIP_ACTION_IMAGE") != "1":
        return None
    from ..adapters.registry.credentials import find_credential

    credential = find_credential(repo.registry, environ, console.mask)
    if credential.anonymous:
        console.info(f"no credentials for {repo.registry} inside the action's container: pushing anonymously")
        return None
    console.info(f"pushing to {repo.registry} with {credential.describe()}")
    # docker keys Docker Hub logins by its v1 index URL, every other registry by host[:port]
    host = "https://index.docker.io/v1/" if repo.registry == DOCKER_HUB_REGISTRY else repo.registry
    return host, credential.username, credential.password


def check_options(opts: BuildOptions, chosen: str) -> None:
    if chosen == "docker":
        return
    for flag, values in (("--platform", opts.platforms), ("--cache-from", opts.cache_from),
                         ("--cache-to", opts.cache_to)):
        if values:
            raise UsageError(f"{flag} works with --builder docker only", f"drop {flag}, or use --builder docker")


def run(opts: BuildOptions, console: Console, environ: Mapping[str, str]) -> int:
    repo = repository_of(opts)
    file = build_file(opts.context, opts.file)
    chosen = choose_builder(opts.builder, environ)
    check_options(opts, chosen)
    git_sha, ref = runtime.git_sha(environ), environ.get("GITHUB_REF", "")
    if not git_sha:
        git_sha, ref = builder.local_git(opts.context)
    tags = image_tags(git_sha, ref, opts.tags)
    if not tags:
        raise UsageError("no tag to push the image to: no commit is known and no --tag was given",
                         "build inside a git checkout (or set GITHUB_SHA), or pass --tag NAME")
    built_at = runtime.release_time(environ)
    source = source_url(environ.get("GITHUB_SERVER_URL", ""), environ.get("GITHUB_REPOSITORY", ""))
    spec = BuildSpec(repository=repo.repository, tags=tuple(tags), context=opts.context, file=file,
                     labels=oci_labels(git_sha, source, built_at), build_args=dict(opts.build_args),
                     platforms=opts.platforms, cache_from=opts.cache_from, cache_to=opts.cache_to)
    console.info(f"building {', '.join(spec.references)} with {chosen}")
    if chosen == "docker" and environ.get("GITHUB_ACTIONS") == "true" and not builder.available("docker"):
        raise OperationError(
            "docker is not installed (not found on PATH)",
            "the envship action's image ships the docker CLI and buildx; elsewhere run 'envship build' in a run: "
            "step on the runner, which has both (README, Build job), or use builder buildah where it is installed")
    if chosen == "docker":
        digest, _names = builder.build_docker(spec, console, container_login(repo, console, environ))
    else:
        insecure = is_insecure(repo.registry, environ.get("ENVSHIP_INSECURE_REGISTRIES", ""))
        digest = builder.build_buildah(spec, console, environ, insecure)
    verify_pushed(repo, tags, digest, console, environ)
    record = ReleaseRecord(repository=repo.repository, digest=digest, tags=tuple(tags), git_sha=git_sha, ref=ref,
                           source=source, run_url=runtime.run_url(environ), built_at=built_at, builder=chosen)
    files.write_text(opts.release_file, record.to_json() + "\n", environ)
    report(record, opts.release_file, console)
    return 0


def verify_pushed(repo: ImageRef, tags: list[str], digest: str, console: Console, environ: Mapping[str, str]) -> None:
    """The digest printed must be the one the registry serves: ask it, by digest and for every tag."""
    from ..adapters import registry

    client = registry.client(environ, console.mask)
    pinned = repo.with_reference(digest=digest)
    try:
        client.resolve(pinned)
    except registry.ImageNotFound as e:
        raise OperationError(
            f"the registry does not serve the digest the builder reported: {pinned} is not in {repo.registry}",
            "the push did not happen or went elsewhere; check the builder's log above (and that the builder "
            "is logged in to the same registry)") from e
    for tag in tags:
        reference = repo.with_reference(tag=tag)
        try:
            served = client.resolve(reference).digest
        except registry.ImageNotFound as e:
            raise OperationError(f"the registry does not serve the tag {reference} the builder pushed",
                                 "check the builder's log above") from e
        if served != digest:
            raise OperationError(
                f"the registry serves {served} for {reference}, but the builder reported {digest}",
                "another push to the same tag raced this one, or the builder reported the wrong digest; "
                "re-run the build")
    console.info(f"verified: {repo.registry} serves {digest} for {', '.join(tags)}")


def report(record: ReleaseRecord, release_file: str, console: Console) -> None:
    console.set_output("image", record.image)
    console.set_output("digest", record.digest)
    console.set_output("release", record.to_json(indent=None))
    rows = [("image", record.image), ("tags", ", ".join(record.tags)), ("builder", record.builder),
            ("release record", os.path.normpath(release_file))]
    table = "\n".join(f"| {k} | `{v}` |" for k, v in rows)
    console.summary(f"### envship build\n\n| | |\n|---|---|\n{table}\n")
    console.result(record.image + "\n")
