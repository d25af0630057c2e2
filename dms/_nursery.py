"""Nurseries that serve a caller's block (a node, a transport): leaving the block
cancels their tasks, and the block's own exception comes back as it was raised."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio


def sole_exception(group: BaseExceptionGroup[BaseException],
                   exc: BaseException | None) -> bool:
    """Whether `group` only wraps `exc` (the body's own exception, a nursery's doing)."""
    return exc is not None and list(group.exceptions) == [exc]


@asynccontextmanager
async def serving_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery whose tasks serve the block: cancelled when the block ends. A
    RemoteError or Ctrl-C raised in the block reaches the caller unwrapped."""
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            except BaseException as exc:
                body_error = exc
                raise
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if sole_exception(group, body_error):
            assert body_error is not None
            raise body_error from None
        raise
