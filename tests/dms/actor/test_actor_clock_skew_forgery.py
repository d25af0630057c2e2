"""Hostile review of the ClockSkew failure: a reply refused for its time bounds fails
its outstanding request at once, so a third party who learned a request's id (it sees
the request pass) must not be able to fail it that way: an expired reply naming the
request, signed by anybody but the expected responder, is dropped, and the genuine
reply still settles the request."""

from __future__ import annotations

from typing import Any

import trio

from dms.actor import REPLY, ActorSystem, encode_message
from ucan import SigningKey, delegate, invoke

from .test_actor_system_carrier import NOW, system


async def test_a_third_partys_expired_reply_does_not_fail_someone_elses_request() -> None:
    systems: dict[str, ActorSystem] = {}
    shop, customer = system(SigningKey.generate(), systems), system(SigningKey.generate(),
                                                                   systems)
    attacker = SigningKey.generate()
    release = trio.Event()

    @shop.root.behavior("/shop/order")
    async def order(message: Any) -> Any:
        await release.wait()
        return {"ordered": 1}

    customer.trust.provide(delegate(shop.key, customer.did, "/shop", expiration=None))
    results: list[Any] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(shop.run)
        await nursery.start(customer.run)

        async def ask() -> None:
            results.append(await customer.root.invoke(shop.root.handle, "/shop/order", {}))

        nursery.start_soon(ask)
        with trio.fail_after(5):
            while not customer.pending:
                await trio.sleep(0)
        (request,) = customer.pending
        for signer, claimed in ((attacker, attacker.did), (attacker, shop.did)):
            forged = invoke(signer, claimed, REPLY, {"ran": request, "out": {"ok": 0}},
                            audience=customer.did, expiration=int(NOW) - 600,
                            issued_at=int(NOW) - 630)
            await customer.receive(encode_message(forged), topic=None, via=attacker.did)
        assert customer.pending  # still waiting for the shop
        release.set()
        with trio.fail_after(5):
            while not results:
                await trio.sleep(0)
        nursery.cancel_scope.cancel()
    assert results == [{"ordered": 1}]
    assert customer.metrics()["dropped.misattributed-reply"] == 2  # neither settled it
