"""A node does not flood what it would not accept the shape of: junk publications stop
at the first node."""

from __future__ import annotations

import nacl.signing
import trio

from dms import open_node
from dms.net import MemoryNetwork
from dms.net._mesh import content_id
from dms.net._mesh_wire import Publish, encode


async def test_junk_publications_are_neither_delivered_nor_forwarded(autojump_clock: object) -> None:
    network = MemoryNetwork()
    with trio.fail_after(20):
        async with open_node(listen="memory://b", network=network) as b, \
                open_node(network=network, bootstrap=["memory://b"]) as c:
            c.root.subscribe("/nunet/deployment")
            await c.mesh.wait_connected()
            async with network.transport(nacl.signing.SigningKey.generate()) as attacker:
                link = await attacker.connect("memory://b")
                for junk in (b"not a container", b"\x40garbage"):
                    topic = "/nunet/deployment"
                    await link.send(encode(Publish(content_id(topic, junk), topic, 8, junk)))
                while b.mesh.metrics["mesh.dropped_screened"] < 2:
                    await trio.sleep(0.01)
            assert b.mesh.metrics["mesh.forwarded"] == 0
            assert c.metrics().get("received", 0) == 0
