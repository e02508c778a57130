"""Names: DNS-1123 labels, preview placeholders and content-hashed object names."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAX_LABEL = 63
MAX_HOST = 253
# What Kubernetes accepts as a key of a ConfigMap/Secret consumed by envFrom (C_IDENTIFIER-ish).
ENV_KEY = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
PLACEHOLDER = re.compile(r"\{([a-z]+)\}")
HASH_LEN = 10


def is_dns_label(text: str) -> bool:
    return len(text) <= MAX_LABEL and DNS_LABEL.fullmatch(text) is not None


def short_hash(text: str, length: int = 5) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def sanitize_label(text: str) -> str:
    """Turn any text into a DNS-1123 label; too long ones keep a hash of the whole for uniqueness."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower())
    label = re.sub(r"-{2,}", "-", label).strip("-") or "x"
    if len(label) > MAX_LABEL:
        suffix = short_hash(text)
        label = label[: MAX_LABEL - len(suffix) - 1].rstrip("-") + "-" + suffix
    return label


def sanitize_host(text: str) -> str:
    """Sanitise each dot-separated label of a host name (a leading `*.` wildcard is kept)."""
    wildcard = text.startswith("*.")
    labels = [sanitize_label(part) for part in (text[2:] if wildcard else text).split(".") if part]
    host = ".".join(labels)
    return f"*.{host}" if wildcard else host


def expand_placeholders(template: str, values: Mapping[str, str]) -> str:
    """Replace `{name}` placeholders; unknown names are left for validation to report."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def placeholders(template: str) -> list[str]:
    return PLACEHOLDER.findall(template)


SECRET_HASH_ITERATIONS = 200_000


def _canonical(data: Mapping[str, str]) -> bytes:
    return json.dumps(dict(sorted(data.items())), separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(data: Mapping[str, str]) -> str:
    """A stable hash of key/value content: same values, same name; any change, a new name."""
    return hashlib.sha256(_canonical(data)).hexdigest()[:HASH_LEN]


def secret_content_hash(data: Mapping[str, str], salt: str) -> str:
    """Like content_hash, for secret values whose hash is printed in object names and logs: salted and
    stretched (PBKDF2-SHA256, ~0.1 s) so the name cannot serve to test guesses of a weak secret cheaply."""
    digest = hashlib.pbkdf2_hmac("sha256", _canonical(data), salt.encode(), SECRET_HASH_ITERATIONS)
    return digest.hex()[:HASH_LEN]
