import math

import pytest
import trio
import trio.testing

from dms.executor import ExecutionSpec, ExecutorKind, WorkloadKind
from dms.supervise import (
    AllocationSupervisor,
    Backoff,
    CommandProbe,
    Completed,
    EventKind,
    HealthCheck,
    Recovery,
    RestartIntensity,
    RestartPolicy,
    StatusEvent,
)
from tests.dms.supervise.supervise_fake_executor import FakeExecutor


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def spec(name: str, kind: WorkloadKind = WorkloadKind.SERVICE) -> ExecutionSpec:
    return ExecutionSpec(name=name, executor=ExecutorKind.PROCESS, cmd=("run",), kind=kind)


def channel() -> tuple[trio.MemorySendChannel[StatusEvent], trio.MemoryReceiveChannel[StatusEvent]]:
    return trio.open_memory_channel[StatusEvent](math.inf)


def drain(receive: trio.MemoryReceiveChannel[StatusEvent]) -> list[StatusEvent]:
    events = []
    while True:
        try:
            events.append(receive.receive_nowait())
        except trio.WouldBlock:
            return events


async def test_crashing_service_backs_off_exponentially_then_reports_crash_loop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeExecutor()
    send, receive = channel()
    policy = RestartPolicy(
        backoff=Backoff(initial=1, factor=2, maximum=3), intensity=RestartIntensity(3, 300)
    )
    supervisor = AllocationSupervisor(fake, spec("web"), send, policy=policy)

    async def crash_every_run() -> None:
        for _ in range(4):
            while len(fake.runs.get("web", [])) <= _:
                await trio.sleep(0.001)
            await trio.sleep(5)
            fake.crash("web", exit_code=2)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(crash_every_run)
        await supervisor.run()
    events = drain(receive)
    restarts = [e for e in events if e.kind is EventKind.RESTARTING]
    assert [e.delay for e in restarts] == [1, 2, 3]
    assert events[-1].kind is EventKind.CRASH_LOOP and "exit code 2" in events[-1].detail
    assert len(fake.runs["web"]) == 4
    exited = [e for e in events if e.kind is EventKind.EXITED]
    assert exited[0].exit is not None and exited[0].exit.exit_code == 2
    assert exited[0].logs_tail == "web run 1\n"
    assert supervisor.status().restarts == 3


async def test_unhealthy_service_is_restarted_after_consecutive_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeExecutor()
    send, receive = channel()
    check = HealthCheck(CommandProbe(("check",)), interval=1, retries=3)
    supervisor = AllocationSupervisor(fake, spec("api"), send, health=check)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        assert supervisor.status().health is not None
        start = trio.current_time()
        fake.healthy["api"] = False
        while len(fake.runs["api"]) < 2:
            await trio.sleep(0.1)
        restarted_after = trio.current_time() - start
        fake.healthy["api"] = True
        await trio.sleep(1.5)  # the restarted run's first probe comes one interval in
        nursery.cancel_scope.cancel()
    kinds = [e.kind for e in drain(receive)]
    assert kinds[:4] == [
        EventKind.STARTING,
        EventKind.RUNNING,
        EventKind.HEALTHY,
        EventKind.UNHEALTHY,
    ]
    assert kinds[4:8] == [
        EventKind.RESTARTING,
        EventKind.STARTING,
        EventKind.RUNNING,
        EventKind.HEALTHY,
    ]
    assert kinds[-1] is EventKind.STOPPED
    # three failed probes one interval apart, then one second of backoff
    assert 3 <= restarted_after < 5
    assert fake.runs["api"][0].status().exit is not None


async def test_task_runs_to_completion_without_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeExecutor()
    fake.task_exit["job"] = 0
    send, receive = channel()
    outcome = await AllocationSupervisor(fake, spec("job", WorkloadKind.TASK), send).run()
    assert isinstance(outcome, Completed) and outcome.exit.exit_code == 0
    last = drain(receive)[-1]
    assert last.kind is EventKind.COMPLETED and last.logs_tail == "job run 1\n"
    assert len(fake.runs["job"]) == 1


@pytest.mark.parametrize(
    ("recovery", "final"),
    [
        (Recovery.STAY_DOWN, EventKind.STAYED_DOWN),
        (Recovery.REDEPLOY, EventKind.REDEPLOY_REQUESTED),
    ],
)
async def test_failure_recovery_other_than_restart_does_not_restart(
    autojump_clock: trio.testing.MockClock, recovery: Recovery, final: EventKind
) -> None:
    fake = FakeExecutor()
    fake.task_exit["job"] = 3
    send, receive = channel()
    supervisor = AllocationSupervisor(
        fake, spec("job", WorkloadKind.TASK), send, policy=RestartPolicy(recovery=recovery)
    )
    await supervisor.run()
    events = drain(receive)
    assert [e.kind for e in events][-2:] == [EventKind.EXITED, final]
    assert "exit code 3" in events[-1].detail
    assert len(fake.runs["job"]) == 1


async def test_start_failure_is_reported_with_the_script_output(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeExecutor()
    fake.provision_failures["db"] = 1
    send, receive = channel()
    async with trio.open_nursery() as nursery:
        await nursery.start(AllocationSupervisor(fake, spec("db"), send).run)
        while "db" not in fake.runs:
            await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    failed = [e for e in drain(receive) if e.kind is EventKind.START_FAILED]
    assert "'setup' exited 2" in failed[0].detail and "no network" in failed[0].detail
    assert len(fake.runs["db"]) == 1  # restarted after the backoff


async def test_unexpected_start_error_is_a_start_failure_not_a_crash(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeExecutor()

    async def start(spec: ExecutionSpec) -> None:
        raise FileNotFoundError(2, "No such file or directory", "/srv/db/init")

    monkeypatch.setattr(fake, "start", start)
    send, receive = channel()
    policy = RestartPolicy(recovery=Recovery.STAY_DOWN)
    outcome = await AllocationSupervisor(fake, spec("db"), send, policy=policy).run()
    assert "FileNotFoundError" in outcome.reason  # type: ignore[union-attr]
    kinds = [e.kind for e in drain(receive)]
    assert kinds == [EventKind.STARTING, EventKind.START_FAILED, EventKind.STAYED_DOWN]


async def test_a_restart_removes_the_ended_run_but_keeps_the_latest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeExecutor()
    send, receive = channel()
    async with trio.open_nursery() as nursery:
        await nursery.start(AllocationSupervisor(fake, spec("api"), send).run)
        fake.crash("api")
        while len(fake.runs["api"]) < 2:
            await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    first, latest = fake.runs["api"]
    assert first.removed and not latest.removed


async def test_cancelling_the_supervisor_stops_the_execution(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeExecutor()
    send, receive = channel()
    async with trio.open_nursery() as nursery:
        await nursery.start(AllocationSupervisor(fake, spec("svc"), send).run)
        nursery.cancel_scope.cancel()
    assert fake.stop_order == ["svc"]
    assert drain(receive)[-1].kind is EventKind.STOPPED
