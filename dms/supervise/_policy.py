"""Restart decisions, sans-IO: failure recovery, backoff, crash-loop limits, strategies.

The words (`Recovery`, `SupervisorStrategy`) are `dms.workload`'s. `RestartTracker.decide`
is the one place a failure becomes a restart, a crash loop or no restart at all: a
lone `AllocationSupervisor` and a `SupervisorTree` both ask it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from dms.backoff import Backoff
from dms.workload import Recovery


class InvalidPolicy(ValueError):
    """A supervision setting is unusable; the message names the field and value."""


class DependencyCycle(InvalidPolicy):
    """`depends_on` forms a cycle; the message lists the allocations on it."""


@attrs.frozen
class RestartIntensity:
    """More than `max_restarts` restarts within `period` seconds is a crash loop (OTP's
    MaxR/MaxT): supervision gives up instead of restarting forever."""

    max_restarts: int = 5
    period: float = 300.0


@attrs.frozen
class RestartPolicy:
    recovery: Recovery = Recovery.RESTART
    backoff: Backoff = Backoff()  # exact delays: supervision does not jitter
    intensity: RestartIntensity = RestartIntensity()
    reset_after: float = 60.0  # a run at least this long starts the backoff afresh


@attrs.frozen
class RestartAfter:
    delay: float
    attempt: int


@attrs.frozen
class CrashLoop:
    restarts: int
    period: float


@attrs.frozen
class NotRestarted:
    """The failure stands: `stay_down` leaves it, `redeploy` hands it to the orchestrator."""

    recovery: Recovery


RestartDecision = RestartAfter | CrashLoop | NotRestarted


class RestartTracker:
    """Counts restarts and decides the next one, from times it is given."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.attempt = 0
        self.total = 0
        self._recent: list[float] = []

    def decide(self, recovery: Recovery, now: float, ran_for: float) -> RestartDecision:
        """What to do about a failure at `now` of a run that lasted `ran_for` seconds.
        Only a restart (or a crash loop refusing one) changes the counts."""
        if recovery is not Recovery.RESTART:
            return NotRestarted(recovery)
        if ran_for >= self.policy.reset_after:
            self.attempt = 0
        window = self.policy.intensity
        self._recent = [at for at in self._recent if now - at < window.period]
        if len(self._recent) >= window.max_restarts:
            return CrashLoop(restarts=len(self._recent), period=window.period)
        self._recent.append(now)
        self.attempt += 1
        self.total += 1
        return RestartAfter(delay=self.policy.backoff.delay(self.attempt), attempt=self.attempt)


def start_order(depends_on: Mapping[str, Sequence[str]]) -> list[str]:
    """Allocations ordered so each starts after what it depends on; ties keep the
    mapping's order. Raises DependencyCycle, or InvalidPolicy for unknown names."""
    for name, needs in depends_on.items():
        for need in needs:
            if need not in depends_on:
                raise InvalidPolicy(f"{name}.depends_on: {need!r} is not an allocation")
    order: list[str] = []
    placed: set[str] = set()
    pending = list(depends_on)
    while pending:
        ready = [name for name in pending if set(depends_on[name]) <= placed]
        if not ready:
            raise DependencyCycle(f"depends_on: cycle among {', '.join(sorted(pending))}")
        for name in ready:
            order.append(name)
            placed.add(name)
            pending.remove(name)
    return order
