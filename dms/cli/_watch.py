"""Following a deployment, as pure logic: what its events and status mean for a user
waiting on it. No I/O: the commands feed it what the node answered.

A deployment is *ready* when every service is up (healthy, when it has a health check;
running, when it has none) and every task has completed: that is what `dms deploy
--wait` waits for, more than the node's `running` phase, which only says everything
was started. It has *ended* when its phase is final (`completed` or `failed`): what
`dms shutdown --wait` waits for.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from dms.deployment import DeploymentView, EventView
from dms.ensemble import Ensemble
from dms.workload import WorkloadKind

UP_WITH_CHECK = frozenset({"healthy"})
UP_WITHOUT_CHECK = frozenset({"running", "healthy"})
DONE = frozenset({"completed"})
FAILED_STATES = frozenset({"failed"})
ENDED_PHASES = frozenset({"shutting_down", "completed", "failed"})
STATE_EVENTS = frozenset({"phase", "allocation", "committed", "provider_failed",
                          "provider_lost", "nodes_down", "redeployed", "redeploy_failed"})
"""Event kinds after which the status is worth asking for again."""


class Goal(enum.Enum):
    READY = "ready"
    ENDED = "ended"


class Outcome(enum.StrEnum):
    WAITING = "waiting"
    READY = "ready"
    COMPLETED = "completed"
    FAILED = "failed"


@attrs.frozen
class Verdict:
    outcome: Outcome
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.outcome is not Outcome.WAITING


WAITING = Verdict(Outcome.WAITING)


class Watch:
    """What has been seen of one deployment: the last event seq (to resume from), each
    allocation's last event and the output its task or exit left."""

    def __init__(self, goal: Goal, ensemble: Ensemble | None = None) -> None:
        if goal is Goal.READY and ensemble is None:
            raise ValueError("waiting for a deployment to be ready needs its ensemble")
        self.goal = goal
        self.ensemble = ensemble
        self.after = 0
        self.last: dict[str, EventView] = {}
        self.outputs: dict[str, str] = {}
        self.view: DeploymentView | None = None

    def take(self, events: Iterable[EventView]) -> bool:
        """Note `events`; True when one of them may have changed the status."""
        changed = False
        for event in events:
            if event.seq <= self.after:
                continue  # a page repeated: seen
            self.after = event.seq
            changed = changed or event.kind in STATE_EVENTS
            if event.kind != "allocation":
                continue
            name = str(event.payload.get("allocation", ""))
            self.last[name] = event
            tail = event.payload.get("logs_tail")
            if event.payload.get("event") in ("completed", "exited") and isinstance(tail, str):
                self.outputs[name] = tail
        return changed

    def judge(self, view: DeploymentView) -> Verdict:
        self.view = view
        if view.phase == "failed":
            return Verdict(Outcome.FAILED, view.failure or "the deployment failed")
        if self.goal is Goal.ENDED:
            return Verdict(Outcome.COMPLETED, _last_detail(view)) if view.phase == "completed" \
                else WAITING
        assert self.ensemble is not None
        states = {allocation.name: allocation for allocation in view.allocations}
        waiting = False
        for name, spec in sorted(self.ensemble.allocations.items()):
            placed = states.get(name)
            if placed is None:
                waiting = True
                continue
            if placed.state in FAILED_STATES:
                return Verdict(Outcome.FAILED, self._failure_of(name, placed.provider))
            if spec.type is WorkloadKind.TASK:
                wanted = DONE
            else:
                wanted = UP_WITH_CHECK if spec.healthcheck is not None else UP_WITHOUT_CHECK
            waiting = waiting or placed.state not in wanted
        if not waiting:
            return Verdict(Outcome.READY, _ready_text(self.ensemble))
        if view.phase in ENDED_PHASES:
            return Verdict(Outcome.FAILED, f"it ended ({view.phase}) before it was ready: "
                                           f"{_last_detail(view) or 'shut down'}")
        return WAITING

    def _failure_of(self, name: str, provider: str) -> str:
        event = self.last.get(name)
        if event is None:
            return f"allocation {name} on {provider} failed"
        payload = event.payload
        text = f"allocation {name} on {provider} {payload.get('event', 'failed')}"
        if payload.get("detail"):
            text += f": {payload['detail']}"
        tail = str(payload.get("logs_tail") or "").strip().splitlines()
        if tail:
            text += f"; its output ends: {tail[-1][:200]}"
        return text


def _ready_text(ensemble: Ensemble) -> str:
    tasks = sum(spec.type is WorkloadKind.TASK for spec in ensemble.allocations.values())
    services = len(ensemble.allocations) - tasks
    parts = []
    if services:
        parts.append(f"{services} service{'s' * (services != 1)} up")
    if tasks:
        parts.append(f"{tasks} task{'s' * (tasks != 1)} completed")
    return ", ".join(parts)


def _last_detail(view: DeploymentView) -> str:
    for event in reversed(view.recent_events):
        if event.kind == "phase" and event.payload.get("detail"):
            return str(event.payload["detail"])
    return ""
