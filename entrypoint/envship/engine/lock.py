"""Deploy lock: a coordination.k8s.io/v1 Lease per app and environment.

The holder is the run (its URL in Actions, host and pid elsewhere). The lease is renewed while the
deploy runs and expires if the holder dies, so a killed run never blocks the next one for longer than
the lease duration. Updates use resourceVersion (optimistic concurrency): two runs racing for an
expired lease cannot both win.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..adapters.kube import Kube, KubeError
from ..errors import OperationError

LEASE_SECONDS = 30


def holder_identity(run_url: str) -> str:
    return run_url or f"{socket.gethostname()}/pid-{os.getpid()}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class DeployLock:
    def __init__(self, kube: Kube, namespace: str, name: str, holder: str, duration: int = LEASE_SECONDS) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.holder = holder
        self.duration = duration
        self.resource = kube.resource("coordination.k8s.io/v1", "Lease")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: str | None = None

    def acquire(self, timeout: float, waiting: Callable[[str], None]) -> None:
        deadline = time.monotonic() + timeout
        announced = ""
        while True:
            current = self._try_acquire()
            if current is None:
                self._start_renewing()
                return
            if current != announced:
                waiting(current)
                announced = current
            if time.monotonic() >= deadline:
                raise OperationError(
                    f"another deploy holds the lock {self.namespace}/{self.name}: {current}",
                    f"wait for it to finish, or raise {{--lock-timeout}} (now {int(timeout)} s); a dead holder's "
                    f"lock expires after {self.duration} s")
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))

    def _try_acquire(self) -> str | None:
        """None when we hold the lease now; else a description of the current holder."""
        lease = self.kube.get(self.resource, self.namespace, self.name)
        body = self._body(lease)
        try:
            if lease is None:
                self.kube.create(self.resource, self.namespace, body)
                return None
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity", "")
            renewed = spec.get("renewTime") or spec.get("acquireTime")
            expired = renewed is None or _parse(renewed) + int(spec.get("leaseDurationSeconds", 0)) < time.time()
            if holder and holder != self.holder and not expired:
                return f"held by {holder} since {spec.get('acquireTime', '?')}"
            self.kube.replace(self.resource, self.namespace, body)
            return None
        except KubeError as e:
            if e.status == 409:  # someone else created or updated it first: look again
                return "being taken by another deploy"
            raise

    def _body(self, lease: dict[str, Any] | None) -> dict[str, Any]:
        now = _now()
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace,
                                "labels": {"app.kubernetes.io/managed-by": "envship", "envship.dev/record": "lock"}}
        if lease is not None:
            meta["resourceVersion"] = lease["metadata"]["resourceVersion"]
        transitions = int(((lease or {}).get("spec") or {}).get("leaseTransitions", 0))
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": self.holder, "leaseDurationSeconds": self.duration,
                         "acquireTime": now, "renewTime": now, "leaseTransitions": transitions + 1}}

    def _start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name="envship-lease", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.duration / 3):
            try:
                lease = self.kube.get(self.resource, self.namespace, self.name)
                if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.holder:
                    self.lost = "the lease was taken by another deploy"
                    return
                lease["spec"]["renewTime"] = _now()
                self.kube.replace(self.resource, self.namespace, lease)
            except KubeError as e:
                self.lost = f"renewing the lease failed: {e.problems[0].message}"

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            lease = self.kube.get(self.resource, self.namespace, self.name)
            if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.holder:
                self.kube.delete(self.resource, self.namespace, self.name)
        except KubeError:
            pass  # the lease expires by itself
