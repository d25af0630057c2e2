"""Opening a provider on a node: its executors, what the machine has, what the operator
offers, and the provider actor that carries `ProviderService`."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import attrs

from dms.actor import Actor
from dms.cleanup import shielded_cleanup
from dms.executor import EngineUnavailable, Executor, ProcessExecutor
from dms.executor._docker import DockerExecutor
from dms.workload import ExecutorKind

from ._capacity import Capacity
from ._limits import OnboardingLimits
from ._service import ProviderService

log = logging.getLogger("dms.provider")

PROVIDER_COMMANDS = ("/dms/deployment",)
"""What the provider actor may invoke with the node's authority (bids)."""
TAKE_DOWN_DEADLINE = 60.0


@attrs.frozen
class ProviderConfig:
    """How a node provides: where workloads keep their files, which executors to open
    (those that cannot be opened are left out, with a warning), the machine's capacity
    (None: measured) and the operator's onboarding limits."""

    work_dir: Path = attrs.field(converter=Path)
    executors: tuple[ExecutorKind, ...] = (ExecutorKind.PROCESS,)
    capacity: Capacity | None = None
    limits: OnboardingLimits = OnboardingLimits()
    price: float = 0.0


def measure_machine(work_dir: Path) -> Capacity:
    """This machine's cores, memory and the free disk under `work_dir`."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    work_dir.mkdir(parents=True, exist_ok=True)
    disk = shutil.disk_usage(work_dir).free
    return Capacity(millicores=1000 * (os.cpu_count() or 1), ram=ram, disk=disk)


@contextlib.asynccontextmanager
async def open_provider(parent: Actor, config: ProviderConfig, clock: Callable[[], float], *,
                        rtts: Callable[[], Mapping[str, float]] = dict,
                        ) -> AsyncIterator[ProviderService]:
    """Open the executors, spawn the provider actor under `parent` and serve requests
    for the block; on the way out every deployment hosted here is taken down. `rtts`
    gives the node's measured round-trip times to its peers (reported in bids)."""
    async with contextlib.AsyncExitStack() as stack:
        executors: dict[ExecutorKind, Executor] = {}
        for kind in config.executors:
            try:
                executors[kind] = await stack.enter_async_context(
                    _executor(kind, config.work_dir, parent.handle.did))
            except EngineUnavailable as error:
                log.warning("executor %s left out: %s", kind.value, error)
        machine = config.capacity if config.capacity is not None else measure_machine(
            config.work_dir)
        offered = config.limits.apply(attrs.evolve(machine, executors=frozenset(executors)))
        service = ProviderService(parent.handle.peer, offered, executors, clock,
                                  price=config.price, rtts=rtts)
        actor = await parent.spawn("provider", commands=PROVIDER_COMMANDS, main=service.sweep)
        actor.register(service)
        try:
            yield service
        finally:
            with shielded_cleanup(TAKE_DOWN_DEADLINE):
                await service.stop_everything()
                await actor.stop()


def _executor(kind: ExecutorKind, work_dir: Path,
              node_id: str) -> contextlib.AbstractAsyncContextManager[Executor]:
    if kind is ExecutorKind.PROCESS:
        return ProcessExecutor(work_dir / "process")
    if kind is ExecutorKind.DOCKER:
        return DockerExecutor(node_id)
    raise EngineUnavailable(f"the {kind.value} executor is not opened by providers yet")
