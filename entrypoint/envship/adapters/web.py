"""Plain HTTP(S) requests to the app itself, for the smoke check after a route changed.

Proxies come from the run's environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, either case), as curl and
requests read them; redirects are not followed, so a check sees the status the route answers."""

from __future__ import annotations

import time
from collections.abc import Mapping

import requests
from requests.utils import should_bypass_proxies

from .. import __version__

MAX_INTERVAL = 3.0


def proxies_for(url: str, environ: Mapping[str, str]) -> dict[str, str]:
    def get(name: str) -> str:
        return environ.get(name.lower()) or environ.get(name.upper()) or ""

    if should_bypass_proxies(url, no_proxy=get("no_proxy") or None):
        return {}
    return {scheme: value for scheme in ("http", "https") if (value := get(f"{scheme}_proxy"))}


def probe(url: str, status: int, timeout: float, environ: Mapping[str, str]) -> str | None:
    """GET `url` until it answers `status` or `timeout` seconds passed (a new route takes a moment to reach
    every edge); None on success, else the last answer or error."""
    deadline = time.monotonic() + timeout
    interval = 0.5
    last = "no answer"
    with requests.Session() as session:
        session.trust_env = False
        session.headers["User-Agent"] = f"envship/{__version__} (smoke check)"
        proxies = proxies_for(url, environ)
        while True:
            remaining = deadline - time.monotonic()
            try:
                response = session.get(url, timeout=(min(5.0, max(remaining, 0.5)), max(min(10.0, remaining), 0.5)),
                                       allow_redirects=False, proxies=proxies, stream=True)
                response.close()
                if response.status_code == status:
                    return None
                last = f"HTTP {response.status_code}"
            except requests.RequestException as e:
                last = type(e).__name__
            if time.monotonic() + interval >= deadline:
                return f"{url} answered {last}, not {status}, within {int(timeout)} s"
            time.sleep(interval)
            interval = min(interval * 2, MAX_INTERVAL)
