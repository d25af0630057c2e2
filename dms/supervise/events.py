"""Status events: every supervision transition, as data on a trio channel."""

from __future__ import annotations

import enum

import attrs

from dms.executor.status import ExitStatus
from dms.supervise.health import ProbeResult


class EventKind(enum.Enum):
    STARTING = "starting"
    START_FAILED = "start_failed"  # provision script, image, spec or engine failure
    RUNNING = "running"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    COMPLETED = "completed"  # a task ended successfully
    EXITED = "exited"  # ended on its own otherwise (exit code, OOM, crash)
    RESTARTING = "restarting"  # `delay` says when
    CRASH_LOOP = "crash_loop"  # gave up: too many restarts in the intensity period
    STAYED_DOWN = "stayed_down"  # failure_recovery stay_down
    REDEPLOY_REQUESTED = "redeploy_requested"  # for the orchestrator to act on
    STOPPED = "stopped"  # stopped by its owner


@attrs.frozen
class StatusEvent:
    allocation: str
    kind: EventKind
    at: float  # trio.current_time()
    detail: str = ""
    exit: ExitStatus | None = None
    logs_tail: str = ""
    health: tuple[ProbeResult, ...] = ()
    restarts: int = 0
    delay: float | None = None
