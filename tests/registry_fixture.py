"""Real OCI registries for the tests: Debian's `docker-registry` (the CNCF distribution registry) on
127.0.0.1, started once per test session, stopped by PID at the end.

- `registry`: no auth;
- `auth_registry`: htpasswd basic auth (a bcrypt file made by `htpasswd -Bbn`);
- `token_registry`: Docker's token auth: the registry answers 401 with `WWW-Authenticate: Bearer realm=...`
  and trusts JWTs signed by a small token server started here (RS256, the key's self-signed certificate
  in the registry's `rootcertbundle`), which checks basic credentials and grants `pull`/`push`.

Images are pushed with plain HTTP uploads (`Registry.upload_*`: monolithic blob upload, manifest PUT) and
with buildah (`buildah_image`, a FROM scratch image built in a private storage root). The binaries come from
Debian packages that .ci/run installs; a missing one fails the tests (it never skips them).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
USER, PASSWORD = "alice", "s3cret-Registry-pw"  # the htpasswd and token registries' only account
SERVICE, ISSUER = "envship-test", "envship-test-issuer"
START_TIMEOUT = 15.0
PACKAGES = "docker-registry, buildah, skopeo and apache2-utils"


def require(program: str, package: str) -> str:
    path = shutil.which(program) or (f"/usr/bin/{program}" if Path(f"/usr/bin/{program}").exists() else None)
    if not path:
        pytest.fail(f"{program} is not installed (Debian package {package}); run .ci/run, which installs {PACKAGES}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class Registry:
    host: str                              # 127.0.0.1:PORT
    auth: tuple[str, str] | None = None    # basic credentials for uploads (htpasswd registry)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    token_url: str = ""                    # token registry: where uploads get their bearer token
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def ref(self, repo: str, tag: str) -> str:
        return f"{self.host}/{repo}:{tag}"

    # -- uploads ---------------------------------------------------------------------------------
    def _headers(self, repo: str) -> dict[str, str]:
        if not self.token_url:
            return {}
        scope = f"repository:{repo}:pull,push"
        answer = self.session.get(self.token_url, params={"service": SERVICE, "scope": scope}, auth=self.auth,
                                  timeout=10)
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    def _auth(self) -> tuple[str, str] | None:
        return None if self.token_url else self.auth

    def push_blob(self, repo: str, data: bytes) -> dict[str, Any]:
        digest = sha256(data)
        headers = self._headers(repo)
        started = self.session.post(f"{self.url}/v2/{repo}/blobs/uploads/", auth=self._auth(), headers=headers,
                                    timeout=10)
        assert started.status_code == 202, started.text
        location = urllib.parse.urljoin(self.url, started.headers["Location"])
        joiner = "&" if "?" in location else "?"
        put = self.session.put(f"{location}{joiner}digest={digest}", data=data, auth=self._auth(),
                               headers={**headers, "Content-Type": "application/octet-stream"}, timeout=10)
        assert put.status_code == 201, put.text
        return {"digest": digest, "size": len(data)}

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        answer = self.session.put(f"{self.url}/v2/{repo}/manifests/{reference}", data=body, auth=self._auth(),
                                  headers={**self._headers(repo), "Content-Type": media_type}, timeout=10)
        assert answer.status_code == 201, answer.text
        digest = sha256(body)
        assert answer.headers.get("Docker-Content-Digest") == digest
        return digest

    def upload_image(self, repo: str, tag: str, docker: bool = False, arch: str = "amd64",
                     content: bytes = b"hello from envship's tests\n") -> str:
        """A one-layer image as an OCI manifest (or a Docker v2 manifest); returns the manifest digest."""
        layer = self.push_blob(repo, content)
        config_doc = {"architecture": arch, "os": "linux", "config": {"Labels": {"test": tag}},
                      "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}
        config = self.push_blob(repo, canonical_json(config_doc))
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG_TYPE if docker else OCI_CONFIG, **config},
            "layers": [{"mediaType": DOCKER_LAYER if docker else OCI_LAYER, **layer}],
        }
        body = json.dumps(manifest, indent=3).encode()  # not canonical on purpose: the digest is of the bytes
        return self.put_manifest(repo, tag, body, manifest["mediaType"])

    def upload_index(self, repo: str, tag: str) -> tuple[str, list[str]]:
        """An OCI image index over an amd64 and an arm64 manifest; returns (index digest, manifest digests)."""
        children = []
        for arch in ("amd64", "arm64"):
            digest = self.upload_image(repo, f"{tag}-{arch}", arch=arch, content=f"{arch} layer\n".encode())
            body_size = len(self.session.get(f"{self.url}/v2/{repo}/manifests/{digest}", auth=self._auth(),
                                             headers={**self._headers(repo), "Accept": OCI_MANIFEST},
                                             timeout=10).content)
            children.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": body_size,
                             "platform": {"architecture": arch, "os": "linux"}})
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
        return self.put_manifest(repo, tag, canonical_json(index), OCI_INDEX), [c["digest"] for c in children]


# -- processes -------------------------------------------------------------------------------------

def start_registry(root: Path, name: str, auth: dict[str, Any] | None = None) -> Registry:
    binary = require("docker-registry", "docker-registry")
    port = free_port()
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root / f"{name}-storage")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    if auth:
        config["auth"] = auth
    config_file = root / f"{name}.yml"
    config_file.write_text(json.dumps(config))  # YAML is a superset of JSON
    log = root / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([binary, "serve", str(config_file)], stdout=out, stderr=subprocess.STDOUT)
    registry = Registry(f"127.0.0.1:{port}", process=process, log=log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop(registry)
            pytest.fail(f"docker-registry {name} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(f"{registry.url}/v2/", timeout=1).status_code in (200, 401):
                return registry
        except requests.ConnectionError:
            time.sleep(0.05)
    stop(registry)
    pytest.fail(f"docker-registry {name} did not answer /v2/ within {START_TIMEOUT} s:\n{log.read_text()}")


def stop(registry: Registry) -> None:
    process = registry.process
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = start_registry(tmp_path_factory.mktemp("registry"), "plain")
    yield reg
    stop(reg)


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("auth-registry")
    htpasswd = require("htpasswd", "apache2-utils")
    proc = subprocess.run([htpasswd, "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True, timeout=30)
    (root / "htpasswd").write_text(proc.stdout)
    reg = start_registry(root, "auth", {"htpasswd": {"realm": "envship-test", "path": str(root / "htpasswd")}})
    reg.auth = (USER, PASSWORD)
    yield reg
    stop(reg)


# -- the token registry ----------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """Signs registry bearer tokens the way Docker's token spec says (RS256 JWT, x5c header)."""

    def __init__(self, root: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "envship test token issuer")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.bundle = root / "token-cert.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.der = self.cert.public_bytes(serialization.Encoding.DER)
        self.issued: list[str] = []  # for the leak check

    def sign(self, scope: str, subject: str, granted: bool) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        if granted and scope:
            kind, name, actions = scope.split(":", 2)
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.der).decode()]}
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{b64url(canonical_json(header))}.{b64url(canonical_json(claims))}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = f"{signing_input}.{b64url(signature)}"
        self.issued.append(token)
        return token


def token_server(issuer: TokenIssuer) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            scope = query.get("scope", [""])[0]
            subject, granted = "anonymous", False
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                if (user, password) != (USER, PASSWORD):
                    self.answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                    return
                subject, granted = user, True
            self.answer(200, {"token": issuer.sign(scope, subject, granted), "expires_in": 300})

        def answer(self, status: int, doc: dict[str, Any]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/token"


@dataclass
class TokenRegistry:
    registry: Registry
    issuer: TokenIssuer


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    root = tmp_path_factory.mktemp("token-registry")
    issuer = TokenIssuer(root)
    server, url = token_server(issuer)
    auth = {"token": {"realm": url, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(issuer.bundle)}}
    reg = start_registry(root, "token", auth)
    reg.auth, reg.token_url = (USER, PASSWORD), url
    yield TokenRegistry(reg, issuer)
    stop(reg)
    server.shutdown()
    server.server_close()


# -- buildah ---------------------------------------------------------------------------------------

@dataclass
class Buildah:
    storage_conf: Path  # CONTAINERS_STORAGE_CONF: vfs storage in a private root, never the machine's

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_STORAGE_CONF": str(self.storage_conf)}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([require("buildah", "buildah"), *args], env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, f"buildah {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc


@pytest.fixture(scope="session")
def buildah(tmp_path_factory: pytest.TempPathFactory) -> Buildah:
    root = tmp_path_factory.mktemp("buildah")
    conf = root / "storage.conf"
    conf.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{root}/root"\nrunroot = "{root}/runroot"\n')
    return Buildah(conf)


def write_context(directory: Path, text: str = "hello from a FROM scratch image\n") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Containerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\nLABEL org.example.test=1\n")
    (directory / "hello.txt").write_text(text)
    return directory


@pytest.fixture(scope="session")
def buildah_image(registry: Registry, buildah: Buildah, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(REPO:TAG, digest buildah reported) of a FROM scratch image buildah built and pushed."""
    context = write_context(tmp_path_factory.mktemp("context"))
    iid = context.parent / "iid"
    buildah.run("build", "--isolation", "chroot", "--iidfile", str(iid), "-f", str(context / "Containerfile"),
                str(context))
    reference = registry.ref("buildah/app", "v1")
    digest_file = context.parent / "digest"
    buildah.run("push", "--tls-verify=false", "--digestfile", str(digest_file), iid.read_text().strip(),
                f"docker://{reference}")
    return reference, digest_file.read_text().strip()


def skopeo_digest(reference: str, creds: tuple[str, str] | None = None, raw: bool = False) -> str:
    """The digest skopeo reports (`Digest` of `skopeo inspect`), or the sha256 of `--raw`'s bytes."""
    args = [require("skopeo", "skopeo"), "inspect", "--tls-verify=false"]
    if creds:
        args += ["--creds", f"{creds[0]}:{creds[1]}"]
    if raw:
        args.append("--raw")
    proc = subprocess.run([*args, f"docker://{reference}"], capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    return sha256(proc.stdout) if raw else str(json.loads(proc.stdout)["Digest"])
