"""The ensemble networks a provider hosts: one per deployment, made from the allocate
order's `NetworkOrder`, a namespace per allocation added before its workload starts,
the ensemble's ports published on the host, all of it removed on take-down.

A docker allocation's namespace is its container's: `reserve` names it before the
container exists, the docker executor calls `attach` with the container's pid once it
runs (and before its gate lets the workload start), `detach` when it ends; the name
stays reserved across the container's restarts until `remove`.

Each network lives in a task of its own under `hosted_networks` (structured: leaving
the block tears every one down); `close` cancels that task and waits until its
namespaces, TUNs, resolver sockets and published ports are gone. Frames from other
providers' pumps arrive through `deliver` with the link's proven peer id and go to the
pump of the ensemble their tag names, which admits only what the order granted.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import trio

from dms.executor import PortMapping
from dms.network import (
    NETNS_ETC,
    RESOLV_CONF,
    DnsUpstream,
    EnsembleNetwork,
    HeldNetworks,
    NamespaceError,
    NetworkOrder,
    delete_namespace,
    missing_capability,
    publish_port,
    reconcile_namespaces,
    records_for,
)

log = logging.getLogger("dms.provider")

SendFrame = Callable[[str, bytes], None]
PUBLISH_HOST = "127.0.0.1"
"""Where an allocation's `ports` are published (as the docker executor does)."""


class NetworkUnavailable(Exception):
    """This provider was asked to provide the ensemble network and cannot."""

    def __init__(self, missing: str) -> None:
        super().__init__(f"--network: this host cannot run the ensemble network: {missing}")
        self.missing = missing


class SubnetClash(ValueError):
    """An ensemble's subnet overlaps that of another ensemble this provider hosts (the
    orchestrator plans around the subnets a bid reports; an order that does not is
    refused whole)."""

    def __init__(self, subnet: IPv4Network, taken: IPv4Network, deployment: str) -> None:
        super().__init__(f"network.plan.subnet: {subnet} overlaps {taken}, the subnet of "
                         f"deployment {deployment} on this provider")
        self.subnet, self.taken, self.deployment = subnet, taken, deployment


def namespace_prefix(peer: str) -> str:
    """The prefix of every namespace this provider makes: its own, so that two
    providers on one host never reconcile each other's."""
    return f"dms{hashlib.sha256(peer.encode()).hexdigest()[:6]}-"


class HostedNetworks:
    """Made by `hosted_networks`. `counters`: `frames_unknown_ensemble`,
    `frames_failed` (a pump raised on a frame: a bug, never the node's end)."""

    def __init__(self, peer: str, send: SendFrame, nursery: trio.Nursery, *,
                 offload: bool = True, dns_upstream: DnsUpstream | None = None) -> None:
        self.peer = peer
        self.prefix = namespace_prefix(peer)
        self.offload = offload
        self.dns_upstream = dns_upstream
        self.counters: Counter[str] = Counter()
        self._nursery = nursery
        self._networks = HeldNetworks(nursery, self.counters, offload=offload, send=send,
                                      dns_upstream=dns_upstream)
        # deployment -> allocation -> the publishers of its ports
        self._ports: dict[str, dict[str, trio.CancelScope]] = {}
        # namespace -> (deployment, allocation, ports) of a container allocation: one
        # per hosted docker allocation, dropped by `remove` and `close`
        self._containers: dict[str, tuple[str, str, tuple[PortMapping, ...]]] = {}

    def subnets_in_use(self) -> list[IPv4Network]:
        return sorted({n.order.plan.subnet for n in self._networks.values()})

    def network_of(self, ensemble: str) -> EnsembleNetwork | None:
        """The network of the ensemble (deployment id) `ensemble` here, if any."""
        return next((hosted.network for hosted in self._networks.values()
                     if hosted.order.plan.ensemble == ensemble), None)

    def hosting(self) -> int:
        """How many ensemble networks this provider holds now."""
        return len(self._networks)

    def namespace_name(self, deployment: str, allocation: str) -> str:
        digest = hashlib.sha256(f"{deployment}/{allocation}".encode()).hexdigest()[:12]
        return f"{self.prefix}{digest}"

    async def join(self, deployment: str, order: NetworkOrder) -> None:
        """Open `deployment`'s network, or take its newer order: a redeploy moved an
        allocation, and may have renumbered the ensemble onto another subnet (the TUNs
        here take their new addresses first, then the pump's grants and the records
        follow). An order of another ensemble than the one hosted is a ValueError naming
        the field, one whose subnet overlaps another ensemble's here `SubnetClash`
        (both before anything changes); one this host cannot apply (NamespaceError)
        leaves the old in force."""
        hosted = self._networks.get(deployment)
        if hosted is not None and hosted.order.plan.ensemble != order.plan.ensemble:
            raise ValueError(f"network.plan.ensemble: {order.plan.ensemble!r} is not the "
                             f"ensemble {hosted.order.plan.ensemble!r} this deployment has here")
        self._refuse_clash(deployment, order.plan.subnet)
        records = records_for(order.plan, dict(order.dns_names))
        if hosted is None:
            hosted = await self._networks.open(deployment, order)
            ports = self._ports[deployment] = {}
            hosted.on_release.append(lambda: self._stop_publishing(deployment, ports))
        else:
            await hosted.network.renumber(order.plan)
        hosted.order = order
        hosted.network.pump.grant(order.others(self.peer))
        hosted.network.replace_records(records)

    def _refuse_clash(self, deployment: str, subnet: IPv4Network) -> None:
        """A subnet that overlaps another ensemble's here would route one ensemble's
        packets into the other's TUNs: `SubnetClash`, before anything changes."""
        for other, hosted in self._networks.items():
            if other != deployment and hosted.order.plan.subnet.overlaps(subnet):
                raise SubnetClash(subnet, hosted.order.plan.subnet, other)

    def _stop_publishing(self, deployment: str, ports: dict[str, trio.CancelScope]) -> None:
        for publishers in ports.values():
            publishers.cancel()
        if self._ports.get(deployment) is ports:
            del self._ports[deployment]

    async def add(self, deployment: str, allocation: str,
                  ports: Sequence[PortMapping] = (), *, of_pid: int | None = None,
                  ) -> str | None:
        """Make `allocation`'s namespace (its address, TUN and resolver) and publish its
        tcp `ports` on the host; the namespace's name, or None when the deployment has
        no network here or the plan gives the allocation no address. `of_pid`: take
        the namespace that process is in (a re-adopted workload's) instead."""
        hosted = self._networks.get(deployment)
        if hosted is None or allocation not in hosted.order.plan.as_dict():
            return None
        namespace = self.namespace_name(deployment, allocation)
        await hosted.network.add(allocation, namespace, of_pid=of_pid)
        network = hosted.network

        def address() -> IPv4Address:  # asked per connection: a renumber moves it
            return network.plan.address_of(allocation)

        scope = self._ports[deployment][allocation] = trio.CancelScope()
        try:
            for port in ports:
                if port.protocol == "tcp":
                    await self._nursery.start(_published, scope, namespace, address, port)
        except BaseException:
            await self.remove(deployment, allocation)
            raise
        return namespace

    def reserve(self, deployment: str, allocation: str, ports: Sequence[PortMapping] = (),
                ) -> str | None:
        """The namespace name a container allocation's network will have, kept for
        `attach` (None when the deployment has no network here or the plan gives the
        allocation no address). Nothing is made yet: the container makes the namespace."""
        hosted = self._networks.get(deployment)
        if hosted is None or allocation not in hosted.order.plan.as_dict():
            return None
        namespace = self.namespace_name(deployment, allocation)
        self._containers[namespace] = (deployment, allocation, tuple(ports))
        return namespace

    def files(self, namespace: str) -> Path:
        """/etc/netns/`namespace`, made now with its resolv.conf (the ensemble's
        resolver): what the container binds over its /etc/resolv.conf. Removed with
        the namespace, and by restart reconciliation (its prefix is this provider's)."""
        if namespace not in self._containers:
            raise NamespaceError(f"namespace {namespace}", "is reserved by no allocation here")
        etc = NETNS_ETC / namespace
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(RESOLV_CONF)
        return etc

    async def attach(self, namespace: str, pid: int) -> None:
        """The container of a reserved allocation runs as `pid`: its namespace gets
        the allocation's TUN, address, routes and resolver, and the allocation's tcp
        ports are published on the host. What an earlier container of the same
        allocation left (it ended without `detach`) is removed first."""
        entry = self._containers.get(namespace)
        if entry is None:
            raise NamespaceError(f"namespace {namespace}", "is reserved by no allocation here")
        deployment, allocation, ports = entry
        await self._remove_member(deployment, allocation)
        if await self.add(deployment, allocation, ports, of_pid=pid) is None:
            raise NamespaceError(f"allocation {allocation}",
                                 f"deployment {deployment} has no network here now")

    async def detach(self, namespace: str) -> None:
        """A reserved allocation's container ended: its ports, TUN and namespace go
        (the reservation stays for the next container); idempotent."""
        entry = self._containers.get(namespace)
        if entry is not None:
            await self._remove_member(entry[0], entry[1])
        with trio.CancelScope(shield=True):  # /etc/netns files of a failed attach too
            await trio.to_thread.run_sync(delete_namespace, namespace)

    async def remove(self, deployment: str, allocation: str) -> None:
        """Unpublish `allocation`'s ports and delete its namespace (off the event
        loop, completing under cancellation); idempotent."""
        self._containers.pop(self.namespace_name(deployment, allocation), None)
        await self._remove_member(deployment, allocation)

    async def _remove_member(self, deployment: str, allocation: str) -> None:
        hosted = self._networks.get(deployment)
        if hosted is None:
            return
        scope = self._ports.get(deployment, {}).pop(allocation, None)
        if scope is not None:
            scope.cancel()
        await hosted.network.remove(allocation)

    async def close(self, deployment: str) -> None:
        """Tear the deployment's network down here and wait until nothing of it is left."""
        for namespace in [n for n, entry in self._containers.items() if entry[0] == deployment]:
            del self._containers[namespace]
        hosted = self._networks.get(deployment)
        if hosted is None:
            return
        await hosted.release()

    def deliver(self, peer: str, frame: bytes) -> None:
        """A tunnel frame from link peer `peer`: to the pump of the ensemble its tag
        names (which checks `peer`'s membership per packet), else dropped and counted."""
        if not self._networks.deliver(peer, frame):
            self.counters["frames_unknown_ensemble"] += 1


async def _published(scope: trio.CancelScope, namespace: str,
                     address: Callable[[], IPv4Address], port: PortMapping, *, task_status: trio.TaskStatus[int]) -> None:
    with scope:
        await publish_port(namespace, address, port.private, port.public, PUBLISH_HOST,
                           task_status=task_status)


@contextlib.asynccontextmanager
async def hosted_networks(peer: str, send: SendFrame, *, offload: bool = True,
                          dns_upstream: DnsUpstream | None = None,
                          ) -> AsyncIterator[HostedNetworks]:
    """The provider's networks for the block: `NetworkUnavailable` at once when this
    host lacks what they need; namespaces an earlier provider of this node left behind
    are removed first (their TUNs died with it); every network is torn down on
    leaving. `offload`: TUNs with the virtio header and TSO, so the pumps move ~64 KiB
    packets (every provider must agree: frames say which they carry, and a pump drops
    the other kind; bench/network_bench.py measured twice the throughput over the
    node's links with it). `dns_upstream`: where every ensemble's resolver forwards
    names outside `.internal` (None: refused)."""
    missing = missing_capability()
    if missing is not None:
        raise NetworkUnavailable(missing)
    networks: HostedNetworks | None = None
    async with trio.open_nursery() as nursery:
        networks = HostedNetworks(peer, send, nursery, offload=offload,
                                  dns_upstream=dns_upstream)
        left = await trio.to_thread.run_sync(reconcile_namespaces, networks.prefix, ())
        if left:
            log.info("removed %d network namespaces an earlier provider left: %s",
                     len(left), ", ".join(left))
        try:
            yield networks
        finally:
            nursery.cancel_scope.cancel()
