"""Roles and typed behaviors: args structured by the wire converter before the behavior
runs, bad args refused with the field named, commands checked at registration."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio

from dms.actor import InvalidBehavior, Message, RemoteError, Role, behavior
from dms.testing import grant, network

__all__ = ["network"]


@attrs.frozen
class Resources:
    cpu: float
    ram: int = 0


@attrs.frozen
class BidRequest:
    ensemble: str
    resources: Resources
    tags: tuple[str, ...] = ()


@attrs.frozen
class Bid:
    price: float
    provider: str


class Provider(Role):
    def __init__(self) -> None:
        self.requests: list[BidRequest] = []

    @behavior("/market/bid", args=BidRequest)
    async def bid(self, message: Message[BidRequest]) -> Bid:
        self.requests.append(message.args)
        return Bid(price=message.args.resources.cpu * 2, provider=self.actor.id)

    @behavior("/market/ping")
    async def ping(self, message: Message[Any]) -> str:
        return "pong"


async def test_a_role_answers_with_typed_args_and_an_unstructured_result(network,
                                                                         autojump_clock):
    provider, customer = network[0], network[1]
    role = provider.root.register(Provider())
    assert role.actor is provider.root
    grant(provider, customer, "/market")
    with trio.fail_after(10):
        answer = await customer.root.invoke(provider.root.handle, "/market/bid", BidRequest(
            "e1", Resources(cpu=1.5, ram=2)))
        assert await customer.root.invoke(provider.root.handle, "/market/ping") == "pong"
    assert answer == {"price": 3.0, "provider": provider.did}
    assert role.requests == [BidRequest("e1", Resources(1.5, 2))]


@pytest.mark.parametrize(("args", "path"), [
    ({"ensemble": "e1", "resources": {"cpu": "lots"}}, "args.resources.cpu"),
    ({"ensemble": "e1"}, "args.resources"),
    ({"ensemble": "e1", "resources": {"cpu": 1}, "colour": "red"}, "colour"),
    ({"ensemble": "e1", "resources": {"cpu": 1}, "tags": [1, 2]}, "args.tags"),
])
async def test_bad_args_are_refused_with_the_field_named_and_the_behavior_never_runs(
        network, autojump_clock, args: dict[str, Any], path: str):
    provider, customer = network[0], network[1]
    role = provider.root.register(Provider())
    grant(provider, customer, "/market")
    with trio.fail_after(10), pytest.raises(RemoteError) as refused:
        await customer.root.invoke(provider.root.handle, "/market/bid", args)
    assert refused.value.name == "InvalidArgs"
    assert path in refused.value.message
    assert role.requests == []


@pytest.mark.parametrize("command", ["/Shop", "shop", "/shop/", "/shop//order", "/shop order",
                                     "/dms/Ärger", "/ΣHOP", "/Заказ"])
async def test_a_malformed_command_fails_at_registration(network, autojump_clock,
                                                          command: str):
    with pytest.raises(InvalidBehavior):
        network[0].root.behavior(command)

    with pytest.raises(InvalidBehavior):
        class Bad(Role):
            @behavior(command)
            async def handle(self, message: Message[Any]) -> None: ...


async def test_a_command_gets_one_behavior(network, autojump_clock):
    root = network[0].root
    root.register(Provider())
    with pytest.raises(InvalidBehavior):
        root.register(Provider())  # /market/bid is taken
    with pytest.raises(InvalidBehavior):
        root.behavior("/market/ping")(Provider().ping)


async def test_a_role_belongs_to_one_actor(network, autojump_clock):
    role = Provider()
    network[0].root.register(role)
    child = await network[0].root.spawn("other", commands=["/market"])
    with pytest.raises(InvalidBehavior):
        child.register(role)


def test_args_must_be_an_attrs_class() -> None:
    with pytest.raises(InvalidBehavior):
        class Bad(Role):
            @behavior("/x", args=dict)
            async def handle(self, message: Message[Any]) -> None: ...

        Bad().actor  # noqa: B018  (never reached: the class body fails)


@attrs.frozen
class News:
    headline: str


async def test_a_typed_behavior_takes_broadcasts_without_declaring_their_topic(
        network, autojump_clock):
    from dms.testing import settle

    publisher, reader = network[0], network[1]
    heard: list[tuple[News, str | None]] = []

    @reader.root.behavior("/news/post", args=News)
    async def post(message: Message[News]) -> None:
        heard.append((message.args, message.topic))

    reader.root.subscribe("/news")
    reader.trust.add_anchor(publisher.did)
    await publisher.root.broadcast("/news", "/news/post", {"headline": "hi"},
                                   subject=publisher.did)
    await settle()
    assert heard == [(News("hi"), "/news")]
