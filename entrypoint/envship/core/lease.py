"""The deploy lock's rules (pure), as client-go's leader election (tools/leaderelection) has them.

A lease is judged by what this process has seen, never by the holder's clock: a record (holder, renew
time, transitions) that has not changed for the lease's duration, as measured on this process's own
monotonic clock since it first saw that record, has expired. A holder that stopped renewing therefore
blocks the next deploy for at most one lease duration after that deploy first looks, whatever the two
machines' clocks say. Each process is its own holder: a nonce in the identity keeps two processes of
one job (matrix legs, a re-run attempt) from taking each other's lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RENEW_FRACTION = 1 / 3      # renew every third of the duration (10 s of 30)
DEADLINE_FRACTION = 2 / 3   # give the lock up when no renewal got through for two thirds (20 s of 30)


@dataclass(frozen=True)
class LeaseRecord:
    holder: str
    renew_time: str
    acquire_time: str
    duration: int
    transitions: int

    @property
    def held(self) -> bool:
        return bool(self.holder)


def record_of(lease: Mapping[str, Any] | None) -> LeaseRecord | None:
    if lease is None:
        return None
    spec = lease.get("spec") or {}
    return LeaseRecord(str(spec.get("holderIdentity") or ""), str(spec.get("renewTime") or ""),
                       str(spec.get("acquireTime") or ""), int(spec.get("leaseDurationSeconds") or 0),
                       int(spec.get("leaseTransitions") or 0))


@dataclass(frozen=True)
class Observation:
    record: LeaseRecord
    since: float   # this process's monotonic clock when it first saw `record`


def observe(previous: Observation | None, record: LeaseRecord, now: float) -> Observation:
    """The observation after reading `record` at `now` (client-go's observedRecord / observedTime)."""
    if previous is not None and previous.record == record:
        return previous
    return Observation(record, now)


def expired(observation: Observation, now: float) -> bool:
    """Whether the lease can be taken: nobody holds it, or its record stayed the same for its duration."""
    record = observation.record
    return not record.held or observation.since + record.duration < now


def holder_identity(who: str, nonce: str) -> str:
    """`who` (the run's URL and job, or host and pid) and a nonce for this process; at most 128
    characters, as the holder is shown in messages."""
    return f"{who[:100]}_{nonce}"
