"""Mesh policies on the in-process network, under trio's MockClock."""

from __future__ import annotations

from collections.abc import Sequence

import nacl.signing
import pytest
import trio

from dms.net import (
    Backoff,
    Delivery,
    InboxLimits,
    LinkConditions,
    MemoryNetwork,
    Mesh,
    MeshNotRunning,
    PeerUnreachable,
)
from ucan.did import did_from_public_key


async def start_mesh(
    nursery: trio.Nursery,
    network: MemoryNetwork,
    bootstrap: Sequence[str] = (),
    key: nacl.signing.SigningKey | None = None,
    **options,
) -> Mesh:
    key = key or nacl.signing.SigningKey.generate()
    options.setdefault("exchange_interval", 5.0)
    mesh = Mesh(
        key,
        network.transport(key),
        listen="memory://",
        bootstrap=bootstrap,
        backoff=Backoff(initial=0.1, maximum=1.0),
        **options,
    )
    await nursery.start(mesh.run)
    return mesh


async def chain(nursery, network, length, **options) -> list[Mesh]:
    """Meshes linked in a line; `max_peers=1` on the ends keeps exchange from closing it."""
    meshes = [await start_mesh(nursery, network, max_peers=1, **options)]
    for position in range(1, length):
        end = position == length - 1
        previous = meshes[-1].listen_address
        assert previous is not None
        meshes.append(
            await start_mesh(
                nursery,
                network,
                [previous],
                max_peers=1 if end else 2,
                **options,
            )
        )
        await meshes[-1].wait_connected()
    return meshes


@pytest.mark.parametrize(("hop_limit", "reaches_end"), [(1, False), (2, True)])
async def test_hop_limit_bounds_how_far_a_publication_travels(
    autojump_clock, hop_limit, reaches_end
):
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        first, middle, last = await chain(nursery, network, 3, hop_limit=hop_limit)
        assert len(first.connected_peers()) == 1 and len(last.connected_peers()) == 1
        middle.subscribe("t")
        last.subscribe("t")
        await first.publish("t", b"news")
        assert await middle.incoming.receive() == Delivery(first.peer_id, "t", b"news")
        await trio.sleep(1)
        if reaches_end:
            assert last.incoming.receive_nowait() == Delivery(middle.peer_id, "t", b"news")
        else:
            with pytest.raises(trio.WouldBlock):
                last.incoming.receive_nowait()
            assert middle.metrics["mesh.hop_limit_reached"] == 1
        nursery.cancel_scope.cancel()


async def test_rtt_is_measured_by_mesh_ping(autojump_clock):
    network = MemoryNetwork(default=LinkConditions(latency=0.05))
    async with trio.open_nursery() as nursery:
        a = await start_mesh(nursery, network)
        b = await start_mesh(nursery, network, [a.listen_address])
        await b.wait_connected()
        await trio.sleep(1)
        assert b.peers[a.peer_id].rtt_ms == pytest.approx(100.0)
        assert a.peers[b.peer_id].rtt_ms == pytest.approx(100.0)
        assert a.peers[b.peer_id].address == b.listen_address
        nursery.cancel_scope.cancel()


async def test_a_link_peer_past_its_share_is_read_no_further_and_loses_nothing(
        autojump_clock):
    """A peer whose unicasts fill its share of the inbox is not read until the consumer
    takes one: its frames wait in its connection, nothing is dropped, others flow."""
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a = await start_mesh(nursery, network, inbox=InboxLimits(items=8, peer_items=2))
        b = await start_mesh(nursery, network, [a.listen_address])
        c = await start_mesh(nursery, network, [a.listen_address])
        await b.wait_connected()
        await c.wait_connected()
        for n in range(5):
            await b.send(a.peer_id, bytes([n]))
        await trio.sleep(1)
        assert a.incoming.held_by(b.peer_id)[0] == 2
        assert a.metrics["mesh.reads_paused"] >= 1
        await c.send(a.peer_id, b"still flowing")
        got = [await a.incoming.receive() for _ in range(6)]
        assert [d.payload for d in got if d.peer == b.peer_id] == [bytes([n]) for n in range(5)]
        assert Delivery(c.peer_id, None, b"still flowing") in got[:3]
        assert not [k for k in a.metrics if k.startswith("mesh.dropped_incoming")]
        nursery.cancel_scope.cancel()


async def test_send_dials_a_peer_known_only_by_address(autojump_clock):
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        hub = await start_mesh(nursery, network)
        a = await start_mesh(nursery, network, [hub.listen_address], max_peers=1)
        b = await start_mesh(nursery, network, [hub.listen_address], max_peers=1)
        await trio.sleep(6)  # an exchange round: a and b learn each other, do not dial
        assert b.peer_id not in a.connected_peers()
        assert a.peers[b.peer_id].address == b.listen_address
        await a.send(b.peer_id, b"direct")
        assert await b.incoming.receive() == Delivery(a.peer_id, None, b"direct")
        nursery.cancel_scope.cancel()


async def test_send_to_unknown_peer_is_unreachable_naming_it(autojump_clock):
    network = MemoryNetwork()
    stranger = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    async with trio.open_nursery() as nursery:
        a = await start_mesh(nursery, network)
        with pytest.raises(PeerUnreachable, match=stranger):
            await a.send(stranger, b"hello?")
        nursery.cancel_scope.cancel()


async def test_send_to_self_and_loopback_publish_deliver_locally(autojump_clock):
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a = await start_mesh(nursery, network)
        a.subscribe("t")
        await a.send(a.peer_id, b"me")
        assert await a.incoming.receive() == Delivery(a.peer_id, None, b"me")
        await a.publish("t", b"quiet")
        await a.publish("t", b"echo", loopback=True)
        assert await a.incoming.receive() == Delivery(a.peer_id, "t", b"echo")
        assert await a.publish("t", b"echo") == 0  # same content, same id: already seen
        nursery.cancel_scope.cancel()


async def test_simultaneous_dials_settle_on_one_link(autojump_clock):
    network = MemoryNetwork()
    key_a, key_b = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    async with trio.open_nursery() as nursery:
        # Each bootstraps to the other: both dial, both accept, one link must remain.
        meshes = [
            Mesh(k, network.transport(k), listen=f"memory://{name}", bootstrap=[f"memory://{o}"])
            for k, name, o in ((key_a, "a", "b"), (key_b, "b", "a"))
        ]
        for mesh in meshes:
            await nursery.start(mesh.run)
        await trio.sleep(5)
        a, b = meshes
        assert a.connected_peers() == [b.peer_id] and b.connected_peers() == [a.peer_id]
        assert a.metrics["link.handshakes_ok"] == 2  # two links were opened, one kept
        b.subscribe("t")
        await a.publish("t", b"once")
        await trio.sleep(1)
        assert b.incoming.receive_nowait().payload == b"once"
        nursery.cancel_scope.cancel()


async def test_bootstrapping_to_oneself_is_ignored(autojump_clock):
    network = MemoryNetwork()
    key = nacl.signing.SigningKey.generate()
    async with trio.open_nursery() as nursery:
        mesh = Mesh(key, network.transport(key), listen="memory://me", bootstrap=["memory://me"])
        await nursery.start(mesh.run)
        await trio.sleep(5)
        assert mesh.connected_peers() == []
        nursery.cancel_scope.cancel()


async def test_publish_before_run_is_refused():
    key = nacl.signing.SigningKey.generate()
    mesh = Mesh(key, MemoryNetwork().transport(key))
    with pytest.raises(MeshNotRunning, match=mesh.peer_id):
        await mesh.publish("t", b"x")


def test_mesh_refuses_a_transport_of_another_key():
    key, other = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    with pytest.raises(ValueError, match="transport speaks for"):
        Mesh(key, MemoryNetwork().transport(other))


async def test_a_publication_whose_id_is_not_its_content_hash_is_dropped(autojump_clock):
    # A peer that could choose ids could burn the id of a message not yet published
    # (a revocation, say) and so censor it.
    from dms.net._mesh import content_id
    from dms.net._mesh_wire import Publish, encode

    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        victim = await start_mesh(nursery, network)
        victim.subscribe("t")
        attacker_key = nacl.signing.SigningKey.generate()
        async with network.transport(attacker_key) as attacker:
            link = await attacker.connect(victim.listen_address)
            burned = content_id("t", b"the real revocation")
            await link.send(encode(Publish(burned, "t", 4, b"junk")))
            await link.send(encode(Publish(content_id("t", b"ok"), "t", 4, b"ok")))
            assert await victim.incoming.receive() == Delivery(attacker.peer_id, "t", b"ok")
            assert victim.metrics["mesh.dropped_bad_id"] == 1
        nursery.cancel_scope.cancel()


async def test_peer_exchange_cannot_turn_a_node_into_a_dial_storm(autojump_clock):
    from dms.net._mesh_wire import PeerEntry, PeerList, encode

    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        victim = await start_mesh(nursery, network)
        target = await start_mesh(nursery, network)  # the third party to be hammered
        attacker_key = nacl.signing.SigningKey.generate()
        fakes = [nacl.signing.SigningKey.generate() for _ in range(200)]
        async with network.transport(attacker_key) as attacker:
            link = await attacker.connect(victim.listen_address)
            from ucan.did import did_from_public_key

            entries = tuple(PeerEntry(did_from_public_key(bytes(k.verify_key)),
                                      target.listen_address) for k in fakes)
            await link.send(encode(PeerList(entries)))
            await trio.sleep(1)
            assert len(victim._maintained) <= 1  # one learned dial per address
            assert len(victim.peers) <= 64 + 2
        nursery.cancel_scope.cancel()


async def test_a_publication_dropped_for_want_of_room_is_not_marked_seen(autojump_clock):
    """A revocation dropped because the node's incoming queue was full must get through
    when another copy arrives; it used to be marked seen first and refused for 5 minutes."""
    network = MemoryNetwork()
    quiet = {"exchange_interval": 1000.0}
    async with trio.open_nursery() as nursery:
        a = await start_mesh(nursery, network, inbox=InboxLimits(items=1), **quiet)
        a.subscribe("/t")
        b = await start_mesh(nursery, network, [a.listen_address], hop_limit=1, **quiet)
        c = await start_mesh(nursery, network, [a.listen_address], hop_limit=1, **quiet)
        await b.wait_connected()
        await c.wait_connected()
        await b.publish("/t", b"fills the queue")
        await b.publish("/t", b"the revocation")  # past b's share: publications are dropped
        await trio.sleep(1)
        assert a.metrics["mesh.dropped_incoming_peer_full"] == 1
        assert (a.incoming.receive_nowait()).payload == b"fills the queue"
        assert await c.publish("/t", b"the revocation") >= 1  # another copy, from elsewhere
        with trio.fail_after(5):
            assert (await a.incoming.receive()).payload == b"the revocation"
        nursery.cancel_scope.cancel()


async def test_priority_topics_have_a_queue_a_flood_on_other_topics_cannot_fill(
        autojump_clock):
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a = await start_mesh(nursery, network, inbox=InboxLimits(items=2, peer_items=2),
                             priority_topics=["/revocation"])
        a.subscribe("/t")
        a.subscribe("/revocation")
        b = await start_mesh(nursery, network, [a.listen_address])
        await b.wait_connected()
        for n in range(10):
            await b.publish("/t", b"flood %d" % n)
        await b.publish("/revocation", b"revoke it")
        await trio.sleep(1)
        assert a.metrics["mesh.dropped_incoming_peer_full"] == 8  # the flood, past its queue
        assert a.priority_incoming.receive_nowait().payload == b"revoke it"
        nursery.cancel_scope.cancel()


async def test_publications_relayed_for_others_leave_room_for_the_nodes_own_frames(
        autojump_clock):
    """A flood relayed through a node filled the send buffer of its slow link to a
    client, and its replies to that client were refused (LinkBusy) until the flood
    drained: the bench's junk revocations cost its legitimate client 99 % of its
    requests. Relayed publications now fill a link's send buffer to half at most, and
    the node's own frames go out before them."""
    network = MemoryNetwork()
    quiet = {"exchange_interval": 1000.0, "max_peers": 1}
    async with trio.open_nursery() as nursery:
        relay = await start_mesh(nursery, network, exchange_interval=1000.0)
        client_key = nacl.signing.SigningKey.generate()
        network.set_conditions(relay.peer_id, did_from_public_key(bytes(client_key.verify_key)),
                               LinkConditions(bandwidth=1000.0))  # a slow client
        client = await start_mesh(nursery, network, [relay.listen_address], client_key,
                                  **quiet)
        client.subscribe("/t")
        flooder = await start_mesh(nursery, network, [relay.listen_address], **quiet)
        await client.wait_connected()
        await flooder.wait_connected()
        for batch in range(3):  # 600 publications, more than a send buffer holds (256)
            for n in range(200):
                await flooder.publish("/t", b"junk %d %d" % (batch, n))
            await trio.testing.wait_all_tasks_blocked()
        await relay.send(client.peer_id, b"the reply")  # room left: no LinkBusy
        assert relay.metrics["link.dropped_busy_relayed"] > 0
        junk_first = 0
        with trio.fail_after(60):
            while (await client.incoming.receive()).topic is not None:
                junk_first += 1
        assert junk_first <= 2  # what was on the wire already: it skipped the queue
        nursery.cancel_scope.cancel()
