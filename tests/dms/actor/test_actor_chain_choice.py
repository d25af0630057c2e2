"""How a sender picks its proof chain, and answers that must never be timeouts."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from dms.actor import RemoteError
from dms.testing import grant, open_testbed


async def test_the_sender_picks_the_grant_whose_policy_the_args_satisfy(autojump_clock):
    async with open_testbed(2) as net:
        shop, customer = net[0], net[1]

        @shop.root.behavior("/shop/order")
        async def order(message: Any) -> Any:
            return message.args["amount"]

        grant(shop, customer, "/shop", policy=[[">", ".amount", 50]])
        grant(shop, customer, "/shop")  # unrestricted: proves any amount
        with trio.fail_after(10):
            assert await customer.root.invoke(shop.root.handle, "/shop/order",
                                              {"amount": 0}) == 0


async def test_a_sender_without_a_valid_chain_still_learns_the_precise_reason(autojump_clock):
    async with open_testbed(2) as net:
        shop, customer = net[0], net[1]

        @shop.root.behavior("/shop/order")
        async def order(message: Any) -> Any:
            return "ordered"

        grant(shop, customer, "/shop", policy=[["<=", ".amount", 10]])
        with trio.fail_after(10), pytest.raises(RemoteError) as refused:
            await customer.root.invoke(shop.root.handle, "/shop/order", {"amount": 11})
        assert refused.value.name == "MatchError"
        assert ".amount" in refused.value.message


async def test_a_request_to_a_stopped_actor_is_refused_not_left_to_time_out(autojump_clock):
    async with open_testbed(2) as net:
        provider, caller = net[0], net[1]
        worker = await provider.root.spawn("worker", commands=["/jobs"], lifetime=600)
        gone = worker.handle
        await worker.stop()
        grant(provider, caller, "/jobs")
        with trio.fail_after(5), pytest.raises(RemoteError) as refused:
            await caller.root.invoke(gone, "/jobs/run", timeout=4)
        assert refused.value.name == "InvalidAudience"
