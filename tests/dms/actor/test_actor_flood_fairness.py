"""A flood from some link peers must not starve another's traffic at the node: each
test is a finding of the flood bench (bench/flood_bench.py) that failed before its fix."""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from typing import Any

import nacl.signing
import trio

from dms.actor import encode_message
from dms.net import Delivery, Inbox, LinkSettings
from dms.net._mesh_wire import Unicast, encode
from dms.testing import grant, network, settle
from ucan import CID, SigningKey, invoke, revoke

__all__ = ["network"]  # the fixture, imported for pytest

FLOODERS = 8  # as many links as the bench's attacker keeps busy
FRAMES = 600  # each: together several times what the node's inbox holds


async def test_a_flooding_link_peer_cannot_get_another_peers_requests_dropped(
        network, autojump_clock):
    """All link peers shared one incoming queue of 1024: the flood filled it, and the
    honest peer's requests that came while it was full were dropped with the flood (the
    bench saw 14-40 % of a client's requests answered). Each link peer now has its own
    share of the inbox, read round robin: every honest request is answered."""
    victim, honest = network[0], network[1]

    @victim.root.behavior("/echo")
    async def echo(message: Any) -> Any:
        return message.args

    grant(victim, honest, "/echo")
    junk = encode(Unicast(b"\x40" + bytes(200)))  # unicast that admission drops, unread
    answers: list[Any] = []

    async def ask(i: int) -> None:
        answers.append(await honest.root.invoke(victim.root.handle, "/echo", {"i": i},
                                                timeout=30))

    async with AsyncExitStack() as stack:
        links = []
        for _ in range(FLOODERS):
            transport = await stack.enter_async_context(network.memory.transport(
                nacl.signing.SigningKey.generate(), LinkSettings(send_buffer=FRAMES)))
            links.append(await transport.connect(victim.address, expect_peer=victim.peer_id))

        async def flood(link: Any) -> None:
            for _ in range(FRAMES):
                await link.send(junk)

        async with trio.open_nursery() as nursery:
            for link in links:
                nursery.start_soon(flood, link)
            for i in range(40):  # a request every few scheduling rounds, during the flood
                for _ in range(30):
                    await trio.lowlevel.checkpoint()
                nursery.start_soon(ask, i)
    await settle()
    dropped = {k: v for k, v in victim.metrics().items()
               if k.startswith("net.mesh.dropped_incoming")}
    assert sum(dropped.values()) > 0, "the flood never filled the inbox: it tests nothing"
    assert sorted(answer["i"] for answer in answers) == list(range(40))


async def test_refusals_answered_by_the_whole_node_have_a_budget_fresh_link_peers_share(
        network, autojump_clock):
    """The refusal budget was per link peer only: fresh identities, a handshake each,
    made the bench's victim sign 7,488 refusals in 5 s (7,089 to links already gone).
    Past the node's own budget (burst 400) refusals go unanswered, and are counted."""
    victim = network[0]
    now = int(victim.clock())
    for peer in range(20):  # twenty link peers, each within its own budget (burst 200)
        via = f"did:key:zFresh{peer}"
        key = SigningKey.generate()
        for i in range(100):
            request = invoke(key, victim.did, "/shop/order", {"i": i}, [], audience=victim.did,
                             expiration=now + 60, issued_at=now, meta={"reply": True})
            await victim.receive(encode_message(request), topic=None, via=via)
    await settle()
    metrics = victim.metrics()
    assert metrics["refused.InvalidClaim"] == 2000
    assert metrics.get("dropped.refusal-budget", 0) == 0  # no peer went past its own
    assert metrics["replies.sent"] <= 400 + 10  # the node's burst (and what refilled)
    assert metrics["dropped.node-refusal-budget"] >= 2000 - 410


async def test_a_new_neighbour_is_greeted_with_at_most_1024_kept_revocations(
        network, autojump_clock):
    """A newly linked peer is sent the revocations the node keeps for good (what it may
    have missed while away), but a peer that relinks again and again must not make the
    node send an unbounded amount per handshake: the newest 1024 at most."""
    victim = network[0]
    for _ in range(1100):  # its own: revocations that matter, kept for good
        victim.revocations.apply(revoke(victim.key, CID.for_bytes(os.urandom(16))))
    assert len(victim.trust.revocations.kept_revocations()) == 1100
    sent = victim.metrics().get("net.mesh.greeting_sent", 0)
    async with network.memory.transport(nacl.signing.SigningKey.generate()) as newcomer:
        link = await newcomer.connect(victim.address, expect_peer=victim.peer_id)
        received = 0
        with trio.move_on_after(5):
            while True:
                frame = await link.receive()
                received += frame[:1] == b"\x02"  # PUBLISH
    assert victim.metrics()["net.mesh.greeting_sent"] - sent == 1024
    assert received == 1024


async def test_a_link_peer_whose_messages_are_dear_to_check_gets_the_fewer_turns(
        network, autojump_clock):
    """Turns went round robin: a stranger whose every message costs the node a big
    decode got as many turns as a peer whose messages cost nothing. The node's reader
    now charges each delivery's CPU time to its link peer's turns."""
    victim = network[0]
    stranger = SigningKey.generate()
    now = int(victim.clock())
    dear = encode_message(invoke(stranger, victim.did, "/shop/order",
                                 {"items": list(range(20_000))}, [], audience=victim.did,
                                 expiration=now + 60, issued_at=now))
    inbox = Inbox[Delivery]()
    for n in range(60):  # both peers have plenty waiting before the reader starts
        inbox.put("did:key:zDear", Delivery("did:key:zDear", None, dear), len(dear))
        inbox.put("did:key:zCheap", Delivery("did:key:zCheap", None, b"\x40%d" % n), 8)
    order: list[str] = []
    handle = victim.receive

    async def receive(data: bytes, *, topic: str | None, via: str) -> None:
        order.append(via)
        await handle(data, topic=topic, via=via)

    victim.receive = receive  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(victim._read_mesh, inbox)
        while len(order) < 40:
            await trio.sleep(0)
        nursery.cancel_scope.cancel()
    assert victim.metrics()["refused.InvalidClaim"] >= 1  # the dear ones were checked
    assert order[:40].count("did:key:zDear") <= 8  # round robin: 20
