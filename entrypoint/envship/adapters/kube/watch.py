"""Informer-style caches: list once, then watch, for a few kinds in one namespace.

Each cache runs in a daemon thread, keeps the latest version of every object it sees, and signals
a shared condition on every change, so the rollout loop reacts to a watch event within milliseconds
instead of polling. A 410 Gone (resourceVersion expired) relists and resumes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable
from typing import Any

from .client import ApiResource, Kube, KubeError, WatchExpired

WATCH_SECONDS = 240


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
        self.response: Any = None  # the open watch stream, closed by close() to end it at once
        self.thread = threading.Thread(target=self._run, name=f"watch-{resource.plural}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def items(self) -> list[dict[str, Any]]:
        with self.changed:
            return list(self.objects.values())

    def _run(self) -> None:
        try:
            version = self._relist()
            while not self.stop.is_set():
                try:
                    for kind, obj in self.kube.watch(self.resource, self.namespace, version, self.selector,
                                                     WATCH_SECONDS, self.stop, self._opened):
                        version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                        if kind != "BOOKMARK":
                            self._store(kind, obj)
                except WatchExpired:
                    version = self._relist()
        except KubeError as e:
            if not self.stop.is_set():  # a stream closed on purpose is not an error
                self.error = e
            with self.changed:
                self.changed.notify_all()
        except Exception:
            if not self.stop.is_set():
                raise

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
        name = str(obj["metadata"]["name"])
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
        for cache in self.caches.values():
            cache.synced.wait(timeout)

    def errors(self) -> Iterable[KubeError]:
        return [c.error for c in self.caches.values() if c.error is not None]

    def stop(self) -> None:
        self.stop_event.set()
        for cache in self.caches.values():
            cache.close()
        with self.changed:
            self.changed.notify_all()
