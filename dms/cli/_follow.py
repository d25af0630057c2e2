"""Following a deployment from a client: long-poll its events, ask for its status
after each page of them, and stop when the `Watch` has its verdict or time is up.

One long-poll waits at most `EVENTS_WAIT` seconds on the node, so the client notices
its own deadline and a node that went away; an event seen twice is seen once (the
poll resumes after the last seq). The node records an allocation's event a moment
before the state it leads to, so a status asked for right after such an event may be
behind it: after a page that changed something the next poll waits only `RECHECK`
seconds, and the status is asked for again then.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from dms.deployment import DeploymentView, EventView

from ._session import EVENTS_WAIT, Session
from ._watch import WAITING, Verdict, Watch

RECHECK = 0.5


async def follow(session: Session, deployment: str, watch: Watch, *, timeout: float,
                 on_event: Callable[[EventView], None] = lambda event: None,
                 on_status: Callable[[DeploymentView], None] = lambda view: None) -> Verdict:
    """Events and status of `deployment` into `watch` until it decides, or `timeout`
    seconds pass (then the verdict is WAITING, with the reason)."""
    ends = trio.current_time() + timeout
    wait = 0.0
    while True:
        remaining = ends - trio.current_time()
        if remaining <= 0:
            return Verdict(WAITING.outcome, f"not done within {timeout:g} s")
        page = await session.events(deployment, watch.after, wait=min(wait, remaining))
        changed = _take(watch, page.events, on_event)
        view = await session.status(deployment)
        on_status(view)
        verdict = watch.judge(view)
        if verdict.done:  # what happened up to the status that decided it, too
            _take(watch, (await session.events(deployment, watch.after)).events, on_event)
            return verdict
        if page.final:  # over, though not as the watch expected: say where it stands
            return Verdict(verdict.outcome, f"it ended in phase {view.phase}")
        wait = RECHECK if changed else EVENTS_WAIT


def _take(watch: Watch, events: tuple[EventView, ...],
          on_event: Callable[[EventView], None]) -> bool:
    for event in events:
        if event.seq > watch.after:
            on_event(event)
    return watch.take(events)
