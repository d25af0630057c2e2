"""Following a deployment against a node that answers as a real one does, including
its one awkward habit: an allocation's event is recorded a moment before its state."""

from __future__ import annotations

from typing import Any

import trio

from dms.cli._follow import RECHECK, follow
from dms.cli._session import EventsPage
from dms.cli._watch import Goal, Outcome, Watch
from dms.deployment import AllocationView, DeploymentView, EventView
from dms.ensemble import load_ensemble

TASK = load_ensemble("""
version: V1
allocations:
  job:
    type: task
    executor: process
    resources: {cpu: 0.1, ram: 16Mi, disk: 1Mi}
    execution: {command: "true"}
nodes:
  n: {allocations: [job]}
""", file="<test>")


class LaggingNode:
    """Has one `completed` event; its status catches up with it one call later."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.statuses = 0
        self.events_list = [EventView(1, 0.0, "allocation",
                                      {"allocation": "job", "event": "completed"})]

    async def events(self, deployment: str, after: int = 0, wait: float = 0.0) -> EventsPage:
        self.waits.append(wait)
        new = tuple(e for e in self.events_list if e.seq > after)
        if not new:
            await trio.sleep(wait)
        return EventsPage(new, final=False)

    async def status(self, deployment: str) -> DeploymentView:
        self.statuses += 1
        state = "running" if self.statuses == 1 else "completed"
        return DeploymentView(id="d", phase="running", owner="o", created_at=0.0,
                              assignment={"n": "p"},
                              allocations=(AllocationView("job", "p", state),),
                              failure="", recent_events=())


async def test_a_status_behind_its_event_is_asked_again_soon(autojump_clock: Any) -> None:
    node = LaggingNode()
    seen: list[int] = []
    began = trio.current_time()
    verdict = await follow(node, "d", Watch(Goal.READY, TASK), timeout=60,  # type: ignore[arg-type]
                           on_event=lambda event: seen.append(event.seq))
    assert verdict.outcome is Outcome.READY
    assert seen == [1]  # shown once
    assert node.waits[:2] == [0.0, RECHECK]
    assert trio.current_time() - began <= RECHECK + 0.01


async def test_a_deployment_that_never_gets_ready_times_out_waiting(autojump_clock: Any) -> None:
    node = LaggingNode()
    node.status = _always_running  # type: ignore[method-assign]
    verdict = await follow(node, "d", Watch(Goal.READY, TASK), timeout=30)  # type: ignore[arg-type]
    assert verdict.outcome is Outcome.WAITING and "within 30 s" in verdict.reason


async def _always_running(deployment: str) -> DeploymentView:
    return DeploymentView(id="d", phase="running", owner="o", created_at=0.0, assignment={},
                          allocations=(AllocationView("job", "p", "running"),), failure="",
                          recent_events=())
