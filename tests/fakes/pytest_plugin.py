"""pytest fixtures for the fake Kubernetes API server.

    from fakes.pytest_plugin import fake_kube  # noqa: F401 - the fixture

    def test_x(fake_kube):
        fake_kube.kubeconfig(tmp_path / "kubeconfig")

`fake_kube` starts a FakeKube per test with fast timings, stops it afterwards, and fails the test if
the server or its controller hit an unexpected exception. `kubectl_binaries()` lists the kubectl
programs found here: the one on PATH, Debian's (package kubernetes-client, extracted to
/opt/debian-kubectl, or named by ENVSHIP_DEBIAN_KUBECTL), and any in ENVSHIP_TEST_KUBECTL
(os.pathsep-separated).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .kube_apiserver import FakeKube

DEBIAN_KUBECTL = "/opt/debian-kubectl/usr/bin/kubectl"


@pytest.fixture
def fake_kube() -> Iterator[FakeKube]:
    kube = FakeKube.start()
    try:
        yield kube
    finally:
        kube.stop()
    problems = kube.errors + kube.controller.errors
    assert not problems, "the fake API server failed internally:\n" + "\n".join(problems)


def kubectl_binaries() -> list[str]:
    candidates = [shutil.which("kubectl") or "", os.environ.get("ENVSHIP_DEBIAN_KUBECTL", DEBIAN_KUBECTL)]
    candidates += os.environ.get("ENVSHIP_TEST_KUBECTL", "").split(os.pathsep)
    found: list[str] = []
    seen: set[str] = set()
    for c in candidates:
        if c and os.access(c, os.X_OK):
            real = os.path.realpath(c)
            if real not in seen:
                seen.add(real)
                found.append(c)
    return found


def kubectl_env(kubeconfig: Path, home: Path) -> dict[str, str]:
    """An environment for running kubectl against the fake: its kubeconfig, a private HOME (so the
    discovery cache starts empty), nothing inherited that could point elsewhere."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("KUBE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"))}
    env.update(KUBECONFIG=str(kubeconfig), HOME=str(home), KUBECACHEDIR=str(home / "cache"))
    return env
