"""The deployment state machine: which phase may follow which, and the event each
step yields. Sans-IO: the caller passes the time and keeps (or persists) the events.

    pending → bidding → solving → committing → allocating → running
            → shutting_down → completed

and back edges for retries: `solving → bidding` (no placement yet: ask again),
`committing → solving` and `allocating → solving` (a provider failed its part: it is
excluded, what was reserved is reverted, the solver runs again). `shutting_down` can
be entered from any phase that is not final (a user may stop a deployment that is still
bidding), `failed` from any phase that is not final. A redeploy of one node does not
leave `running`: the rest keeps running, so it is recorded as events instead.
spec/deployment.md has the diagram and the reasons.
"""

from __future__ import annotations

import types
from collections.abc import Mapping

from dms.store import DeploymentPhase

from ._events import DeploymentEvent, DeploymentEventKind
from ._invalid import at_least

P = DeploymentPhase

FINAL = frozenset({P.COMPLETED, P.FAILED})

TRANSITIONS: Mapping[DeploymentPhase, frozenset[DeploymentPhase]] = types.MappingProxyType(
    {
        P.PENDING: frozenset({P.BIDDING, P.SHUTTING_DOWN, P.FAILED}),
        P.BIDDING: frozenset({P.SOLVING, P.SHUTTING_DOWN, P.FAILED}),
        P.SOLVING: frozenset({P.COMMITTING, P.BIDDING, P.SHUTTING_DOWN, P.FAILED}),
        P.COMMITTING: frozenset({P.ALLOCATING, P.SOLVING, P.SHUTTING_DOWN, P.FAILED}),
        P.ALLOCATING: frozenset({P.RUNNING, P.SOLVING, P.SHUTTING_DOWN, P.FAILED}),
        P.RUNNING: frozenset({P.SHUTTING_DOWN, P.FAILED}),
        P.SHUTTING_DOWN: frozenset({P.COMPLETED, P.FAILED}),
        P.COMPLETED: frozenset(),
        P.FAILED: frozenset(),
    }
)


class InvalidTransition(Exception):
    """A phase change the state machine does not allow; says what is allowed instead."""

    def __init__(self, current: DeploymentPhase, requested: DeploymentPhase) -> None:
        allowed = sorted(TRANSITIONS[current])
        if allowed:
            hint = f"from {current} it can go to {', '.join(allowed)}"
        else:
            hint = f"{current} is final"
        super().__init__(f"a deployment cannot go from {current} to {requested}: {hint}")
        self.current = current
        self.requested = requested


class DeploymentLifecycle:
    """One deployment's phase and the numbering of its events.

    Start a new deployment with the defaults; resume a persisted one with the phase it
    was in and the number of its last event, so numbering continues without a gap.
    The caller stores what `enter` and `record` return; nothing is kept here."""

    def __init__(
        self, phase: DeploymentPhase = DeploymentPhase.PENDING, *, last_event: int = 0
    ) -> None:
        self._phase = DeploymentPhase(phase)
        self._last = at_least("last_event", last_event, 0)

    @property
    def phase(self) -> DeploymentPhase:
        return self._phase

    @property
    def final(self) -> bool:
        return self._phase in FINAL

    @property
    def last_event(self) -> int:
        return self._last

    def can_enter(self, phase: DeploymentPhase) -> bool:
        return phase in TRANSITIONS[self._phase]

    def enter(self, phase: DeploymentPhase, at: float, detail: str = "") -> DeploymentEvent:
        """Move to `phase`; raises `InvalidTransition` (and changes nothing) when the
        table does not allow it from the current phase."""
        if not self.can_enter(phase):
            raise InvalidTransition(self._phase, phase)
        previous, self._phase = self._phase, phase
        text = f"{previous} → {phase}" + (f": {detail}" if detail else "")
        return self._event(DeploymentEventKind.TRANSITION, at, text)

    def record(self, kind: DeploymentEventKind, at: float, detail: str = "") -> DeploymentEvent:
        """An event that does not change the phase (what a revertible phase reports),
        numbered in the same sequence as the transitions."""
        if kind is DeploymentEventKind.TRANSITION:
            raise ValueError("kind: a transition is made with enter(), not recorded")
        return self._event(kind, at, detail)

    def _event(self, kind: DeploymentEventKind, at: float, detail: str) -> DeploymentEvent:
        self._last += 1
        return DeploymentEvent(self._last, at, kind, self._phase, detail)
