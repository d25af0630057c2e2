"""The restart step that removes what an earlier provider left: every execution its
adoptable executors find that the running provider did not adopt. A restarting
provider runs it after adopting what it keeps (`ProviderService.restore`); `dms dev`
runs it with nothing adopted (`reap_leftovers`), so the two remove the same things
the same way."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from dms.executor import Adoptable, Executor
from dms.store import ExecutionIdentity

log = logging.getLogger("dms.provider")


async def discard_leftovers(executors: Iterable[Executor]) -> tuple[ExecutionIdentity, ...]:
    """Discard every leftover of `executors` (those that cannot adopt have none: their
    executions die with the provider); returns what was discarded, each logged."""
    discarded: list[ExecutionIdentity] = []
    for executor in executors:
        if isinstance(executor, Adoptable):
            for left in await executor.leftovers():
                await executor.discard(left)
                discarded.append(left)
                log.info("removed execution %s left on this machine", left.ident)
    return tuple(discarded)
