"""A reservation as data, its states, and the book's named failures.

Everything here is plain data a store can write and read back (`BookSnapshot`): ints,
strings, tuples, one enum. Times are absolute, on the clock the caller passes as
`now`; to survive a restart that must be the wall clock, not trio's.
"""

from __future__ import annotations

import attrs

from dms.store import ReservationState

from ._decline import Unmet


@attrs.frozen
class Reservation:
    """What one ensemble node of one deployment holds on this provider.

    `id` is `<deployment_id>/<node>/<n>`: deterministic, unique in this book, and
    meaningless as a credential (who may act on it is `owner`, the orchestrator that
    reserved it; the caller checks). `gpus` are device ids, `ports` the public ports
    held in the order they were asked, "any" ones resolved. `lease_until` is when a
    RESERVED lease runs out, or when an ALLOCATED one is overdue (None: never).
    """

    id: str
    deployment_id: str
    node: str
    owner: str
    millicores: int
    ram: int
    disk: int
    gpus: tuple[str, ...]
    ports: tuple[int, ...]
    state: ReservationState
    lease_until: float | None


@attrs.frozen
class BookSnapshot:
    """A reservation book as plain data: the live reservations, the next id number and
    the latest time the book had seen (its clock never runs backwards)."""

    reservations: tuple[Reservation, ...]
    sequence: int = 0
    now: float = 0.0


class ReservationError(Exception):
    """Base of the reservation book's refusals."""


class InsufficientCapacity(ReservationError):
    """The ask does not fit what is free; `unmet` says by how much, per requirement."""

    def __init__(self, deployment_id: str, node: str, unmet: tuple[Unmet, ...]) -> None:
        shortfall = "; ".join(u.message for u in unmet)
        super().__init__(f"cannot reserve node {node!r} of deployment {deployment_id!r}: {shortfall}")
        self.unmet = unmet


class AlreadyReserved(ReservationError):
    """This deployment's node already holds a reservation here (`existing`): one node
    instance per provider, so a second one is a retry or a mistake, never new demand."""

    def __init__(self, existing: Reservation) -> None:
        super().__init__(
            f"node {existing.node!r} of deployment {existing.deployment_id!r} is already "
            f"reserved here as {existing.id!r} ({existing.state.value})")
        self.existing = existing


class ForeignDeployment(ReservationError):
    """The deployment already holds reservations here for another orchestrator."""


class TooManyReservations(ReservationError):
    """The book holds as many reservations as it is allowed to."""


class UnknownReservation(ReservationError):
    """No live reservation has this id (never made, released, or expired and reported)."""


class LeaseExpired(ReservationError):
    """The reservation's lease ran out before it was allocated or renewed; it is free
    again, so the orchestrator must reserve anew."""


class InvalidSnapshot(ReservationError):
    """Stored records that contradict themselves (the message names the reservation)."""
