"""The reservation book: what every deployment holds on this provider, exactly.

A sans-IO state machine (the caller owns time and I/O): commit `reserve`s under a
lease, allocate consumes the lease, revert and shutdown `release`; a lease that runs
out un-allocated frees its resources by itself, so an orchestrator that vanishes
between commit and allocate leaks nothing. Totals are kept in integers (millicores,
bytes) and sets (GPU ids, ports), so any interleaving of operations leaves
`free + held == offered` exactly, and nothing is ever held twice.

Expiry is noticed by every call that takes `now`, so a reservation whose lease ran out
never blocks a new one; what expired is kept (bounded) until `expire` reports it, for
the caller to log and tell the orchestrator. The book's clock only runs forwards: a
`now` earlier than one seen before counts as the latest one, so a clock stepping back
cannot revive a lease.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import attrs

from dms.ensemble._requirements import Resources
from dms.store import ReservationState

from ._ask import Ask, InvalidRequest, check_name
from ._capacity import Capacity, highest_ports
from ._fit import shortfalls
from ._gpus import match_gpus
from ._reservation import (
    AlreadyReserved,
    BookSnapshot,
    ForeignDeployment,
    InsufficientCapacity,
    InvalidSnapshot,
    LeaseExpired,
    Reservation,
    TooManyReservations,
    UnknownReservation,
)

RESERVED = ReservationState.RESERVED
ALLOCATED = ReservationState.ALLOCATED


def _finite(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest(f"{what} must be a finite number, got {value!r}")
    return float(value)


class ReservationBook:
    """Reservations against one offered `Capacity` (after onboarding limits).

    `max_reservations` bounds the live reservations (and, separately, the expired ones
    waiting to be reported), so a flood of tiny asks costs bounded memory.
    `max_lease_seconds` caps any lease asked for: a longer one is granted this long,
    as the returned reservation's `lease_until` shows.
    """

    def __init__(self, offered: Capacity, *, max_reservations: int = 1024,
                 max_lease_seconds: float = 300.0) -> None:
        if max_reservations < 1:
            raise ValueError(f"max_reservations must be >= 1, got {max_reservations}")
        if not (math.isfinite(max_lease_seconds) and max_lease_seconds > 0):
            raise ValueError(f"max_lease_seconds must be a finite number > 0, got {max_lease_seconds}")
        self._offered = offered
        self._descending_ports = sorted(offered.public_ports, reverse=True)
        self._max_reservations = max_reservations
        self._max_lease = max_lease_seconds
        self._records: dict[str, Reservation] = {}
        self._by_deployment: dict[str, dict[str, str]] = {}  # deployment -> node -> id
        self._expired: OrderedDict[str, Reservation] = OrderedDict()
        self._sequence = 0
        self._now = -math.inf
        self._next_expiry = math.inf  # no RESERVED lease ends before this
        self._held_millicores = 0
        self._held_ram = 0
        self._held_disk = 0
        self._held_gpus: set[str] = set()
        self._held_ports: set[int] = set()
        self._free: Capacity | None = None  # cached until the next change

    @property
    def offered(self) -> Capacity:
        return self._offered

    @property
    def max_reservations(self) -> int:
        return self._max_reservations

    # -- queries ----------------------------------------------------------------------

    def free(self, now: float) -> Capacity:
        """What is offered and not held at `now`: what a bid may promise."""
        self._advance(now)
        if self._free is None:
            self._free = self._offered.less(self._held_millicores, self._held_ram, self._held_disk,
                                            self._held_gpus, self._held_ports)
        return self._free

    def free_for(self, deployment_id: str, now: float) -> Capacity:
        """What `deployment_id` could hold here: what is free plus what it holds already
        (a deployment placed again, e.g. to move one node, keeps the rest where it is)."""
        own = self.by_deployment(deployment_id)
        free = self.free(now)
        if not own:
            return free
        return self._offered.less(
            self._held_millicores - sum(r.millicores for r in own),
            self._held_ram - sum(r.ram for r in own),
            self._held_disk - sum(r.disk for r in own),
            self._held_gpus - {g for r in own for g in r.gpus},
            self._held_ports - {p for r in own for p in r.ports})

    def get(self, reservation_id: str) -> Reservation | None:
        return self._records.get(reservation_id)

    def reservations(self) -> tuple[Reservation, ...]:
        """Every live reservation, oldest first."""
        return tuple(self._records.values())

    def by_deployment(self, deployment_id: str) -> tuple[Reservation, ...]:
        """The deployment's live reservations, oldest first."""
        ids = self._by_deployment.get(deployment_id, {})  # in the order reserved
        return tuple(self._records[i] for i in ids.values())

    def overdue(self, now: float) -> tuple[Reservation, ...]:
        """Allocations whose lease (heartbeat) ran out. They stay held: their workloads
        still run, so only the caller, once it has stopped them, may `release` them."""
        self._advance(now)
        return tuple(r for r in self._records.values()
                     if r.state is ALLOCATED and r.lease_until is not None and r.lease_until <= self._now)

    # -- transitions ------------------------------------------------------------------

    def reserve(self, deployment_id: str, node: str, resources: Resources, ports: Sequence[int],
                now: float, lease_seconds: float, *, owner: str) -> Reservation:
        """Hold `resources` and public `ports` (0 = any free port, chosen here) for one
        ensemble node until `now + lease_seconds`, unless allocated before.

        Raises InvalidRequest for values that mean nothing, AlreadyReserved if this node
        of this deployment holds a reservation already, ForeignDeployment if another
        owner holds the deployment here, TooManyReservations when the book is full, and
        InsufficientCapacity (with each shortfall) when the ask does not fit.
        """
        check_name("deployment_id", deployment_id)
        check_name("owner", owner)
        ask = Ask.of(node, resources, ports)
        lease = self._lease(lease_seconds)
        self._advance(now)
        held = self._by_deployment.get(deployment_id, {})
        if node in held:
            raise AlreadyReserved(self._records[held[node]])
        if held:
            other = self._records[next(iter(held.values()))].owner
            if other != owner:
                raise ForeignDeployment(f"deployment {deployment_id!r} is held here by {other}, not {owner}")
        if len(self._records) >= self._max_reservations:
            raise TooManyReservations(
                f"this provider holds {len(self._records)} reservations, its limit")
        free = self.free(self._now)
        unmet = shortfalls(ask, free)
        if unmet:
            raise InsufficientCapacity(deployment_id, node, unmet)
        gpus = match_gpus(ask.gpus, free.gpus)
        assert gpus is not None  # shortfalls found a matching
        anys = iter(highest_ports(free.public_ports, ask.any_ports, ask.fixed_ports, self._descending_ports))
        reservation = Reservation(
            id=self._new_id(deployment_id, node),
            deployment_id=deployment_id,
            node=node,
            owner=owner,
            millicores=ask.millicores,
            ram=ask.ram,
            disk=ask.disk,
            gpus=tuple(d.id for d in gpus),
            ports=tuple(port or next(anys) for port in ask.ports),
            state=RESERVED,
            lease_until=self._now + lease,
        )
        self._hold(reservation)
        return reservation

    def allocate(self, reservation_id: str, now: float, lease_seconds: float | None = None) -> Reservation:
        """Consume the lease: the reservation becomes an allocation, held until released.
        With `lease_seconds`, the allocation is `overdue` unless `renew`ed (heartbeats)
        within that time. Allocating an allocation again returns it unchanged, so a
        retried allocate is harmless. Raises LeaseExpired or UnknownReservation."""
        lease = None if lease_seconds is None else self._lease(lease_seconds)
        record = self._live(reservation_id, now)
        if record.state is ALLOCATED:
            return record
        allocated = attrs.evolve(record, state=ALLOCATED,
                                 lease_until=None if lease is None else self._now + lease)
        self._records[reservation_id] = allocated
        return allocated

    def renew(self, reservation_id: str, now: float, lease_seconds: float) -> Reservation:
        """Extend a reservation's lease, or an allocation's heartbeat deadline, to
        `now + lease_seconds`. Raises LeaseExpired or UnknownReservation."""
        lease = self._lease(lease_seconds)
        record = self._live(reservation_id, now)
        renewed = attrs.evolve(record, lease_until=self._now + lease)
        self._records[reservation_id] = renewed
        if renewed.state is RESERVED:
            self._next_expiry = min(self._next_expiry, self._now + lease)
        return renewed

    def release(self, reservation_id: str) -> Reservation | None:
        """Free a reservation or allocation (revert, shutdown). Idempotent: releasing
        what is not held returns None, whether it never was or is already free."""
        self._expired.pop(reservation_id, None)
        record = self._records.get(reservation_id)
        if record is None:
            return None
        self._drop(record)
        return record

    def release_deployment(self, deployment_id: str) -> tuple[Reservation, ...]:
        """Free everything the deployment holds (revert, shutdown); idempotent."""
        for gone in [i for i, r in self._expired.items() if r.deployment_id == deployment_id]:
            del self._expired[gone]
        released = self.by_deployment(deployment_id)
        for record in released:
            self._drop(record)
        return released

    def expire(self, now: float) -> tuple[Reservation, ...]:
        """The reservations whose lease ran out un-allocated since the last call, in the
        order they ran out. Their resources are already free."""
        self._advance(now)
        expired = tuple(self._expired.values())
        self._expired.clear()
        return expired

    # -- persistence ------------------------------------------------------------------

    def snapshot(self) -> BookSnapshot:
        """The live records as plain data, for a store to persist."""
        now = self._now if math.isfinite(self._now) else 0.0
        return BookSnapshot(reservations=self.reservations(), sequence=self._sequence, now=now)

    @classmethod
    def from_snapshot(cls, offered: Capacity, snapshot: BookSnapshot, *, max_reservations: int = 1024,
                      max_lease_seconds: float = 300.0) -> ReservationBook:
        """A book holding what `snapshot` recorded. Leases that ran out while the node
        was down are expired at the first call with `now` (and reported by `expire`).
        Records may hold more than `offered` if the operator lowered the limits meanwhile:
        they are kept (their workloads run), and free is zero where nothing is left.
        Raises InvalidSnapshot for records that contradict themselves."""
        book = cls(offered, max_reservations=max_reservations, max_lease_seconds=max_lease_seconds)
        if isinstance(snapshot.sequence, bool) or not isinstance(snapshot.sequence, int) or snapshot.sequence < 0:
            raise InvalidSnapshot(f"sequence must be a whole number >= 0, got {snapshot.sequence!r}")
        try:
            book._now = _finite("snapshot.now", snapshot.now)
        except InvalidRequest as exc:
            raise InvalidSnapshot(str(exc)) from None
        for record in snapshot.reservations:
            book._restore(record)
        book._sequence = max(snapshot.sequence, len(snapshot.reservations))
        return book

    def _restore(self, record: Reservation) -> None:
        def bad(problem: str) -> InvalidSnapshot:
            return InvalidSnapshot(f"reservation {record.id!r}: {problem}")

        if not isinstance(record, Reservation) or not isinstance(record.state, ReservationState):
            raise InvalidSnapshot(f"not a reservation: {record!r}")
        try:
            for what in ("id", "deployment_id", "node", "owner"):
                check_name(what, getattr(record, what))
            Ask.of(record.node, Resources(ram=record.ram, disk=record.disk), record.ports)
            if record.lease_until is not None:
                _finite("lease_until", record.lease_until)
        except InvalidRequest as exc:
            raise bad(str(exc)) from None
        if isinstance(record.millicores, bool) or not isinstance(record.millicores, int) or record.millicores < 0:
            raise bad(f"millicores must be a whole number >= 0, got {record.millicores!r}")
        if any(not isinstance(g, str) or not g for g in record.gpus):
            raise bad(f"gpus must be device ids, got {record.gpus!r}")
        if 0 in record.ports:
            raise bad("an 'any' port (0) was never resolved")
        if record.state is RESERVED and record.lease_until is None:
            raise bad("a reservation without a lease")
        if record.id in self._records:
            raise bad("the id appears twice")
        held = self._by_deployment.get(record.deployment_id, {})
        if record.node in held:
            raise bad(f"node {record.node!r} of deployment {record.deployment_id!r} is held twice")
        if held and self._records[next(iter(held.values()))].owner != record.owner:
            raise bad(f"deployment {record.deployment_id!r} has two owners")
        if len(set(record.gpus)) < len(record.gpus) or not self._held_gpus.isdisjoint(record.gpus):
            raise bad("a gpu is held twice")
        if not self._held_ports.isdisjoint(record.ports):
            raise bad("a public port is held twice")
        self._hold(record)

    # -- internals --------------------------------------------------------------------

    def _new_id(self, deployment_id: str, node: str) -> str:
        while True:
            self._sequence += 1
            candidate = f"{deployment_id}/{node}/{self._sequence}"
            if candidate not in self._records and candidate not in self._expired:
                return candidate

    def _lease(self, seconds: float) -> float:
        seconds = _finite("lease_seconds", seconds)
        if seconds <= 0:
            raise InvalidRequest(f"lease_seconds must be > 0, got {seconds!r}")
        return min(seconds, self._max_lease)

    def _live(self, reservation_id: str, now: float) -> Reservation:
        self._advance(now)
        record = self._records.get(reservation_id)
        if record is not None:
            return record
        if reservation_id in self._expired:
            raise LeaseExpired(f"reservation {reservation_id!r}: its lease ran out before it was allocated")
        raise UnknownReservation(f"no reservation {reservation_id!r} here")

    def _advance(self, now: float) -> None:
        """Move the clock to `now` (never back) and expire the leases that ran out."""
        self._now = max(self._now, _finite("now", now))
        if self._now < self._next_expiry:
            return
        ended = sorted((r for r in self._records.values()
                        if r.state is RESERVED and r.lease_until is not None and r.lease_until <= self._now),
                       key=lambda r: r.lease_until or 0.0)  # stable: ties stay in reserve order
        for record in ended:
            self._drop(record)
            self._expired[record.id] = record
            if len(self._expired) > self._max_reservations:
                self._expired.popitem(last=False)  # freed already; only its report is lost
        self._next_expiry = min((r.lease_until for r in self._records.values()
                                 if r.state is RESERVED and r.lease_until is not None), default=math.inf)

    def _hold(self, record: Reservation) -> None:
        self._records[record.id] = record
        self._by_deployment.setdefault(record.deployment_id, {})[record.node] = record.id
        self._held_millicores += record.millicores
        self._held_ram += record.ram
        self._held_disk += record.disk
        self._held_gpus.update(record.gpus)
        self._held_ports.update(record.ports)
        if record.state is RESERVED and record.lease_until is not None:
            self._next_expiry = min(self._next_expiry, record.lease_until)
        self._free = None

    def _drop(self, record: Reservation) -> None:
        del self._records[record.id]
        nodes = self._by_deployment[record.deployment_id]
        del nodes[record.node]
        if not nodes:
            del self._by_deployment[record.deployment_id]
        self._held_millicores -= record.millicores
        self._held_ram -= record.ram
        self._held_disk -= record.disk
        self._held_gpus.difference_update(record.gpus)
        self._held_ports.difference_update(record.ports)
        self._free = None
