"""Child actors: they act with the node's grants, lose them when stopped, and stop with
their parent."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from dms.actor import ActorStopped, RemoteError, encode_message
from dms.testing import grant, network, settle
from ucan import invoke

__all__ = ["network"]  # the fixture, imported for pytest


def serve_orders(node: Any) -> list[str]:
    callers: list[str] = []

    @node.root.behavior("/shop/order")
    async def order(message: Any) -> Any:
        callers.append(message.sender.id)
        return {"ordered": message.args.get("amount")}

    return callers


async def test_a_child_invokes_with_the_grants_its_node_holds(network, autojump_clock):
    shop, customer = network[0], network[1]
    callers = serve_orders(shop)
    grant(shop, customer, "/shop")
    child = await customer.root.spawn("buyer", commands=["/shop/order"], lifetime=600)
    with trio.fail_after(10):
        reply = await child.invoke(shop.root.handle, "/shop/order", {"amount": 3})
    assert reply == {"ordered": 3}
    assert callers == [child.id]


async def test_a_child_gets_no_more_than_the_commands_it_was_spawned_with(network, autojump_clock):
    shop, customer = network[0], network[1]
    serve_orders(shop)

    @shop.root.behavior("/shop/refund")
    async def refund(message: Any) -> Any:
        return "refunded"

    grant(shop, customer, "/shop")
    child = await customer.root.spawn("buyer", commands=["/shop/order"], lifetime=600)
    with trio.fail_after(10), pytest.raises(RemoteError) as refused:
        await child.invoke(shop.root.handle, "/shop/refund")
    assert refused.value.name == "InvalidClaim"


async def test_a_child_stops_at_the_end_of_its_lifetime_and_its_chain_is_refused(
        network, autojump_clock):
    shop, customer = network[0], network[1]
    serve_orders(shop)
    grant(shop, customer, "/shop")
    child = await customer.root.spawn("buyer", commands=["/shop/order"], lifetime=60)
    with trio.fail_after(10):
        assert await child.invoke(shop.root.handle, "/shop/order", {"amount": 1})
    await network.advance(60 + 61)  # past its lifetime and the 60 s clock skew tolerated
    assert child.id not in customer.actors
    with pytest.raises(ActorStopped):
        await child.invoke(shop.root.handle, "/shop/order", {"amount": 1})
    # Its key still signs and its old chain still exists: the shop refuses it anyway.
    chain = customer.trust.find_chain(child.id, "/shop/order", shop.did,
                                      now=int(customer.clock()), strict=False, extra=[
                                          *child.delegations])
    assert chain
    now = int(customer.clock())
    late = invoke(child.key, shop.did, "/shop/order", {"amount": 1}, [d.cid for d in chain],
                  audience=shop.did, expiration=now + 30, issued_at=now)
    await shop.receive(encode_message(late, chain), topic=None, via=customer.peer_id)
    await settle()
    assert shop.metrics()["refused.Expired"] == 1


async def test_a_stopped_child_grants_are_revoked_on_its_node(network, autojump_clock):
    node = network[0]
    served: list[str] = []

    @node.root.behavior("/jobs/run")
    async def run(message: Any) -> Any:
        served.append(message.sender.id)
        return "ran"

    child = await node.root.spawn("runner", commands=["/jobs"], lifetime=600)
    with trio.fail_after(10):
        assert await child.invoke(node.root.handle, "/jobs/run") == "ran"
    grants = child.delegations
    await child.stop()
    assert grants
    for delegation in grants:
        assert delegation.cid not in node.trust.provided
        assert node.did in node.trust.revocations.revokers(delegation.cid)
    # Its key still signs, and the old chain is presented, but the node refuses it.
    rooted = [d for d in grants if d.sub == node.did]
    now = int(node.clock())
    stale = invoke(child.key, node.did, "/jobs/run", {}, [d.cid for d in rooted],
                   audience=node.did, expiration=now + 30, issued_at=now)
    await node.receive(encode_message(stale, rooted), topic=None, via=node.peer_id)
    await settle()
    assert node.metrics()["refused.Revoked"] == 1
    assert served == [child.id]


async def test_stopping_a_parent_stops_its_children(network, autojump_clock):
    node, other = network[0], network[1]
    parent = await node.root.spawn("parent", commands=["/jobs"], lifetime=600)
    kid = await parent.spawn("kid", commands=["/jobs"], lifetime=600)
    kid_cancelled = trio.Event()

    @kid.behavior("/jobs/run")
    async def run(message: Any) -> Any:
        try:
            await trio.sleep_forever()
        finally:
            kid_cancelled.set()

    await kid.send(kid.handle, "/jobs/run")
    await settle()
    with trio.fail_after(10):
        await parent.stop()
    assert kid_cancelled.is_set()
    assert parent.id not in node.actors
    assert kid.id not in node.actors
    grant(node, other, "/jobs")
    await other.root.send(kid.handle, "/jobs/run")
    await settle()
    assert node.metrics()["refused.InvalidAudience"] == 1
