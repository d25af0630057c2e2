"""Phases that revert (`UndoStack`): every undo runs exactly once, newest first, on any
failure or cancellation; a hung or failing undo neither hangs cleanup nor masks the
original error. Time is trio's MockClock (autojump), so deadlines are exact."""

from __future__ import annotations

from functools import partial

import pytest
import trio

from dms.orchestrator import (
    DeploymentEventKind,
    InvalidSetting,
    PhaseClosed,
    PhaseEvent,
    PhaseOverlap,
    UndoStack,
)

K = DeploymentEventKind
PHASES = ("commit", "allocate", "start")


class CommitFailed(Exception):
    pass


async def record(done: list[str], step: str) -> None:
    # a checkpoint that would raise Cancelled if the undo were not shielded
    await trio.sleep(0.1)
    done.append(step)


async def three_phases(undos: UndoStack, registered: list[str], done: list[str]) -> None:
    """Two one-second steps per phase, one second between phases."""
    for name in PHASES:
        async with undos.phase(name) as p:
            for i in range(2):
                await trio.sleep(1)
                step = f"{name}.{i}"
                p.on_revert(partial(record, done, step), step)
                registered.append(step)
        await trio.sleep(1)


# t = 0.5, 1.5 in commit; 2.5 between commit and allocate; ... 8.5 after start
@pytest.mark.parametrize("cancel_at", [k + 0.5 for k in range(9)])
async def test_cancellation_anywhere_runs_every_undo_once_newest_first(
    autojump_clock: trio.testing.MockClock, cancel_at: float
) -> None:
    registered: list[str] = []
    done: list[str] = []
    with trio.move_on_after(cancel_at) as scope:
        async with UndoStack() as undos:
            await three_phases(undos, registered, done)
            await trio.sleep_forever()
    assert scope.cancelled_caught  # Cancelled propagated through phase and stack
    assert done == registered[::-1]
    assert len(registered) == {0: 0, 1: 1, 2: 2, 3: 2, 4: 3, 5: 4, 6: 4, 7: 5, 8: 6}[int(cancel_at)]


async def test_a_failed_phase_reports_then_reverts_earlier_phases_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[PhaseEvent] = []
    done: list[str] = []
    with trio.move_on_after(3.5):
        async with UndoStack(on_event=events.append) as undos:
            await three_phases(undos, [], done)
    assert done == ["commit.1", "commit.0"]
    assert [(e.kind, e.phase) for e in events] == [
        (K.PHASE_STARTED, "commit"),
        (K.PHASE_ENDED, "commit"),
        (K.PHASE_STARTED, "allocate"),
        (K.PHASE_FAILED, "allocate"),
        (K.REVERTING, None),
        (K.UNDONE, "commit"),
        (K.UNDONE, "commit"),
        (K.REVERTED, None),
    ]
    assert events[3].detail == "cancelled"
    assert events[4].detail == "2 undos: phase allocate failed: cancelled"
    assert [e.detail for e in events[5:7]] == ["commit.1", "commit.0"]
    assert events[7].detail == "2 of 2 undone"


async def test_an_error_between_phases_reverts_and_propagates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done: list[str] = []
    with pytest.raises(CommitFailed):
        async with UndoStack() as undos:
            async with undos.phase("commit") as p:
                p.on_revert(partial(record, done, "a"), "a")
                p.on_revert(partial(record, done, "b"), "b")
            raise CommitFailed("solver gave up")
    assert done == ["b", "a"]


async def test_a_hung_undo_is_abandoned_at_its_deadline_and_the_next_still_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done: list[str] = []
    events: list[PhaseEvent] = []
    start = trio.current_time()
    with pytest.raises(CommitFailed):
        stack = UndoStack(undo_timeout=10, on_event=events.append)
        async with stack as undos, undos.phase("commit") as p:
            p.on_revert(partial(record, done, "first"), "first")
            p.on_revert(trio.sleep_forever, "hangs")
            raise CommitFailed("provider b timed out")
    assert done == ["first"]
    assert trio.current_time() - start == pytest.approx(10.1)  # 10 s abandoned + 0.1 s
    [failure] = undos.failures
    assert (failure.phase, failure.description, failure.abandoned) == ("commit", "hangs", True)
    assert failure.problem == "not done within 10 s"
    assert [e.kind for e in events][-3:] == [K.UNDO_ABANDONED, K.UNDONE, K.REVERTED]
    assert events[-1].detail == "1 of 2 undone, 1 abandoned"


async def test_an_undo_can_have_a_deadline_of_its_own(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    async with UndoStack(undo_timeout=10) as undos, undos.phase("commit") as p:
        p.on_revert(trio.sleep_forever, "hangs", timeout=3)
    assert trio.current_time() - start == pytest.approx(3)
    assert undos.failures[0].problem == "not done within 3 s"


async def test_an_undo_whose_nursery_hangs_is_abandoned_not_raised(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fan_out() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            nursery.start_soon(trio.sleep_forever)

    done: list[str] = []
    async with UndoStack(undo_timeout=2) as undos, undos.phase("allocate") as p:
        p.on_revert(partial(record, done, "first"), "first")
        p.on_revert(fan_out, "stop two allocations")
    assert done == ["first"]
    assert [f.abandoned for f in undos.failures] == [True]


async def test_an_undo_failing_while_its_deadline_cancels_it_is_recorded_not_raised(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def messy_stop() -> None:
        async def cleans_up_badly() -> None:
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                raise RuntimeError("container remove failed") from None

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            nursery.start_soon(cleans_up_badly)

    done: list[str] = []
    async with UndoStack(undo_timeout=2) as undos, undos.phase("allocate") as p:
        p.on_revert(partial(record, done, "first"), "first")
        p.on_revert(messy_stop, "stop allocations")
    assert done == ["first"]
    [failure] = undos.failures
    assert failure.problem == "RuntimeError: container remove failed"


async def test_failing_undos_are_recorded_and_never_mask_the_original_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fails() -> None:
        raise RuntimeError("provider a: no such reservation")

    async def fails_in_a_nursery() -> None:
        async def boom() -> None:
            raise OSError("connection reset")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(boom)
            nursery.start_soon(trio.sleep_forever)

    done: list[str] = []
    with pytest.raises(CommitFailed, match="provider c refused"):
        async with UndoStack() as undos, undos.phase("commit") as p:
            p.on_revert(partial(record, done, "a"), "a")
            p.on_revert(fails, "b")
            p.on_revert(fails_in_a_nursery, "c")
            p.on_revert(partial(record, done, "d"), "d")
            raise CommitFailed("provider c refused")
    assert done == ["d", "a"]
    assert [(f.description, f.problem, f.abandoned) for f in undos.failures] == [
        ("c", "OSError: connection reset", False),
        ("b", "RuntimeError: provider a: no such reservation", False),
    ]


async def test_a_nursery_failing_inside_a_phase_reverts_all_steps_and_keeps_its_group(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done: list[str] = []
    committed: list[str] = []

    async def commit(p: object, provider: str, after: float, fail: bool = False) -> None:
        await trio.sleep(after)
        if fail:
            raise CommitFailed(f"provider {provider} refused")
        committed.append(provider)

    with pytest.RaisesGroup(CommitFailed):
        async with (
            UndoStack() as undos,
            undos.phase("commit") as p,
            trio.open_nursery() as nursery,
        ):
            for provider, after, fail in (("a", 0.5, False), ("b", 1, True), ("c", 2, False)):
                # registered before the step: a cancelled commit is reverted too
                p.on_revert(partial(record, done, provider), f"reservation on {provider}")
                nursery.start_soon(commit, p, provider, after, fail)
    assert committed == ["a"]  # c was cancelled mid-commit
    assert done == ["c", "b", "a"]


async def test_a_caught_phase_failure_leaves_the_stack_usable_for_a_retry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done: list[str] = []
    async with UndoStack() as undos:
        try:
            async with undos.phase("commit") as p:
                p.on_revert(partial(record, done, "first try"), "first try")
                raise CommitFailed("provider b refused")
        except CommitFailed:
            pass
        assert done == ["first try"] and undos.pending == ()
        async with undos.phase("commit") as p:
            p.on_revert(partial(record, done, "second try"), "second try")
    assert done == ["first try", "second try"]  # the stack's exit released the retry's


async def test_success_keeps_undos_until_kept_or_run_at_shutdown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done: list[str] = []
    registered: list[str] = []
    events: list[PhaseEvent] = []
    async with UndoStack(on_event=events.append) as undos:
        await three_phases(undos, registered, done)
        assert done == []
        assert undos.pending == tuple(reversed(registered))
        await undos.revert("shutdown")  # explicitly, at shutdown
        assert done == registered[::-1]
        await undos.revert("again")  # each undo runs once
    assert done == registered[::-1]

    done.clear()
    async with UndoStack(on_event=events.append) as undos:
        await three_phases(undos, [], done)
        undos.keep()  # running: shutdown owns the allocations now
    assert done == [] and undos.pending == ()
    assert events[-1] == PhaseEvent(K.KEPT, None, "6 undos kept")


async def test_leaving_the_stack_normally_releases_what_was_not_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done: list[str] = []
    async with UndoStack() as undos, undos.phase("commit") as p:
        p.on_revert(partial(record, done, "a"), "a")
    assert done == ["a"]


async def test_an_event_callback_that_raises_does_not_stop_a_revert(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def broken(event: PhaseEvent) -> None:
        raise ValueError("sink closed")

    done: list[str] = []
    with pytest.raises(CommitFailed):
        async with UndoStack(on_event=broken) as undos, undos.phase("commit") as p:
            p.on_revert(partial(record, done, "a"), "a")
            p.on_revert(partial(record, done, "b"), "b")
            raise CommitFailed("x")
    assert done == ["b", "a"]


async def test_undos_have_an_owner_or_are_refused() -> None:
    async def nothing() -> None:
        pass

    loose = UndoStack()
    with pytest.raises(PhaseClosed, match="phase 'commit': the UndoStack is not open"):
        async with loose.phase("commit"):
            pass

    async with UndoStack() as undos:
        async with undos.phase("commit") as p:
            with pytest.raises(PhaseOverlap, match="'allocate' opened while phase 'commit'"):
                async with undos.phase("allocate"):
                    pass
        with pytest.raises(PhaseClosed, match="phase 'commit' has ended"):
            p.on_revert(nothing, "late")
        with pytest.raises(PhaseClosed, match="entered once"):
            async with undos:
                pass
    with pytest.raises(PhaseClosed):
        async with undos.phase("allocate"):
            pass


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan")])
async def test_an_undo_timeout_must_be_a_positive_finite_number(bad: float) -> None:
    with pytest.raises(InvalidSetting, match="undo_timeout must be a finite number of seconds > 0"):
        UndoStack(undo_timeout=bad)
    async with UndoStack() as undos, undos.phase("commit") as p:
        with pytest.raises(InvalidSetting, match="^timeout must"):
            p.on_revert(trio.sleep_forever, "x", timeout=bad)
