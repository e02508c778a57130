"""A stand-in for Cloudflare's edge in smoke checks: an HTTP proxy on 127.0.0.1 that answers every request
itself, with the status a test sets for a host (default 200), and logs what it was asked.

A client reaches it as a forward proxy (`HTTP_PROXY=http://127.0.0.1:PORT`), so a request for
`http://staging.example.com/healthz` arrives here with that absolute URL, as a proxy receives it.

    with Edge.start() as edge:
        edge.answer("staging.example.com", 503)
        environ["HTTP_PROXY"] = edge.url
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        host = url.hostname or self.headers.get("Host", "").split(":")[0]
        edge = self.server.edge
        with edge.lock:
            edge.seen.append(f"{host}{url.path}")
            status = edge.statuses.get(host, edge.default)
        body = f"{status} from the fake edge for {host}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        super().__init__(("127.0.0.1", 0), _Handler)


class Edge:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: dict[str, int] = {}
        self.default = 200
        self.seen: list[str] = []
        self.server = _Server(self)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @classmethod
    def start(cls) -> Edge:
        edge = cls()
        edge.thread.start()
        return edge

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, host: str, status: int) -> None:
        with self.lock:
            self.statuses[host] = status

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self) -> Edge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
