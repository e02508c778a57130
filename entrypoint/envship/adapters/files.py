"""The local file system: envship.yaml, the manifests, and rendered output directories."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from ..core.config import Config, parse_config
from ..core.yamlsrc import YamlDoc, YamlSyntaxError, parse_documents
from ..errors import ConfigError, Location, ManifestError, OperationError, Problem

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MiB = 1024 * 1024
MAX_CONFIG_BYTES = 1 * MiB        # envship.yaml is a page of settings
MAX_MANIFEST_BYTES = 16 * MiB     # the largest public CRD bundles are a few MiB
MAX_MANIFESTS_BYTES = 64 * MiB    # all manifest files together
RENDERED_FILE = re.compile(r"\d{4}-[a-z0-9.-]+\.yaml")
SECRET_FILE = re.compile(r"\d{4}-secret-")


def display_path(path: Path) -> str:
    """Paths as the user would type them: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_config(path: str) -> Config:
    file = Path(path)
    shown = display_path(file)
    try:
        text = read_bounded(file, MAX_CONFIG_BYTES, shown, "the config file").decode("utf-8")
    except TooLarge as e:
        raise ConfigError([e.problem]) from e
    except FileNotFoundError as e:
        raise ConfigError([Problem(f"config file {shown} not found", None,
                                   "run envship from the repository root, or set {--config} to its path")]) from e
    except UnicodeDecodeError as e:
        raise ConfigError([not_utf8(shown, e)]) from e
    except OSError as e:
        raise ConfigError([Problem(f"cannot read config file {shown}: {e}", Location(shown),
                                   "check that the file is readable")]) from e
    return parse_config(text, shown)


def manifest_files(config: Config) -> list[Path]:
    base = Path(config.file).parent / config.manifests
    where = config.manifests_location
    if base.is_file():
        return [base]
    if not base.is_dir():
        raise ManifestError([Problem(f"manifests path '{config.manifests}' does not exist ({display_path(base)})",
                                     where, "point 'manifests' at a file or directory, relative to the config file")])
    config_file = Path(config.file).resolve()  # `manifests: .` must not read envship.yaml as a manifest
    files = sorted(
        p for p in base.rglob("*")
        if p.is_file() and p.suffix in MANIFEST_SUFFIXES and p.resolve() != config_file
        and not any(part.startswith(".") for part in p.relative_to(base).parts)
    )
    if not files:
        raise ManifestError([Problem(f"no .yaml, .yml or .json files in '{config.manifests}'", where,
                                     "put the app's Kubernetes manifests there")])
    return files


class TooLarge(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def read_bounded(path: Path, limit: int, shown: str, what: str) -> bytes:
    """The file's bytes, refusing at once (from its size, without reading it) one over `limit`. Previews
    read manifests from pull requests: a huge file must not tie up the runner."""
    size = path.stat().st_size
    data = b""
    if size <= limit:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)  # a file that grows meanwhile is still cut off
        size = max(size, len(data))
    if size > limit:
        raise TooLarge(Problem(f"{what} is {_mib(size)}; envship reads at most {_mib(limit)}", Location(shown),
                               "split it into smaller files, or leave generated data (large CRD bundles, "
                               "binary blobs) out of the manifests"))
    return data


def _mib(size: int) -> str:
    return f"{size / MiB:.1f} MiB" if size >= MiB else f"{size:,} bytes"


def read_manifests(config: Config) -> list[YamlDoc]:
    docs: list[YamlDoc] = []
    problems: list[Problem] = []
    paths = manifest_files(config)
    total = sum(_size(p) for p in paths)
    if total > MAX_MANIFESTS_BYTES:
        raise ManifestError([Problem(
            f"the manifests in '{config.manifests}' hold {_mib(total)} in {len(paths)} files; envship reads at "
            f"most {_mib(MAX_MANIFESTS_BYTES)}", config.manifests_location,
            "point 'manifests' at the app's own manifests only")])
    for path in paths:
        shown = display_path(path)
        try:
            data = read_bounded(path, MAX_MANIFEST_BYTES, shown, "the manifest")
            docs.extend(parse_documents(data.decode("utf-8"), shown))
        except TooLarge as e:
            problems.append(e.problem)
        except YamlSyntaxError as e:
            problems.extend(e.problems)
        except UnicodeDecodeError as e:
            problems.append(not_utf8(shown, e))
        except OSError as e:
            problems.append(Problem(f"cannot read manifest: {e}", Location(shown), "check that the file is readable"))
    if problems:
        raise ManifestError(problems)
    return docs


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reported when it is read


def not_utf8(shown: str, e: UnicodeDecodeError) -> Problem:
    """Where in the file the first byte that is not UTF-8 stands (the file is read whole as bytes)."""
    data = e.object
    line, column = data.count(b"\n", 0, e.start) + 1, e.start - data.rfind(b"\n", 0, e.start)
    return Problem(f"the file is not UTF-8 text (byte 0x{data[e.start]:02x})", Location(shown, line, column),
                   "save it as UTF-8")


Owner = tuple[int, int]   # (uid, gid)


def workspace_owner(environ: Mapping[str, str]) -> Owner | None:
    """Who files written into the Actions workspace should belong to. A container action runs as root
    (GitHub requires it) while the runner and later `run:` steps run as the runner's user, who could then
    neither change nor delete what envship wrote; so, running as root, envship hands what it writes inside
    $GITHUB_WORKSPACE to the workspace folder's owner, as actions/checkout's files belong to that user."""
    workspace = environ.get("GITHUB_WORKSPACE", "")
    if not workspace or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    try:
        info = os.stat(workspace)
    except OSError:
        return None
    return None if info.st_uid == 0 else (info.st_uid, info.st_gid)


def hand_over(paths: list[Path], owner: Owner | None, environ: Mapping[str, str]) -> None:
    """chown `paths` to `owner` when they lie inside the workspace (nothing outside it is touched)."""
    if owner is None:
        return
    workspace = Path(environ["GITHUB_WORKSPACE"]).resolve()
    for path in paths:
        resolved = path.resolve()
        if resolved == workspace or workspace not in resolved.parents:
            continue
        os.chown(resolved, *owner, follow_symlinks=False)


def created_folders(target: Path) -> list[Path]:
    """The folders `target.mkdir(parents=True)` is about to create, outermost first."""
    missing: list[Path] = []
    for folder in [target, *target.parents]:
        if folder.exists():
            break
        missing.append(folder)
    return missing[::-1]


def write_rendered(directory: str, files: dict[str, str], environ: Mapping[str, str] | None = None) -> None:
    """Write one file per object. Files a previous render wrote there (NNNN-kind-name.yaml) are removed
    first, so the directory holds exactly this rendering; anything else in it is left alone."""
    target = Path(directory)
    environ = environ or {}
    owner = workspace_owner(environ)
    try:
        made = created_folders(target)
        target.mkdir(parents=True, exist_ok=True)
        for old in target.iterdir():
            if old.is_file() and RENDERED_FILE.fullmatch(old.name) and old.name not in files:
                old.unlink()
        for name, text in files.items():
            # Secrets (real values with --show-secrets) are readable by their owner only.
            write_whole(target / name, text, 0o600 if SECRET_FILE.match(name) else 0o644)
        hand_over([*made, *(target / name for name in files)], owner, environ)
    except OSError as e:
        raise OperationError(f"cannot write rendered manifests to {directory}: {e.strerror or e}",
                             "check that the directory is writable") from e


def write_text(path: str, text: str, environ: Mapping[str, str] | None = None) -> None:
    """Write a small result file (the release record) whole: a reader never sees half of it."""
    target = Path(path)
    environ = environ or {}
    try:
        made = created_folders(target.parent) if target.parent != Path() else []
        if made:
            target.parent.mkdir(parents=True, exist_ok=True)
        write_whole(target, text)
        hand_over([*made, target], workspace_owner(environ), environ)
    except OSError as e:
        raise OperationError(f"cannot write {path}: {e.strerror or e}", "check that the directory is writable") from e


def write_whole(target: Path, text: str, mode: int = 0o644) -> None:
    """Write through a temporary file renamed over the target, so a reader never sees half a file; the
    mode is set on the open file, whatever a leftover temporary file from a killed run had."""
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(text)
    os.replace(tmp, target)
