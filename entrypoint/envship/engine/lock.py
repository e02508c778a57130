"""Deploy lock: a coordination.k8s.io/v1 Lease per app and environment, with client-go's leader-election
semantics (core/lease.py): expiry judged by this process's observations, a nonce per process in the
holder identity, renewals retried until the renew deadline, and a lock that is lost says so, so the
deploy stops before it prunes or records anything.

Writes use resourceVersion (optimistic concurrency): two runs racing for an expired lease cannot both
win. The holder's description (the run's URL and job) is in the identity, for the message a waiting
deploy prints.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..adapters.kube import Kube, KubeError
from ..core import lease as rules
from ..errors import OperationError

LEASE_SECONDS = 30


def holder_identity(run: str) -> str:
    """The run (its URL and job in Actions, host and pid elsewhere) and a nonce for this process."""
    return rules.holder_identity(run or f"{socket.gethostname()}/pid-{os.getpid()}", uuid.uuid4().hex[:8])


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DeployLock:
    def __init__(self, kube: Kube, namespace: str, name: str, holder: str, duration: int = LEASE_SECONDS,
                 retry_period: float = 1.0) -> None:
        self.kube = kube
        self.retry_period = retry_period  # how often a waiting acquirer looks again (client-go: RetryPeriod)
        self.namespace = namespace
        self.name = name
        self.holder = holder
        self.duration = duration
        self.resource = kube.resource("coordination.k8s.io/v1", "Lease")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observation: rules.Observation | None = None
        self._held: dict[str, Any] | None = None   # the lease as we last wrote it
        self.lost: str | None = None

    # -- acquire ------------------------------------------------------------------------------------
    def acquire(self, timeout: float, waiting: Callable[[str], None], heartbeat: float = 15.0) -> None:
        """Take the lease, waiting up to `timeout` for its holder; `waiting` hears of each new holder, and
        again every `heartbeat` seconds while the wait goes on (a sign of life in a CI log)."""
        started = time.monotonic()
        deadline = started + timeout
        announced, said = "", started
        while True:
            current = self._try_acquire()
            if current is None:
                self._start_renewing()
                return
            now = time.monotonic()
            if current != announced:
                waiting(current)
                announced, said = current, now
            elif now - said >= heartbeat:
                waiting(f"{current} (still waiting after {int(now - started)} s; at most {int(timeout)} s)")
                said = now
            if time.monotonic() >= deadline:
                raise OperationError(
                    f"another deploy holds the lock {self.namespace}/{self.name}: {current}",
                    f"wait for it to finish, or raise {{--lock-timeout}} (now {int(timeout)} s); a dead holder's "
                    f"lock is taken {self.duration} s after this deploy first saw it unchanged")
            # jittered, as client-go's wait.JitterUntil, so waiters spread out instead of retrying together
            pause = self.retry_period * random.uniform(0.8, 1.2)
            time.sleep(min(pause, max(0.05, deadline - time.monotonic())))

    def _try_acquire(self) -> str | None:
        """None when we hold the lease now; else a description of the current holder."""
        try:
            if self._observation is None:   # first look: create it, or find who has it
                try:
                    self._held = self.kube.create(self.resource, self.namespace, self._body(None))
                    return None
                except KubeError as e:
                    if e.status != 409:
                        raise
            lease = self.kube.get(self.resource, self.namespace, self.name)
            if lease is None:
                self._held = self.kube.create(self.resource, self.namespace, self._body(None))
                return None
            record = rules.record_of(lease)
            assert record is not None
            self._observation = rules.observe(self._observation, record, time.monotonic())
            if record.holder != self.holder and not rules.expired(self._observation, time.monotonic()):
                return f"held by {record.holder.rsplit('_', 1)[0]} since {record.acquire_time or '?'}"
            self._held = self.kube.replace(self.resource, self.namespace, self._body(lease))
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

    # -- renew --------------------------------------------------------------------------------------
    def _start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name="envship-lease", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        """Renew every third of the duration; a failed renewal is retried every second (a tenth of a short
        lease) until two thirds of the duration have passed since the last good one, then the lock counts
        as lost (client-go's RenewDeadline). Any error is caught: this thread must not die silently."""
        last_renewal = time.monotonic()
        interval = self.duration * rules.RENEW_FRACTION
        while not self._stop.wait(interval):
            try:
                self._renew()
                last_renewal = time.monotonic()
                interval = self.duration * rules.RENEW_FRACTION
            except _Taken as e:
                self.lost = str(e)
                return
            except Exception as e:  # noqa: BLE001 - retried until the deadline, whatever it was
                if time.monotonic() - last_renewal >= self.duration * rules.DEADLINE_FRACTION:
                    self.lost = f"renewing the lease failed for {int(time.monotonic() - last_renewal)} s " \
                                f"({type(e).__name__}: {e})"
                    return
                interval = min(1.0, self.duration / 10)

    def _renew(self) -> None:
        lease = self.kube.get(self.resource, self.namespace, self.name)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.holder:
            holder = ((lease or {}).get("spec") or {}).get("holderIdentity", "")
            raise _Taken(f"the lease was taken by {holder.rsplit('_', 1)[0]}" if holder else "the lease was deleted")
        lease["spec"]["renewTime"] = _now()
        self._held = self.kube.replace(self.resource, self.namespace, lease)

    # -- release ------------------------------------------------------------------------------------
    def release(self) -> None:
        """Delete the lease in one request, on the condition that it is still as we last wrote it (uid and
        resourceVersion preconditions: a lease taken or changed meanwhile stays); on failure it expires by
        itself."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        held = self._held
        if self.lost or held is None:
            return
        meta = held.get("metadata") or {}
        try:
            self.kube.delete(self.resource, self.namespace, self.name, uid=str(meta.get("uid", "")),
                             resource_version=str(meta.get("resourceVersion", "")))
        except KubeError:
            pass


class _Taken(Exception):
    """The lease now names another holder (or is gone): the lock is lost for good."""
