"""The trio shell: calls run in the store's worker thread, one at a time, each one
transaction; the trio loop keeps running meanwhile; state survives a restart."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
import trio

from dms.store import (
    AllocationRecord,
    AllocationState,
    DeploymentPhase,
    DeploymentRecord,
    ExecutionIdentity,
    HeldResources,
    NodeDatabase,
    NodeStore,
    ReservationRecord,
    StoreClosed,
    open_node_store,
)
from dms.workload import ExecutorKind

Make = Callable[..., DeploymentRecord]
WAIT = 30.0  # generous: only a broken store waits this long


async def test_a_call_runs_off_the_trio_thread(tmp_path: Path):
    async with open_node_store(tmp_path) as store:
        worker = await store.call(lambda db: threading.get_ident())
    assert worker != threading.get_ident()


async def test_a_slow_call_leaves_the_trio_loop_running(tmp_path: Path, deployment: Make):
    """The call waits until a trio task has ticked: it returns only if the loop kept
    running while it blocked its thread."""
    ticked = threading.Event()
    record = deployment()

    def slow(db: NodeDatabase) -> bool:
        db.create_deployment(record)
        return ticked.wait(WAIT)

    async def tick() -> None:
        for _ in range(5):
            await trio.sleep(0.001)
        ticked.set()

    async with open_node_store(tmp_path) as store, trio.open_nursery() as nursery:
        nursery.start_soon(tick)
        assert await store.call(slow) is True
        assert await store.call(NodeDatabase.get_deployment, record.id) == record


async def test_calls_run_one_at_a_time(tmp_path: Path):
    inside = 0
    most = 0
    lock = threading.Lock()

    def work(db: NodeDatabase) -> None:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        threading.Event().wait(0.002)
        with lock:
            inside -= 1

    async with open_node_store(tmp_path) as store, trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(store.call, work)
    assert most == 1


async def test_many_tasks_appending_events_lose_none_and_seqs_only_grow(tmp_path: Path,
                                                                       deployment: Make):
    record = deployment()
    seen: dict[int, list[int]] = {}

    async def writer(store: NodeStore, task: int) -> None:
        for n in range(20):
            event = await store.call(NodeDatabase.append_event, record.id, "tick",
                                     {"task": task, "n": n}, at=float(n))
            seen.setdefault(task, []).append(event.seq)

    async with open_node_store(tmp_path) as store:
        await store.call(NodeDatabase.create_deployment, record)
        async with trio.open_nursery() as nursery:
            for task in range(50):
                nursery.start_soon(writer, store, task)
        stored = await store.call(NodeDatabase.events_since, record.id, 0, 1000)
    for task_seqs in seen.values():
        assert task_seqs == sorted(task_seqs) and len(set(task_seqs)) == 20
    assert sorted(seq for task_seqs in seen.values() for seq in task_seqs) == list(range(1, 1001))
    assert [event.seq for event in stored] == list(range(1, 1001))
    for task in range(50):  # each task's events are in the order it wrote them
        assert [e.payload["n"] for e in stored if e.payload["task"] == task] == list(range(20))


async def test_a_call_is_one_transaction(tmp_path: Path, deployment: Make):
    record = deployment()

    def start_and_fail(db: NodeDatabase) -> None:
        db.create_deployment(record)
        db.append_event(record.id, "phase", {"to": "pending"}, at=1.0)
        raise RuntimeError("solver crashed")

    async with open_node_store(tmp_path) as store:
        with pytest.raises(RuntimeError, match="solver crashed"):
            await store.call(start_and_fail)
        assert await store.call(NodeDatabase.list_deployments) == ()


async def test_a_started_call_completes_when_its_caller_is_cancelled(tmp_path: Path,
                                                                    deployment: Make):
    """The write is not abandoned half-way; the caller sees the cancellation at its
    next checkpoint."""
    record = deployment()
    entered, release = threading.Event(), threading.Event()
    outcomes: list[str] = []

    def create_when_released(db: NodeDatabase) -> None:
        entered.set()
        release.wait(WAIT)
        db.create_deployment(record)

    async def caller(store: NodeStore) -> None:
        await store.call(create_when_released)
        outcomes.append("returned")
        await trio.lowlevel.checkpoint()
        outcomes.append("ran on")

    async with open_node_store(tmp_path) as store:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(caller, store)
                await trio.to_thread.run_sync(entered.wait, WAIT)
                scope.cancel()
                release.set()
        assert scope.cancelled_caught
        assert outcomes == ["returned"]
        assert await store.call(NodeDatabase.get_deployment, record.id) == record


async def test_closing_waits_for_the_call_in_progress(tmp_path: Path, deployment: Make):
    record = deployment()
    entered = threading.Event()

    def slow_create(db: NodeDatabase) -> None:
        entered.set()
        threading.Event().wait(0.05)
        db.create_deployment(record)

    async with trio.open_nursery() as nursery, open_node_store(tmp_path) as store:
        nursery.start_soon(store.call, slow_create)
        await trio.to_thread.run_sync(entered.wait, WAIT)
    with NodeDatabase.open(store.path) as db:
        assert db.get_deployment(record.id) == record


async def test_a_closed_store_refuses_calls(tmp_path: Path):
    async with open_node_store(tmp_path) as store:
        pass
    with pytest.raises(StoreClosed, match="the store is closed"):
        await store.call(NodeDatabase.list_deployments)


async def test_everything_survives_a_restart(tmp_path: Path, deployment: Make):
    record = deployment(phase=DeploymentPhase.RUNNING, assignment={"web": deployment().owner})
    reservation = ReservationRecord(id="r1", deployment_id=record.id, orchestrator=record.owner,
                                    node="web", resources=HeldResources(millicores=500, ram=2**28),
                                    lease_expires_at=1_030.0, ports=(8080,))
    allocation = AllocationRecord(id="a1", deployment_id=record.id, name="web.main",
                                  actor="did:key:zActor", executor=ExecutorKind.PROCESS,
                                  created_at=1_001.0, state=AllocationState.HEALTHY,
                                  execution=ExecutionIdentity(ident="4242", started=77))

    def write_all(db: NodeDatabase) -> None:
        db.create_deployment(record)
        for n in range(3):
            db.append_event(record.id, "tick", {"n": n}, at=float(n))
        db.put_reservation(reservation)
        db.put_allocation(allocation)

    async with open_node_store(tmp_path) as store:
        await store.call(write_all)
    async with open_node_store(tmp_path) as store:
        assert await store.call(NodeDatabase.list_deployments) == (record,)
        events = await store.call(NodeDatabase.events_since, record.id)
        assert [event.payload for event in events] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert await store.call(NodeDatabase.list_reservations) == (reservation,)
        assert await store.call(NodeDatabase.list_allocations) == (allocation,)
        resumed = await store.call(NodeDatabase.append_event, record.id, "resumed", {}, at=9.0)
        assert resumed.seq == 4
        done = await store.call(NodeDatabase.update_deployment, record.id, lambda d: attrs.evolve(
            d, phase=DeploymentPhase.COMPLETED), at=10.0)
    async with open_node_store(tmp_path) as store:
        assert await store.call(NodeDatabase.get_deployment, record.id) == done
