"""Status events: every supervision transition, as data on a trio channel.

Supervision must not wait for whoever reads its events: a reader that stalls would
otherwise stall restarts and health checks. `EventSink` puts events into a bounded
channel without waiting; when the channel is full the event is dropped and counted in
`dropped`, so the owner can tell that it missed some and read `status()` instead.
"""

from __future__ import annotations

import enum

import attrs
import trio

from dms.executor._status import ExitStatus
from dms.supervise._health import ProbeResult

DEFAULT_EVENT_BUFFER = 256


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


class EventSink:
    """The sending side of a bounded event channel that never blocks its sender.

    Share one sink between the supervisors of a tree to get one `dropped` count. A
    reader that has gone away (closed receive channel) is not an error either."""

    def __init__(self, channel: trio.MemorySendChannel[StatusEvent]) -> None:
        self._channel = channel
        self.dropped = 0

    def put(self, event: StatusEvent) -> None:
        try:
            self._channel.send_nowait(event)
        except trio.WouldBlock:
            self.dropped += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


def open_event_channel(
    capacity: int = DEFAULT_EVENT_BUFFER,
) -> tuple[EventSink, trio.MemoryReceiveChannel[StatusEvent]]:
    """A sink for supervisors and the channel the owner reads, holding at most
    `capacity` unread events."""
    send, receive = trio.open_memory_channel[StatusEvent](capacity)
    return EventSink(send), receive


def as_sink(events: EventSink | trio.MemorySendChannel[StatusEvent]) -> EventSink:
    """Supervisors accept a bare channel too; it is wrapped in a sink of its own."""
    return events if isinstance(events, EventSink) else EventSink(events)
