"""Informer-style caches: list once, then watch, for a few kinds in one namespace.

Each cache runs in a daemon thread, keeps the latest version of every object it sees, and signals a
shared condition on every change, so the rollout loop reacts to a watch event within milliseconds
instead of polling. Like client-go's reflector: a watch that ends or breaks is re-opened from the last
resourceVersion seen; a 410 Gone (that version is too old) lists again and resumes from there; a line
that is not a watch event is skipped (and reported once). A cache that cannot go on (the API refuses
it, or an unexpected error) records why and wakes the waiter, which decides; it never dies silently.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

from .client import ApiResource, Kube, KubeError, WatchExpired

WATCH_SECONDS = 240
REOPEN_ATTEMPTS = 8     # failed re-opens in a row before the cache gives up
REOPEN_BACKOFF = 0.2    # seconds, doubled each failed attempt, at most 5 s


class Cache:
    def __init__(self, kube: Kube, resource: ApiResource, namespace: str | None, selector: str,
                 changed: threading.Condition, stop: threading.Event) -> None:
        self.kube = kube
        self.resource = resource
        self.namespace = namespace
        self.selector = selector
        self.changed = changed
        self.stop = stop
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = threading.Event()
        self.error: KubeError | None = None
        self.notes: list[str] = []          # what went wrong but was recovered from, once each
        self.reopened = 0                   # watches re-opened after an end or a break
        self.response: Any = None  # the open watch stream, closed by close() to end it at once
        self.thread = threading.Thread(target=self._run, name=f"watch-{resource.plural}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def items(self) -> list[dict[str, Any]]:
        with self.changed:
            return list(self.objects.values())

    def _run(self) -> None:
        try:
            self._follow()
        except KubeError as e:
            self._fail(e)
        except Exception as e:  # noqa: BLE001 - a cache thread must never die silently: the waiter decides
            self._fail(KubeError(f"watching {self.resource.plural} failed: {type(e).__name__}: {e}",
                                 "re-run envship; report it if it happens again"))

    def _follow(self) -> None:
        version = self._relist()
        failures = 0
        while not self.stop.is_set():
            events = 0
            try:
                for kind, obj in self.kube.watch(self.resource, self.namespace, version, self.selector,
                                                 WATCH_SECONDS, self.stop, self._opened, self._odd_line):
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    events += 1
                    if kind != "BOOKMARK":
                        self._store(kind, obj)
            except WatchExpired:
                self._note("the watch's resourceVersion expired (410 Gone): listed again")
                version = self._relist()
                continue
            except KubeError as e:
                if e.status in (401, 403, 404) or failures >= REOPEN_ATTEMPTS:
                    raise
                failures += 1
                self.stop.wait(min(5.0, REOPEN_BACKOFF * 2 ** failures))
                continue
            if self.stop.is_set():
                return
            # ended by the server or broken: re-open from `version`; pause if it keeps ending at once
            self.reopened += 1
            failures = 0 if events else failures + 1
            if failures > REOPEN_ATTEMPTS:
                raise KubeError(f"the watch of {self.resource.plural} keeps ending at once",
                                "check proxies between envship and the API server; re-run envship")
            if failures:
                self.stop.wait(min(5.0, REOPEN_BACKOFF * 2 ** failures))

    def _fail(self, error: KubeError) -> None:
        if not self.stop.is_set():  # a stream closed on purpose is not an error
            self.error = error
        with self.changed:
            self.changed.notify_all()

    def _note(self, note: str) -> None:
        with self.changed:
            if note not in self.notes:
                self.notes.append(note)

    def _odd_line(self, line: str) -> None:
        self._note(f"the watch of {self.resource.plural} sent a line that is not a watch event "
                   f"({line[:60]!r}...): skipped")

    def _opened(self, response: Any) -> None:
        self.response = response
        if self.stop.is_set():
            self.close()

    def close(self) -> None:
        """End the watch now. Closing the response from here would block until the reading thread gets
        data (a bookmark may be a minute away); shutting the socket down wakes that thread at once."""
        response = self.response
        connection = getattr(getattr(response, "raw", None), "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _relist(self) -> str:
        items, version = self.kube.list(self.resource, self.namespace, self.selector)
        with self.changed:
            self.objects = {str(o["metadata"]["name"]): o for o in items}
            self.synced.set()
            self.changed.notify_all()
        return version

    def _store(self, kind: str, obj: dict[str, Any]) -> None:
        obj.setdefault("kind", self.resource.kind)
        name = str(obj["metadata"].get("name", ""))
        with self.changed:
            if kind == "DELETED":
                self.objects.pop(name, None)
            else:
                self.objects[name] = obj
            self.changed.notify_all()


class Informers:
    """A set of caches sharing one condition; stop() ends them all."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.changed = threading.Condition()
        self.stop_event = threading.Event()
        self.caches: dict[str, Cache] = {}

    def add(self, key: str, resource: ApiResource, namespace: str | None, selector: str = "") -> Cache:
        cache = Cache(self.kube, resource, namespace, selector, self.changed, self.stop_event)
        self.caches[key] = cache
        cache.start()
        return cache

    def wait_synced(self, timeout: float) -> None:
        """Until every cache has its first list, or failed; at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        for cache in self.caches.values():
            while not cache.synced.wait(0.05) and cache.error is None and time.monotonic() < deadline:
                pass

    def errors(self) -> Iterable[KubeError]:
        return [c.error for c in self.caches.values() if c.error is not None]

    def notes(self) -> list[str]:
        return [note for c in self.caches.values() for note in c.notes]

    def stop(self) -> None:
        self.stop_event.set()
        for cache in self.caches.values():
            cache.close()
        with self.changed:
            self.changed.notify_all()
