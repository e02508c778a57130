"""pytest fixture for the fake Cloudflare API.

    from fakes.cloudflare_plugin import fake_cloudflare  # noqa: F401 - the fixture

    def test_x(fake_cloudflare):
        zone_id = fake_cloudflare.add_zone("example.com")
        ...  # point the client at fake_cloudflare.url with fake_cloudflare.token

`fake_cloudflare` starts a FakeCloudflare per test (all permissions, a random user token), stops it
afterwards, and fails the test if the fake hit an internal error or saw a request (or gave an answer) that
violates Cloudflare's OpenAPI description. A test that provokes violations on purpose clears
`fake_cloudflare.errors` after checking them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .cloudflare_api import FakeCloudflare


@pytest.fixture
def fake_cloudflare() -> Iterator[FakeCloudflare]:
    cf = FakeCloudflare.start()
    try:
        yield cf
    finally:
        cf.stop()
    assert not cf.errors, "the fake Cloudflare API failed internally or saw spec violations:\n" + "\n".join(cf.errors)
