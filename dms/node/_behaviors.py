"""Behaviors every node's root actor offers: what a peer may ask of the node itself.

They are ordinary behaviors: a caller needs a grant of `/dms/node/...` (or a parent
command) from the node, like for anything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dms.actor import Message

if TYPE_CHECKING:
    from dms.node._node import Node

PING = "/dms/node/ping"
PEERS = "/dms/node/peers"


def install(node: Node) -> None:
    @node.root.behavior(PING)
    async def ping(message: Message) -> dict[str, Any]:
        """Liveness and clock: answers with the node's DID and its Unix time."""
        return {"did": node.did, "time": node.clock(), "echo": message.args.get("echo")}

    @node.root.behavior(PEERS)
    async def peers(message: Message) -> dict[str, Any]:
        """The node's peer table: address, last seen (seconds ago), measured RTT."""
        if node.mesh is None:
            return {"peers": []}
        table = node.mesh.peers
        now = node.mesh_time()
        return {"peers": [
            {"peer": peer, "address": info.address, "connected": info.connected,
             "rtt_ms": info.rtt_ms, "seen_ago": round(now - info.last_seen, 3)}
            for peer, info in sorted(table.items())
        ]}
