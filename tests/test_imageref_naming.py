"""Image references and names: the pure rules behind pinning, previews and hashed object names."""

from __future__ import annotations

import re

import pytest

from envship.core.config import parse_duration
from envship.core.imageref import ImageRefError, parse_image_ref
from envship.core.naming import content_hash, expand_placeholders, is_dns_label, sanitize_host, sanitize_label

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, domain, path, tag, digest", [
    ("nginx", None, "nginx", None, None),
    ("nginx:1.25", None, "nginx", "1.25", None),
    ("library/nginx", None, "library/nginx", None, None),
    ("ghcr.io/acme/hello", "ghcr.io", "acme/hello", None, None),
    ("ghcr.io/acme/hello:v1.2.3", "ghcr.io", "acme/hello", "v1.2.3", None),
    (f"ghcr.io/acme/hello@{D}", "ghcr.io", "acme/hello", None, D),
    (f"ghcr.io/acme/hello:1@{D}", "ghcr.io", "acme/hello", "1", D),
    ("localhost:5000/app:1", "localhost:5000", "app", "1", None),
    ("localhost/app", "localhost", "app", None, None),
    ("registry.example.com:8443/team/app/worker:latest", "registry.example.com:8443", "team/app/worker", "latest",
     None),
    ("[::1]:5000/app", "[::1]:5000", "app", None, None),
    ("europe-docker.pkg.dev/p/repo/img__x", "europe-docker.pkg.dev", "p/repo/img__x", None, None),
])
def test_parse_valid_references(text: str, domain: str | None, path: str, tag: str | None,
                                digest: str | None) -> None:
    ref = parse_image_ref(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == text


@pytest.mark.parametrize("text, fragment", [
    ("", "non-empty"),
    ("ghcr.io/acme/hello ", "white space"),
    ("ghcr.io/acme/hello@sha256:abc", "is not sha256: followed by 64"),
    (f"ghcr.io/acme/hello@sha512:{'a' * 128}", "is not sha256:"),
    ("ghcr.io/Acme/hello", "repository path component 'Acme'"),
    ("ghcr.io/acme/hello:-bad", "tag '-bad'"),
    ("ghcr.io/acme//hello", "repository path component ''"),
    ("bad_host.io:x/app", "registry 'bad_host.io:x'"),
    ("ghcr.io/", "has no repository path"),
])
def test_parse_invalid_references(text: str, fragment: str) -> None:
    with pytest.raises(ImageRefError, match=re.escape(fragment)):
        parse_image_ref(text)


@pytest.mark.parametrize("a, b, same", [
    ("nginx", "docker.io/library/nginx", True),
    ("nginx:1", "index.docker.io/library/nginx@" + D, True),
    ("library/nginx", "registry-1.docker.io/library/nginx", True),
    ("bitnami/nginx", "docker.io/bitnami/nginx", True),
    ("nginx", "ghcr.io/library/nginx", False),
    ("localhost:5000/app", "localhost:5001/app", False),
    ("localhost:5000/app", "localhost:5000/app:2", True),
    ("ghcr.io/acme/hello", "ghcr.io/acme/hello-worker", False),
])
def test_canonical_repository(a: str, b: str, same: bool) -> None:
    assert (parse_image_ref(a).canonical == parse_image_ref(b).canonical) is same


def test_pinned_keeps_the_written_spelling() -> None:
    assert parse_image_ref("localhost:5000/app:1").pinned(D) == f"localhost:5000/app@{D}"
    assert parse_image_ref("nginx:1").pinned(D) == f"nginx@{D}"


@pytest.mark.parametrize("text", [
    "Feature/Add_Login", "hello-pr-42", "UPPER.case.dots", "--leading-and-trailing--", "ünïcödé-brånch",
    "a" * 200, "x-" * 40, "", "///",
])
def test_sanitize_label_always_gives_a_dns_label(text: str) -> None:
    label = sanitize_label(text)
    assert is_dns_label(label), label
    assert len(label) <= 63


def test_sanitize_label_keeps_valid_labels_and_separates_long_ones() -> None:
    assert sanitize_label("hello-pr-42") == "hello-pr-42"
    assert sanitize_label("Feature/Add_Login") == "feature-add-login"
    long_a, long_b = "app-" + "x" * 70 + "-pr-1", "app-" + "x" * 70 + "-pr-2"
    assert sanitize_label(long_a) != sanitize_label(long_b)
    assert sanitize_label(long_a) == sanitize_label(long_a)


def test_sanitize_host() -> None:
    assert sanitize_host("Hello-PR-7.Example.com") == "hello-pr-7.example.com"
    assert sanitize_host("*.previews.example.com") == "*.previews.example.com"
    long = sanitize_host("a" * 80 + ".example.com")
    assert all(len(label) <= 63 for label in long.split(".")) and long.endswith(".example.com")


def test_placeholders() -> None:
    assert expand_placeholders("hello-pr-{pr}", {"pr": "3"}) == "hello-pr-3"
    assert expand_placeholders("{pr}-{other}", {"pr": "3"}) == "3-{other}"


def test_content_hash_is_stable_order_independent_and_sensitive() -> None:
    a = content_hash({"A": "1", "B": "2"})
    assert a == content_hash({"B": "2", "A": "1"})
    assert a != content_hash({"A": "1", "B": "3"})
    assert a != content_hash({"A": "1", "B": "2", "C": ""})
    # no ambiguity between a key/value boundary and a value containing separators
    assert content_hash({"A": "1,B:2"}) != content_hash({"A": "1", "B": "2"})
    assert re.fullmatch(r"[0-9a-f]{10}", a)


@pytest.mark.parametrize("text, seconds", [
    ("72h", 72 * 3600), ("7d", 7 * 86400), ("1h30m", 5400), ("45s", 45), ("1d2h3m4s", 93784),
    ("3 days", None), ("0h", None), ("", None), ("h", None), ("1.5h", None), ("-1h", None), ("30m1h", None),
])
def test_parse_duration(text: str, seconds: int | None) -> None:
    value = parse_duration(text)
    assert (value.total_seconds() if value else None) == seconds
