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
from collections import Counter
from collections.abc import AsyncIterator, Callable

import trio

from dms.network._dns import records_for
from dms.network._ensemble_net import EnsembleNetwork
from dms.network._errors import NamespaceError
from dms.network._held import HeldNetworks
from dms.network._host import missing_capability, reconcile_namespaces
from dms.network._plan import NetworkOrder

MAX_JOINED = 16
"""Ensembles one node may have joined at once."""
MEMBER = "joined"
"""The member name of the joined namespace in its network (no allocation's)."""

SendFrame = Callable[[str, bytes], None]


def joined_prefix(peer: str) -> str:
    """The prefix of the namespaces node `peer` joins with (not a provider's)."""
    return f"dmsj{hashlib.sha256(peer.encode()).hexdigest()[:6]}-"


class JoinedNetworks:
    """Made by `joined_networks`. `counters`: `frames_unknown_ensemble`, `frames_failed`."""

    def __init__(self, peer: str, send: SendFrame, nursery: trio.Nursery, *,
                 offload: bool = True) -> None:
        self.peer = peer
        self.prefix = joined_prefix(peer)
        self.offload = offload
        self.counters: Counter[str] = Counter()
        self._joined = HeldNetworks(nursery, self.counters, offload=offload, send=send)
        self._reconciled = False

    def namespace_name(self, deployment: str) -> str:
        return f"{self.prefix}{hashlib.sha256(deployment.encode()).hexdigest()[:12]}"

    def namespace_of(self, deployment: str) -> str | None:
        joined = self._joined.get(deployment)
        return None if joined is None else joined.network.namespace_of(MEMBER)

    async def join(self, deployment: str, order: NetworkOrder) -> str:
        """Make this node's namespace in `deployment`'s network (the gateway address,
        `order.joined` must be this node) and grant the providers' addresses; the
        namespace's name. Joining again returns the same namespace, following the
        newer order: a renumbered ensemble moves the namespace's TUN to the new
        gateway address and subnet (`follow`). NamespaceError naming what is missing
        when this host cannot, or MAX_JOINED are joined."""
        if order.joined != self.peer:
            raise NamespaceError("network.joined", f"{order.joined!r} is not this node")
        joined = self._joined.get(deployment)
        if joined is not None:
            await self.follow(deployment, order)
            return joined.network.namespace_of(MEMBER)
        missing = missing_capability()
        if missing is not None:
            raise NamespaceError("join", f"this node {missing}")
        if len(self._joined) >= MAX_JOINED:
            raise NamespaceError("join", f"this node has joined {MAX_JOINED} networks already")
        if not self._reconciled:  # namespaces an earlier run of this node left
            await trio.to_thread.run_sync(reconcile_namespaces, self.prefix, ())
            self._reconciled = True
        namespace = self.namespace_name(deployment)

        async def prepare(network: EnsembleNetwork) -> None:
            await network.add(MEMBER, namespace, address=order.plan.gateway)
            network.pump.grant(order.others(self.peer))

        await self._joined.open(deployment, order, prepare)
        return namespace

    async def follow(self, deployment: str, order: NetworkOrder) -> bool:
        """Take `deployment`'s newer network order (a redeploy, which may have
        renumbered the ensemble) if this node joined it: the namespace's TUN moves to
        the new gateway address, the providers' grants and the records follow; whether
        it was joined. One this node cannot follow (another ensemble's, not naming this
        node, or a TUN that cannot be re-addressed) leaves the network, so nothing of
        it goes on with stale addresses, and raises NamespaceError saying so."""
        joined = self._joined.get(deployment)
        if joined is None:
            return False
        try:
            if order.joined != self.peer:
                raise NamespaceError("network.joined", f"{order.joined!r} is not this node")
            await joined.network.renumber(order.plan, outside={MEMBER: order.plan.gateway})
        except NamespaceError as error:
            await joined.release()
            raise NamespaceError(f"deployment {deployment}",
                                 f"left its network: this node could not follow its "
                                 f"new order ({error})") from None
        joined.order = order
        joined.network.pump.grant(order.others(self.peer))
        joined.network.replace_records(records_for(order.plan, dict(order.dns_names)))
        return True

    async def leave(self, deployment: str) -> bool:
        """Remove the namespace joined to `deployment`'s network and wait until it is
        gone; whether there was one."""
        joined = self._joined.get(deployment)
        if joined is None:
            return False
        await joined.release()
        return True

    def deliver(self, peer: str, frame: bytes) -> bool:
        """A tunnel frame: taken (True) when its tag names a network joined here, whose
        membership then checks `peer` per packet; False leaves it to others."""
        return self._joined.deliver(peer, frame)


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
