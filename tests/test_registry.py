"""`envship resolve` and the registry client against real registries (Debian's docker-registry on 127.0.0.1):
digests compared with skopeo's, every error case with its exit code, message and hint, each credential
source, the bearer token flow, retries, and tags resolved for render (protected environments refuse them)."""

from __future__ import annotations

import base64
import http.server
import io
import json
import os
import stat
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import BASE_CONFIG, DEPLOYMENT, DIGEST, EPOCH, SERVICE, Project, Result, parse_github_output, run
from registry_fixture import PASSWORD, USER, Registry, TokenRegistry, free_port, skopeo_digest

from envship.adapters.registry.credentials import find_credential
from envship.core.imageref import parse_image_ref
from envship.core.registry import (
    ConfigEntry,
    DockerConfigError,
    docker_config_entry,
    is_google_registry,
    is_insecure,
    parse_challenge,
)

pytest_plugins = ["registry_fixture"]  # the registry, auth_registry and token_registry fixtures

FAKE_GITHUB_TOKEN = "ghp_FAKEtoken0123456789abcdefABCDEF0123"


def environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A hermetic environment: the docker config is the test's own, never the machine's."""
    return {"SOURCE_DATE_EPOCH": EPOCH, "DOCKER_CONFIG": str(tmp_path / "docker"), "HOME": str(tmp_path),
            **extra}


def write_docker_config(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "docker" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def basic_entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def resolve(reference: str, env: dict[str, str]) -> Result:
    return run(["resolve", reference], env)


def assert_problem(result: Result, code: int, message: str, hint: str) -> None:
    assert result.code == code, result.err
    assert result.out == ""
    assert "Traceback" not in result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.err  # one clear error
    _, hint_line = result.problem(message)
    assert hint in hint_line, hint_line


# ------------------------------------------------------------------------------------------------
# resolve == skopeo
# ------------------------------------------------------------------------------------------------

def test_resolve_an_image_buildah_pushed(registry: Registry, buildah_image: tuple[str, str], tmp_path: Path) -> None:
    reference, pushed = buildah_image
    result = resolve(reference, environ(tmp_path))
    assert result.code == 0, result.err
    expected = skopeo_digest(reference)
    assert pushed == expected
    assert result.out == f"{registry.host}/buildah/app@{expected}\n"
    assert result.err == f"{reference} -> {expected} (OCI image manifest)\n"


@pytest.mark.parametrize("docker", [False, True], ids=["oci-manifest", "docker-v2-manifest"])
def test_resolve_uploaded_manifests(registry: Registry, tmp_path: Path, docker: bool) -> None:
    repo = "uploads/docker" if docker else "uploads/oci"
    uploaded = registry.upload_image(repo, "1.0", docker=docker)
    result = resolve(registry.ref(repo, "1.0"), environ(tmp_path))
    assert result.code == 0, result.err
    assert result.out == f"{registry.host}/{repo}@{uploaded}\n"
    assert uploaded == skopeo_digest(registry.ref(repo, "1.0"))
    assert ("Docker image manifest v2" if docker else "OCI image manifest") in result.err


def test_an_index_resolves_to_the_index_digest(registry: Registry, tmp_path: Path) -> None:
    index, children = registry.upload_index("multi/arch", "2.0")
    result = resolve(registry.ref("multi/arch", "2.0"), environ(tmp_path))
    assert result.code == 0, result.err
    assert result.out == f"{registry.host}/multi/arch@{index}\n"
    assert index == skopeo_digest(registry.ref("multi/arch", "2.0"), raw=True)  # sha256 of the raw index
    assert index not in children and "(OCI image index)" in result.err


def test_a_digest_is_checked_to_exist(registry: Registry, tmp_path: Path) -> None:
    digest = registry.upload_image("bydigest/app", "1")
    result = resolve(f"{registry.host}/bydigest/app@{digest}", environ(tmp_path))
    assert result.code == 0, result.err
    assert result.out == f"{registry.host}/bydigest/app@{digest}\n"
    missing = run(["resolve", f"{registry.host}/bydigest/app@{DIGEST}"], environ(tmp_path))
    assert_problem(missing, 2, f"{registry.host}/bydigest/app@{DIGEST} does not exist in the registry",
                   "pass the digest the build job printed")


def test_docker_hub_names_map_to_the_distribution_api() -> None:
    ref = parse_image_ref("nginx:1.27")
    assert (ref.registry, ref.remote_path) == ("registry-1.docker.io", "library/nginx")
    ref = parse_image_ref("docker.io/acme/app:1")
    assert (ref.registry, ref.remote_path) == ("registry-1.docker.io", "acme/app")
    ref = parse_image_ref("localhost:5000/app:1")
    assert (ref.registry, ref.remote_path) == ("localhost:5000", "app")


# ------------------------------------------------------------------------------------------------
# errors: one clear message, the right exit code
# ------------------------------------------------------------------------------------------------

def test_missing_tag(registry: Registry, tmp_path: Path) -> None:
    registry.upload_image("tagged/app", "1.0")
    registry.upload_image("tagged/app", "1.1")
    result = resolve(registry.ref("tagged/app", "2.0"), environ(tmp_path))
    assert_problem(result, 2, f"tag '2.0' does not exist in {registry.host}/tagged/app", "existing tags: 1.0, 1.1")


def test_missing_repository(registry: Registry, tmp_path: Path) -> None:
    result = resolve(registry.ref("no/such-repo", "1.0"), environ(tmp_path))
    assert_problem(result, 2, f"repository {registry.host}/no/such-repo does not exist in registry {registry.host}",
                   "check the repository name")


@pytest.mark.parametrize(("reference", "message", "hint"), [
    ("127.0.0.1:5000/Hello:1", "repository path component 'Hello'", "write REPO:TAG"),
    ("127.0.0.1:5000/app:-bad", "tag '-bad'", "write REPO:TAG"),
    ("127.0.0.1:5000/app@sha256:1234", "digest 'sha256:1234'", "write REPO:TAG"),
    ("127.0.0.1:5000/app", "image reference 127.0.0.1:5000/app names no tag", "write 127.0.0.1:5000/app:TAG"),
    ("", "non-empty", "write REPO:TAG"),
])
def test_malformed_reference(reference: str, message: str, hint: str, tmp_path: Path) -> None:
    result = resolve(reference, environ(tmp_path))
    assert_problem(result, 2, message, hint)


def test_unreachable_registry(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"  # nothing listens there
    result = resolve(f"{host}/app:1", environ(tmp_path))
    assert_problem(result, 1, f"cannot reach registry {host}: connection refused", f"envship tried http://{host}")


def test_no_credentials_for_a_registry_that_needs_them(auth_registry: Registry, tmp_path: Path) -> None:
    auth_registry.upload_image("private/app", "1")
    result = resolve(auth_registry.ref("private/app", "1"), environ(tmp_path))
    assert_problem(result, 1, f"registry {auth_registry.host} requires authentication for "
                              f"{auth_registry.host}/private/app, and envship found no credentials",
                   f"run 'docker login {auth_registry.host}'")
    assert f"no docker config at {tmp_path / 'docker' / 'config.json'}" in result.err


def test_wrong_credentials(auth_registry: Registry, tmp_path: Path) -> None:
    auth_registry.upload_image("private/app", "1")
    config = write_docker_config(tmp_path, {"auths": {auth_registry.host: basic_entry(USER, "wrong-password")}})
    result = resolve(auth_registry.ref("private/app", "1"), environ(tmp_path))
    assert_problem(result, 1, f"registry {auth_registry.host} rejected the credentials from docker config {config} "
                              f"(user {USER})", f"docker login {auth_registry.host}")
    assert "wrong-password" not in result.err


@pytest.mark.parametrize("style", ["auth", "username-password", "https-key"])
def test_basic_auth_from_the_docker_config(auth_registry: Registry, tmp_path: Path, style: str) -> None:
    digest = auth_registry.upload_image("private/app", "basic")
    entry: dict[str, str] = basic_entry(USER, PASSWORD) if style != "username-password" else \
        {"username": USER, "password": PASSWORD}
    key = f"https://{auth_registry.host}" if style == "https-key" else auth_registry.host
    write_docker_config(tmp_path, {"auths": {"other.example.com": basic_entry("x", "y"), key: entry}})
    result = resolve(auth_registry.ref("private/app", "basic"), environ(tmp_path))
    assert result.code == 0, result.err
    assert result.out == f"{auth_registry.host}/private/app@{digest}\n"
    assert digest == skopeo_digest(auth_registry.ref("private/app", "basic"), creds=(USER, PASSWORD))


def fake_helper(bin_dir: Path, name: str, answer: dict[str, str] | None) -> Path:
    """docker-credential-NAME: reads the server on stdin, answers JSON (or fails like 'not found')."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    body = (f"import json, sys\nserver = sys.stdin.read().strip()\n"
            f"open({str(bin_dir / 'asked')!r}, 'w').write(sys.argv[1] + ' ' + server)\n")
    if answer is None:
        body += "print('credentials not found in native keychain')\nsys.exit(1)\n"
    else:
        body += f"print(json.dumps({answer!r}))\n"
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.mark.parametrize("key", ["credHelpers", "credsStore"])
def test_credential_helper_on_path(auth_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   key: str) -> None:
    digest = auth_registry.upload_image("private/app", "helper")
    bin_dir = tmp_path / "bin"
    fake_helper(bin_dir, "envshiptest", {"ServerURL": auth_registry.host, "Username": USER, "Secret": PASSWORD})
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    doc: dict[str, Any] = {"credHelpers": {auth_registry.host: "envshiptest"}} if key == "credHelpers" else \
        {"credsStore": "envshiptest", "auths": {auth_registry.host: {}}}
    write_docker_config(tmp_path, doc)
    result = resolve(auth_registry.ref("private/app", "helper"), environ(tmp_path))
    assert result.code == 0, result.err
    assert result.out == f"{auth_registry.host}/private/app@{digest}\n"
    assert (bin_dir / "asked").read_text() == f"get {auth_registry.host}"


def test_credential_helper_that_knows_nothing(auth_registry: Registry, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    auth_registry.upload_image("private/app", "1")
    bin_dir = tmp_path / "bin"
    fake_helper(bin_dir, "empty", None)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    write_docker_config(tmp_path, {"credsStore": "empty"})
    result = resolve(auth_registry.ref("private/app", "1"), environ(tmp_path))
    assert_problem(result, 1, "envship found no credentials (docker-credential-empty has no credentials for",
                   "docker login")


def test_credential_helper_not_installed(auth_registry: Registry, tmp_path: Path) -> None:
    auth_registry.upload_image("private/app", "1")
    config = write_docker_config(tmp_path, {"credsStore": "osxkeychain-envship-missing"})
    result = resolve(auth_registry.ref("private/app", "1"), environ(tmp_path))
    assert_problem(result, 1, f"the docker config {config} keeps the credentials for {auth_registry.host} in the "
                              "credential helper 'osxkeychain-envship-missing', but "
                              "docker-credential-osxkeychain-envship-missing is not on PATH",
                   "install docker-credential-osxkeychain-envship-missing")


def test_broken_docker_config(auth_registry: Registry, tmp_path: Path) -> None:
    auth_registry.upload_image("private/app", "1")
    config = write_docker_config(tmp_path, {"auths": {auth_registry.host: {"auth": "%%% not base64"}}})
    result = resolve(auth_registry.ref("private/app", "1"), environ(tmp_path))
    assert_problem(result, 1, f"the docker config {config} is invalid: auths['{auth_registry.host}'].auth is not "
                              "base64 of 'user:password'", f"docker login {auth_registry.host}")


# ------------------------------------------------------------------------------------------------
# Bearer tokens (Docker's token auth), through a registry that trusts the fixture's token server
# ------------------------------------------------------------------------------------------------

def test_bearer_token_flow(token_registry: TokenRegistry, tmp_path: Path) -> None:
    reg = token_registry.registry
    digest = reg.upload_image("team/app", "1")
    write_docker_config(tmp_path, {"auths": {reg.host: basic_entry(USER, PASSWORD)}})
    result = resolve(reg.ref("team/app", "1"), environ(tmp_path))
    assert result.code == 0, result.err
    assert result.out == f"{reg.host}/team/app@{digest}\n"
    assert digest == skopeo_digest(reg.ref("team/app", "1"), creds=(USER, PASSWORD))


def test_bearer_token_with_wrong_credentials(token_registry: TokenRegistry, tmp_path: Path) -> None:
    reg = token_registry.registry
    reg.upload_image("team/app", "1")
    write_docker_config(tmp_path, {"auths": {reg.host: basic_entry(USER, "nope")}})
    result = resolve(reg.ref("team/app", "1"), environ(tmp_path))
    assert_problem(result, 1, f"registry {reg.host} rejected the credentials from docker config", "docker login")


def test_bearer_token_anonymous_gets_no_access(token_registry: TokenRegistry, tmp_path: Path) -> None:
    reg = token_registry.registry
    reg.upload_image("team/app", "1")
    result = resolve(reg.ref("team/app", "1"), environ(tmp_path))
    assert_problem(result, 1, f"registry {reg.host} requires authentication", "docker login")


def test_challenge_parsing() -> None:
    challenge = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",'
                                'scope="repository:a/b:pull,push"')
    assert challenge.scheme == "bearer"
    assert challenge.params == {"realm": "https://auth.example/token", "service": "registry.example",
                                "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="envship-test"').params == {"realm": "envship-test"}
    assert parse_challenge("").scheme == ""


# ------------------------------------------------------------------------------------------------
# retries and a registry without Docker-Content-Digest, through a proxy in front of the real registry
# ------------------------------------------------------------------------------------------------

@dataclass
class Proxy:
    host: str
    hits: list[str]


@pytest.fixture
def proxy_factory(registry: Registry) -> Iterator[Any]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def make(fail_first: int = 0, strip_digest: bool = False, status: int = 503) -> Proxy:
        hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def forward(self) -> None:
                hits.append(f"{self.command} {self.path}")
                if len(hits) <= fail_first:
                    body = b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}'
                    self.send_response(status)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
                answer = requests.request(self.command, registry.url + self.path, headers=headers, timeout=10)
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() in ("content-type", "content-length", "www-authenticate") or \
                            (key.lower() == "docker-content-digest" and not strip_digest):
                        self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.content)

            do_GET = do_HEAD = forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return Proxy(f"127.0.0.1:{server.server_address[1]}", hits)

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [429, 503])
def test_retries_after_429_and_5xx(registry: Registry, proxy_factory: Any, tmp_path: Path, status: int) -> None:
    digest = registry.upload_image("retry/app", "1")
    proxy = proxy_factory(fail_first=2, status=status)
    result = resolve(f"{proxy.host}/retry/app:1", environ(tmp_path))
    assert result.code == 0, result.err
    assert result.out == f"{proxy.host}/retry/app@{digest}\n"
    assert proxy.hits == ["HEAD /v2/retry/app/manifests/1"] * 3


def test_gives_up_after_the_retries(registry: Registry, proxy_factory: Any, tmp_path: Path) -> None:
    registry.upload_image("retry/app", "1")
    proxy = proxy_factory(fail_first=100)
    # ENVSHIP_REGISTRY_RETRIES=2 keeps the test short (the default, 4, backs off 0+1+2+4 s)
    result = resolve(f"{proxy.host}/retry/app:1", environ(tmp_path, ENVSHIP_REGISTRY_RETRIES="2"))
    assert_problem(result, 1, f"registry {proxy.host} answered HTTP 503 for {proxy.host}/retry/app:1, also after "
                              "retrying", "try again later")
    assert len(proxy.hits) == 3  # the first attempt and 2 retries


def test_without_docker_content_digest_the_body_is_hashed(registry: Registry, proxy_factory: Any,
                                                          tmp_path: Path) -> None:
    index, _ = registry.upload_index("nodigest/app", "1")
    proxy = proxy_factory(strip_digest=True)
    result = resolve(f"{proxy.host}/nodigest/app:1", environ(tmp_path))
    assert result.code == 0, result.err
    assert result.out == f"{proxy.host}/nodigest/app@{index}\n"
    assert proxy.hits == ["HEAD /v2/nodigest/app/manifests/1", "GET /v2/nodigest/app/manifests/1"]


# ------------------------------------------------------------------------------------------------
# credential sources (GHCR, Google) and the docker config's rules
# ------------------------------------------------------------------------------------------------

def test_ghcr_uses_github_token(tmp_path: Path) -> None:
    masked: list[str] = []
    env = environ(tmp_path, GITHUB_TOKEN=FAKE_GITHUB_TOKEN, GITHUB_ACTOR="octocat")
    credential = find_credential("ghcr.io", env, masked.extend)
    assert (credential.source, credential.username, credential.password) == ("GITHUB_TOKEN", "octocat",
                                                                             FAKE_GITHUB_TOKEN)
    assert masked == [FAKE_GITHUB_TOKEN]
    # the action's github-token input works too, and without an actor the user is x-access-token
    credential = find_credential("ghcr.io", environ(tmp_path, **{"INPUT_GITHUB-TOKEN": "tok-123"}), masked.extend)
    assert (credential.username, credential.password) == ("x-access-token", "tok-123")
    # elsewhere GITHUB_TOKEN is never sent
    assert find_credential("quay.io", env, masked.extend).anonymous


class FakeGoogleOAuth(http.server.BaseHTTPRequestHandler):
    """Google's OAuth token endpoint for a service account key: JWT bearer grant in, access token out."""

    token = "ya29.fake-access-token-for-envship-tests"
    reject = False

    def do_POST(self) -> None:
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        ok = form.get("grant_type") == ["urn:ietf:params:oauth:grant-type:jwt-bearer"] and not self.reject
        body = json.dumps({"access_token": self.token, "expires_in": 3600, "token_type": "Bearer"} if ok else
                          {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}).encode()
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def google_adc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeGoogleOAuth]]:
    """Application default credentials: a service account key whose token_uri is a local fake."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    handler = type("Handler", (FakeGoogleOAuth,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    key_file = tmp_path / "sa.json"
    key_file.write_text(json.dumps({
        "type": "service_account", "project_id": "acme", "private_key_id": "k1", "private_key": key,
        "client_email": "deployer@acme.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": f"http://127.0.0.1:{server.server_address[1]}/token"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    yield handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("host", ["europe-west1-docker.pkg.dev", "gcr.io", "eu.gcr.io"])
def test_google_registries_use_application_default_credentials(google_adc: Any, tmp_path: Path, host: str) -> None:
    masked: list[str] = []
    credential = find_credential(host, environ(tmp_path), masked.extend)
    assert credential.source == "Google application default credentials"
    assert (credential.username, credential.password) == ("oauth2accesstoken", FakeGoogleOAuth.token)
    assert masked == [FakeGoogleOAuth.token]


def test_google_credentials_that_cannot_get_a_token(google_adc: Any, tmp_path: Path) -> None:
    google_adc.reject = True
    with pytest.raises(Exception) as caught:
        find_credential("us-docker.pkg.dev", environ(tmp_path), lambda values: None)
    assert "Google application default credentials could not get an access token" in str(caught.value)
    assert caught.value.exit_code == 1  # type: ignore[attr-defined]


def test_google_without_credentials_falls_back_to_the_docker_config(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    dead = f"127.0.0.1:{free_port()}"  # the metadata server probe goes nowhere
    monkeypatch.setenv("GCE_METADATA_HOST", dead)
    monkeypatch.setenv("GCE_METADATA_IP", dead)
    write_docker_config(tmp_path, {"auths": {"us-docker.pkg.dev": basic_entry("_json_key", "{...}")}})
    credential = find_credential("us-docker.pkg.dev", environ(tmp_path), lambda values: None)
    assert (credential.username, credential.source) == ("_json_key", f"docker config {tmp_path}/docker/config.json")


def test_docker_config_rules() -> None:
    hub = {"auths": {"https://index.docker.io/v1/": basic_entry("hubuser", "hubpass")}}
    assert docker_config_entry(hub, "registry-1.docker.io") == ConfigEntry(username="hubuser", password="hubpass")
    assert not docker_config_entry(hub, "ghcr.io").found
    both = {"credHelpers": {"ghcr.io": "gh"}, "credsStore": "desktop", "auths": {"ghcr.io": basic_entry("a", "b")}}
    assert docker_config_entry(both, "ghcr.io") == ConfigEntry(helper="gh")
    assert docker_config_entry(both, "quay.io") == ConfigEntry(helper="desktop")
    with pytest.raises(DockerConfigError):
        docker_config_entry({"auths": {"ghcr.io": {"auth": "!!"}}}, "ghcr.io")


def test_plain_http_only_for_local_and_listed_registries() -> None:
    assert is_insecure("localhost:5000") and is_insecure("127.0.0.1:5000") and is_insecure("[::1]:5000")
    assert not is_insecure("ghcr.io") and not is_insecure("registry.internal:5000")
    assert is_insecure("registry.internal:5000", "registry.internal, other:1")
    assert is_insecure("other:1", "registry.internal,other:1") and not is_insecure("other:2", "other:1")
    assert is_google_registry("us-docker.pkg.dev") and is_google_registry("gcr.io")
    assert not is_google_registry("ghcr.io") and not is_google_registry("notgcr.io")


def test_insecure_registries_setting_switches_to_http(registry: Registry, tmp_path: Path) -> None:
    """A registry listed in ENVSHIP_INSECURE_REGISTRIES is asked over plain HTTP even by a non-local name."""
    port = registry.host.rsplit(":", 1)[1]
    digest = registry.upload_image("insecure/app", "1")
    host = f"127.0.0.2:{port}"
    # the registry listens on 127.0.0.1 only: what matters is the scheme the error names
    result = resolve(f"{host}/insecure/app:1", environ(tmp_path, ENVSHIP_INSECURE_REGISTRIES=host))
    assert_problem(result, 1, f"cannot reach registry {host}", f"envship tried http://{host}")
    result = resolve(f"{host}/insecure/app:1", environ(tmp_path))
    assert_problem(result, 1, f"cannot reach registry {host}", f"envship tried https://{host}")
    assert digest


# ------------------------------------------------------------------------------------------------
# render: a tag is resolved (and recorded); protected environments refuse it; a digest stays offline
# ------------------------------------------------------------------------------------------------

def app_project(project: Project, host: str) -> Project:
    project.config(BASE_CONFIG.replace("image: ghcr.io/acme/hello", f"image: {host}/acme/hello"))
    project.manifest("deployment.yaml", DEPLOYMENT.replace("ghcr.io/acme/hello:latest", f"{host}/acme/hello:latest"))
    project.manifest("service.yaml", SERVICE)
    return project


def test_render_resolves_a_tag_and_records_it(registry: Registry, project: Project, tmp_path: Path) -> None:
    digest = registry.upload_image("acme/hello", "1.4.0")
    app_project(project, registry.host)
    result = project.render(image=f"{registry.host}/acme/hello:1.4.0", environ=environ(tmp_path))
    assert result.code == 0, result.err
    deployment = result.one("Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"{registry.host}/acme/hello@{digest}"
    annotations = deployment["metadata"]["annotations"]
    assert annotations["envship.dev/digest"] == digest and annotations["envship.dev/image-tag"] == "1.4.0"
    assert f"resolved {registry.host}/acme/hello:1.4.0 to {digest}" in result.err


def test_render_protected_environment_refuses_a_tag_without_asking(project: Project, tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"  # no registry: a network call would fail with exit 1, not 2
    app_project(project, host)
    result = project.render(env="production", image=f"{host}/acme/hello:1.4.0", environ=environ(tmp_path))
    assert_problem(result, 2, "environment 'production' is protected and takes an image digest, not the tag '1.4.0'",
                   "--allow-tag")


def test_render_protected_environment_with_allow_tag(registry: Registry, project: Project, tmp_path: Path) -> None:
    digest = registry.upload_image("acme/hello", "1.5.0")
    app_project(project, registry.host)
    result = project.render("--allow-tag", env="production", image=f"{registry.host}/acme/hello:1.5.0",
                            environ=environ(tmp_path))
    assert result.code == 0, result.err
    assert result.one("Deployment")["metadata"]["annotations"]["envship.dev/image-tag"] == "1.5.0"
    assert result.one("Deployment")["metadata"]["annotations"]["envship.dev/digest"] == digest


def test_render_tag_of_an_unreachable_registry(project: Project, tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    app_project(project, host)
    result = project.render(image=f"{host}/acme/hello:1.4.0", environ=environ(tmp_path))
    assert_problem(result, 1, f"cannot reach registry {host}: connection refused", "check the registry host")


def test_render_a_missing_tag(registry: Registry, project: Project, tmp_path: Path) -> None:
    app_project(project, registry.host)
    registry.upload_image("acme/hello", "1.4.0")
    result = project.render(image=f"{registry.host}/acme/hello:9.9.9", environ=environ(tmp_path))
    assert_problem(result, 2, f"tag '9.9.9' does not exist in {registry.host}/acme/hello", "existing tags:")


def test_render_a_digest_stays_offline(project: Project, tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"  # unreachable: render must not ask
    app_project(project, host)
    result = project.render(image=f"{host}/acme/hello@{DIGEST}", environ=environ(tmp_path))
    assert result.code == 0, result.err
    assert result.err == ""
    assert "envship.dev/image-tag" not in result.one("Deployment")["metadata"]["annotations"]


def test_pin_image_verifies_a_digest_when_asked(registry: Registry, project: Project, tmp_path: Path) -> None:
    """What deploy, plan and promote use: a digest must exist in the registry before the cluster is touched."""
    from envship.adapters.registry import ImageNotFound, client
    from envship.core.config import parse_config
    from envship.engine.images import pin_image

    digest = registry.upload_image("acme/hello", "2.0.0")
    config = parse_config(BASE_CONFIG.replace("image: ghcr.io/acme/hello", f"image: {registry.host}/acme/hello"),
                          "envship.yaml")
    production = config.environments["production"]
    calls: list[str] = []

    def registry_client() -> Any:
        calls.append("asked")
        return client(environ(tmp_path), lambda values: None)

    pinned = pin_image(config, production, f"{registry.host}/acme/hello@{digest}", False, registry_client)
    assert (pinned.image, pinned.digest, pinned.resolved_from_tag) == (f"{registry.host}/acme/hello@{digest}",
                                                                       digest, None)
    assert calls == ["asked"]
    with pytest.raises(ImageNotFound) as missing:
        pin_image(config, production, f"{registry.host}/acme/hello@{DIGEST}", False, registry_client)
    assert missing.value.exit_code == 2 and "does not exist in the registry" in str(missing.value)
    pinned = pin_image(config, production, f"{registry.host}/acme/hello:2.0.0", True, registry_client)
    assert (pinned.digest, pinned.resolved_from_tag) == (digest, "2.0.0")
    # a digest without verification never asks
    calls.clear()
    pin_image(config, production, f"{registry.host}/acme/hello@{DIGEST}", False, registry_client, verify=False)
    assert calls == []


# ------------------------------------------------------------------------------------------------
# the action, and secrets never printed
# ------------------------------------------------------------------------------------------------

def test_action_resolve_writes_outputs(registry: Registry, tmp_path: Path) -> None:
    digest = registry.upload_image("action/app", "main")
    output = tmp_path / "github_output"
    output.touch()
    env = environ(tmp_path, GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(output),
                  INPUT_COMMAND="resolve", INPUT_IMAGE=registry.ref("action/app", "main"))
    result = run(["action"], env)
    assert result.code == 0, result.err
    assert parse_github_output(output.read_text()) == {"image": f"{registry.host}/action/app@{digest}",
                                                       "digest": digest}


def test_no_secret_is_ever_printed(auth_registry: Registry, token_registry: TokenRegistry, tmp_path: Path) -> None:
    """Registry password, GITHUB_TOKEN and bearer tokens, through successes and failures, in Actions mode."""
    auth_registry.upload_image("private/app", "1")
    token_registry.registry.upload_image("team/app", "1")
    output, summary = tmp_path / "out", tmp_path / "summary"
    output.touch()
    summary.touch()
    base = environ(tmp_path, GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary),
                   GITHUB_TOKEN=FAKE_GITHUB_TOKEN, ENVSHIP_DEBUG="1")
    seen = io.StringIO()
    cases = [
        ({"auths": {auth_registry.host: basic_entry(USER, PASSWORD)}}, auth_registry.ref("private/app", "1")),
        ({"auths": {auth_registry.host: basic_entry(USER, PASSWORD)}}, auth_registry.ref("private/app", "nope")),
        ({"auths": {auth_registry.host: basic_entry(USER, PASSWORD + "x")}}, auth_registry.ref("private/app", "1")),
        ({"auths": {token_registry.registry.host: basic_entry(USER, PASSWORD)}},
         token_registry.registry.ref("team/app", "1")),
        ({"auths": {token_registry.registry.host: basic_entry(USER, PASSWORD)}},
         token_registry.registry.ref("team/nothing", "1")),
        ({"auths": {auth_registry.host: basic_entry(USER, FAKE_GITHUB_TOKEN)}}, auth_registry.ref("private/app", "1")),
    ]
    for config, reference in cases:
        write_docker_config(tmp_path, config)
        result = resolve(reference, base)
        seen.write(result.out + result.err)
    seen.write(output.read_text() + summary.read_text())
    # `::add-mask::VALUE` is the command that tells the runner to mask VALUE; the runner never shows it
    lines = seen.getvalue().splitlines()
    assert f"::add-mask::{PASSWORD}" in lines
    text = "\n".join(line for line in lines if not line.startswith("::add-mask::"))
    assert "error: " in text and "@sha256:" in text  # both failures and successes happened
    secrets = [PASSWORD, FAKE_GITHUB_TOKEN, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
               *token_registry.issuer.issued]
    assert token_registry.issuer.issued
    for secret in secrets:
        assert secret not in text
