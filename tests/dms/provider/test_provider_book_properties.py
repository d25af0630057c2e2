"""Exact accounting under any interleaving: a stateful property test of the book.

Many deployments reserve, allocate, renew, release, revert and let leases run out, the
clock sometimes stepping back, the book sometimes saved and reloaded. A model written
here, separately, predicts every outcome (which asks fit, which leases ran out, which
ids exist); after every step no resource is oversubscribed, nothing is held twice and
`free + held == offered` exactly; once everything is released, free is what was offered.
"""

from __future__ import annotations

import itertools
import math

import attrs
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from dms.ensemble._requirements import Gpu, Resources
from dms.provider import (
    AlreadyReserved,
    Capacity,
    ForeignDeployment,
    GpuDevice,
    InsufficientCapacity,
    LeaseExpired,
    Reservation,
    ReservationBook,
    ReservationState,
    TooManyReservations,
    UnknownReservation,
)

GiB = 1 << 30
OFFERED = Capacity(
    millicores=2000,
    ram=4 * GiB,
    disk=4 * GiB,
    gpus=(GpuDevice("t4", Gpu("nvidia", "T4", 16 * GiB)), GpuDevice("a100", Gpu("nvidia", "A100", 80 * GiB)),
          GpuDevice("mi", Gpu("amd", "MI250", 64 * GiB))),
    executors={"process"},
    public_ports=range(9000, 9005),
)
MAX_RESERVATIONS = 6
MAX_LEASE = 50.0
# cores as people write them, and the millicores they must become: floats that do not
# add up exactly (0.1 + 0.2 != 0.3) must still account exactly
CORES = {0.1: 100, 0.2: 200, 0.3: 300, 0.7: 700, 1.1: 1100, 0.0005: 1}
GPU_ASKS = (Gpu(), Gpu("nvidia"), Gpu(model="A100"), Gpu(memory=32 * GiB), Gpu("amd"))
DEPLOYMENTS = tuple(f"dep-{i}" for i in range(5))
OWNERS = ("did:key:z6MkA", "did:key:z6MkB")


def serves(device: GpuDevice, ask: Gpu) -> bool:
    card = device.gpu
    return ((not ask.vendor or ask.vendor.lower() == card.vendor.lower())
            and (not ask.model or ask.model.lower() == card.model.lower())
            and card.memory >= ask.memory)


def gpus_fit(asks: tuple[Gpu, ...], free: list[GpuDevice]) -> bool:
    """Brute force: some ordering of distinct free cards serves every ask."""
    return any(all(serves(card, ask) for card, ask in zip(cards, asks, strict=True))
               for cards in itertools.permutations(free, len(asks)))


@attrs.frozen
class Held:
    id: str
    deployment: str
    node: str
    owner: str
    millicores: int
    ram: int
    disk: int
    gpus: frozenset[str]
    ports: frozenset[int]
    allocated: bool
    lease_until: float | None


class BookMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = ReservationBook(OFFERED, max_reservations=MAX_RESERVATIONS, max_lease_seconds=MAX_LEASE)
        self.now = 0.0
        self.live: dict[str, Held] = {}
        self.lapsed: dict[str, Held] = {}  # expired, not yet reported by expire()
        self.ever: list[str] = []

    # -- the model ------------------------------------------------------------------

    def clock(self, now: float) -> float:
        self.now = max(self.now, now)
        for rid, held in list(self.live.items()):
            if not held.allocated and held.lease_until is not None and held.lease_until <= self.now:
                self.lapsed[rid] = self.live.pop(rid)
        return now

    def model_free(self) -> tuple[int, int, int, list[GpuDevice], set[int]]:
        held = list(self.live.values())
        taken = {g for h in held for g in h.gpus}
        return (OFFERED.millicores - sum(h.millicores for h in held),
                OFFERED.ram - sum(h.ram for h in held),
                OFFERED.disk - sum(h.disk for h in held),
                [d for d in OFFERED.gpus if d.id not in taken],
                set(OFFERED.public_ports) - {p for h in held for p in h.ports})

    # -- rules ----------------------------------------------------------------------

    @rule(step=st.sampled_from([0.0, 1.0, 7.0, 20.0, 60.0, -15.0]))
    def time_passes(self, step: float) -> None:
        # a negative step is a clock stepping back: the book must not notice
        now = self.clock(self.now + step)
        self.book.free(now)

    @rule(deployment=st.sampled_from(DEPLOYMENTS), node=st.sampled_from(["web", "db", "cache"]),
          owner=st.sampled_from(OWNERS), cores=st.sampled_from(sorted(CORES)),
          ram=st.integers(0, 3), disk=st.integers(0, 2),
          gpus=st.lists(st.sampled_from(GPU_ASKS), max_size=2),
          ports=st.lists(st.sampled_from([0, 9000, 9001, 9004]), max_size=3),
          lease=st.sampled_from([5.0, 30.0, 1000.0]))
    def reserve(self, deployment: str, node: str, owner: str, cores: float, ram: int, disk: int,
                gpus: list[Gpu], ports: list[int], lease: float) -> None:
        ports = [p for i, p in enumerate(ports) if p == 0 or p not in ports[:i]]
        now = self.clock(self.now)
        ask = Resources(cpu=cores, ram=ram * GiB, disk=disk * GiB, gpus=tuple(gpus))
        mine = [h for h in self.live.values() if h.deployment == deployment]
        cpu, free_ram, free_disk, free_gpus, free_ports = self.model_free()
        fixed = {p for p in ports if p}
        fits = (CORES[cores] <= cpu and ram * GiB <= free_ram and disk * GiB <= free_disk
                and fixed <= free_ports and len(ports) <= len(free_ports) and gpus_fit(tuple(gpus), free_gpus))
        try:
            r = self.book.reserve(deployment, node, ask, tuple(ports), now, lease, owner=owner)
        except AlreadyReserved as exc:
            event("reserve: AlreadyReserved")
            assert any(h.node == node for h in mine)
            assert exc.existing.id in self.live
            return
        except ForeignDeployment:
            event("reserve: ForeignDeployment")
            assert mine and mine[0].owner != owner and not any(h.node == node for h in mine)
            return
        except TooManyReservations:
            event("reserve: TooManyReservations")
            assert not any(h.node == node for h in mine) and not (mine and mine[0].owner != owner)
            assert len(self.live) == MAX_RESERVATIONS
            return
        except InsufficientCapacity as exc:
            event("reserve: InsufficientCapacity")
            assert not any(h.node == node for h in mine) and not (mine and mine[0].owner != owner)
            assert len(self.live) < MAX_RESERVATIONS
            assert not fits, f"the model says it fits: {exc}"
            assert exc.unmet
            return
        event("reserve: held")
        assert fits and not any(h.node == node for h in mine) and not (mine and mine[0].owner != owner)
        assert r.id not in self.ever and r.id.startswith(f"{deployment}/{node}/")
        assert r.millicores == CORES[cores] and (r.ram, r.disk) == (ram * GiB, disk * GiB)
        assert len(r.ports) == len(ports) and all(a in (0, b) for a, b in zip(ports, r.ports, strict=True))
        assert all(serves(next(d for d in OFFERED.gpus if d.id == g), a) for g, a in zip(r.gpus, gpus, strict=True))
        assert r.lease_until == self.now + min(lease, MAX_LEASE)
        self.ever.append(r.id)
        self.live[r.id] = Held(r.id, deployment, node, owner, r.millicores, r.ram, r.disk, frozenset(r.gpus),
                               frozenset(r.ports), allocated=False, lease_until=r.lease_until)

    def _some_id(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(self.ever) if self.ever else st.just("dep-0/web/1"))

    @rule(data=st.data(), heartbeat=st.sampled_from([None, 10.0]))
    def allocate(self, data: st.DataObject, heartbeat: float | None) -> None:
        rid = self._some_id(data)
        now = self.clock(self.now)
        try:
            r = self.book.allocate(rid, now, lease_seconds=heartbeat)
        except LeaseExpired:
            assert rid in self.lapsed
            return
        except UnknownReservation:
            assert rid not in self.live and rid not in self.lapsed
            return
        held = self.live[rid]
        assert r.state is ReservationState.ALLOCATED
        if not held.allocated:
            self.live[rid] = attrs.evolve(held, allocated=True,
                                          lease_until=None if heartbeat is None else self.now + heartbeat)

    @rule(data=st.data(), lease=st.sampled_from([1.0, 30.0, 500.0]))
    def renew(self, data: st.DataObject, lease: float) -> None:
        rid = self._some_id(data)
        now = self.clock(self.now)
        try:
            r = self.book.renew(rid, now, lease)
        except LeaseExpired:
            assert rid in self.lapsed
            return
        except UnknownReservation:
            assert rid not in self.live and rid not in self.lapsed
            return
        assert r.lease_until == self.now + min(lease, MAX_LEASE)
        self.live[rid] = attrs.evolve(self.live[rid], lease_until=r.lease_until)

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        rid = self._some_id(data)
        released = self.book.release(rid)
        self.lapsed.pop(rid, None)
        held = self.live.pop(rid, None)
        assert (released is None) == (held is None)

    @rule(deployment=st.sampled_from(DEPLOYMENTS))
    def revert(self, deployment: str) -> None:
        released = self.book.release_deployment(deployment)
        expected = [rid for rid, h in self.live.items() if h.deployment == deployment]
        assert [r.id for r in released] == expected
        for rid in expected:
            del self.live[rid]
        for rid in [rid for rid, h in self.lapsed.items() if h.deployment == deployment]:
            del self.lapsed[rid]

    @rule(step=st.sampled_from([0.0, 10.0, 40.0]))
    def expire(self, step: float) -> None:
        now = self.clock(self.now + step)
        reported = self.book.expire(now)
        ids = {r.id for r in reported}
        if len(self.lapsed) <= MAX_RESERVATIONS:
            assert ids == set(self.lapsed)
        else:  # the book keeps that many reports; the oldest are lost (freed all the same)
            assert ids <= set(self.lapsed) and len(ids) == MAX_RESERVATIONS
        event(f"expire: {min(len(reported), 2)}+ reported")
        assert all(r.state is ReservationState.RESERVED for r in reported)
        self.lapsed.clear()

    @rule()
    def restart(self) -> None:
        """Saved and reloaded: same records, same accounting; pending reports are lost."""
        self.book = ReservationBook.from_snapshot(OFFERED, self.book.snapshot(),
                                                  max_reservations=MAX_RESERVATIONS, max_lease_seconds=MAX_LEASE)
        self.lapsed.clear()

    @rule()
    def everything_ends(self) -> None:
        for deployment in DEPLOYMENTS:
            self.book.release_deployment(deployment)
        self.live.clear()
        self.lapsed.clear()
        assert self.book.free(self.now) == OFFERED

    # -- invariants -----------------------------------------------------------------

    @invariant()
    def the_book_holds_what_the_model_holds(self) -> None:
        self.clock(self.now)
        records: tuple[Reservation, ...] = self.book.reservations()
        assert [r.id for r in records] == list(self.live)
        for r in records:
            held = self.live[r.id]
            assert (r.state is ReservationState.ALLOCATED) == held.allocated
            assert r.lease_until == held.lease_until

    @invariant()
    def nothing_is_oversubscribed_and_free_plus_held_is_offered(self) -> None:
        records = self.book.reservations()
        free = self.book.free(self.now)
        gpus = [g for r in records for g in r.gpus]
        ports = [p for r in records for p in r.ports]
        assert len(gpus) == len(set(gpus)) and set(gpus) <= {d.id for d in OFFERED.gpus}
        assert len(ports) == len(set(ports)) and set(ports) <= OFFERED.public_ports
        assert free.millicores + sum(r.millicores for r in records) == OFFERED.millicores
        assert free.ram + sum(r.ram for r in records) == OFFERED.ram
        assert free.disk + sum(r.disk for r in records) == OFFERED.disk
        assert min(free.millicores, free.ram, free.disk) >= 0
        assert sorted([d.id for d in free.gpus] + gpus) == sorted(d.id for d in OFFERED.gpus)
        assert free.public_ports | set(ports) == OFFERED.public_ports and not free.public_ports & set(ports)
        assert not any(r.state is ReservationState.RESERVED and r.lease_until is not None
                       and r.lease_until <= self.now for r in records)
        assert math.isfinite(self.now)

    def teardown(self) -> None:
        for deployment in DEPLOYMENTS:
            self.book.release_deployment(deployment)
        self.book.expire(self.now)
        assert self.book.reservations() == ()
        assert self.book.free(self.now) == OFFERED


BookMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_random_interleavings_never_oversubscribe_and_end_with_free_equal_to_offered = BookMachine.TestCase
