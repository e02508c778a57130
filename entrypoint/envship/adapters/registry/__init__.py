"""OCI registries: the distribution API client (distribution) and where its credentials come from
(credentials). Importing this package imports requests."""

from .distribution import (
    ImageNotFound,
    RegistryClient,
    RegistryError,
    RegistryUnauthorized,
    RegistryUnreachable,
    Resolved,
    client,
)

__all__ = ["ImageNotFound", "RegistryClient", "RegistryError", "RegistryUnauthorized", "RegistryUnreachable",
           "Resolved", "client"]
