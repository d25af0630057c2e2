"""A node does not flood what it would not accept the shape of: junk publications stop
at the first node."""

from __future__ import annotations

import time

import nacl.signing
import trio

from dms import open_node
from dms.actor import encode_message
from dms.net import MemoryNetwork
from dms.net._mesh import content_id
from dms.net._mesh_wire import Publish, encode
from dms.testing import virtual_clock
from ucan import SigningKey, invoke


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


async def test_a_relaying_peer_gets_only_its_budget_of_signature_checks(
        autojump_clock: object) -> None:
    """Screening a publication costs a signature check, before any budget of the layer
    above: a neighbour relaying a flood of signed junk had the node verify every one."""
    network = MemoryNetwork()
    sender = SigningKey.generate()
    topic = "/nunet/deployment"
    payloads = [encode_message(invoke(sender, sender.did, "/dms/deployment/request",
                                      {"topic": topic}, [], expiration=int(time.time()) + 600,
                                      nonce=n.to_bytes(4, "big")))
                for n in range(6000)]
    with trio.fail_after(60):
        async with open_node(listen="memory://b", network=network,
                             clock=virtual_clock(time.time())) as b, \
                network.transport(nacl.signing.SigningKey.generate()) as relay:
            link = await relay.connect("memory://b")
            for n, payload in enumerate(payloads):
                await link.send(encode(Publish(content_id(topic, payload), topic, 8, payload)))
                if n % 200 == 199:
                    await trio.sleep(0.001)  # let the link drain; the budget barely refills
            while b.metrics().get("dropped.screen-budget", 0) < 900:
                await trio.sleep(0.001)
            # Every publication screened out was over the budget: none was junk.
            assert b.mesh.metrics["mesh.dropped_screened"] == b.metrics()["dropped.screen-budget"]
