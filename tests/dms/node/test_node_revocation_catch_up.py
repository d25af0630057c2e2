"""A node catches up on revocations it missed: a new neighbour sends what it keeps,
and a revocation dropped over a budget is not marked seen, so a later copy gets in."""

from __future__ import annotations

import time

import nacl.signing
import trio

from dms import open_node
from dms.actor import encode_message
from dms.net import MemoryNetwork
from dms.net._mesh import content_id
from dms.net._mesh_wire import Publish, encode
from dms.node import REVOCATION_TOPIC
from ucan import SigningKey, delegate, revoke
from ucan.codec import CID


async def wait_until(condition: object, seconds: float = 30.0) -> None:
    with trio.fail_after(seconds):
        while not condition():  # type: ignore[operator]
            await trio.sleep(0.05)


async def test_a_node_that_was_away_learns_a_revocation_from_its_new_neighbour(
        autojump_clock: object) -> None:
    network = MemoryNetwork()
    org = SigningKey.generate()
    async with open_node(org, listen="memory://org", network=network) as a:
        grant = delegate(org, SigningKey.generate().did, "/dms", expiration=None)
        await a.publish_revocation(revoke(org, grant))  # nobody is linked to hear it
        async with open_node(network=network, anchors=[org.did],
                             bootstrap=["memory://org"]) as b:
            await wait_until(lambda: org.did in b.trust.revocations.revokers(grant.cid))
            assert b.trust.revocations.kept_revocations()  # an anchor's: kept for good


async def test_a_revocation_dropped_over_the_budget_gets_in_when_sent_again(
        autojump_clock: object) -> None:
    start = time.time()
    network = MemoryNetwork()
    flood_keys = [SigningKey.generate() for _ in range(8)]
    async with open_node(listen="memory://b", network=network,
                         clock=lambda: start + trio.current_time()) as b, \
            network.transport(nacl.signing.SigningKey.generate()) as relay:
        link = await relay.connect("memory://b")

        async def publish(payload: bytes) -> None:
            topic = REVOCATION_TOPIC
            await link.send(encode(Publish(content_id(topic, payload), topic, 8, payload)))

        for n in range(700):  # past the relay's burst of revocations
            junk = revoke(flood_keys[n % 8], CID.for_bytes(n.to_bytes(4, "big")))
            await publish(encode_message(junk))
            if n % 100 == 0:
                await trio.sleep(0.01)  # let the link drain (the relay's buffer)
        stranger = SigningKey.generate()
        late = revoke(stranger, CID.for_bytes(b"something b never saw"))
        await publish(encode_message(late))
        await wait_until(lambda: b.metrics().get("dropped.revocation-rate", 0) > 0
                         and b.mesh.metrics["mesh.delivered"] >= 701)
        assert stranger.did not in b.trust.revocations.revokers(late.args["revoke"])

        await trio.sleep(30)  # the budget refills
        await publish(encode_message(late))
        await wait_until(lambda: stranger.did in b.trust.revocations.revokers(
            late.args["revoke"]))
