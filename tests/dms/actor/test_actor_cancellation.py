"""Cancellation: closing a node cancels its actors; a cancelled caller leaves no reply
slot behind; a node that dies mid-request gives its caller a timeout naming it."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from dms.actor import RequestTimeout
from dms.net import MemoryNetwork
from dms.node import Node, open_node
from dms.testing import grant, network, node_key, settle, virtual_clock

__all__ = ["network"]  # the fixture, imported for pytest


def hang_on(node: Node, command: str) -> dict[str, Any]:
    """A behavior that waits forever; the dict records that it started and how it ended."""
    seen: dict[str, Any] = {"started": trio.Event(), "cancelled": False}

    @node.root.behavior(command)
    async def hang(message: Any) -> Any:
        seen["started"].set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            seen["cancelled"] = True
            raise

    return seen


async def test_closing_a_node_cancels_its_actors_and_their_behaviors(autojump_clock):
    memory = MemoryNetwork()
    with trio.fail_after(60):
        async with open_node(node_key(2, 0), listen="memory://a", network=memory,
                             clock=virtual_clock()) as node:
            root_call = hang_on(node, "/work")
            child = await node.root.spawn("worker", commands=["/work"], lifetime=600)
            child_done: dict[str, Any] = {"cancelled": False}

            @child.behavior("/work")
            async def work(message: Any) -> Any:
                try:
                    await trio.sleep_forever()
                except trio.Cancelled:
                    child_done["cancelled"] = True
                    raise

            await node.root.send(node.root.handle, "/work")
            await child.send(child.handle, "/work")
            await root_call["started"].wait()
            await settle()
        assert root_call["cancelled"]
        assert child_done["cancelled"]
        assert child.id not in node.actors


async def test_a_cancelled_caller_leaves_no_reply_slot(network, autojump_clock):
    shop, customer = network[0], network[1]
    seen = hang_on(shop, "/shop/order")
    grant(shop, customer, "/shop")
    with trio.move_on_after(5) as scope:
        await customer.root.invoke(shop.root.handle, "/shop/order", {"amount": 1},
                                   timeout=3600)
    assert scope.cancelled_caught
    assert seen["started"].is_set()
    assert customer.system.pending == {} and customer.system.router.outstanding == 0


async def test_a_timed_out_request_leaves_no_reply_slot(network, autojump_clock):
    shop, customer = network[0], network[1]
    hang_on(shop, "/shop/order")
    grant(shop, customer, "/shop")
    with trio.fail_after(60), pytest.raises(RequestTimeout):
        await customer.root.invoke(shop.root.handle, "/shop/order", timeout=5)
    assert customer.system.pending == {} and customer.system.router.outstanding == 0


async def test_a_node_that_dies_mid_request_gives_a_timeout_naming_it(autojump_clock):
    memory = MemoryNetwork()
    clock = virtual_clock()
    shop_scope = trio.CancelScope()
    shop_up = trio.Event()
    shop: list[Node] = []
    seen: list[dict[str, Any]] = []

    async def run_shop() -> None:
        with shop_scope:
            async with open_node(node_key(3, 1), listen="memory://shop", network=memory,
                                 bootstrap=["memory://caller"], clock=clock) as node:
                seen.append(hang_on(node, "/shop/order"))
                shop.append(node)
                shop_up.set()
                await trio.sleep_forever()

    async def kill_shop_once_busy() -> None:
        await seen[0]["started"].wait()
        shop_scope.cancel()

    async with open_node(node_key(3, 0), listen="memory://caller", network=memory,
                         clock=clock) as caller, trio.open_nursery() as nursery:
        nursery.start_soon(run_shop)
        with trio.fail_after(60):
            await shop_up.wait()
            assert caller.mesh is not None
            await caller.mesh.wait_connected()
            caller.add_proofs(shop[0].grant(caller.did, "/shop"))
            nursery.start_soon(kill_shop_once_busy)
            with pytest.raises(RequestTimeout) as timed_out:
                await caller.root.invoke(shop[0].root.handle, "/shop/order", timeout=10)
        assert seen[0]["cancelled"]
        assert timed_out.value.peer == shop[0].peer_id
        assert shop[0].peer_id in str(timed_out.value)
        assert caller.system.pending == {} and caller.system.router.outstanding == 0
