"""Opening a provider on a node: its executors, what the machine has, what the operator
offers, what an earlier provider on this node kept, and the provider actor that
carries `ProviderService`."""

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
from dms.ensemble._requirements import Location
from dms.executor import EngineUnavailable, Executor, ProcessExecutor
from dms.network import DnsUpstream, InvalidPlan, parse_upstream
from dms.store import NodeStore
from dms.workload import ExecutorKind

from ._book import ReservationBook
from ._capacity import Capacity
from ._limits import OnboardingLimits
from ._locator import ProviderLocator
from ._network import HostedNetworks, SendFrame, hosted_networks
from ._service import ProviderService
from ._state import ProviderRecords
from ._workdir import hold_work_dir

log = logging.getLogger("dms.provider")

PROVIDER_COMMANDS = ("/dms/deployment",)
"""What the provider actor may invoke with the node's authority (bids)."""
TAKE_DOWN_DEADLINE = 60.0


def _upstream(setting: str | DnsUpstream | None) -> DnsUpstream | None:
    return parse_upstream(setting) if isinstance(setting, str) else setting


@attrs.frozen
class ProviderConfig:
    """How a node provides: where workloads keep their files (one provider per
    directory), which executors to open (those that cannot be opened are left out, with
    a warning), the machine's capacity (None: measured) and the operator's onboarding
    limits, and the host ports its workloads may publish (`public_ports`, besides those
    of `capacity`). `location`: where the machine is, reported in bids so that an ensemble's
    location constraint can select (or reject) it; unknown by default. `keep_workloads`:
    a provider that stops leaves its workloads running for the next one on this node to
    re-adopt (it needs a node store to find them again); otherwise it stops them.
    `network`: host the ensemble network (a namespace with a private 10/8 address per
    process allocation, `.internal` DNS, packets to other providers over the node's
    links); it needs root, /dev/net/tun and iproute2, and `NetworkUnavailable` names
    what is missing when asked for where it cannot run. `network_dns_upstream`: the
    resolver (`IP`, `IP:PORT`, `[IPv6]:PORT`) the ensembles' resolvers forward names
    outside `.internal` to, from the host's network, each query with a deadline and a
    bound per ensemble; None (the default) refuses them. A malformed one, or one without
    `network`, is refused on construction (`InvalidPlan` naming the setting)."""

    work_dir: Path = attrs.field(converter=Path)
    executors: tuple[ExecutorKind, ...] = (ExecutorKind.PROCESS,)
    capacity: Capacity | None = None
    limits: OnboardingLimits = OnboardingLimits()
    price: float = 0.0
    keep_workloads: bool = False
    public_ports: frozenset[int] = frozenset()  # host ports workloads may publish
    location: Location = Location()
    network: bool = False
    network_dns_upstream: DnsUpstream | None = attrs.field(default=None, converter=_upstream)

    def __attrs_post_init__(self) -> None:
        if self.network_dns_upstream is not None and not self.network:
            raise InvalidPlan("network_dns_upstream", "forwards for the ensemble network: "
                              "set network too")


def measure_machine(work_dir: Path) -> Capacity:
    """This machine's cores, memory and the free disk under `work_dir`."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    work_dir.mkdir(parents=True, exist_ok=True)
    disk = shutil.disk_usage(work_dir).free
    return Capacity(millicores=1000 * (os.cpu_count() or 1), ram=ram, disk=disk)


@contextlib.asynccontextmanager
async def open_provider(parent: Actor, config: ProviderConfig, clock: Callable[[], float], *,
                        rtts: Callable[[], Mapping[str, float]] = dict,
                        store: NodeStore | None = None,
                        tunnel: SendFrame | None = None,
                        ) -> AsyncIterator[ProviderService]:
    """Open the executors, spawn the provider actor under `parent` and serve requests
    for the block; on the way out every deployment hosted here is taken down, unless
    `config.keep_workloads` (then they are left running, and kept). `rtts` gives the
    node's measured round-trip times to its peers (reported in bids).

    With `store` (the node's database; `clock` must then be the wall clock), what the
    provider holds and runs is kept there, and what an earlier provider kept is
    restored before the first request is served (`ProviderService.restore`). `parent`
    (the node's root actor) answers `/dms/deployment/allocations` (`ProviderLocator`),
    so the orchestrators find the actors of a restarted provider.
    `tunnel(peer, frame)` sends the ensemble network's frames over the node's link to
    `peer` (needed with `config.network`; the node hands the frames it receives to
    `service.networks.deliver`).
    `WorkDirInUse` if another provider works in `config.work_dir`; the store's errors
    (`MalformedRow`, ...) and `InvalidSnapshot` if what it kept cannot be trusted."""
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(hold_work_dir(config.work_dir))
        networks: HostedNetworks | None = None
        if config.network:
            if tunnel is None:
                raise ValueError("config.network needs tunnel: the node's frame sender")
            networks = await stack.enter_async_context(
                hosted_networks(parent.handle.peer, tunnel,
                                dns_upstream=config.network_dns_upstream))
        records = ProviderRecords(store)
        saved = await records.load()
        executors: dict[ExecutorKind, Executor] = {}
        for kind in config.executors:
            try:
                executors[kind] = await stack.enter_async_context(
                    _executor(kind, config.work_dir, parent.handle.did, networks))
            except EngineUnavailable as error:
                log.warning("executor %s left out: %s", kind.value, error)
        machine = config.capacity if config.capacity is not None else measure_machine(
            config.work_dir)
        if config.public_ports:
            machine = attrs.evolve(machine, public_ports=machine.public_ports | config.public_ports)
        place = config.location if config.location != Location() else machine.location
        offered = config.limits.apply(attrs.evolve(machine, executors=frozenset(executors),
                                                   location=place))
        book = ReservationBook.from_snapshot(offered, saved.snapshot(clock()))
        service = ProviderService(parent.handle.peer, offered, executors, clock,
                                  price=config.price, rtts=rtts, book=book, records=records,
                                  networks=networks)
        actor = await parent.spawn("provider", commands=PROVIDER_COMMANDS, main=service.sweep)
        locator = parent.register(ProviderLocator())
        try:
            await service.restore(saved, actor)
            actor.register(service)  # serves from here
            locator.service = service
            yield service
        finally:
            locator.service = None
            with shielded_cleanup(TAKE_DOWN_DEADLINE):
                if config.keep_workloads:
                    await service.leave_running()
                else:
                    await service.stop_everything()
                await actor.stop()


def _executor(kind: ExecutorKind, work_dir: Path, node_id: str,
              networks: HostedNetworks | None = None,
              ) -> contextlib.AbstractAsyncContextManager[Executor]:
    if kind is ExecutorKind.PROCESS:
        return ProcessExecutor(work_dir / "process")
    if kind is ExecutorKind.DOCKER:
        # the docker SDK costs a third of a second to import: only a node that opens
        # the docker executor pays it (every `dms` command imports this module)
        from dms.executor._docker import DockerExecutor

        return DockerExecutor(node_id, network=networks)  # its containers' networks
    raise EngineUnavailable(f"the {kind.value} executor is not opened by providers yet")
