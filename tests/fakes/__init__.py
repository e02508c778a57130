"""Test doubles for the external systems envship talks to, each a real HTTP server on 127.0.0.1.

- `fakes.kube_apiserver.FakeKube`: a fake Kubernetes API server with a fake controller (see that
  module's docstring for what it supports and its scenario rules).
- `fakes.google_apis`: Google's STS token exchange and the GKE Container API.
- `fakes.cloudflare_api.FakeCloudflare`: a fake Cloudflare API v4 (zones, DNS records, tunnels), checked
  against Cloudflare's OpenAPI description (see that module's docstring).

Imports are lazy so that using one fake never imports the others.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FakeCloudflare", "FakeKube"]


def __getattr__(name: str) -> Any:
    if name == "FakeKube":
        from .kube_apiserver import FakeKube

        return FakeKube
    if name == "FakeCloudflare":
        from .cloudflare_api import FakeCloudflare

        return FakeCloudflare
    raise AttributeError(name)
