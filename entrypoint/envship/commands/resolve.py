"""`envship resolve REPO:TAG`: the digest the registry serves for a tag, printed as REPO@sha256:D."""

from __future__ import annotations

from collections.abc import Mapping

from ..adapters.console import Console
from ..core.imageref import ImageRef, ImageRefError, parse_image_ref
from ..errors import UsageError


def parse_reference(text: str, what: str = "image reference") -> ImageRef:
    try:
        ref = parse_image_ref(text)
    except ImageRefError as e:
        raise UsageError(f"{what}: {e}",
                         "write REPO:TAG, e.g. ghcr.io/acme/hello:1.0 or localhost:5000/app:main") from e
    if not ref.tag and not ref.digest:
        raise UsageError(f"{what} {text} names no tag",
                         f"write {text}:TAG; envship never assumes 'latest'")
    return ref


def run(reference: str, console: Console, environ: Mapping[str, str], output: str = "text") -> int:
    ref = parse_reference(reference)
    from ..adapters import registry

    resolved = registry.client(environ, console.mask).resolve(ref)
    image = resolved.image
    console.info(f"{reference} -> {resolved.digest} ({resolved.kind})")
    console.set_output("image", image)
    console.set_output("digest", resolved.digest)
    console.summary(f"### envship resolve\n\n| | |\n|---|---|\n| reference | `{reference}` |\n"
                    f"| image | `{image}` |\n| kind | {resolved.kind} |\n")
    if output == "json":
        from . import documents

        documents.emit(console, documents.resolve_document(reference, image, resolved.digest, resolved.kind))
    else:
        console.result(image + "\n")
    return 0
