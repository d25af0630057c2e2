"""What a provider keeps in its node store and what a restart decides from it: the
book's reservations round-trip exactly, and `plan_restart` keeps, resumes or removes
each hosted deployment for the reason it names."""

from __future__ import annotations

import uuid
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dms.ensemble._requirements import Resources
from dms.provider import (
    Capacity,
    GpuDevice,
    InvalidRequest,
    ReservationBook,
    ReservationError,
)
from dms.provider._restart import Resume, plan_restart
from dms.provider._state import ProviderRecords, Saved, reservation_of, reservation_record
from dms.store import (
    AllocationRecord,
    AllocationState,
    ExecutionIdentity,
    HostedDeployment,
    InvalidRecord,
    ReservationState,
    open_node_store,
)
from dms.workload import ExecutorKind
from ucan import SigningKey

GiB = 2**30
OWNER = SigningKey.generate().did
OTHER = SigningKey.generate().did
OFFERED = Capacity(millicores=8000, ram=16 * GiB, disk=100 * GiB,
                   gpus=(GpuDevice("gpu0"), GpuDevice("gpu1")),
                   public_ports=frozenset(range(8000, 8010)))
ENSEMBLE = """
version: V1
allocations:
  web:
    type: service
    executor: process
    resources: {cpu: 0.1, ram: 32Mi, disk: 16Mi}
    execution: {command: sleep, args: ["300"]}
nodes:
  a: {allocations: [web]}
"""
NOW = 1_700_000_000.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 2000),
                          st.integers(0, 2 * GiB), st.booleans(), st.integers(0, 2)),
                min_size=1, max_size=6))
def test_the_book_survives_being_written_and_read_back_exactly(asks: list[tuple[
        str, int, int, bool, int]]) -> None:
    book = ReservationBook(OFFERED)
    deployment = str(uuid.uuid4())
    for node, cpu, ram, allocate, ports in asks:
        try:
            held = book.reserve(deployment, node, Resources(cpu=cpu / 1000, ram=ram),
                                [0] * ports, NOW, 30, owner=OWNER)
        except (ReservationError, InvalidRequest):
            continue
        if allocate:
            book.allocate(held.id, NOW)
    saved = Saved(tuple(reservation_record(r) for r in book.reservations()))
    assert tuple(reservation_of(r) for r in saved.reservations) == book.reservations()
    again = ReservationBook.from_snapshot(OFFERED, saved.snapshot(NOW))
    assert again.reservations() == book.reservations()
    assert again.free(NOW) == book.free(NOW)
    new = again.reserve(str(uuid.uuid4()), "z", Resources(), [], NOW, 30, owner=OWNER)
    assert all(int(new.id.rpartition("/")[2]) > int(r.id.rpartition("/")[2])
               for r in book.reservations())


def test_a_reservation_the_store_refuses_names_the_field() -> None:
    book = ReservationBook(OFFERED)
    held = book.reserve("not-a-uuid", "a", Resources(), [], NOW, 30, owner=OWNER)
    with pytest.raises(InvalidRecord, match="deployment_id: 'not-a-uuid' is not a UUID"):
        reservation_record(held)


def hosted(deployment: str, *, last_seen: float = NOW - 5, heartbeat: float = 30,
           ensemble: str = ENSEMBLE, owner: str = OWNER) -> HostedDeployment:
    return HostedDeployment(deployment, owner, ensemble, heartbeat, last_seen)


def allocation(deployment: str, state: AllocationState,
               execution: ExecutionIdentity | None = None) -> AllocationRecord:
    return AllocationRecord(f"{deployment}/web", deployment, "web", OWNER,
                            ExecutorKind.PROCESS, NOW - 10, execution, state)


def saved_with(*deployments: tuple[HostedDeployment, AllocationRecord],
               reservations: tuple[tuple[str, ReservationState], ...] = ()) -> Saved:
    book = ReservationBook(OFFERED)
    for record, _ in deployments:
        held = book.reserve(record.id, "a", Resources(), [], NOW - 10, 30, owner=OWNER)
        book.allocate(held.id, NOW - 10)
    for deployment, state in reservations:
        held = book.reserve(deployment, "a", Resources(), [], NOW - 10, 30, owner=OWNER)
        if state is ReservationState.ALLOCATED:
            book.allocate(held.id, NOW - 10)
    return Saved(tuple(reservation_record(r) for r in book.reservations()),
                 tuple(h for h, _ in deployments), tuple(a for _, a in deployments))


RUNNING = ExecutionIdentity("1234", 99, {"directory": "/x"})


@pytest.mark.parametrize(("state", "execution", "how"), [
    (AllocationState.RUNNING, RUNNING, Resume.ADOPT),
    (AllocationState.UNHEALTHY, RUNNING, Resume.ADOPT),
    (AllocationState.STARTING, None, Resume.ADOPT),  # cannot be adopted: ended while away
    (AllocationState.PENDING, None, Resume.PENDING),
    (AllocationState.COMPLETED, RUNNING, Resume.ENDED),
    (AllocationState.STOPPED, None, Resume.ENDED),
])
def test_each_allocation_of_a_kept_deployment_resumes_by_its_state(
        state: AllocationState, execution: ExecutionIdentity | None, how: Resume) -> None:
    deployment = str(uuid.uuid4())
    plan = plan_restart(saved_with((hosted(deployment), allocation(deployment, state,
                                                                   execution))),
                        NOW, {ExecutorKind.PROCESS})
    ((kept,), ()) = (plan.kept, plan.removed)
    (resumed,) = kept.allocations
    assert resumed.how is how
    assert resumed.plan.node == "a" and resumed.plan.execution.argv == ("sleep", "300")
    assert plan.release == ()


@pytest.mark.parametrize(("record", "executors", "reason"), [
    (dict(last_seen=NOW - 31), {ExecutorKind.PROCESS},
     "has not asked after it for 31 s (its heartbeat is 30 s)"),
    (dict(ensemble="version: V1\nallocations: {}\n"), {ExecutorKind.PROCESS},
     "its ensemble does not load"),
    ({}, {ExecutorKind.DOCKER}, "executor process is not open here"),
    (dict(owner=OTHER), {ExecutorKind.PROCESS}, "reservations name another orchestrator"),
])
def test_a_deployment_that_cannot_carry_on_is_removed_for_its_reason(
        record: dict[str, object], executors: set[ExecutorKind], reason: str) -> None:
    deployment = str(uuid.uuid4())
    saved = saved_with((hosted(deployment, **record),  # type: ignore[arg-type]
                        allocation(deployment, AllocationState.RUNNING, RUNNING)))
    plan = plan_restart(saved, NOW, executors)
    (removed,) = plan.removed
    assert plan.kept == () and removed.id == deployment and reason in removed.reason
    assert plan.release == tuple(r.id for r in saved.reservations)


def test_reservations_of_no_hosted_deployment_keep_their_lease_unless_allocated() -> None:
    committed, orphan = str(uuid.uuid4()), str(uuid.uuid4())
    saved = saved_with(reservations=((committed, ReservationState.RESERVED),
                                     (orphan, ReservationState.ALLOCATED)))
    saved = attrs.evolve(saved, allocations=(allocation(orphan, AllocationState.RUNNING),))
    plan = plan_restart(saved, NOW, {ExecutorKind.PROCESS})
    assert plan.release == tuple(r.id for r in saved.reservations
                                 if r.deployment_id == orphan)
    assert plan.forget_allocations == (f"{orphan}/web",)


async def test_records_round_trip_through_the_node_store_and_are_forgotten_whole(
        tmp_path: Path) -> None:
    deployment = str(uuid.uuid4())
    book = ReservationBook(OFFERED)
    held = book.reserve(deployment, "a", Resources(cpu=0.5, ram=GiB), [0], NOW, 30,
                        owner=OWNER)
    async with open_node_store(tmp_path) as store:
        records = ProviderRecords(store)
        await records.reserved([held])
        record = allocation(deployment, AllocationState.RUNNING, RUNNING)
        await records.hosting(hosted(deployment), [book.allocate(held.id, NOW)], [record])
        await records.seen({deployment: NOW + 10})
        await records.seen({deployment: NOW})  # never back
        saved = await records.load()
        assert saved.hosted == (hosted(deployment, last_seen=NOW + 10),)
        assert saved.allocations == (record,)
        (kept,) = saved.reservations
        assert reservation_of(kept) == book.get(held.id)
        await records.forget_deployment(deployment)
        assert await records.load() == Saved()


async def test_without_a_store_nothing_is_kept() -> None:
    records = ProviderRecords(None)
    await records.reserved([])
    await records.forget(["x"], ["y"])
    assert await records.load() == Saved()


@pytest.mark.parametrize(("state", "kept"), [
    (AllocationState.COMPLETED, True),  # its node's reservation was released as it ended
    (AllocationState.RUNNING, False),
])
def test_a_deployment_without_reservations_is_kept_only_when_all_it_has_here_completed(
        state: AllocationState, kept: bool) -> None:
    deployment = str(uuid.uuid4())
    saved = saved_with((hosted(deployment), allocation(deployment, state, RUNNING)))
    saved = attrs.evolve(saved, reservations=())
    plan = plan_restart(saved, NOW, {ExecutorKind.PROCESS})
    assert [k.record.id for k in plan.kept] == ([deployment] if kept else [])
    if not kept:
        assert "holds no reservation" in plan.removed[0].reason
