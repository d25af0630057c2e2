"""Hostile review of the actor runtime: each test is a finding that failed before its fix."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from dms.actor import ActorStopped, encode_message
from dms.testing import grant, network, settle
from ucan import invoke

__all__ = ["network"]  # the fixture, imported for pytest


async def test_a_stopped_childs_powerline_grant_is_revoked_on_the_other_nodes_too(
        network, autojump_clock):
    """A child's grants are powerline: with the node's proofs they act on other nodes.
    Stopping the child must retract them there too, not only on its own node, or its
    (leaked) key keeps the node's authority elsewhere for as long as the grant lives
    (forever for a child of the root spawned without a lifetime)."""
    shop, customer = network[0], network[1]

    @shop.root.behavior("/shop/order")
    async def order(message: Any) -> Any:
        return "ordered"

    grant(shop, customer, "/shop")
    child = await customer.root.spawn("buyer", commands=["/shop/order"])  # no lifetime
    with trio.fail_after(10):
        assert await child.invoke(shop.root.handle, "/shop/order") == "ordered"
    now = int(customer.clock())
    chain = customer.trust.find_chain(child.id, "/shop/order", shop.did, now=now)
    assert chain is not None
    await child.stop()
    await settle()
    with pytest.raises(ActorStopped):
        await child.invoke(shop.root.handle, "/shop/order")
    # The stopped child's key (a local script kept it) signs with the same chain.
    now = int(customer.clock())
    stale = invoke(child.key, shop.did, "/shop/order", {}, [d.cid for d in chain],
                   audience=shop.did, expiration=now + 30, issued_at=now)
    accepted = shop.metrics().get("accepted", 0)
    await shop.receive(encode_message(stale, chain), topic=None, via=customer.peer_id)
    await settle()
    assert shop.metrics().get("accepted", 0) == accepted
    assert shop.metrics()["refused.Revoked"] == 1
