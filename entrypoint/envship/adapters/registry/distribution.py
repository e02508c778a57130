"""OCI registries, through the distribution API over requests: tag -> digest, and "does this digest exist".

`HEAD /v2/<name>/manifests/<tag or digest>` with every manifest media type in `Accept` (so an image index
resolves to the index's digest, as `docker pull` and Kubernetes see it); the digest comes from
`Docker-Content-Digest`, or from hashing the body of a GET when a registry leaves the header out.
Auth: anonymous first; on 401, `WWW-Authenticate: Bearer ...` -> a token from the realm (with basic
credentials when there are any), `Basic` -> basic credentials (registry_credentials.py says whose).
429 and 5xx are retried with exponential backoff (honouring Retry-After); so are connection failures,
briefly. https always, plain http only for local registries and ENVSHIP_INSECURE_REGISTRIES.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from ... import __version__
from ...core.imageref import ImageRef
from ...core.registry import (
    ACCEPT,
    MEDIA_TYPE_NAMES,
    Challenge,
    error_codes,
    is_google_registry,
    is_insecure,
    parse_challenge,
    sha256_digest,
    tags_in,
    valid_digest,
)
from ...errors import EXIT_FAILED, EXIT_USAGE, EnvshipError, Problem
from .credentials import Credential, find_credential

RETRY_STATUSES = (429, 500, 502, 503, 504)
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF = 0.5          # seconds: 0, 1, 2, 4 between attempts (urllib3's exponential backoff)
DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read
INSECURE_ENV = "ENVSHIP_INSECURE_REGISTRIES"


class RegistryError(EnvshipError):
    """A registry said no, or could not be asked. One problem, with a hint; never a credential."""

    def __init__(self, message: str, hint: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__([Problem(message, None, hint)], exit_code=exit_code, title="registry error")


class ImageNotFound(RegistryError):
    """The tag, digest or repository does not exist: bad input, exit 2."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message, hint, EXIT_USAGE)


class RegistryUnauthorized(RegistryError):
    pass


class RegistryUnreachable(RegistryError):
    pass


@dataclass(frozen=True)
class Resolved:
    reference: ImageRef    # what was asked
    digest: str            # sha256:...
    media_type: str

    @property
    def kind(self) -> str:
        return MEDIA_TYPE_NAMES.get(self.media_type, self.media_type or "manifest")

    @property
    def image(self) -> str:
        return self.reference.pinned(self.digest)


def make_session(retries: int = DEFAULT_RETRIES, backoff: float = DEFAULT_BACKOFF) -> requests.Session:
    retry = Retry(total=retries, connect=min(retries, 2), read=min(retries, 2), backoff_factor=backoff,
                  status_forcelist=RETRY_STATUSES, allowed_methods={"HEAD", "GET"},
                  respect_retry_after_header=True, raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = f"envship/{__version__}"
    return session


class RegistryClient:
    def __init__(self, environ: Mapping[str, str], mask: Callable[[Iterable[str]], None],
                 session: requests.Session | None = None) -> None:
        self.environ = environ
        self.mask = mask
        self.session = session or make_session()
        self.timeout = DEFAULT_TIMEOUT
        self._credentials: dict[str, Credential] = {}
        self._auth: dict[tuple[str, str], str] = {}  # (host, scope) -> Authorization header value

    # -- public -----------------------------------------------------------------------------------
    def resolve(self, ref: ImageRef) -> Resolved:
        """The digest the registry serves for `ref` (its tag, or its digest, which must exist)."""
        reference = ref.digest or ref.tag or "latest"
        url = self.url(ref, f"manifests/{reference}")
        response = self.request("HEAD", ref, url, {"Accept": ACCEPT})
        if response.status_code == 405:  # a registry without HEAD support
            response = self.request("GET", ref, url, {"Accept": ACCEPT})
        if response.status_code == 404:
            raise self.not_found(ref, reference)
        self.check(response, ref)
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        digest = response.headers.get("Docker-Content-Digest", "")
        if not valid_digest(digest):
            body = self.request("GET", ref, url, {"Accept": ACCEPT})
            self.check(body, ref)
            digest = sha256_digest(body.content)
            media_type = body.headers.get("Content-Type", media_type).split(";")[0].strip()
        if ref.digest and digest != ref.digest:
            raise RegistryError(f"{self.host_of(ref)} answered {ref} with a manifest whose digest is {digest}",
                                "the registry or a proxy in between is misbehaving; try again, or another mirror")
        return Resolved(ref, digest, media_type)

    # -- HTTP -------------------------------------------------------------------------------------
    def host_of(self, ref: ImageRef) -> str:
        return ref.registry

    def url(self, ref: ImageRef, tail: str) -> str:
        host = ref.registry
        scheme = "http" if is_insecure(host, self.environ.get(INSECURE_ENV, "")) else "https"
        return f"{scheme}://{host}/v2/{ref.remote_path}/{tail}"

    def request(self, method: str, ref: ImageRef, url: str, headers: Mapping[str, str]) -> requests.Response:
        host, scope = ref.registry, f"repository:{ref.remote_path}:pull"
        auth = self._auth.get((host, scope))
        response = self.send(method, url, {**headers, **({"Authorization": auth} if auth else {})}, ref)
        if response.status_code == 401:
            challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            auth = self.authenticate(ref, scope, challenge)
            self._auth[(host, scope)] = auth
            response = self.send(method, url, {**headers, "Authorization": auth}, ref)
            if response.status_code == 401:
                raise self.unauthorized(ref, "rejected")
        if response.status_code == 403:
            raise self.unauthorized(ref, "denied")
        return response

    def send(self, method: str, url: str, headers: Mapping[str, str], ref: ImageRef,
             params: Mapping[str, str] | None = None, auth: tuple[str, str] | None = None) -> requests.Response:
        try:
            return self.session.request(method, url, headers=dict(headers), params=params, auth=auth,
                                        timeout=self.timeout, allow_redirects=True)
        except requests.exceptions.SSLError as e:
            raise RegistryUnreachable(
                f"TLS to registry {ref.registry} failed: {short_reason(e)}",
                f"if {ref.registry} serves plain HTTP, list it in {INSECURE_ENV} (comma-separated hosts)") from e
        except requests.exceptions.ConnectionError as e:
            raise RegistryUnreachable(
                f"cannot reach registry {ref.registry}: {short_reason(e)}",
                f"check the registry host in '{ref}' and the network; envship tried {url.split('/v2/')[0]}") from e
        except requests.exceptions.Timeout as e:
            raise RegistryUnreachable(f"registry {ref.registry} did not answer in time",
                                      "try again; check the network or the registry's status page") from e
        except requests.exceptions.RequestException as e:
            raise RegistryUnreachable(f"request to registry {ref.registry} failed: {short_reason(e)}",
                                      "try again") from e

    def check(self, response: requests.Response, ref: ImageRef) -> None:
        if response.status_code == 200:
            return
        codes = ", ".join(error_codes(response.content)) or f"HTTP {response.status_code}"
        if response.status_code in RETRY_STATUSES:
            raise RegistryError(f"registry {ref.registry} answered {codes} for {ref}, also after retrying",
                                "the registry is overloaded or down; try again later")
        raise RegistryError(f"registry {ref.registry} answered {codes} for {ref}",
                            "check the image reference; if it is right, the registry is misbehaving")

    # -- auth -------------------------------------------------------------------------------------
    def credential(self, host: str) -> Credential:
        if host not in self._credentials:
            self._credentials[host] = find_credential(host, self.environ, self.mask)
        return self._credentials[host]

    def authenticate(self, ref: ImageRef, scope: str, challenge: Challenge) -> str:
        credential = self.credential(ref.registry)
        if challenge.scheme == "bearer" and challenge.params.get("realm"):
            return "Bearer " + self.token(ref, scope, challenge, credential)
        if challenge.scheme == "basic":
            if credential.anonymous:
                raise self.unauthorized(ref, "needs credentials")
            pair = f"{credential.username}:{credential.password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        raise RegistryError(
            f"registry {ref.registry} asks for authentication envship does not know "
            f"({challenge.scheme or 'no WWW-Authenticate header'})",
            "envship supports anonymous, basic and bearer-token registries (the distribution spec)")

    def token(self, ref: ImageRef, scope: str, challenge: Challenge, credential: Credential) -> str:
        params = {"scope": challenge.params.get("scope") or scope}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        basic = None if credential.anonymous else (credential.username, credential.password)
        response = self.send("GET", challenge.params["realm"], {}, ref, params=params, auth=basic)
        if response.status_code in (401, 403):
            raise self.unauthorized(ref, "rejected")
        if response.status_code != 200:
            raise RegistryError(f"the token service of {ref.registry} answered HTTP {response.status_code}",
                                "try again later")
        try:
            doc = response.json()
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"the token service of {ref.registry} sent no token",
                                "the registry's token service is misbehaving; try again later")
        self.mask([token])
        return token

    def unauthorized(self, ref: ImageRef, how: str) -> RegistryUnauthorized:
        host = ref.registry
        credential = self.credential(host)
        if credential.anonymous:
            tried = "; ".join(credential.notes)
            message = f"registry {host} requires authentication for {ref.repository}, and envship found no credentials"
            if tried:
                message += f" ({tried})"
            return RegistryUnauthorized(message, login_hint(host))
        verb = "denied access to" if how == "denied" else "rejected"
        what = f"{ref.repository} for " if how == "denied" else ""
        return RegistryUnauthorized(
            f"registry {host} {verb} {what}the {credential.describe()}",
            f"check that they are current and may pull {ref.repository}; " + login_hint(host))

    # -- 404 --------------------------------------------------------------------------------------
    def not_found(self, ref: ImageRef, reference: str) -> ImageNotFound:
        """Tell a missing repository from a missing tag or digest: distribution answers MANIFEST_UNKNOWN
        for both, so the tag list decides (and names a few tags that do exist)."""
        tags = self.send("GET", self.url(ref, "tags/list"), self._auth_headers(ref), ref, params={"n": "100"})
        codes = error_codes(tags.content)
        if tags.status_code == 404 or "NAME_UNKNOWN" in codes:
            return ImageNotFound(f"repository {ref.repository} does not exist in registry {ref.registry}",
                                 "check the repository name (and that the build job pushed to it)")
        known = tags_in(tags.content) if tags.status_code == 200 else []
        if ref.digest:
            return ImageNotFound(
                f"{ref.pinned(ref.digest)} does not exist in the registry",
                "pass the digest the build job printed for this repository (its push may have failed)")
        shown = ", ".join(sorted(known)[:10]) + (", ..." if len(known) > 10 else "")
        return ImageNotFound(f"tag '{reference}' does not exist in {ref.repository}",
                             f"existing tags: {shown}" if known else "the repository has no tags yet")

    def _auth_headers(self, ref: ImageRef) -> dict[str, str]:
        auth = self._auth.get((ref.registry, f"repository:{ref.remote_path}:pull"))
        return {"Authorization": auth} if auth else {}


def login_hint(host: str) -> str:
    if host.lower() == "ghcr.io":
        return "set GITHUB_TOKEN (a token with read:packages), or run 'docker login ghcr.io'"
    if is_google_registry(host):
        return ("authenticate with google-github-actions/auth (or gcloud auth application-default login); "
                "the account needs roles/artifactregistry.reader")
    return f"run 'docker login {host}' (envship reads $DOCKER_CONFIG/config.json or ~/.docker/config.json)"


def short_reason(e: Exception) -> str:
    """The root cause of a requests/urllib3 error, without the long wrapper text."""
    text = str(e)
    for marker, reason in (("Connection refused", "connection refused"),
                           ("Name or service not known", "unknown host"),
                           ("nodename nor servname", "unknown host"),
                           ("Temporary failure in name resolution", "unknown host (DNS)"),
                           ("timed out", "timed out"),
                           ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed"),
                           ("WRONG_VERSION_NUMBER", "the server does not speak TLS")):
        if marker in text:
            return reason
    return text[:200]


def client(environ: Mapping[str, str], mask: Callable[[Iterable[str]], None]) -> RegistryClient:
    retries = environ.get("ENVSHIP_REGISTRY_RETRIES", "")
    session = make_session(int(retries)) if retries.isdigit() else None
    return RegistryClient(environ, mask, session)

