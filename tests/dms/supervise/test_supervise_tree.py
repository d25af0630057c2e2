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
