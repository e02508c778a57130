"""HTTP plumbing the fakes share: a threading server that tracks its connections (so stop() can cut them,
as a server going away does) and a handler that hands every request to the fake's `_handle(handler,
method)`, with bodies read whole (Content-Length or chunked)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], fake: Any, handler: type[FakeHandler]) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(addr, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that went away or failed the TLS handshake: nothing to report

    def stop(self, thread: threading.Thread) -> None:
        """Stop serving and cut every open connection (kept-alive ones and watch streams), as a server
        going away does; then wait for the serving thread."""
        self.shutdown()
        with self.conn_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.server_close()
        thread.join(timeout=5)


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sys_version = ""
    server: FakeHTTPServer

    def setup(self) -> None:
        super().setup()
        # Like Go's net/http and real API front ends: no Nagle, or headers and body written separately wait
        # for the client's delayed ACK (~40 ms a request on Linux).
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.conn_lock:
            self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self.server.fake._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.fake._handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.fake._handle(self, "PUT")

    def do_PATCH(self) -> None:
        self.server.fake._handle(self, "PATCH")

    def do_DELETE(self) -> None:
        self.server.fake._handle(self, "DELETE")

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class Request:
    """One request as a fake received it: path without the API's prefix, query as a dict (the last value
    of a repeated parameter), the status answered and the body (parsed JSON, the raw text when it was not
    JSON, None when empty). `injected`: answered by an injected failure or the fault mode, not the API."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    body: Any
    injected: bool = False


@dataclass
class _Hook:
    method: str
    path: re.Pattern[str]
    fn: Callable[[], Any]
    remaining: int


class RequestLog:
    """What the API fakes share for tests: every request logged, counted and filtered, and hooks that run a
    test's function right after a matching request was answered (to land a foreign write between two of a
    client's requests). A fake calls `_log_request` on arrival and `_run_hooks` once the answer is made."""

    errors: list[str]

    def __init__(self) -> None:
        self._log_lock = threading.Lock()
        self._hook_lock = threading.Lock()
        self._requests: list[Request] = []
        self._hooks: list[_Hook] = []

    def after(self, method: str, path_regex: str, fn: Callable[[], Any], times: int = 1) -> None:
        """Call fn() right after each of the next `times` requests matching method and path (a regular
        expression searched in the path without the API's prefix) was answered: once the answer is made and
        before it is sent, so the client never sees it before fn's effect (injected failures do not count)."""
        with self._hook_lock:
            self._hooks.append(_Hook(method.upper(), re.compile(path_regex), fn, times))

    @property
    def requests(self) -> list[Request]:
        with self._log_lock:
            return list(self._requests)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests with this method (all if None) whose path matches the regular expression `path`."""
        pattern = re.compile(path) if path is not None else None
        return sum(1 for r in self.requests
                   if (method is None or r.method == method) and (pattern is None or pattern.search(r.path)))

    def writes(self) -> list[Request]:
        """POST/PUT/PATCH/DELETE requests that reached the API (not injected failures, status < 500)."""
        return [r for r in self.requests if r.method in WRITE_METHODS and not r.injected and r.status < 500]

    def reset_requests(self) -> None:
        with self._log_lock:
            self._requests.clear()

    def _log_request(self, method: str, path: str, query: dict[str, str], raw_body: bytes) -> Request:
        body: Any = None
        if raw_body.strip():
            try:
                body = json.loads(raw_body)
            except ValueError:
                body = raw_body.decode("utf-8", "replace")
        record = Request(method, path, query, 0, body)
        with self._log_lock:
            self._requests.append(record)
        return record

    def _run_hooks(self, method: str, path: str) -> None:
        due = []
        with self._hook_lock:
            for hook in self._hooks:
                if hook.remaining > 0 and hook.method == method and hook.path.search(path):
                    hook.remaining -= 1
                    due.append(hook.fn)
            self._hooks = [k for k in self._hooks if k.remaining > 0]
        for fn in due:
            try:
                fn()
            except Exception:  # noqa: BLE001 - a test's hook failing must fail the test, not the server
                self.errors.append(f"after-hook for {method} {path}: {traceback.format_exc()}")
