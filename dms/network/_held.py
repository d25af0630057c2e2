"""Held ensemble networks: each one ensemble's `EnsembleNetwork` kept open by a task of
its own in its owner's nursery until released, and found by its ensemble tag when a
tunnel frame arrives. The provider's `HostedNetworks` and a joined node's
`JoinedNetworks` hold theirs this way; what they add (ports, a joined namespace) is
theirs.

Structured: the task is the network's owner, so leaving the owner's nursery tears every
held network down; `release` tears one down and waits until nothing of it is left.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping

import attrs
import trio

from dms.network._dns import records_for
from dms.network._dns_forward import DnsUpstream
from dms.network._ensemble_net import EnsembleNetwork, ensemble_network
from dms.network._frame import ensemble_tag
from dms.network._plan import NetworkOrder
from dms.network._pump import SendFrame

log = logging.getLogger("dms.network")

Prepare = Callable[[EnsembleNetwork], Awaitable[None]]


@attrs.define(eq=False)
class HeldNetwork:
    """One held network. `order` is the newest order its owner applied."""

    network: EnsembleNetwork
    order: NetworkOrder
    _scope: trio.CancelScope
    _done: trio.Event
    on_release: list[Callable[[], None]] = attrs.Factory(list)
    """Run (in order) as the network is torn down, by `release` or by the owner's end."""

    async def release(self) -> None:
        """Tear the network down and wait until it is gone, even when the caller is
        cancelled meanwhile: nothing of it may outlive the call."""
        self._scope.cancel()
        with trio.CancelScope(shield=True):
            await self._done.wait()


class HeldNetworks(Mapping[str, HeldNetwork]):
    """deployment -> its `HeldNetwork`, opened in `nursery`. `counters` is the owner's:
    `frames_failed` is counted here (a pump raised on a frame: a bug, never the
    node's end)."""

    def __init__(self, nursery: trio.Nursery, counters: Counter[str], *, offload: bool,
                 send: SendFrame, dns_upstream: DnsUpstream | None = None) -> None:
        self.offload = offload
        self.dns_upstream = dns_upstream
        self.counters = counters
        self._nursery = nursery
        self._send = send
        self._held: dict[str, HeldNetwork] = {}
        self._by_tag: dict[bytes, EnsembleNetwork] = {}

    def __getitem__(self, deployment: str) -> HeldNetwork:
        return self._held[deployment]

    def __iter__(self) -> Iterator[str]:
        return iter(self._held)

    def __len__(self) -> int:
        return len(self._held)

    async def open(self, deployment: str, order: NetworkOrder,
                   prepare: Prepare | None = None) -> HeldNetwork:
        """Open `deployment`'s network from `order` (its DNS records too), run
        `prepare` on it, then register it (frames with its tag reach its pump). A
        failure, `prepare`'s included, leaves nothing and propagates."""
        held: HeldNetwork = await self._nursery.start(self._hold, deployment, order, prepare)
        return held

    async def _hold(self, deployment: str, order: NetworkOrder, prepare: Prepare | None, *,
                    task_status: trio.TaskStatus[HeldNetwork]) -> None:
        done = trio.Event()
        try:
            with trio.CancelScope() as scope:
                records = records_for(order.plan, dict(order.dns_names))
                async with ensemble_network(order.plan, records, offload=self.offload,
                                            send=self._send,
                                            dns_upstream=self.dns_upstream) as network:
                    if prepare is not None:
                        await prepare(network)
                    tag = ensemble_tag(order.plan.ensemble)
                    held = HeldNetwork(network, order, scope, done)
                    self._held[deployment] = held
                    self._by_tag[tag] = network
                    try:
                        task_status.started(held)
                        await trio.sleep_forever()
                    finally:
                        for release in held.on_release:
                            release()
                        self._by_tag.pop(tag, None)
                        if self._held.get(deployment) is held:
                            del self._held[deployment]
        finally:
            done.set()

    def deliver(self, peer: str, frame: bytes) -> bool:
        """A tunnel frame from link peer `peer`: taken (True) when its tag names a
        network held here, whose pump then checks `peer`'s membership per packet;
        False when none is (the caller counts or passes it on)."""
        network = self._by_tag.get(frame[4:20])
        if network is None:
            return False
        try:
            network.pump.deliver(peer, frame)
        except Exception:  # a remote frame must never end the node
            self.counters["frames_failed"] += 1
            log.exception("a tunnel frame from %s could not be delivered", peer)
        return True
