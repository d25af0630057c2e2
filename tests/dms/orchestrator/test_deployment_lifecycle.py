"""The deployment state machine: which phase may follow which, and the numbered event
each transition yields."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dms.orchestrator import (
    DeploymentEvent,
    DeploymentEventKind,
    DeploymentLifecycle,
    DeploymentPhase,
    InvalidSetting,
    InvalidTransition,
)

P = DeploymentPhase
K = DeploymentEventKind
FINAL = {P.COMPLETED, P.FAILED}


def test_the_phase_values_are_the_names_the_store_uses() -> None:
    assert [p.value for p in P] == [
        "pending", "bidding", "solving", "committing", "allocating", "running",
        "shutting_down", "completed", "failed",
    ]  # fmt: skip
    assert P("running") is P.RUNNING and P.RUNNING == "running"


def test_the_happy_path_yields_one_event_per_transition_numbered_from_one() -> None:
    lifecycle = DeploymentLifecycle()
    path = [P.BIDDING, P.SOLVING, P.COMMITTING, P.ALLOCATING, P.RUNNING, P.SHUTTING_DOWN,
            P.COMPLETED]  # fmt: skip
    events = [lifecycle.enter(phase, at=float(i)) for i, phase in enumerate(path)]
    assert [e.number for e in events] == list(range(1, 8))
    assert [e.phase for e in events] == path
    assert {e.kind for e in events} == {K.TRANSITION}
    assert events[0] == DeploymentEvent(1, 0.0, K.TRANSITION, P.BIDDING, "pending → bidding")
    assert lifecycle.final and lifecycle.phase is P.COMPLETED


def test_retries_go_back_to_solving_and_to_bidding() -> None:
    lifecycle = DeploymentLifecycle()
    for phase in (P.BIDDING, P.SOLVING, P.BIDDING, P.SOLVING, P.COMMITTING, P.SOLVING,
                  P.COMMITTING, P.ALLOCATING, P.SOLVING):  # fmt: skip
        lifecycle.enter(phase, at=0)
    event = lifecycle.enter(P.COMMITTING, at=5, detail="excluded provider b")
    assert event.detail == "solving → committing: excluded provider b"


@pytest.mark.parametrize("phase", [p for p in P if p not in FINAL])
def test_any_phase_that_is_not_final_can_fail(phase: DeploymentPhase) -> None:
    lifecycle = DeploymentLifecycle(phase)
    assert lifecycle.enter(P.FAILED, at=1, detail="deadline passed").phase is P.FAILED


@pytest.mark.parametrize("phase", [p for p in P if p not in FINAL | {P.SHUTTING_DOWN}])
def test_a_deployment_can_be_shut_down_before_it_runs(phase: DeploymentPhase) -> None:
    assert DeploymentLifecycle(phase).can_enter(P.SHUTTING_DOWN)


@pytest.mark.parametrize("phase", sorted(FINAL))
def test_final_phases_accept_nothing(phase: DeploymentPhase) -> None:
    lifecycle = DeploymentLifecycle(phase)
    for target in P:
        with pytest.raises(InvalidTransition, match=f"{phase} is final"):
            lifecycle.enter(target, at=0)


def test_an_invalid_transition_names_both_phases_and_what_is_allowed() -> None:
    lifecycle = DeploymentLifecycle(P.RUNNING, last_event=9)
    with pytest.raises(InvalidTransition) as caught:
        lifecycle.enter(P.BIDDING, at=0)
    assert str(caught.value) == (
        "a deployment cannot go from running to bidding: "
        "from running it can go to failed, shutting_down"
    )
    assert (caught.value.current, caught.value.requested) == (P.RUNNING, P.BIDDING)
    assert lifecycle.phase is P.RUNNING and lifecycle.last_event == 9  # nothing changed


def test_a_resumed_deployment_continues_its_numbering() -> None:
    lifecycle = DeploymentLifecycle("running", last_event=41)  # type: ignore[arg-type]
    assert lifecycle.enter(P.SHUTTING_DOWN, at=0).number == 42
    with pytest.raises(InvalidSetting, match="last_event must be a whole number >= 0"):
        DeploymentLifecycle(last_event=-1)
    with pytest.raises(ValueError, match="'runing' is not a valid DeploymentPhase"):
        DeploymentLifecycle("runing")  # type: ignore[arg-type]


def test_recorded_events_share_the_numbering_and_keep_the_phase() -> None:
    lifecycle = DeploymentLifecycle()
    lifecycle.enter(P.BIDDING, at=0)
    lifecycle.enter(P.SOLVING, at=1)
    lifecycle.enter(P.COMMITTING, at=2)
    event = lifecycle.record(K.UNDONE, at=3, detail="phase commit: undone: reservation on a")
    assert (event.number, event.phase, event.kind) == (4, P.COMMITTING, K.UNDONE)
    assert lifecycle.enter(P.SOLVING, at=4).number == 5
    with pytest.raises(ValueError, match="kind: a transition is made with enter"):
        lifecycle.record(K.TRANSITION, at=5)


def test_an_event_detail_is_bounded() -> None:
    event = DeploymentLifecycle().record(K.UNDO_FAILED, at=0, detail="x" * 100_000)
    assert len(event.detail) == 1024 and event.detail.endswith("…")


def test_a_deployment_can_reach_every_phase_from_pending() -> None:
    reached, frontier = {P.PENDING}, [P.PENDING]
    while frontier:
        phase = frontier.pop()
        for target in P:
            if DeploymentLifecycle(phase).can_enter(target) and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(P)


@settings(max_examples=200)
@given(st.lists(st.sampled_from(list(P)), max_size=30))
def test_any_sequence_of_requests_moves_only_along_allowed_edges(
    requests: list[DeploymentPhase],
) -> None:
    lifecycle = DeploymentLifecycle()
    numbers = []
    for target in requests:
        before = lifecycle.phase
        allowed = lifecycle.can_enter(target)
        try:
            event = lifecycle.enter(target, at=0)
        except InvalidTransition:
            assert not allowed and lifecycle.phase is before
        else:
            assert allowed and target != before and before not in FINAL
            assert lifecycle.phase is target
            numbers.append(event.number)
    assert numbers == list(range(1, len(numbers) + 1))
