"""Following a deployment from a client: long-poll its events, ask for its status when
an event may have changed it, and stop when the `Watch` has its verdict or time is up.

One long-poll waits at most `EVENTS_WAIT` seconds on the node, so the client notices
its own deadline and a node that went away; an event seen twice is seen once (the
poll resumes after the last seq).
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from dms.deployment import DeploymentView, EventView

from ._session import EVENTS_WAIT, Session
from ._watch import WAITING, Verdict, Watch


async def follow(session: Session, deployment: str, watch: Watch, *, timeout: float,
                 on_event: Callable[[EventView], None] = lambda event: None,
                 on_status: Callable[[DeploymentView], None] = lambda view: None) -> Verdict:
    """Events and status of `deployment` into `watch` until it decides, or `timeout`
    seconds pass (then the verdict is WAITING, with the reason)."""
    ends = trio.current_time() + timeout
    verdict = WAITING
    first = True
    while True:
        remaining = ends - trio.current_time()
        if remaining <= 0:
            return Verdict(verdict.outcome, f"not done within {timeout:g} s")
        page = await session.events(deployment, watch.after,
                                    wait=0.0 if first else min(EVENTS_WAIT, remaining))
        for event in page.events:
            if event.seq > watch.after:
                on_event(event)
        changed = watch.take(page.events)
        if changed or first or page.final:
            view = await session.status(deployment)
            on_status(view)
            verdict = watch.judge(view)
            if verdict.done:  # what happened up to the status that decided it, too
                rest = await session.events(deployment, watch.after)
                for event in rest.events:
                    if event.seq > watch.after:
                        on_event(event)
                watch.take(rest.events)
                return verdict
            if page.final:  # over, though not as the watch expected: say where it stands
                return Verdict(verdict.outcome, f"it ended in phase {view.phase}")
        first = False
