"""Removing what a provider left on this machine without starting one: for a
supervisor (`dms dev`) whose provider died, or whose state is about to be emptied,
so that no workload outlives the network that ran it.

It removes what a restarting provider removes when it keeps nothing: every execution
its executors find under the work directory (process groups, cgroups, directories)
or labelled with the node (docker containers), and, with `network`, the network
namespaces named with the node's prefix. It holds the work directory's lock while it
does (`WorkDirInUse` if a provider still works there: its workloads are not touched).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection
from pathlib import Path

import attrs
import trio

from dms.executor import EngineUnavailable, Executor
from dms.network import missing_capability, reconcile_namespaces
from dms.workload import ExecutorKind

from ._leftovers import discard_leftovers
from ._network import namespace_prefix
from ._open import _executor
from ._workdir import hold_work_dir

log = logging.getLogger("dms.provider")


@attrs.frozen
class Reaped:
    """What `reap_leftovers` removed: execution idents and namespace names."""

    executions: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.executions or self.namespaces)


async def reap_leftovers(work_dir: Path, node_did: str,
                         executors: Collection[ExecutorKind] = (ExecutorKind.PROCESS,), *,
                         network: bool = False) -> Reaped:
    """Remove every workload the provider of node `node_did` left in `work_dir` (its
    `ProviderConfig.work_dir`), with the `executors` it opened; an executor whose
    engine is not here has nothing running to remove. A missing `work_dir` means no
    provider ran: nothing is removed. `network`: also its network namespaces (needs what the ensemble
    network needs; without it there are none to remove)."""
    executions: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    if work_dir.is_dir():  # a provider that made namespaces made it first
        with hold_work_dir(work_dir):
            async with contextlib.AsyncExitStack() as stack:
                opened: list[Executor] = []
                for kind in executors:
                    try:
                        opened.append(await stack.enter_async_context(
                            _executor(kind, work_dir, node_did)))
                    except EngineUnavailable as error:
                        log.info("executor %s not opened to look for leftovers: %s",
                                 kind.value, error)
                executions = tuple(left.ident for left in await discard_leftovers(opened))
            if network and missing_capability() is None:
                namespaces = tuple(await trio.to_thread.run_sync(
                    reconcile_namespaces, namespace_prefix(node_did), ()))
    return Reaped(executions, namespaces)
