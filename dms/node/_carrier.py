"""The mesh as the actor system's carrier: the only place the node's two halves meet."""

from __future__ import annotations

from dms.actor import Undeliverable
from dms.net import Mesh, NetError


class MeshCarrier:
    """Adapts a `Mesh` to `dms.actor.Carrier` (network errors become Undeliverable)."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh

    @property
    def peer_id(self) -> str:
        return self.mesh.peer_id

    async def send(self, peer: str, data: bytes) -> None:
        try:
            await self.mesh.send(peer, data)
        except NetError as exc:
            raise Undeliverable(peer, str(exc)) from exc

    async def publish(self, topic: str, data: bytes) -> None:
        await self.mesh.publish(topic, data)

    def subscribe(self, topic: str) -> None:
        self.mesh.subscribe(topic)
