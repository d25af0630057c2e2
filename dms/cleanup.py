"""Cleanup that survives cancellation but cannot hang: one name for a pattern every
owner of an external resource (a process, a container, a child supervisor) needs.

When a scope is cancelled, the code that releases what it started must still run, so
it is shielded from the outer cancellation; an engine that never answers must not hold
shutdown forever, so the shield has its own deadline.

    with shielded_cleanup(5) as cleanup:
        await container.remove()
    if cleanup.cancelled_caught:
        ...  # gave up after 5 s; say so
"""

from __future__ import annotations

import trio

__all__ = ["shielded_cleanup"]


def shielded_cleanup(seconds: float) -> trio.CancelScope:
    """A cancel scope shielded from outer cancellation, cancelled after `seconds`
    (`math.inf` for no bound: only for work that is bounded by its own timeout).
    The deadline counts from this call; use it directly in the `with` statement."""
    return trio.CancelScope(shield=True, deadline=trio.current_time() + seconds)
