"""The reservation book: reserve under a lease, allocate, release, expire, restore."""

from __future__ import annotations

import attrs
import pytest

from dms.ensemble._requirements import Gpu, Resources
from dms.provider import (
    AlreadyReserved,
    BookSnapshot,
    Capacity,
    ForeignDeployment,
    GpuDevice,
    InsufficientCapacity,
    InvalidRequest,
    InvalidSnapshot,
    LeaseExpired,
    ReservationBook,
    ReservationState,
    TooManyReservations,
    UnknownReservation,
    Unmet,
)

GiB = 1 << 30
ORCH = "did:key:z6MkOrchestrator"
OFFERED = Capacity(
    millicores=4000,
    ram=8 * GiB,
    disk=100 * GiB,
    gpus=(GpuDevice("gpu0", Gpu("nvidia", "T4", 16 * GiB)), GpuDevice("gpu1", Gpu("nvidia", "A100", 80 * GiB))),
    executors={"process"},
    public_ports=range(30000, 30010),
)
ONE = Resources(cpu=1, ram=GiB, disk=GiB)


def book(**limits: int | float) -> ReservationBook:
    return ReservationBook(OFFERED, **limits)  # type: ignore[arg-type]


def test_a_reservation_holds_what_it_asked_and_resolves_any_ports_from_the_top() -> None:
    b = book()
    r = b.reserve("dep-1", "web", Resources(cpu=0.3, ram=GiB, disk=2 * GiB), (0, 30001, 0), 10.0, 30, owner=ORCH)
    assert r.id.startswith("dep-1/web/") and r.owner == ORCH
    assert (r.millicores, r.ram, r.disk) == (300, GiB, 2 * GiB)
    assert r.ports == (30009, 30001, 30008)
    assert r.state is ReservationState.RESERVED and r.lease_until == 40.0
    free = b.free(11.0)
    assert (free.millicores, free.ram, free.disk) == (3700, 7 * GiB, 98 * GiB)
    assert free.public_ports == OFFERED.public_ports - {30009, 30001, 30008}


def test_an_ask_that_does_not_fit_is_refused_with_each_shortfall() -> None:
    b = book()
    b.reserve("dep-1", "web", Resources(cpu=3, ram=6 * GiB), (), 0.0, 30, owner=ORCH)
    with pytest.raises(InsufficientCapacity) as refused:
        b.reserve("dep-2", "db", Resources(cpu=2, ram=4 * GiB), (), 1.0, 30, owner=ORCH)
    assert refused.value.unmet == (Unmet("db", "cpu", needed=2000, available=1000),
                                   Unmet("db", "ram", needed=4 * GiB, available=2 * GiB))
    assert str(refused.value) == ("cannot reserve node 'db' of deployment 'dep-2': "
                                  "cpu: 1 cores free, 2 asked; ram: 2Gi free, 4Gi asked")
    assert len(b.reservations()) == 1


def test_gpus_are_held_as_the_devices_that_match_the_ask() -> None:
    b = book()
    r = b.reserve("dep-1", "train", Resources(gpus=(Gpu(model="a100"),)), (), 0.0, 30, owner=ORCH)
    assert r.gpus == ("gpu1",)
    assert [d.id for d in b.free(0.0).gpus] == ["gpu0"]
    with pytest.raises(InsufficientCapacity, match="gpu: 0 of 1 A100 free"):
        b.reserve("dep-2", "train", Resources(gpus=(Gpu(model="A100"),)), (), 0.0, 30, owner=ORCH)
    assert b.reserve("dep-2", "infer", Resources(gpus=(Gpu(),)), (), 0.0, 30, owner=ORCH).gpus == ("gpu0",)


def test_an_unallocated_lease_runs_out_frees_its_resources_and_is_reported_once() -> None:
    b = book()
    r = b.reserve("dep-1", "web", ONE, (30005,), 0.0, 30, owner=ORCH)
    assert b.free(29.9).millicores == 3000
    assert b.free(30.0) == OFFERED  # the lease runs until, not through, 30
    assert b.expire(31.0) == (r,)
    assert b.expire(32.0) == ()
    assert b.by_deployment("dep-1") == ()


def test_allocating_after_the_lease_ran_out_is_refused_by_name() -> None:
    b = book()
    r = b.reserve("dep-1", "web", ONE, (), 0.0, 30, owner=ORCH)
    with pytest.raises(LeaseExpired, match=f"reservation {r.id!r}: its lease ran out before it was allocated"):
        b.allocate(r.id, 30.0)
    b.expire(30.0)
    with pytest.raises(UnknownReservation, match=f"no reservation {r.id!r} here"):
        b.allocate(r.id, 31.0)


def test_allocate_consumes_the_lease_and_holds_until_released() -> None:
    b = book()
    r = b.reserve("dep-1", "web", ONE, (), 0.0, 30, owner=ORCH)
    allocated = b.allocate(r.id, 10.0)
    assert allocated.state is ReservationState.ALLOCATED and allocated.lease_until is None
    assert b.allocate(r.id, 11.0) == allocated  # a retried allocate changes nothing
    assert b.expire(10_000.0) == () and b.free(10_000.0).millicores == 3000
    assert b.release(r.id) == allocated
    assert b.free(10_000.0) == OFFERED


def test_release_is_idempotent() -> None:
    b = book()
    r = b.reserve("dep-1", "web", ONE, (), 0.0, 30, owner=ORCH)
    assert b.release(r.id) == r
    assert b.release(r.id) is None
    assert b.release("never/was/1") is None
    assert b.free(1.0) == OFFERED


def test_releasing_an_expired_reservation_drops_its_report() -> None:
    b = book()
    r = b.reserve("dep-1", "web", ONE, (), 0.0, 30, owner=ORCH)
    b.free(40.0)
    assert b.release(r.id) is None
    assert b.expire(41.0) == ()


def test_release_deployment_reverts_everything_of_one_deployment_only() -> None:
    b = book()
    web = b.reserve("dep-1", "web", ONE, (0,), 0.0, 30, owner=ORCH)
    db = b.reserve("dep-1", "db", ONE, (), 0.0, 30, owner=ORCH)
    other = b.reserve("dep-2", "web", ONE, (), 0.0, 30, owner=ORCH)
    b.allocate(db.id, 1.0)
    assert b.by_deployment("dep-1") == (web, b.get(db.id))
    assert [r.id for r in b.release_deployment("dep-1")] == [web.id, db.id]
    assert b.release_deployment("dep-1") == ()
    assert b.reservations() == (other,)
    assert b.free(2.0).millicores == 3000 and b.free(2.0).public_ports == OFFERED.public_ports


def test_renew_extends_a_lease_that_has_not_run_out() -> None:
    b = book()
    r = b.reserve("dep-1", "web", ONE, (), 0.0, 30, owner=ORCH)
    assert b.renew(r.id, 25.0, 30).lease_until == 55.0
    assert b.expire(50.0) == ()
    b.allocate(r.id, 54.0)
    with pytest.raises(UnknownReservation):
        b.renew("dep-1/db/9", 54.0, 30)


def test_an_allocation_whose_heartbeats_stop_is_overdue_but_still_held() -> None:
    b = book()
    r = b.reserve("dep-1", "web", ONE, (), 0.0, 30, owner=ORCH)
    b.allocate(r.id, 1.0, lease_seconds=60)
    assert b.overdue(60.0) == ()
    b.renew(r.id, 60.0, 60)
    assert b.overdue(119.0) == ()
    (late,) = b.overdue(120.0)
    assert late.id == r.id and late.state is ReservationState.ALLOCATED
    assert b.expire(200.0) == () and b.free(200.0).millicores == 3000


def test_a_lease_longer_than_the_provider_allows_is_granted_its_longest() -> None:
    b = book(max_lease_seconds=60)
    r = b.reserve("dep-1", "web", ONE, (), 0.0, 3600, owner=ORCH)
    assert r.lease_until == 60.0
    assert b.renew(r.id, 30.0, 10**9).lease_until == 90.0


def test_the_books_clock_never_runs_backwards() -> None:
    b = book()
    r = b.reserve("dep-1", "web", ONE, (), 100.0, 10, owner=ORCH)
    renewed = b.renew(r.id, 50.0, 10)
    assert renewed.lease_until == 110.0  # 50 counts as 100
    assert b.expire(120.0) == (renewed,)
    assert b.free(0.0) == OFFERED  # going back does not revive it
    later = b.reserve("dep-2", "web", ONE, (), 0.0, 10, owner=ORCH)
    assert later.lease_until == 130.0


def test_one_node_of_a_deployment_holds_one_reservation() -> None:
    b = book()
    r = b.reserve("dep-1", "web", ONE, (), 0.0, 30, owner=ORCH)
    with pytest.raises(AlreadyReserved, match=r"node 'web' of deployment 'dep-1' is already reserved here") as twice:
        b.reserve("dep-1", "web", ONE, (), 1.0, 30, owner=ORCH)
    assert twice.value.existing == r
    b.release(r.id)
    again = b.reserve("dep-1", "web", ONE, (), 2.0, 30, owner=ORCH)
    assert again.id != r.id and again.id.startswith("dep-1/web/")


def test_a_deployment_held_by_one_orchestrator_is_refused_to_another() -> None:
    b = book()
    b.reserve("dep-1", "web", ONE, (), 0.0, 30, owner=ORCH)
    with pytest.raises(ForeignDeployment, match=f"deployment 'dep-1' is held here by {ORCH}, not did:key:z6MkEve"):
        b.reserve("dep-1", "db", ONE, (), 0.0, 30, owner="did:key:z6MkEve")


def test_the_number_of_reservations_is_bounded() -> None:
    b = book(max_reservations=2)
    tiny = Resources(cpu=0.001)
    b.reserve("a", "n", tiny, (), 0.0, 30, owner=ORCH)
    b.reserve("b", "n", tiny, (), 0.0, 30, owner=ORCH)
    with pytest.raises(TooManyReservations, match="this provider holds 2 reservations, its limit"):
        b.reserve("c", "n", tiny, (), 0.0, 30, owner=ORCH)
    assert b.reserve("c", "n", tiny, (), 30.0, 30, owner=ORCH).deployment_id == "c"  # the others expired


def test_expired_reports_waiting_for_expire_are_bounded_too() -> None:
    b = book(max_reservations=2)
    for round_ in range(3):
        for name in ("a", "b"):
            b.reserve(f"{name}{round_}", "n", ONE, (), 10.0 * round_, 5, owner=ORCH)
    assert [r.deployment_id for r in b.expire(100.0)] == ["a2", "b2"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda b: b.reserve("d", "web", ONE, (), 0.0, float("nan"), owner=ORCH), "lease_seconds must be a finite number"),
    (lambda b: b.reserve("d", "web", ONE, (), 0.0, 0, owner=ORCH), "lease_seconds must be > 0, got 0.0"),
    (lambda b: b.reserve("d", "web", ONE, (), float("inf"), 30, owner=ORCH), "now must be a finite number, got inf"),
    (lambda b: b.reserve("", "web", ONE, (), 0.0, 30, owner=ORCH), "deployment_id must be a non-empty string"),
    (lambda b: b.reserve("d", "web", ONE, (), 0.0, 30, owner=""), "owner must be a non-empty string"),
    (lambda b: b.reserve("d", "web", Resources(ram=-1), (), 0.0, 30, owner=ORCH),
     "node 'web': resources.ram must be a whole number >= 0, got -1"),
    (lambda b: b.reserve("d", "web", ONE, (True,), 0.0, 30, owner=ORCH), r"node 'web': ports\[0\] must be a port"),
    (lambda b: b.allocate("x", 0.0, lease_seconds=-1), "lease_seconds must be > 0, got -1.0"),
])
def test_meaningless_values_are_refused_naming_the_field(call: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        call(book())  # type: ignore[operator]


def test_leases_that_ran_out_while_the_node_was_down_expire_after_restore() -> None:
    b = book()
    kept = b.allocate(b.reserve("dep-1", "web", ONE, (0,), 0.0, 30, owner=ORCH).id, 1.0)
    lapsed = b.reserve("dep-2", "db", ONE, (30000,), 2.0, 30, owner=ORCH)
    restored = ReservationBook.from_snapshot(OFFERED, b.snapshot())
    assert restored.reservations() == (kept, lapsed)
    assert restored.expire(500.0) == (lapsed,)
    assert restored.reservations() == (kept,)
    new = restored.reserve("dep-3", "web", ONE, (0,), 500.0, 30, owner=ORCH)
    assert new.id not in {kept.id, lapsed.id} and new.ports == (30008,)  # 30009 is still kept's


def test_restored_records_above_lowered_limits_are_kept_and_nothing_is_free() -> None:
    b = book()
    r = b.allocate(b.reserve("dep-1", "web", Resources(cpu=3, ram=6 * GiB), (), 0.0, 30, owner=ORCH).id, 1.0)
    smaller = attrs.evolve(OFFERED, millicores=2000, ram=4 * GiB)
    restored = ReservationBook.from_snapshot(smaller, b.snapshot())
    assert restored.reservations() == (r,)
    free = restored.free(2.0)
    assert (free.millicores, free.ram) == (0, 0)
    restored.release(r.id)
    assert restored.free(3.0) == smaller


def _snapshot_with(**changes: object) -> BookSnapshot:
    b = book()
    first = b.reserve("dep-1", "web", ONE, (30001,), 0.0, 30, owner=ORCH)
    second = b.reserve("dep-2", "web", ONE, (30002,), 0.0, 30, owner=ORCH)
    return attrs.evolve(b.snapshot(), reservations=(first, attrs.evolve(second, **changes)))


@pytest.mark.parametrize(("changes", "message"), [
    ({"ports": (30001,)}, "a public port is held twice"),
    ({"deployment_id": "dep-1", "owner": "did:key:z6MkEve", "node": "db"}, "deployment 'dep-1' has two owners"),
    ({"deployment_id": "dep-1"}, "node 'web' of deployment 'dep-1' is held twice"),
    ({"id": "dep-1/web/1"}, "the id appears twice"),
    ({"ports": (0,)}, r"an 'any' port \(0\) was never resolved"),
    ({"lease_until": None}, "a reservation without a lease"),
    ({"ram": -1}, "resources.ram must be a whole number >= 0"),
    ({"millicores": 0.5}, "millicores must be a whole number >= 0, got 0.5"),
    ({"gpus": ("gpu0", "gpu0")}, "a gpu is held twice"),
    ({"gpus": ("",)}, "gpus must be device ids"),
])
def test_a_snapshot_that_contradicts_itself_is_refused_naming_the_reservation(
        changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSnapshot, match=message):
        ReservationBook.from_snapshot(OFFERED, _snapshot_with(**changes))


def test_a_deployment_placed_again_counts_what_it_holds_as_its_own_room() -> None:
    b = book()
    b.reserve("dep-1", "web", ONE, (30001,), 0.0, 30, owner=ORCH)
    b.reserve("dep-2", "db", ONE, (), 0.0, 30, owner=ORCH)
    again = b.free_for("dep-1", 1.0)
    assert again.millicores == 3000 and 30001 in again.public_ports  # dep-1's own back
    assert b.free_for("dep-3", 1.0) == b.free(1.0)  # a stranger to this book: just free
