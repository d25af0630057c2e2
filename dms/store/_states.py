"""The states a node persists, as named enums (their values are what the rows hold).

`DeploymentPhase` is the canonical phase vocabulary: the orchestrator's state machine
moves a deployment through it and the store keeps where each one stands, so the
values are part of the database format and change only with a migration. They are
`StrEnum`s so they also serialize as plain strings on the wire and in JSON.
"""

from __future__ import annotations

import enum


class DeploymentPhase(enum.StrEnum):
    """Where a deployment stands; `completed` and `failed` are final."""

    PENDING = "pending"
    BIDDING = "bidding"
    SOLVING = "solving"
    COMMITTING = "committing"
    ALLOCATING = "allocating"
    RUNNING = "running"
    SHUTTING_DOWN = "shutting_down"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (DeploymentPhase.COMPLETED, DeploymentPhase.FAILED)


class ReservationState(enum.StrEnum):
    """A provider's reservation: held under a lease, consumed by allocate, released by
    revert, shutdown or lease expiry (`released` is final)."""

    RESERVED = "reserved"
    ALLOCATED = "allocated"
    RELEASED = "released"

    @property
    def final(self) -> bool:
        return self is ReservationState.RELEASED


class AllocationState(enum.StrEnum):
    """The last known state of one allocation, as its provider and the orchestrator
    record it. `pending` has no execution yet; `completed`, `failed` and `stopped` are
    final (their execution is gone or to be removed); the rest have a live execution a
    restarted provider re-adopts."""

    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    RESTARTING = "restarting"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def final(self) -> bool:
        return self in (AllocationState.COMPLETED, AllocationState.FAILED,
                        AllocationState.STOPPED)
