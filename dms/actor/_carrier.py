"""What the actor system needs from the network below it, and nothing more.

The mesh satisfies it in the node; tests use a fake. Keeping it this narrow is what
lets the runtime be tested without a network and the network know nothing of actors.
"""

from __future__ import annotations

from typing import Protocol


class Carrier(Protocol):
    """Moves opaque frames between nodes.

    `send` raises `dms.actor.Undeliverable` when the peer cannot be reached; frames
    for `peer_id` itself never reach the carrier (the actor system loops them back).
    """

    @property
    def peer_id(self) -> str:
        """This node's transport identity (its node key's DID)."""
        ...

    async def send(self, peer: str, data: bytes) -> None: ...

    async def publish(self, topic: str, data: bytes) -> None: ...

    def subscribe(self, topic: str) -> None: ...
