"""Restart decisions, sans-IO: failure recovery, backoff, crash-loop limits, strategies.

Names follow the NuNet ensemble v1: `failure_recovery` is stay_down | restart |
redeploy; a supervisor's `strategy` is OneForOne | AllForOne | RestForOne with
Erlang/OTP meaning over the children in start order (the `depends_on` order).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

import attrs


class InvalidPolicy(ValueError):
    """A recovery setting is unusable; the message names the field and value."""


class DependencyCycle(InvalidPolicy):
    """`depends_on` forms a cycle; the message lists the allocations on it."""


class FailureRecovery(enum.Enum):
    STAY_DOWN = "stay_down"  # report the failure, leave it down
    RESTART = "restart"  # restart in place, with backoff, until it crash-loops
    REDEPLOY = "redeploy"  # ask the orchestrator to place it elsewhere (node level)

    @classmethod
    def parse(cls, value: str) -> FailureRecovery:
        try:
            return cls(value.strip().lower().replace("-", "_"))
        except ValueError:
            names = ", ".join(member.value for member in cls)
            raise InvalidPolicy(f"failure_recovery: {value!r} is not one of {names}") from None


class SupervisorStrategy(enum.Enum):
    ONE_FOR_ONE = "OneForOne"  # restart only the failed child
    ALL_FOR_ONE = "AllForOne"  # restart every child
    REST_FOR_ONE = "RestForOne"  # restart the failed child and those started after it

    @classmethod
    def parse(cls, value: str) -> SupervisorStrategy:
        """Accepts `OneForOne` and the snake forms (`one_for_one`, `one_for_all`, ...)."""
        key = value.replace("_", "").replace("-", "").lower()
        aliases = {
            "oneforone": cls.ONE_FOR_ONE,
            "allforone": cls.ALL_FOR_ONE,
            "oneforall": cls.ALL_FOR_ONE,
            "restforone": cls.REST_FOR_ONE,
        }
        if key not in aliases:
            names = ", ".join(member.value for member in cls)
            raise InvalidPolicy(f"strategy: {value!r} is not one of {names}")
        return aliases[key]

    def affected(self, order: Sequence[str], failed: str) -> list[str]:
        """The children to restart, in start order, when `failed` fails."""
        if self is SupervisorStrategy.ONE_FOR_ONE:
            return [failed]
        if self is SupervisorStrategy.ALL_FOR_ONE:
            return list(order)
        return list(order[order.index(failed) :])


@attrs.frozen
class Backoff:
    initial: float = 1.0
    factor: float = 2.0
    cap: float = 60.0

    def delay(self, attempt: int) -> float:
        """Delay before restart number `attempt` (1-based)."""
        return float(min(self.cap, self.initial * self.factor ** max(0, attempt - 1)))


@attrs.frozen
class RestartIntensity:
    """More than `max_restarts` restarts within `period` seconds is a crash loop (OTP's
    MaxR/MaxT): supervision gives up instead of restarting forever."""

    max_restarts: int = 5
    period: float = 300.0


@attrs.frozen
class RestartPolicy:
    recovery: FailureRecovery = FailureRecovery.RESTART
    backoff: Backoff = Backoff()
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


class RestartTracker:
    """Counts restarts and decides the next one, from times it is given."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.attempt = 0
        self.total = 0
        self._recent: list[float] = []

    def on_failure(self, now: float, ran_for: float) -> RestartAfter | CrashLoop:
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
