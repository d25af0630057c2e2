"""The sender remembers its chosen proof chain, and never uses a remembered chain that
was revoked, expired, dropped or whose policy the new args fail."""

from __future__ import annotations

from typing import Any

import trio

from dms.actor._chain_choice import ChainChoices
from dms.testing import grant, open_testbed
from ucan import SigningKey, TrustContext, delegate, revoke


def shop_with_echoed_proofs(shop: Any) -> None:
    @shop.root.behavior("/shop/order")
    async def order(message: Any) -> Any:
        return [str(cid) for cid in message.invocation.prf]


async def order(customer: Any, shop: Any, amount: int = 1) -> list[str]:
    with trio.fail_after(10):
        proofs: list[str] = await customer.root.invoke(
            shop.root.handle, "/shop/order", {"amount": amount})
        return proofs


async def test_a_stream_of_requests_searches_for_its_chain_once(autojump_clock, monkeypatch):
    async with open_testbed(2) as net:
        shop, customer = net[0], net[1]
        shop_with_echoed_proofs(shop)
        granted = grant(shop, customer, "/shop")
        searches = []
        find_chain = customer.trust.find_chain
        monkeypatch.setattr(customer.trust, "find_chain",
                            lambda *a, **k: searches.append(a) or find_chain(*a, **k))
        for _ in range(5):
            assert await order(customer, shop) == [str(granted.cid)]
        assert len(searches) == 1
        assert customer.system.chain_choices.hits == 4


async def test_a_remembered_chain_is_not_used_once_revoked(autojump_clock):
    async with open_testbed(2) as net:
        shop, customer = net[0], net[1]
        shop_with_echoed_proofs(shop)
        first = grant(shop, customer, "/shop")
        second = grant(shop, customer, "/shop")
        assert await order(customer, shop) == [str(first.cid)]
        # only the sender learns of it: the shop would still accept the revoked chain
        customer.trust.revocations.add(revoke(shop.key, first))
        assert await order(customer, shop) == [str(second.cid)]


async def test_a_remembered_chain_is_not_used_once_expired(autojump_clock):
    async with open_testbed(2) as net:
        shop, customer = net[0], net[1]
        shop_with_echoed_proofs(shop)
        short = grant(shop, customer, "/shop", lifetime=60)
        long = grant(shop, customer, "/shop", lifetime=3600)
        assert await order(customer, shop) == [str(short.cid)]
        await trio.sleep(120 + customer.system.policy.skew)
        assert await order(customer, shop) == [str(long.cid)]


async def test_a_remembered_chain_is_not_used_for_args_its_policy_refuses(autojump_clock):
    async with open_testbed(2) as net:
        shop, customer = net[0], net[1]
        shop_with_echoed_proofs(shop)
        small = grant(shop, customer, "/shop", policy=[["<=", ".amount", 10]])
        anything = grant(shop, customer, "/shop")
        assert await order(customer, shop, 5) == [str(small.cid)]
        assert await order(customer, shop, 50) == [str(anything.cid)]


async def test_a_remembered_chain_is_not_used_once_its_grant_is_dropped(autojump_clock):
    async with open_testbed(2) as net:
        shop, customer = net[0], net[1]
        shop_with_echoed_proofs(shop)
        first = grant(shop, customer, "/shop")
        second = grant(shop, customer, "/shop")
        assert await order(customer, shop) == [str(first.cid)]
        customer.trust.provided.pop(first.cid)
        assert await order(customer, shop) == [str(second.cid)]


def test_remembered_choices_stay_bounded() -> None:
    issuer, holder = SigningKey.generate(), SigningKey.generate()
    trust = TrustContext(holder.did)
    chain = [delegate(issuer, holder.did, "/shop", expiration=None)]
    choices = ChainChoices(trust, capacity=16)
    for n in range(1000):
        choices.remember(("sender", f"/shop/c{n}"), issuer.did, chain)
    assert len(choices) == 16
    assert choices.get(("sender", "/shop/c999"), now=0, skew=0, args={}) is not None
    assert choices.get(("sender", "/shop/c0"), now=0, skew=0, args={}) is None
