"""What reaches a behavior on a running node: replayed, tampered, mis-addressed, expired,
premature and forged messages never do, and a well-signed refusal is answered by name.

Nodes come from `dms.testing` (in-memory network, MockClock): frames are fed straight
to `Node.receive`, as the mesh would.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import trio

from dms.actor import RemoteError, encode_message
from dms.net import MemoryNetwork
from dms.node import Node, open_node
from dms.testing import EPOCH, grant, network, node_key, settle, virtual_clock
from ucan import Delegation, Invocation, SigningKey, invoke

__all__ = ["network"]  # the fixture, imported for pytest


def count_orders(node: Node) -> Counter[str]:
    ran: Counter[str] = Counter()

    @node.root.behavior("/shop/order")
    async def order(message: Any) -> Any:
        ran[message.command] += 1
        return {"ordered": message.args.get("amount")}

    return ran


def signed_order(sender: Node, receiver: Node, chain: list[Delegation], *,
                 reply: bool = False) -> Invocation:
    now = int(sender.clock())
    return invoke(sender.key, receiver.did, "/shop/order", {"amount": 5},
                  [d.cid for d in chain], audience=receiver.did, expiration=now + 30,
                  issued_at=now, meta={"from": sender.root.handle.to_wire(), "reply": reply})


def order_from(sender: Node, receiver: Node, chain: list[Delegation], *,
               reply: bool = False) -> bytes:
    return encode_message(signed_order(sender, receiver, chain, reply=reply), chain)


async def test_replaying_an_accepted_frame_runs_the_behavior_once(network, autojump_clock):
    shop, customer = network[0], network[1]
    ran = count_orders(shop)
    frame = order_from(customer, shop, [grant(shop, customer, "/shop")])
    for _ in range(3):
        await shop.receive(frame, topic=None, via=customer.peer_id)
        await settle()
    assert ran["/shop/order"] == 1
    assert shop.metrics()["dropped.replayed"] == 2


async def test_replaying_after_a_while_is_still_refused(network, autojump_clock):
    shop, customer = network[0], network[1]
    ran = count_orders(shop)
    frame = order_from(customer, shop, [grant(shop, customer, "/shop")])
    await shop.receive(frame, topic=None, via=customer.peer_id)
    await network.advance(45)  # past exp (30 s) but within the skew: the cache remembers
    await shop.receive(frame, topic=None, via=customer.peer_id)
    await network.advance(3600)  # long past: refused by the cache or by time bounds
    await shop.receive(frame, topic=None, via=customer.peer_id)
    await settle()
    assert ran["/shop/order"] == 1
    assert shop.metrics()["accepted"] == 1
    assert shop.metrics()["dropped.replayed"] >= 1


async def test_tampered_frames_never_reach_the_behavior(network, autojump_clock):
    shop, customer = network[0], network[1]
    ran = count_orders(shop)
    chain = [grant(shop, customer, "/shop")]
    frame = order_from(customer, shop, chain)
    for position in range(len(frame)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(frame)
            tampered[position] ^= mask
            await shop.receive(bytes(tampered), topic=None, via=customer.peer_id)
    await settle()
    assert ran["/shop/order"] == 0
    assert shop.metrics().get("accepted", 0) == 0
    # A fresh order over the same chain does run: the counter above could have moved.
    await shop.receive(order_from(customer, shop, chain), topic=None, via=customer.peer_id)
    await settle()
    assert ran["/shop/order"] == 1


async def test_a_frame_for_another_actor_is_refused_and_the_sender_told(network, autojump_clock):
    shop, customer, other = network[0], network[1], network[2]
    ran = count_orders(shop)
    count_orders(other)
    frame = order_from(customer, other, [grant(other, customer, "/shop")])
    await shop.receive(frame, topic=None, via=customer.peer_id)
    await settle()
    assert ran["/shop/order"] == 0
    assert shop.metrics()["refused.InvalidAudience"] == 1


async def test_a_forged_frame_is_dropped_without_an_answer(network, autojump_clock):
    shop, customer = network[0], network[1]
    ran = count_orders(shop)
    chain = [grant(shop, customer, "/shop")]
    genuine = signed_order(customer, shop, chain, reply=True)
    stranger = SigningKey.from_seed(b"\x99" * 32)
    # The customer's payload, signed by a stranger: the signature does not match the issuer.
    forged = Invocation.decode(genuine.envelope.replace(
        genuine.signature, stranger.sign(genuine.signed_bytes)))
    await shop.receive(encode_message(forged, chain), topic=None, via=customer.peer_id)
    await settle()
    assert ran["/shop/order"] == 0
    assert shop.metrics()["dropped.forged"] == 1
    assert shop.metrics().get("replies.sent", 0) == 0


async def test_an_invocation_from_a_clock_far_behind_is_refused_as_expired(autojump_clock):
    memory = MemoryNetwork()
    async with open_node(node_key(1, 0), listen="memory://shop", network=memory,
                         clock=virtual_clock()) as shop, \
            open_node(node_key(1, 1), listen="memory://late", network=memory,
                      bootstrap=["memory://shop"], clock=virtual_clock(EPOCH - 120)) as late:
        assert late.mesh is not None
        await late.mesh.wait_connected()
        ran = count_orders(shop)
        late.add_proofs(shop.grant(late.did, "/shop", lifetime=None))
        with trio.fail_after(10), pytest.raises(RemoteError) as refused:
            await late.root.invoke(shop.root.handle, "/shop/order", {"amount": 1})
        assert refused.value.name == "Expired"
        assert refused.value.peer == shop.peer_id
        assert ran["/shop/order"] == 0


async def test_an_invocation_from_a_clock_far_ahead_is_refused_and_its_sender_told_of_clocks(
        autojump_clock):
    memory = MemoryNetwork()
    async with open_node(node_key(1, 0), listen="memory://shop", network=memory,
                         clock=virtual_clock()) as shop, \
            open_node(node_key(1, 1), listen="memory://early", network=memory,
                      bootstrap=["memory://shop"], clock=virtual_clock(EPOCH + 120)) as early:
        assert early.mesh is not None
        await early.mesh.wait_connected()
        ran = count_orders(shop)
        early.add_proofs(shop.grant(early.did, "/shop", lifetime=None))
        with trio.fail_after(10), pytest.raises(RemoteError) as refused:
            await early.root.invoke(shop.root.handle, "/shop/order", {"amount": 1})
        # The shop refused it TooEarly; that refusal, stamped by the shop's clock, is
        # expired by the sender's: it is told the clocks disagree, not left to time out.
        assert refused.value.name == "ClockSkew"
        assert "clocks disagree" in refused.value.message
        assert shop.metrics()["refused.TooEarly"] == 1
        assert ran["/shop/order"] == 0


async def test_a_grant_not_yet_valid_is_refused_as_too_early_then_works(network, autojump_clock):
    shop, customer = network[0], network[1]
    ran = count_orders(shop)
    chain = [grant(shop, customer, "/shop", delay=120)]  # beyond the 60 s skew tolerated
    await shop.receive(order_from(customer, shop, chain, reply=True), topic=None,
                       via=customer.peer_id)
    await settle()
    assert shop.metrics()["refused.TooEarly"] == 1
    await network.advance(60)  # within the skew of its start: the clocks may disagree
    with trio.fail_after(10):
        reply = await customer.root.invoke(shop.root.handle, "/shop/order", {"amount": 2})
    assert reply == {"ordered": 2}
    assert ran["/shop/order"] == 1


async def test_a_behavior_that_raises_answers_with_an_error_not_a_timeout(
        network, autojump_clock, caplog: pytest.LogCaptureFixture):
    shop, customer = network[0], network[1]

    @shop.root.behavior("/shop/order")
    async def order(message: Any) -> Any:
        raise ValueError("out of stock")

    grant(shop, customer, "/shop")
    with trio.fail_after(10), pytest.raises(RemoteError) as failed:
        await customer.root.invoke(shop.root.handle, "/shop/order", {"amount": 2})
    assert failed.value.name == "BehaviorFailed"
    assert "ValueError" in failed.value.message
    assert "out of stock" not in failed.value.message  # internals stay on the node...
    assert "out of stock" in caplog.text  # ...in its log, with the traceback
