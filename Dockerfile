# The envship action image. action.yml runs it with `args: [action]`, so the container runs `envship action`.
# (No `# syntax=` line: the builder's built-in Dockerfile frontend is used, so no unpinned frontend image is
# pulled at build time.)
#
# The base is pinned by digest: the tag python:3.11-slim-bookworm moves, the digest never does, so every
# build of a given commit starts from the same bytes. Dependabot (.github/dependabot.yml, package-ecosystem
# docker) keeps the digests of every FROM below current with weekly pull requests; both python stages must
# use the same digest, because the venv's interpreter is a symlink to the base image's /usr/local/bin/python3.
# The digest below is the multi-arch OCI index digest (linux/amd64, linux/arm64, ...) that the tags
# python:3.11-slim-bookworm and python:3.11.15-slim-bookworm served in mid-2026 (Python 3.11.15, Debian 12),
# as pinned by several public projects that build from it on amd64 and on arm64; it replaced the April 2024
# digest (Python 3.11.9, Debian 12.5).

# `command: build` with the docker builder drives the runner's Docker engine (the runner mounts its socket
# into container actions) with the static docker CLI and the buildx plugin, copied from their official
# images and pinned by digest like the base (Renovate/Dependabot bump them).
FROM docker:29.1.3-cli@sha256:4fa0ee1f3a7e4354c4ea34558b6d4ee32859baf4973d4c8ccc8e7fe3dd730c04 AS docker-cli
FROM docker/buildx-bin:0.37.1@sha256:0ef4e936b9057e45a8c6595c01a8116353acd102b6a5720af7c3bcb50346e2ca AS buildx

FROM python:3.11-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3 AS builder


ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

# A venv without pip or setuptools of its own: the base image's pip installs into it (pip --python), so
# the final image carries only envship and its locked dependencies, no installer.
RUN python -m venv --without-pip /opt/venv

# Dependencies first (a layer that changes only when the lock does), exact versions, every file hashed.
COPY requirements.lock /src/requirements.lock
RUN pip --python /opt/venv/bin/python install --no-cache-dir --require-hashes -r /src/requirements.lock

# Then envship itself, without dependencies: everything it needs came from the lock above. pip builds the
# wheel in a throw-away environment with pyproject's build backend (setuptools); the backend is not
# hash-checked, and it does not reach the final image.
COPY pyproject.toml README.md /src/
COPY entrypoint /src/entrypoint
RUN pip --python /opt/venv/bin/python install --no-cache-dir --no-deps /src \
    && /opt/venv/bin/envship --version


FROM python:3.11-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3

# acme/envship stands for the repository that publishes envship: replace it, or have the workflow that
# publishes the prebuilt image pass --build-arg SOURCE_URL=<server>/<owner>/<repo> (GHCR links the package
# to that repository through org.opencontainers.image.source).
ARG VERSION=0.1.0
ARG SOURCE_URL=https://github.com/acme/envship
LABEL org.opencontainers.image.title="envship" \
      org.opencontainers.image.description="Take one immutable image digest to an environment: render, deploy to GKE, route with Cloudflare." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.url="${SOURCE_URL}" \
      org.opencontainers.image.documentation="${SOURCE_URL}#readme" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"

# ENVSHIP_ACTION_IMAGE: envship is running as the action, in its container (the build command then
# hands docker the registry login itself, since the runner's docker logins are not visible here).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVSHIP_ACTION_IMAGE=1

# Only the venv crosses over: no compiler, no pip cache, no sources, no build backend.
COPY --from=builder /opt/venv /opt/venv
COPY --from=docker-cli /usr/local/bin/docker /usr/local/bin/docker
COPY --from=buildx /buildx /usr/libexec/docker/cli-plugins/docker-buildx

# No USER on purpose. GitHub's "Dockerfile support for GitHub Actions": "Docker actions must be run by the
# default Docker user (root). Do not use the USER instruction in your Dockerfile, because you won't be able
# to access the GITHUB_WORKSPACE directory." No WORKDIR either: the runner mounts the workspace at
# /github/workspace and makes it the working directory, so relative paths (envship.yaml) resolve there.
ENTRYPOINT ["envship"]
