# Shared by scripts/demo and scripts/test (sourced, not run): the project's virtual environment .venv.
#
# Why a virtual environment: Debian 12 and Ubuntu 24.04 mark their Python "externally managed" (PEP 668),
# so `pip install` into it is refused, and their python3 ships neither pip nor venv's ensurepip unless the
# python3-venv package is installed. A venv made from the first `python3` on PATH works everywhere: a
# distribution's Python (after python3-venv), pyenv's, a container's; as root or as a user.

ENVSHIP_ROOT=${ENVSHIP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
ENVSHIP_VENV="$ENVSHIP_ROOT/.venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

# Run as root, or through sudo for a user (a fresh Debian machine may not have sudo: say what to run).
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "error: '$*' needs root and sudo is not installed; run it as root, then run this script again" >&2
    return 1
  fi
}

# A venv counts as usable only if its python runs and has pip: `python3 -m venv` without python3-venv
# leaves a half-made .venv behind (bin/python, no pip), which must be made again, not reused.
venv_usable() {
  [ -x "$ENVSHIP_VENV/bin/python" ] && "$ENVSHIP_VENV/bin/python" -m pip --version >/dev/null 2>&1
}

make_venv() {
  local py=python3 version
  if ! command -v "$py" >/dev/null 2>&1; then
    echo "error: no python3 on PATH; install Python 3.11 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)" >&2
    return 1
  fi
  version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: envship needs Python 3.11 or newer; $(command -v "$py") is $version" >&2
    return 1
  fi
  rm -rf "$ENVSHIP_VENV"
  if "$py" -m venv "$ENVSHIP_VENV" >/dev/null 2>&1; then
    return 0
  fi
  # Debian and Ubuntu split venv's ensurepip into python3.X-venv; apt can add it, but only for the
  # distribution's own Python (under /usr). Anything else (pyenv, a self-built Python) has it built in.
  rm -rf "$ENVSHIP_VENV"
  if command -v apt-get >/dev/null 2>&1 && [ "$("$py" -c 'import sys; print(sys.base_prefix)')" = /usr ]; then
    local pkg="python$version-venv"
    apt-cache show "$pkg" >/dev/null 2>&1 || as_root apt-get update -qq
    apt-cache show "$pkg" >/dev/null 2>&1 || pkg=python3-venv
    echo "==> $(command -v "$py") cannot make a virtual environment without the distribution's package $pkg: installing it" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
    "$py" -m venv "$ENVSHIP_VENV" && return 0
  fi
  rm -rf "$ENVSHIP_VENV"
  echo "error: '$py -m venv .venv' failed; run it by hand to see why" >&2
  "$py" -m venv "$ENVSHIP_VENV" >&2 || true
  rm -rf "$ENVSHIP_VENV"
  return 1
}

# ensure_venv NAME PIP-ARGS...: make .venv if needed, then `pip install PIP-ARGS` in it, skipped when an
# earlier run installed the same set (NAME) from the same requirements.lock and pyproject.toml, so that
# re-runs take a second. Another run in the same checkout (a second terminal) waits instead of racing
# it: the lock is on the checkout's directory and goes with the process.
ensure_venv() {
  local name=$1 stamp want
  shift
  exec 9<"$ENVSHIP_ROOT"
  command -v flock >/dev/null 2>&1 && flock 9
  if ! venv_usable; then
    echo "==> creating the virtual environment .venv" >&2
    make_venv
  fi
  stamp="$ENVSHIP_VENV/.envship-installed-$name"
  want=$(cat "$ENVSHIP_ROOT/requirements.lock" "$ENVSHIP_ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)
  want="$want $*"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing envship and its locked dependencies into .venv" >&2
    # Runtime dependencies exactly as the action image installs them (hash-checked), then envship.
    "$ENVSHIP_VENV/bin/python" -m pip install --quiet --require-hashes -r "$ENVSHIP_ROOT/requirements.lock"
    "$ENVSHIP_VENV/bin/python" -m pip install --quiet "$@"
    printf '%s\n' "$want" >"$stamp"
  fi
  exec 9<&-
}
