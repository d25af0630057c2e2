"""`subnet.join`: a node that hosts none of an ensemble (the user's orchestrator node)
joins its network for debugging, with a namespace of its own holding the plan's
gateway address, a TUN on a pump of its own, and the ensemble's resolver.

Membership is the orchestrator's to grant: the order it sends the providers names the
joined node (`NetworkOrder.joined`), and their pumps admit its frames from the gateway
address only, as for any provider. Here, `join` makes the namespace and grants the
providers' addresses; `leave` (or leaving `joined_networks`) removes all of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable

import attrs
import trio

from dms.network._dns import records_for
from dms.network._ensemble_net import EnsembleNetwork, ensemble_network
from dms.network._errors import NamespaceError
from dms.network._frame import ensemble_tag
from dms.network._host import missing_capability, reconcile_namespaces
from dms.network._plan import NetworkOrder

log = logging.getLogger("dms.network")

MAX_JOINED = 16
"""Ensembles one node may have joined at once."""
MEMBER = "joined"
"""The member name of the joined namespace in its network (no allocation's)."""

SendFrame = Callable[[str, bytes], None]


def joined_prefix(peer: str) -> str:
    """The prefix of the namespaces node `peer` joins with (not a provider's)."""
    return f"dmsj{hashlib.sha256(peer.encode()).hexdigest()[:6]}-"


@attrs.define
class _Joined:
    network: EnsembleNetwork
    namespace: str
    scope: trio.CancelScope
    done: trio.Event


class JoinedNetworks:
    """Made by `joined_networks`. `counters`: `frames_unknown_ensemble`, `frames_failed`."""

    def __init__(self, peer: str, send: SendFrame, nursery: trio.Nursery, *,
                 offload: bool = True) -> None:
        self.peer = peer
        self.prefix = joined_prefix(peer)
        self.offload = offload
        self.counters: Counter[str] = Counter()
        self._send = send
        self._nursery = nursery
        self._joined: dict[str, _Joined] = {}
        self._by_tag: dict[bytes, EnsembleNetwork] = {}
        self._reconciled = False

    def namespace_name(self, deployment: str) -> str:
        return f"{self.prefix}{hashlib.sha256(deployment.encode()).hexdigest()[:12]}"

    def namespace_of(self, deployment: str) -> str | None:
        joined = self._joined.get(deployment)
        return None if joined is None else joined.namespace

    async def join(self, deployment: str, order: NetworkOrder) -> str:
        """Make this node's namespace in `deployment`'s network (the gateway address,
        `order.joined` must be this node) and grant the providers' addresses; the
        namespace's name. Joining again returns the same namespace. NamespaceError
        naming what is missing when this host cannot, or MAX_JOINED are joined."""
        if order.joined != self.peer:
            raise NamespaceError("network.joined", f"{order.joined!r} is not this node")
        joined = self._joined.get(deployment)
        if joined is not None:
            joined.network.pump.grant(order.others(self.peer))
            return joined.namespace
        missing = missing_capability()
        if missing is not None:
            raise NamespaceError("join", f"this node {missing}")
        if len(self._joined) >= MAX_JOINED:
            raise NamespaceError("join", f"this node has joined {MAX_JOINED} networks already")
        if not self._reconciled:  # namespaces an earlier run of this node left
            await trio.to_thread.run_sync(reconcile_namespaces, self.prefix, ())
            self._reconciled = True
        made: _Joined = await self._nursery.start(self._hold, deployment, order)
        return made.namespace

    async def _hold(self, deployment: str, order: NetworkOrder, *,
                    task_status: trio.TaskStatus[_Joined]) -> None:
        done = trio.Event()
        try:
            with trio.CancelScope() as scope:
                records = records_for(order.plan, dict(order.dns_names))
                async with ensemble_network(order.plan, records, offload=self.offload,
                                            send=self._send) as network:
                    namespace = self.namespace_name(deployment)
                    await network.add(MEMBER, namespace, address=order.plan.gateway)
                    network.pump.grant(order.others(self.peer))
                    tag = ensemble_tag(order.plan.ensemble)
                    joined = _Joined(network, namespace, scope, done)
                    self._joined[deployment] = joined
                    self._by_tag[tag] = network
                    try:
                        task_status.started(joined)
                        await trio.sleep_forever()
                    finally:
                        self._by_tag.pop(tag, None)
                        if self._joined.get(deployment) is joined:
                            del self._joined[deployment]
        finally:
            done.set()

    async def leave(self, deployment: str) -> bool:
        """Remove the namespace joined to `deployment`'s network and wait until it is
        gone; whether there was one."""
        joined = self._joined.get(deployment)
        if joined is None:
            return False
        joined.scope.cancel()
        with trio.CancelScope(shield=True):
            await joined.done.wait()
        return True

    def deliver(self, peer: str, frame: bytes) -> bool:
        """A tunnel frame: taken (True) when its tag names a network joined here, whose
        membership then checks `peer` per packet; False leaves it to others."""
        network = self._by_tag.get(frame[4:20])
        if network is None:
            return False
        try:
            network.pump.deliver(peer, frame)
        except Exception:  # a remote frame must never end the node
            self.counters["frames_failed"] += 1
            log.exception("a tunnel frame from %s could not be delivered", peer)
        return True


@contextlib.asynccontextmanager
async def joined_networks(peer: str, send: SendFrame, *, offload: bool = True,
                          ) -> AsyncIterator[JoinedNetworks]:
    """The networks node `peer` joins during the block; every one is left on leaving.
    Nothing is made (nor root needed) until the first `join`."""
    async with trio.open_nursery() as nursery:
        try:
            yield JoinedNetworks(peer, send, nursery, offload=offload)
        finally:
            nursery.cancel_scope.cancel()
