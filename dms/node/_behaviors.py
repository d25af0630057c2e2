"""Behaviors every node's root actor offers: what a peer may ask of the node itself.

They are ordinary behaviors: a caller needs a grant of `/dms/node/...` (or a parent
command) from the node, like for anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio

from dms.actor import Message, Role, behavior
from dms.net import Mesh

PING = "/dms/node/ping"
PEERS = "/dms/node/peers"


@attrs.frozen
class PingArgs:
    echo: Any = None


class NodeBehaviors(Role):
    """Liveness and the peer table, answered by the root actor."""

    def __init__(self, did: str, clock: Callable[[], float], mesh: Mesh) -> None:
        self.did = did
        self.clock = clock
        self.mesh = mesh

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
