"""Plumtree dissemination: the sans-IO tree and cache, and whole overlays on the
memory transport under loss and partitions (trio's MockClock: no wall time)."""

from __future__ import annotations

import random

import pytest
import trio

from dms.net import LinkConditions, MemoryNetwork, Mesh
from dms.net._cache import MessageCache
from dms.net._mesh_wire import Publish
from dms.net._tree import BroadcastTree

from .test_net_mesh_memory import start_mesh

# -- the tree (sans-IO) ---------------------------------------------------------------


ONE, TWO = b"origin-o", b"origin-p"


def test_a_duplicate_prunes_its_link_from_that_publishers_tree_only():
    tree = BroadcastTree()
    tree.add("a")
    tree.add("b")
    assert tree.duplicate("b", ONE) is True  # tell b: PRUNE
    assert tree.duplicate("b", ONE) is True  # it still pushes: the PRUNE was lost
    assert tree.duplicate("stranger", ONE) is False  # not a neighbour: nothing to tell
    assert tree.eager(ONE) == {"a"} and tree.lazy(ONE) == {"b"}
    assert tree.eager(TWO) == {"a", "b"}  # another publisher's tree is its own
    tree.received(b"id", "b", ONE)  # news came first over b: b is on ONE's tree again
    assert tree.eager(ONE) == {"a", "b"}
    tree.pruned("a", TWO)
    tree.grafted("a", TWO)
    assert tree.eager(TWO) == {"a", "b"}


def test_an_announced_publication_that_does_not_arrive_is_grafted_from_each_announcer_in_turn():
    tree = BroadcastTree(graft_timeout=1.0, retry_timeout=0.5)
    for peer in ("a", "b", "c"):
        tree.add(peer)
    tree.announced("a", (b"x", b"known"), now=0.0, have={b"known"})
    tree.announced("b", (b"x",), now=0.2)
    assert tree.due(0.9) == {}  # the tree may still bring it
    assert tree.due(1.0) == {"a": [b"x"]}
    assert tree.due(1.4) == {}
    assert tree.due(1.5) == {"b": [b"x"]}
    assert tree.due(2.0) == {} and tree.missing == 0  # nobody left to ask: given up


def test_an_arrival_cancels_the_repair_and_a_departed_announcer_is_not_asked():
    tree = BroadcastTree(graft_timeout=1.0)
    for peer in ("a", "b"):
        tree.add(peer)
    tree.announced("a", (b"x", b"y"), now=0.0)
    tree.announced("b", (b"y",), now=0.0)
    tree.received(b"x", "b", ONE)
    tree.remove("a")
    assert tree.due(5.0) == {"b": [b"y"]}
    tree.announced("stranger", (b"z",), now=0.0)  # not a neighbour: ignored
    assert tree.missing == 1


def test_missing_ids_trees_and_announcements_are_bounded():
    tree = BroadcastTree(max_missing=3, max_announcers=1, max_origins=2)
    for peer in ("a", "b", "c"):
        tree.add(peer)
    tree.announced("a", tuple(bytes([n]) for n in range(10)), now=0.0)
    tree.announced("b", (b"\x00",), now=0.0)
    assert tree.missing == 3
    assert tree.due(1.0) == {"a": [b"\x00", b"\x01", b"\x02"]}  # b: past max_announcers
    tree.duplicate("a", ONE)
    tree.duplicate("b", ONE)
    assert tree.announce(b"m1", ONE, exclude="a") == []
    assert tree.announce(b"m2", ONE, exclude=None) == []
    assert tree.announce(b"m3", TWO, exclude=None) == []  # TWO's tree: all eager, none lazy
    assert tree.take_announcements() == {"a": (b"m2",), "b": (b"m1", b"m2")}
    assert tree.take_announcements() == {}
    tree.duplicate("a", TWO)
    tree.duplicate("a", b"third")  # past max_origins: the least recently used goes
    assert tree.lazy(ONE) == set() and tree.lazy(TWO) == {"a"}


def test_a_neighbour_announcing_ids_that_never_come_cannot_crowd_out_the_others():
    tree = BroadcastTree(max_missing=8, max_missing_per_peer=4)
    tree.add("liar")
    tree.add("honest")
    tree.announced("liar", tuple(b"fake %d" % n for n in range(100)), now=0.0)
    assert tree.missing == 4
    tree.announced("honest", (b"real",), now=0.0)
    assert tree.missing == 5
    assert tree.due(1.0) == {"liar": [b"fake %d" % n for n in range(4)], "honest": [b"real"]}
    assert tree.due(1.5) == {} and tree.missing == 0  # given up: the liar's share is free
    tree.announced("liar", (b"again",), now=2.0)
    assert tree.missing == 1


def test_a_publication_is_announced_to_lazy_fanout_lazy_neighbours_or_to_all_of_them():
    tree = BroadcastTree(lazy_fanout=3, rng=random.Random(1))
    peers = [f"p{n}" for n in range(6)]
    for peer in peers:
        tree.add(peer)
        tree.duplicate(peer, ONE)
    told: set[str] = set()
    for n in range(20):
        tree.announce(b"id %d" % n, ONE, exclude="p0")
        batches = tree.take_announcements()
        assert len(batches) == 3 and "p0" not in batches  # three, never the sender
        told.update(batches)
    assert told == set(peers) - {"p0"}  # chosen afresh each time: all get their turn
    tree.announce(b"revocation", ONE, exclude="p0", everyone=True)
    assert set(tree.take_announcements()) == set(peers) - {"p0"}
    for n in range(5):  # one interval's publications share the same three frames
        tree.announce(b"burst %d" % n, ONE, exclude=None)
    batches = tree.take_announcements()
    assert len(batches) == 3 and all(len(ids) == 5 for ids in batches.values())


def test_a_neighbour_that_shows_it_has_a_publication_is_not_told_of_it():
    tree = BroadcastTree(lazy_fanout=3)
    for peer in ("a", "b", "c"):
        tree.add(peer)
        tree.duplicate(peer, ONE)  # all lazy on ONE's tree
    for message_id in (b"x", b"y", b"z"):
        tree.announce(message_id, ONE, exclude=None)
    tree.announced("a", (b"x", b"y"), now=0.0, have={b"x", b"y", b"z"})  # a has x and y
    tree.has("b", b"z")  # z came over b's link
    assert tree.take_announcements() == {"a": (b"z",), "b": (b"x", b"y"),
                                         "c": (b"x", b"y", b"z")}
    tree.announce(b"w", ONE, exclude="b")
    tree.announced("a", (b"w",), now=0.0, have={b"w"})
    tree.has("c", b"w")
    assert tree.take_announcements() == {}  # nothing left to tell anyone: no empty IHAVE


def test_the_cache_is_bounded_in_bytes_and_in_time():
    cache = MessageCache(max_bytes=3 * (128 + 100 + 1 + 1), ttl=10.0)
    for n in range(5):
        cache.put(Publish(bytes([n]), "t", 3, bytes(100)), now=float(n))
    assert len(cache) == 3 and cache.get(b"\x00", 4.0) is None
    assert cache.bytes <= cache.max_bytes
    assert cache.recent(since=3.0, now=4.0, limit=10) == (b"\x03", b"\x04")
    assert cache.recent(since=0.0, now=4.0, limit=1) == (b"\x04",)
    assert cache.get(b"\x04", 13.9) is not None
    assert cache.get(b"\x04", 14.0) is None and cache.bytes == 0


def test_one_topic_cannot_hold_more_than_its_bytes_of_the_cache():
    entry = 128 + 100 + 1 + 4  # overhead, payload, id, topic "busy"
    cache = MessageCache(max_bytes=10 * entry, max_topic_bytes=3 * entry, ttl=100.0)
    cache.put(Publish(b"q", "quie", 3, bytes(100)), now=0.0)
    for n in range(20):
        cache.put(Publish(bytes([n]), "busy", 3, bytes(100)), now=1.0 + n)
        assert cache.topic_bytes("busy") <= cache.max_topic_bytes
    assert cache.get(b"q", 30.0) is not None  # older than every busy one, yet kept
    assert [cache.get(bytes([n]), 30.0) is not None for n in range(17, 20)] == [True] * 3
    assert cache.get(bytes([16]), 30.0) is None
    assert cache.bytes == 4 * entry
    assert cache.get(b"q", 100.0) is None and cache.topic_bytes("quie") == 0


def test_a_cache_with_a_topic_bound_above_its_total_is_refused():
    with pytest.raises(ValueError, match="max_topic_bytes must be 1..max_bytes"):
        MessageCache(max_bytes=100, max_topic_bytes=101)


# -- overlays on the memory transport -------------------------------------------------


async def overlay(nursery, network, count, **options) -> list[Mesh]:
    """`count` meshes, each bootstrapping to a random earlier one, all subscribed to
    "/t" and the priority topic "/revocation"."""
    rng = random.Random(count)
    meshes: list[Mesh] = []
    for _ in range(count):
        bootstrap = [rng.choice(meshes).listen_address] if meshes else []
        mesh = await start_mesh(nursery, network, bootstrap,
                                priority_topics=["/revocation"], **options)
        mesh.subscribe("/t")
        mesh.subscribe("/revocation")
        meshes.append(mesh)
    await trio.sleep(20)
    return meshes


def received(mesh: Mesh) -> set[bytes]:
    got = set()
    for inbox in (mesh.incoming, mesh.priority_incoming):
        while True:
            try:
                got.add(inbox.receive_nowait().payload)
            except trio.WouldBlock:
                break
    return got


async def test_every_subscriber_receives_every_publication_under_20_percent_loss(
        autojump_clock):
    network = MemoryNetwork(default=LinkConditions(loss=0.2), seed=7)
    async with trio.open_nursery() as nursery:
        meshes = await overlay(nursery, network, 20)
        payloads = set()
        for n in range(40):  # 4 publishers: their trees get pruned, then lose frames
            publisher = meshes[n % 4]
            topic = "/revocation" if n % 5 == 0 else "/t"
            payloads.add(b"news %d" % n)
            await publisher.publish(topic, b"news %d" % n, loopback=True)
            await trio.sleep(0.1)
        await trio.sleep(45)  # anti-entropy: every 5 s round is another chance
        lost = sum(mesh.metrics["link.dropped_loss"] for mesh in meshes)
        assert lost > 0
        missing = {mesh.peer_id: payloads - received(mesh) for mesh in meshes}
        assert not any(missing.values()), missing
        assert sum(mesh.metrics["mesh.graft_served"] for mesh in meshes) > 0  # repaired
        nursery.cancel_scope.cancel()


async def test_publications_made_during_a_partition_reach_every_node_once_it_heals(
        autojump_clock):
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        meshes = await overlay(nursery, network, 16)
        left, right = meshes[:8], meshes[8:]
        network.partition({m.peer_id for m in left}, {m.peer_id for m in right})
        await trio.sleep(5)
        for n, mesh in enumerate(meshes):
            await mesh.publish("/t", b"split %d" % n, loopback=True)
        await trio.sleep(20)
        assert received(left[0]) == {b"split %d" % n for n in range(8)}  # its side only
        network.heal()
        await trio.sleep(120)
        everything = {b"split %d" % n for n in range(16)}
        assert received(left[0]) == everything - {b"split %d" % n for n in range(8)}
        for mesh in meshes[1:]:
            assert received(mesh) == everything, mesh.peer_id
        nursery.cancel_scope.cancel()


async def test_frames_per_publication_grow_linearly_with_the_node_count(autojump_clock):
    """30 nodes, no exchange rounds in the measured window. After a warm-up (the first
    publications flood and prune the redundant links), each publication costs about one
    frame per node (the tree) plus batched announcements: under 3 per node."""
    network = MemoryNetwork()
    count = 30
    async with trio.open_nursery() as nursery:
        meshes = await overlay(nursery, network, count, exchange_interval=1000.0)
        for n in range(count):
            await meshes[n].publish("/t", b"warm-up %d" % n)
        await trio.sleep(5)
        for mesh in meshes:
            received(mesh)
        before = sum(mesh.metrics["link.frames_out"] for mesh in meshes)
        for n in range(count):
            await meshes[n].publish("/t", b"measured %d" % n)
            await trio.sleep(0.01)
        await trio.sleep(5)
        frames = sum(mesh.metrics["link.frames_out"] for mesh in meshes) - before
        for mesh in meshes:
            assert received(mesh) >= {b"measured %d" % n for n in range(count)} - {
                b"measured %d" % meshes.index(mesh)}
        assert frames / count < 3 * count, frames / count
        nursery.cancel_scope.cancel()


async def test_a_hostile_neighbours_announcements_and_grafts_leave_the_node_working(
        autojump_clock):
    """A leaf announces thousands of ids that never come, asks for ids nobody has and
    prunes trees at random: the victim's repair table keeps its bound, and a real
    publication from an honest neighbour still arrives."""
    import nacl.signing

    from dms.net._mesh_wire import MAX_IDS, Graft, IHave, Prune, encode

    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        victim = await start_mesh(nursery, network)
        victim.subscribe("/t")
        honest = await start_mesh(nursery, network, [victim.listen_address])
        await honest.wait_connected()
        async with network.transport(nacl.signing.SigningKey.generate()) as attacker:
            link = await attacker.connect(victim.listen_address)
            for batch in range(4):
                fakes = tuple(b"fake %d %d" % (batch, n) for n in range(MAX_IDS))
                await link.send(encode(IHave(fakes)))
                await link.send(encode(Graft((b"nobody has this",))))
                await link.send(encode(Prune(b"some tree")))
            await trio.sleep(1)
            assert victim._tree.missing <= victim._tree.max_missing_per_peer
            assert victim.metrics["mesh.graft_missed"] == 4
            await honest.publish("/t", b"real news")
            with trio.fail_after(5):
                assert (await victim.incoming.receive()).payload == b"real news"
        nursery.cancel_scope.cancel()
