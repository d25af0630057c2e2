import math

import pytest
import trio
import trio.testing

from dms.executor import ExecutionSpec, ExecutorKind
from dms.supervise import (
    AllocationSupervisor,
    Backoff,
    EventKind,
    Recovery,
    RestartIntensity,
    RestartPolicy,
    StatusEvent,
    SupervisorStrategy,
    SupervisorTree,
    TreeNotRunning,
    UnknownChild,
    open_event_channel,
)
from tests.dms.supervise.supervise_fake_executor import FakeExecutor

TREE_POLICY = RestartPolicy(backoff=Backoff(initial=2))
DEPENDS_ON = {"web": ["api"], "api": ["db"], "db": []}


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def make_tree(
    strategy: SupervisorStrategy,
    policy: RestartPolicy = TREE_POLICY,
    recovery: dict[str, Recovery] | None = None,
) -> tuple[FakeExecutor, SupervisorTree, trio.MemoryReceiveChannel[StatusEvent]]:
    fake = FakeExecutor()
    send, receive = trio.open_memory_channel[StatusEvent](math.inf)
    children = [
        AllocationSupervisor(
            fake,
            ExecutionSpec(name=name, executor=ExecutorKind.PROCESS, cmd=("run",)),
            send,
            policy=RestartPolicy(recovery=(recovery or {}).get(name, Recovery.RESTART)),
        )
        for name in ("web", "api", "db")  # given out of order on purpose
    ]
    tree = SupervisorTree(
        "ensemble", children, send, strategy=strategy, depends_on=DEPENDS_ON, policy=policy
    )
    return fake, tree, receive


async def crash_and_settle(fake: FakeExecutor, tree: SupervisorTree, name: str) -> float:
    """Crash `name`, wait until the tree has every child running again; returns the time taken."""
    before = {child: len(runs) for child, runs in fake.runs.items()}
    start = trio.current_time()
    fake.crash(name)
    while len(fake.runs[name]) == before[name] or len(tree.live()) < 3:
        await trio.sleep(0.01)
    return trio.current_time() - start


async def test_children_start_in_dependency_order(autojump_clock: trio.testing.MockClock) -> None:
    fake, tree, _ = make_tree(SupervisorStrategy.ONE_FOR_ONE)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        assert fake.start_order == ["db", "api", "web"]
        nursery.cancel_scope.cancel()
    assert fake.stop_order == ["web", "api", "db"]


async def test_one_for_one_restarts_only_the_failed_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, tree, receive = make_tree(SupervisorStrategy.ONE_FOR_ONE)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        took = await crash_and_settle(fake, tree, "api")
        nursery.cancel_scope.cancel()
    assert {name: len(runs) for name, runs in fake.runs.items()} == {"db": 1, "api": 2, "web": 1}
    assert fake.start_order == ["db", "api", "web", "api"]
    assert 2 <= took < 3  # the tree's backoff, on the mock clock
    assert tree.children["api"].status().restarts == 1


async def test_all_for_one_restarts_every_child_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, tree, receive = make_tree(SupervisorStrategy.ALL_FOR_ONE)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        await crash_and_settle(fake, tree, "api")
        nursery.cancel_scope.cancel()
    assert fake.stop_order[:2] == ["web", "db"]  # survivors stopped in reverse start order
    assert fake.start_order == ["db", "api", "web", "db", "api", "web"]
    restarting = [e for e in _drain(receive) if e.kind is EventKind.RESTARTING]
    assert [e.allocation for e in restarting] == ["db", "api", "web"]
    assert all(e.detail.startswith("AllForOne: api exited") for e in restarting)


async def test_rest_for_one_restarts_the_failed_child_and_those_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, tree, _ = make_tree(SupervisorStrategy.REST_FOR_ONE)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        await crash_and_settle(fake, tree, "api")
        nursery.cancel_scope.cancel()
    assert fake.stop_order[0] == "web"
    assert fake.start_order == ["db", "api", "web", "api", "web"]
    assert len(fake.runs["db"]) == 1


async def test_tree_gives_up_on_a_crash_loop_and_stops_everyone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    policy = RestartPolicy(backoff=Backoff(initial=1), intensity=RestartIntensity(2, 60))
    fake, tree, receive = make_tree(SupervisorStrategy.ONE_FOR_ONE, policy)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        await crash_and_settle(fake, tree, "db")
        await crash_and_settle(fake, tree, "db")
        fake.crash("db")
    events = _drain(receive)
    crash_loop = [e for e in events if e.kind is EventKind.CRASH_LOOP]
    assert [e.allocation for e in crash_loop] == ["ensemble"]
    assert "2 restarts within 60s; last: db exited" in crash_loop[0].detail
    assert fake.stop_order == ["web", "api"]
    assert tree.live() == []


async def test_stay_down_child_is_not_restarted_by_the_tree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, tree, receive = make_tree(
        SupervisorStrategy.ALL_FOR_ONE, recovery={"web": Recovery.STAY_DOWN}
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        fake.crash("web")
        await trio.sleep(10)
        assert tree.live() == ["db", "api"]
        nursery.cancel_scope.cancel()
    assert len(fake.runs["web"]) == 1 and len(fake.runs["db"]) == 1
    assert EventKind.STAYED_DOWN in [e.kind for e in _drain(receive)]


def _drain(receive: trio.MemoryReceiveChannel[StatusEvent]) -> list[StatusEvent]:
    events = []
    while True:
        try:
            events.append(receive.receive_nowait())
        except trio.WouldBlock:
            return events


@pytest.mark.parametrize("strategy", list(SupervisorStrategy))
async def test_dependents_wait_until_a_failed_dependency_is_up(
    autojump_clock: trio.testing.MockClock, strategy: SupervisorStrategy
) -> None:
    fake, tree, _ = make_tree(strategy)
    fake.provision_failures["db"] = 1
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        assert "api" not in fake.runs and "web" not in fake.runs  # held back, not started
        while len(tree.live()) < 3:
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert fake.start_order == ["db", "api", "web"]


async def test_all_for_one_restarts_once_when_children_fail_together(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, tree, _ = make_tree(SupervisorStrategy.ALL_FOR_ONE)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        fake.crash("db")
        fake.crash("api")  # one incident: api went down with its database
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert tree.tracker.total == 1
    assert {name: len(runs) for name, runs in fake.runs.items()} == {"db": 2, "api": 2, "web": 2}


async def test_stop_child_keeps_it_down_through_other_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, tree, receive = make_tree(SupervisorStrategy.ALL_FOR_ONE)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        await tree.stop_child("web")
        assert tree.live() == ["db", "api"]
        assert tree.child_status("web").phase is EventKind.STOPPED
        fake.crash("db")  # all-for-one: everyone restarts, except the stopped child
        await trio.sleep(10)
        assert tree.live() == ["db", "api"]
        assert tree.status().stopped == frozenset({"web"})
        nursery.cancel_scope.cancel()
    assert len(fake.runs["web"]) == 1 and len(fake.runs["db"]) == 2
    assert fake.current("web").status().exit is not None
    assert fake.current("web").status().exit.stopped  # type: ignore[union-attr]


async def test_restart_child_undoes_a_stop_and_waits_until_ready(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, tree, _ = make_tree(SupervisorStrategy.ONE_FOR_ONE)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        await tree.stop_child("api")
        await tree.restart_child("api")
        assert tree.live() == ["db", "api", "web"]
        assert tree.status().stopped == frozenset()
        nursery.cancel_scope.cancel()
    assert len(fake.runs["api"]) == 2


async def test_restart_child_replaces_a_running_child_without_counting_as_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    policy = RestartPolicy(intensity=RestartIntensity(max_restarts=1, period=60))
    fake, tree, receive = make_tree(SupervisorStrategy.ALL_FOR_ONE, policy)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        for _ in range(3):
            await tree.restart_child("api")
        assert tree.live() == ["db", "api", "web"]
        nursery.cancel_scope.cancel()
    # only api is replaced (owner's request, not the strategy) and no crash loop is declared
    assert {name: len(runs) for name, runs in fake.runs.items()} == {"db": 1, "api": 4, "web": 1}
    assert tree.status().restarts == 0
    assert tree.child_status("api").restarts == 3
    assert EventKind.CRASH_LOOP not in [e.kind for e in _drain(receive)]


async def test_status_reports_every_child_in_start_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, tree, _ = make_tree(SupervisorStrategy.ONE_FOR_ONE)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        await crash_and_settle(fake, tree, "db")
        status = tree.status()
        nursery.cancel_scope.cancel()
    assert [child.name for child in status.children] == ["db", "api", "web"]
    assert [child.phase for child in status.children] == [EventKind.RUNNING] * 3
    assert [child.restarts for child in status.children] == [1, 0, 0]
    assert status.restarts == 1 and status.strategy is SupervisorStrategy.ONE_FOR_ONE


async def test_control_calls_name_unknown_children_and_need_a_running_tree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _, tree, _ = make_tree(SupervisorStrategy.ONE_FOR_ONE)
    with pytest.raises(TreeNotRunning, match="'ensemble' is not running"):
        await tree.stop_child("web")
    with pytest.raises(UnknownChild, match="no child 'cache'"):
        await tree.restart_child("cache")
    with pytest.raises(UnknownChild):
        tree.child_status("cache")


async def test_a_reader_that_never_reads_does_not_stall_supervision(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeExecutor()
    sink, receive = open_event_channel(capacity=2)  # nobody ever reads `receive`
    children = [
        AllocationSupervisor(fake, ExecutionSpec(name=n, executor=ExecutorKind.PROCESS, cmd=("x",)), sink)
        for n in ("db", "api")
    ]
    tree = SupervisorTree("ensemble", children, sink, policy=TREE_POLICY)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(60):
            await nursery.start(tree.run)
            for _ in range(3):
                await crash_and_settle_n(fake, tree, "api", 2)
        nursery.cancel_scope.cancel()
    assert len(fake.runs["api"]) == 4
    assert len(_drain(receive)) == 2  # the buffer's worth; the rest were dropped ...
    assert sink.dropped > 0 and tree.status().events_dropped == sink.dropped  # ... and counted


async def crash_and_settle_n(fake: FakeExecutor, tree: SupervisorTree, name: str, size: int) -> None:
    before = len(fake.runs[name])
    fake.crash(name)
    while len(fake.runs[name]) == before or len(tree.live()) < size:
        await trio.sleep(0.01)


async def test_a_lone_supervisor_restarts_with_an_unread_unbuffered_channel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeExecutor()
    send, _receive = trio.open_memory_channel[StatusEvent](0)
    policy = RestartPolicy(backoff=Backoff(initial=1), intensity=RestartIntensity(2, 600))
    supervisor = AllocationSupervisor(
        fake, ExecutionSpec(name="job", executor=ExecutorKind.PROCESS, cmd=("x",)), send, policy=policy
    )
    async with trio.open_nursery() as nursery:
        with trio.fail_after(60):
            await nursery.start(supervisor.run)
            for runs in (2, 3):
                fake.crash("job")
                while len(fake.runs["job"]) < runs:
                    await trio.sleep(0.01)
            fake.crash("job")  # the third failure within the period: crash loop
    assert supervisor.status().phase is EventKind.CRASH_LOOP
    # every event was dropped: starting, running, exited per run, two restarts, the crash loop
    assert supervisor.events.dropped == len(fake.runs["job"]) * 3 + 2 + 1
