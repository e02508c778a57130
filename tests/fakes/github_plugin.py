"""pytest fixture for the fake GitHub REST API.

    from fakes.github_plugin import fake_github  # noqa: F401 - the fixture

    def test_x(fake_github):
        fake_github.add_pull("acme/hello", 42, "a" * 40)
        ...  # point the client at fake_github.url with fake_github.token (or fake_github.env())

`fake_github` starts a FakeGitHub per test (github.com style, at the root; all permissions; a random
token of the user "github-actions[bot]") with the repository "acme/hello" (default branch "main") added,
stops it afterwards, and fails the test if the fake hit an internal error or saw a request (or gave an
answer) that violates GitHub's OpenAPI description. A test that provokes violations on purpose clears
`fake_github.errors` after checking them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .github_api import FakeGitHub


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    gh = FakeGitHub.start()
    try:
        gh.add_repo("acme/hello")
        yield gh
    finally:
        gh.stop()
    assert not gh.errors, "the fake GitHub API failed internally or saw spec violations:\n" + "\n".join(gh.errors)
