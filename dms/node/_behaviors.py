"""Behaviors every node's root actor offers: what a peer may ask of the node itself.

They are ordinary behaviors: a caller needs a grant of `/dms/node/...` (or a parent
command) from the node, like for anything else.

    /dms/node/ping        liveness and clock
    /dms/node/peers       the peer table (address, RTT, last seen)
    /dms/node/info        what the node is: DID, address, version, uptime, roles, counts
    /dms/node/resources   what it offers: capacity, reserved, free, executors really
                          opened, location, price (`provider: false` when it offers none)

What `info` and `resources` answer is computed by the node (`Node.describe`,
`Node.offering`); the views are here so that a client structures the same types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio

from dms.actor import Message, Role, behavior
from dms.ensemble._requirements import Location
from dms.net import Mesh

PING = "/dms/node/ping"
PEERS = "/dms/node/peers"
INFO = "/dms/node/info"
RESOURCES = "/dms/node/resources"


@attrs.frozen
class PingArgs:
    echo: Any = None


@attrs.frozen
class NodeInfo:
    did: str
    address: str | None
    version: str
    started: float  # Unix time
    uptime: float  # seconds
    roles: tuple[str, ...]  # "orchestrator" (holds a market's grant), "provider"
    markets: tuple[str, ...]  # the organisations it may ask for bids under
    deployments: int  # not yet final
    peers: int  # linked now


@attrs.frozen
class Amounts:
    millicores: int
    ram: int  # bytes
    disk: int  # bytes
    gpus: int


@attrs.frozen
class NodeResources:
    provider: bool
    offered: Amounts | None = None
    reserved: Amounts | None = None
    free: Amounts | None = None
    executors: tuple[str, ...] = ()  # the executors opened (not only configured)
    location: Location = Location()
    price: float = 0.0
    reservations: int = 0  # reservations and allocations held


class NodeBehaviors(Role):
    """Liveness, the peer table and the node's own report, answered by the root actor."""

    def __init__(self, did: str, clock: Callable[[], float], mesh: Mesh, *,
                 info: Callable[[], NodeInfo], resources: Callable[[], NodeResources]) -> None:
        self.did = did
        self.clock = clock
        self.mesh = mesh
        self.info = info
        self.resources = resources

    @behavior(PING, args=PingArgs)
    async def ping(self, message: Message[PingArgs]) -> dict[str, Any]:
        """Liveness and clock: answers with the node's DID and its Unix time."""
        return {"did": self.did, "time": self.clock(), "echo": message.args.echo}

    @behavior(PEERS)
    async def peers(self, message: Message[Any]) -> dict[str, Any]:
        """The node's peer table: address, last seen (seconds ago), measured RTT."""
        now = trio.current_time()  # the peer table's clock
        return {"peers": [
            {"peer": peer, "address": info.address, "connected": info.connected,
             "rtt_ms": info.rtt_ms, "seen_ago": round(now - info.last_seen, 3)}
            for peer, info in sorted(self.mesh.peers.items())
        ]}

    @behavior(INFO)
    async def describe(self, message: Message[Any]) -> NodeInfo:
        """What the node is (see `NodeInfo`)."""
        return self.info()

    @behavior(RESOURCES)
    async def offering(self, message: Message[Any]) -> NodeResources:
        """What the node offers to deployments now (see `NodeResources`)."""
        return self.resources()
