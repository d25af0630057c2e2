"""What following a deployment concludes from its status and events (`dms deploy
--wait`, `dms shutdown --wait`), without a network."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dms.cli._watch import Goal, Outcome, Watch
from dms.deployment import AllocationView, DeploymentView, EventView
from dms.ensemble import load_ensemble

ENSEMBLE = load_ensemble("""
version: V1
allocations:
  web:
    type: service
    executor: process
    resources: {cpu: 0.1, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["60"]}
    healthcheck: {type: tcp, endpoint: "127.0.0.1:8080"}
  worker:
    type: service
    executor: process
    resources: {cpu: 0.1, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["60"]}
  job:
    type: task
    executor: process
    resources: {cpu: 0.1, ram: 16Mi, disk: 1Mi}
    execution: {command: "true"}
nodes:
  a: {allocations: [web, worker]}
  b: {allocations: [job]}
""", file="<test>")

STATES = ("pending", "starting", "running", "healthy", "unhealthy", "restarting",
          "completed", "failed", "stopped")


def view(phase: str = "running", failure: str = "", **states: str) -> DeploymentView:
    return DeploymentView(
        id="d", phase=phase, owner="did:key:zUser", created_at=0.0, assignment={},
        allocations=tuple(AllocationView(name, "did:key:zProvider", state)
                          for name, state in sorted(states.items())),
        failure=failure, recent_events=())


def event(seq: int, kind: str = "allocation", **payload: Any) -> EventView:
    return EventView(seq, 0.0, kind, payload)


def test_ready_needs_healthy_checked_services_running_others_and_completed_tasks() -> None:
    watch = Watch(Goal.READY, ENSEMBLE)
    assert watch.judge(view(web="healthy", worker="running", job="completed")).outcome \
        is Outcome.READY
    assert watch.judge(view(web="running", worker="running", job="completed")).outcome \
        is Outcome.WAITING  # has a health check: running is not enough
    assert watch.judge(view(web="healthy", worker="running", job="running")).outcome \
        is Outcome.WAITING
    assert watch.judge(view(web="healthy", worker="running")).outcome is Outcome.WAITING


def test_a_failed_allocation_fails_the_wait_with_its_event_and_output() -> None:
    watch = Watch(Goal.READY, ENSEMBLE)
    watch.take([event(1, allocation="job", event="exited", detail="exit code 3",
                      logs_tail="starting\ncannot open db\n")])
    verdict = watch.judge(view(web="healthy", worker="running", job="failed"))
    assert verdict.outcome is Outcome.FAILED
    assert "allocation job" in verdict.reason and "exit code 3" in verdict.reason
    assert "cannot open db" in verdict.reason


def test_a_failed_deployment_gives_its_failure_and_an_early_end_is_not_ready() -> None:
    watch = Watch(Goal.READY, ENSEMBLE)
    failed = watch.judge(view("failed", failure="not running within 5 s: no bids"))
    assert failed.outcome is Outcome.FAILED and "no bids" in failed.reason
    ended = watch.judge(view("completed", web="stopped", worker="stopped", job="completed"))
    assert ended.outcome is Outcome.FAILED and "before it was ready" in ended.reason


def test_ended_means_a_final_phase() -> None:
    watch = Watch(Goal.ENDED)
    assert watch.judge(view("shutting_down")).outcome is Outcome.WAITING
    assert watch.judge(view("completed")).outcome is Outcome.COMPLETED
    assert watch.judge(view("failed", failure="x")).outcome is Outcome.FAILED


def test_events_are_taken_once_and_task_output_is_kept() -> None:
    watch = Watch(Goal.ENDED)
    first = [event(1, "phase", phase="bidding"),
             event(2, allocation="job", event="completed", logs_tail="hello\n")]
    assert watch.take(first) is True
    assert watch.after == 2 and watch.outputs == {"job": "hello\n"}
    assert watch.take(first) is False  # a repeated page changes nothing
    assert watch.take([event(3, "step", step="phase_started")]) is False


def test_waiting_for_ready_needs_the_ensemble() -> None:
    with pytest.raises(ValueError, match="ensemble"):
        Watch(Goal.READY)


@settings(max_examples=150)
@given(st.fixed_dictionaries({name: st.sampled_from(STATES)
                              for name in ("web", "worker", "job")}),
       st.sampled_from(["allocating", "running"]))
def test_ready_exactly_when_every_allocation_is_where_it_should_be(
        states: dict[str, str], phase: str) -> None:
    verdict = Watch(Goal.READY, ENSEMBLE).judge(view(phase, **states))
    up = (states["web"] == "healthy" and states["worker"] in ("running", "healthy")
          and states["job"] == "completed")
    if "failed" in states.values():
        assert verdict.outcome is Outcome.FAILED
    else:
        assert (verdict.outcome is Outcome.READY) == up
        assert verdict.outcome in (Outcome.READY, Outcome.WAITING)
