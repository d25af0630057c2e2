"""Nurseries that serve a caller's block (a node, a transport): leaving the block
cancels their tasks, and a lone failure (the block's own RemoteError or Ctrl-C, a
start-up ListenFailed) comes back as it was raised, not wrapped once per nursery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio


def sole_failure(exc: BaseException) -> BaseException:
    """The one exception inside trio's exception groups (a failure is wrapped once per
    nursery it leaves; cancellations beside it do not count), or `exc` itself when
    there is not exactly one."""
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        if len(inner) != 1:
            return exc
        exc = inner[0]
    return exc


@asynccontextmanager
async def serving_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery whose tasks serve the block: cancelled when the block ends."""
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        failure = sole_failure(group)
        if failure is group:
            raise
        raise failure from None
