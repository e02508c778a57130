"""Google credentials, shared by the GKE connection and the Artifact Registry / gcr.io logins.

The file GOOGLE_APPLICATION_CREDENTIALS names (what google-github-actions/auth writes for Workload
Identity Federation, a service account key, or gcloud's user credentials) is loaded with the loader for
its declared type, else google-auth's default chain. Tokens refresh themselves as they near expiry.
google-auth is imported only when credentials are asked for.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from ..errors import OperationError
from .runtime import container_path

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def google_credentials(environ: Mapping[str, str]) -> Any:
    credentials = load_google_credentials(environ)
    if credentials is None:
        raise OperationError(
            "no Google credentials found for the GKE cluster",
            "in GitHub Actions run google-github-actions/auth (Workload Identity Federation) before envship; "
            "locally run 'gcloud auth application-default login' or set GOOGLE_APPLICATION_CREDENTIALS")
    return credentials


def load_google_credentials(environ: Mapping[str, str]) -> Any | None:
    """The file GOOGLE_APPLICATION_CREDENTIALS names (what google-github-actions/auth writes; found in the
    workspace inside the action's container), else google-auth's default chain; None if there are none.
    Loading the file directly skips default()'s project-id lookup, a request envship has no use for.
    Shared by the GKE connection and the Artifact Registry / gcr.io logins."""
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
    except ImportError as e:  # pragma: no cover - google-auth is a runtime dependency
        raise OperationError("google-auth is not installed", "pip install google-auth") from e
    path = container_path(environ.get("GOOGLE_APPLICATION_CREDENTIALS", ""), environ)
    try:
        if path:
            return load_credentials_file(path)
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM])
        return credentials
    except DefaultCredentialsError as e:
        if path:
            raise OperationError(f"cannot use the Google credentials file {path}: {e}",
                                 "check GOOGLE_APPLICATION_CREDENTIALS and the auth step that wrote it") from e
        return None


def load_credentials_file(path: str) -> Any:
    """Load a credentials file with the loader for its declared type (google-auth's advice for files
    from outside), then add the scope: loading with scopes would make external_account credentials
    look their project up through Cloud Resource Manager, a request envship has no use for."""
    import google.auth.credentials
    from google.auth.exceptions import DefaultCredentialsError

    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError) as e:
        raise DefaultCredentialsError(f"cannot read it as JSON: {e}") from e
    kind = info.get("type") if isinstance(info, dict) else None
    source = info.get("credential_source") or {} if isinstance(info, dict) else {}
    try:
        if kind == "external_account" and str(source.get("environment_id", "")).startswith("aws"):
            from google.auth import aws
            credentials = aws.Credentials.from_info(info)
        elif kind == "external_account" and "executable" in source:
            from google.auth import pluggable
            credentials = pluggable.Credentials.from_info(info)
        elif kind == "external_account":
            from google.auth import identity_pool
            credentials = identity_pool.Credentials.from_info(info)
        elif kind == "service_account":
            from google.oauth2 import service_account
            credentials = service_account.Credentials.from_service_account_info(info)
        elif kind == "authorized_user":
            from google.oauth2 import credentials as user_credentials
            credentials = user_credentials.Credentials.from_authorized_user_info(info)
        else:
            raise DefaultCredentialsError(f"credential type {kind!r} is not supported "
                                          "(external_account, service_account or authorized_user)")
    except (ValueError, KeyError) as e:
        raise DefaultCredentialsError(f"invalid {kind} credentials: {e}") from e
    return google.auth.credentials.with_scopes_if_required(credentials, [CLOUD_PLATFORM])


class GoogleToken:
    """A bearer token source for requests: the current access token, refreshed when google-auth says so."""

    def __init__(self, credentials: Any) -> None:
        self.credentials = credentials
        self.lock = threading.Lock()

    def __call__(self) -> str | None:
        import google.auth.transport.requests
        from google.auth.exceptions import RefreshError

        with self.lock:
            if not self.credentials.valid:  # google-auth marks tokens invalid shortly before expiry
                try:
                    self.credentials.refresh(google.auth.transport.requests.Request())
                except RefreshError as e:
                    raise OperationError(f"refreshing the Google access token failed: {e}",
                                         "the federated or service account credentials expired; re-run the "
                                         "auth step") from e
            return str(self.credentials.token)
