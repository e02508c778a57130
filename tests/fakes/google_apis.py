"""A fake of the two Google endpoints envship's GKE path uses, on 127.0.0.1:

- STS token exchange (`POST /v1/token`), what google-auth's `external_account` credentials (the file
  Workload Identity Federation writes in GitHub Actions) call to turn a subject token into an access
  token. Tokens expire after `token_lifetime` seconds, so refreshes during a long wait are observable.
- Container API `GET /v1/projects/P/locations/L/clusters/C` (the REST transport of
  google-cloud-container), answering with the cluster's endpoint and CA, and Google's error JSON for
  unknown clusters, missing or stale tokens.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

SUBJECT_TOKEN = "eyJhbGciOiJSUzI1NiJ9.github-oidc-subject.signature"


@dataclass
class Cluster:
    endpoint: str = ""
    ca_base64: str = ""
    private_endpoint: str = ""
    dns_endpoint: str = ""


@dataclass
class GoogleState:
    token_lifetime: int = 3600
    clusters: dict[str, Cluster] = field(default_factory=dict)
    issued: dict[str, float] = field(default_factory=dict)   # token -> expiry (epoch seconds)
    exchanges: int = 0
    cluster_reads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self) -> tuple[str, int]:
        token = f"ya29.fake-{uuid.uuid4().hex}"
        with self.lock:
            self.exchanges += 1
            self.issued[token] = time.time() + self.token_lifetime
        return token, self.token_lifetime

    def valid(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        expiry = self.issued.get(header.removeprefix("Bearer "))
        return expiry is not None and expiry > time.time()


def _handler(state: GoogleState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, code: int, status: str, message: str) -> None:
            self._send(code, {"error": {"code": code, "message": message, "status": status}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            if self.path != "/v1/token":
                return self._error(404, "NOT_FOUND", f"no route {self.path}")
            if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:token-exchange"]:
                return self._send(400, {"error": "invalid_grant", "error_description": "bad grant_type"})
            if form.get("subject_token") != [SUBJECT_TOKEN]:
                return self._send(400, {"error": "invalid_grant",
                                        "error_description": "The subject token is invalid or expired."})
            token, lifetime = state.issue()
            self._send(200, {"access_token": token, "issued_token_type":
                             "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer",
                             "expires_in": lifetime})

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if not path.startswith("/v1/projects/"):
                return self._error(404, "NOT_FOUND", f"no route {path}")
            if not state.valid(self.headers.get("Authorization")):
                return self._error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
            name = path.removeprefix("/v1/")
            with state.lock:
                state.cluster_reads += 1
            cluster = state.clusters.get(name)
            if cluster is None:
                return self._error(404, "NOT_FOUND", f'Not found: "{name}".')
            body: dict[str, Any] = {"name": name.rsplit("/", 1)[1], "selfLink": f"/{name}",
                                    "endpoint": cluster.endpoint,
                                    "masterAuth": {"clusterCaCertificate": cluster.ca_base64},
                                    "status": "RUNNING"}
            if cluster.private_endpoint:
                body["privateClusterConfig"] = {"enablePrivateNodes": True,
                                                "privateEndpoint": cluster.private_endpoint}
            if cluster.dns_endpoint:
                body["controlPlaneEndpointsConfig"] = {"dnsEndpointConfig": {"endpoint": cluster.dns_endpoint}}
            self._send(200, body)

    return Handler


class FakeGoogle:
    def __init__(self, state: GoogleState) -> None:
        self.state = state
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @classmethod
    def start(cls, token_lifetime: int = 3600) -> FakeGoogle:
        fake = cls(GoogleState(token_lifetime=token_lifetime))
        fake.thread.start()
        return fake

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def external_account_file(self, directory: Path) -> Path:
        """The credentials file google-github-actions/auth writes for Workload Identity Federation."""
        subject = directory / "github-oidc-token"
        subject.write_text(SUBJECT_TOKEN)
        path = directory / "gha-creds-test.json"
        path.write_text(json.dumps({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/github/"
                        "providers/github",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": f"{self.url}/v1/token",
            "credential_source": {"file": str(subject)},
        }))
        return path
