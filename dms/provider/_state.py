"""What a provider keeps in its node's database, so that a restarted provider knows
what it holds and what it runs: reservations (as the book holds them), the deployments
it hosts (orchestrator, ensemble, heartbeat) and their allocations (actor, state and
the execution's identity).

Every write is one `NodeStore.call` (off the trio loop, one transaction, in the order
the calls are made); the in-memory state changes first and the write follows without
an await in between, so the file sees the changes in the order they happened. A node
without a state directory keeps nothing: `ProviderRecords(None)` writes nothing and
loads empty.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence

import attrs

from dms.store import (
    AllocationRecord,
    HeldResources,
    HostedDeployment,
    NodeDatabase,
    NodeStore,
    ReservationRecord,
)

from ._reservation import BookSnapshot, Reservation


def reservation_record(reservation: Reservation) -> ReservationRecord:
    """The store's row for a reservation of the book (InvalidRecord for ids the store
    refuses: a deployment id that is not a UUID, an owner that is not a DID)."""
    return ReservationRecord(
        id=reservation.id,
        deployment_id=reservation.deployment_id,
        orchestrator=reservation.owner,
        node=reservation.node,
        resources=HeldResources(millicores=reservation.millicores, ram=reservation.ram,
                                disk=reservation.disk, gpus=reservation.gpus),
        lease_expires_at=reservation.lease_until,
        ports=reservation.ports,
        state=reservation.state,
    )


def reservation_of(record: ReservationRecord) -> Reservation:
    return Reservation(
        id=record.id,
        deployment_id=record.deployment_id,
        node=record.node,
        owner=record.orchestrator,
        millicores=record.resources.millicores,
        ram=record.resources.ram,
        disk=record.resources.disk,
        gpus=record.resources.gpus,
        ports=record.ports,
        state=record.state,
        lease_until=record.lease_expires_at,
    )


_LOCAL_DEPLOYMENTS = uuid.UUID("5b1f3c8e-6c1a-4d3e-9a51-0d6f8f0b2a47")


def local_deployment(owner: str, deployment: str) -> str:
    """The key under which this provider holds `deployment` of orchestrator actor
    `owner`: a UUID derived from both, so that deployment ids are the orchestrators'
    own. Whoever else learns an id (every bid request names it) and reserves under it
    first holds a deployment of its own, not the owner's: it cannot refuse the owner
    its commits, nor touch what the owner holds here."""
    return str(uuid.uuid5(_LOCAL_DEPLOYMENTS, f"{owner}\n{deployment}"))


def execution_name(deployment: str, allocation: str) -> str:
    """An allocation's execution name on this machine (unique: two deployments may both
    have a "web"); `deployment` is the local key."""
    return f"{deployment}-{allocation}"


def allocation_id(deployment: str, allocation: str) -> str:
    """An allocation's key here: one ensemble allocation of one deployment."""
    return f"{deployment}/{allocation}"


@attrs.frozen
class Saved:
    """Everything a provider found in its database when it opened."""

    reservations: tuple[ReservationRecord, ...] = ()
    hosted: tuple[HostedDeployment, ...] = ()
    allocations: tuple[AllocationRecord, ...] = ()

    def snapshot(self, now: float) -> BookSnapshot:
        """The reservations as a book snapshot; the id sequence continues after the
        highest number an id holds, so no new id repeats one the orchestrators know."""
        numbers = [int(tail) for r in self.reservations
                   if (tail := r.id.rpartition("/")[2]).isdigit()]
        return BookSnapshot(reservations=tuple(reservation_of(r) for r in self.reservations),
                            sequence=max(numbers, default=0), now=now)


class ProviderRecords:
    """The provider's rows in a `NodeStore`, or nothing at all (`store=None`)."""

    def __init__(self, store: NodeStore | None) -> None:
        self.store = store

    async def load(self) -> Saved:
        """MalformedRow if a row does not decode: a provider does not act on state it
        cannot read."""
        if self.store is None:
            return Saved()

        def read(db: NodeDatabase) -> Saved:
            return Saved(db.list_reservations(), db.list_hosted_deployments(),
                         db.list_allocations())

        return await self.store.call(read)

    async def reserved(self, reservations: Sequence[Reservation]) -> None:
        """Write reservations as the book holds them now (reserved or allocated)."""
        if self.store is None or not reservations:
            return
        rows = [reservation_record(r) for r in reservations]

        def write(db: NodeDatabase) -> None:
            for row in rows:
                db.put_reservation(row)

        await self.store.call(write)

    async def forget(self, reservation_ids: Collection[str] = (),
                     allocation_ids: Collection[str] = ()) -> None:
        """Delete these reservations (released, expired) and allocations (taken down)."""
        if self.store is None or not (reservation_ids or allocation_ids):
            return
        reservations, allocations = tuple(reservation_ids), tuple(allocation_ids)

        def delete(db: NodeDatabase) -> None:
            for reservation_id in reservations:
                db.delete_reservation(reservation_id)
            for allocation in allocations:
                db.delete_allocation(allocation)

        await self.store.call(delete)

    async def forget_deployment(self, deployment: str) -> None:
        """Delete everything kept of a deployment: its record, reservations, allocations."""
        if self.store is not None:
            await self.store.call(NodeDatabase.forget_hosted_deployment, deployment)

    async def hosting(self, deployment: HostedDeployment, reservations: Sequence[Reservation],
                      allocations: Sequence[AllocationRecord]) -> None:
        """A deployment's allocations were made here: its record, its reservations (now
        allocated) and its allocations, in one transaction."""
        if self.store is None:
            return
        rows = [reservation_record(r) for r in reservations]

        def write(db: NodeDatabase) -> None:
            db.put_hosted_deployment(deployment)
            for row in rows:
                db.put_reservation(row)
            for allocation in allocations:
                db.put_allocation(allocation)

        await self.store.call(write)

    async def allocations(self, records: Sequence[AllocationRecord]) -> None:
        if self.store is None or not records:
            return
        rows = tuple(records)

        def write(db: NodeDatabase) -> None:
            for row in rows:
                db.put_allocation(row)

        await self.store.call(write)

    async def seen(self, last_seen: Mapping[str, float]) -> None:
        """When each hosted deployment's orchestrator last asked after it."""
        if self.store is None or not last_seen:
            return
        marks = dict(last_seen)

        def write(db: NodeDatabase) -> None:
            for deployment, at in marks.items():
                db.mark_seen(deployment, at)

        await self.store.call(write)
