"""The mesh's fair inbox: the sans-IO core, its trio side, and the mesh using it."""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict, deque

import nacl.signing
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from dms.net import Backoff, Delivery, Inbox, InboxLimits, LinkBusy, MemoryNetwork, Mesh
from dms.net._inbox import DropReason, FairInbox
from dms.net._mesh import content_id
from dms.net._mesh_wire import Publish, Unicast, encode


async def test_receive_is_one_checkpoint_whether_it_waits_or_not() -> None:
    inbox = Inbox[str]()
    inbox.put("a", "waiting", 1)
    with trio.testing.assert_checkpoints():
        assert await inbox.receive() == "waiting"  # there already: it still yields
    got = []
    async with trio.open_nursery() as nursery:

        async def consume() -> None:
            with trio.testing.assert_checkpoints():
                got.append(await inbox.receive())

        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        inbox.put("a", "later", 1)
    assert got == ["later"]


def drain(inbox: FairInbox[str]) -> list[str]:
    taken = []
    while (next_one := inbox.take()) is not None:
        taken.append(next_one[1])
    return taken


def test_deliveries_are_taken_round_robin_between_link_peers():
    inbox = FairInbox[str](InboxLimits(items=100))
    for n in range(5):
        assert inbox.offer("flood", f"f{n}", 1) == []
    assert inbox.offer("quiet", "q0", 1) == []
    assert inbox.offer("quiet", "q1", 1) == []
    assert drain(inbox) == ["f0", "q0", "f1", "q1", "f2", "f3", "f4"]
    assert (inbox.items, inbox.bytes) == (0, 0)


def test_a_link_peer_past_its_share_in_items_or_bytes_is_dropped_alone():
    inbox = FairInbox[str](InboxLimits(items=100, total_bytes=1000, peer_items=3,
                                       peer_bytes=250))
    assert [inbox.offer("flood", f"f{n}", 10) for n in range(3)] == [[], [], []]
    assert inbox.offer("flood", "f3", 10) == [("f3", DropReason.PEER_FULL)]
    assert inbox.offer("big", "b0", 200) == []
    assert inbox.offer("big", "b1", 51) == [("b1", DropReason.PEER_FULL)]  # 251 bytes
    assert inbox.offer("quiet", "q0", 10) == []
    assert inbox.held_by("flood") == (3, 30)
    assert sorted(drain(inbox)) == ["b0", "f0", "f1", "f2", "q0"]


def test_a_full_inbox_makes_room_for_a_quiet_peer_from_the_newest_of_the_heaviest():
    inbox = FairInbox[str](InboxLimits(items=6, peer_items=4))
    for n in range(4):
        inbox.offer("flood", f"f{n}", 1)
    inbox.offer("other", "o0", 1)
    inbox.offer("other", "o1", 1)
    # Full: the quiet peer's newcomer displaces the flood's newest, not `other`'s.
    assert inbox.offer("quiet", "q0", 1) == [("f3", DropReason.DISPLACED)]
    # The heaviest's own newcomer is dropped, never another's item.
    assert inbox.offer("flood", "f4", 1) == [("f4", DropReason.FULL)]
    # A tie (other would hold 3 as flood does) displaces nothing either.
    assert inbox.offer("other", "o2", 1) == [("o2", DropReason.FULL)]
    assert drain(inbox) == ["f0", "o0", "q0", "f1", "o1", "f2"]


def test_a_big_newcomer_displaces_several_items_of_heavier_peers_or_none():
    limits = InboxLimits(items=100, total_bytes=100, peer_bytes=60)
    inbox = FairInbox[str](limits)
    for n in range(6):
        inbox.offer("flood", f"f{n}", 10)  # 60 bytes: a full share
    inbox.offer("other", "o0", 30)
    assert inbox.offer("quiet", "q0", 25) == [("f5", DropReason.DISPLACED),
                                              ("f4", DropReason.DISPLACED)]
    assert inbox.bytes == 95
    assert drain(inbox) == ["f0", "o0", "q0", "f1", "f2", "f3"]


def test_a_newcomer_that_cannot_be_made_room_for_displaces_nothing_and_the_order_stays():
    inbox = FairInbox[str](InboxLimits(items=100, total_bytes=100, peer_bytes=60))
    for n in range(5):
        inbox.offer("a", f"a{n}", 10)
        inbox.offer("b", f"b{n}", 10)
    # 45 bytes need 45 freed; a and b may give up only down to the newcomer's load
    # (45 of 60): 10 each. Refused, and what was taken out on the way is put back.
    assert inbox.offer("c", "c0", 45) == [("c0", DropReason.FULL)]
    assert (inbox.items, inbox.bytes) == (10, 100)
    assert drain(inbox) == [f"{p}{n}" for n in range(5) for p in "ab"]


def test_the_leftovers_of_a_peer_whose_link_is_gone_are_displaced_first():
    """A flood that rotates identities left each one's deliveries behind, each taking a
    turn of its own: a quiet peer's turn came once per round over all of them."""
    inbox = FairInbox[str](InboxLimits(items=4, peer_items=3))
    inbox.offer("gone", "g0", 1)
    for n in range(3):
        inbox.offer("flood", f"f{n}", 1)
    inbox.depart("gone")
    assert inbox.offer("quiet", "q0", 1) == [("g0", DropReason.DISPLACED)]  # not f2
    inbox.arrive("gone")  # it came back, and weighs as anyone again
    assert inbox.offer("gone", "g1", 1) == [("f2", DropReason.DISPLACED)]
    assert drain(inbox) == ["g1", "f0", "q0", "f1"]


def test_a_peer_at_its_share_is_not_read_until_the_consumer_takes_one_of_its_own():
    inbox = FairInbox[str](InboxLimits(items=100, peer_items=2))
    inbox.offer("flood", "f0", 1)
    assert not inbox.blocked("flood")
    inbox.offer("flood", "f1", 1)
    assert inbox.blocked("flood")  # its next would be dropped
    inbox.offer("quiet", "q0", 1)
    assert inbox.take() == ("flood", "f0")
    assert not inbox.blocked("flood") and inbox.released() == ["flood"]
    assert inbox.released() == []


def test_a_peer_refused_for_want_of_room_while_holding_none_is_read_once_there_is_room():
    inbox = FairInbox[str](InboxLimits(items=2, peer_items=1))
    inbox.offer("a", "a0", 1)
    inbox.offer("b", "b0", 1)
    assert inbox.offer("c", "c0", 1) == [("c0", DropReason.FULL)]  # a tie: no room
    assert inbox.blocked("c")
    assert inbox.take() == ("a", "a0")
    assert not inbox.blocked("c") and sorted(inbox.released()) == ["a", "c"]


def test_a_delivery_too_big_for_any_share_does_not_stop_its_peer_being_read():
    inbox = FairInbox[str](InboxLimits(items=10, total_bytes=100, peer_bytes=50))
    assert inbox.offer("p", "huge", 60) == [("huge", DropReason.PEER_FULL)]
    assert not inbox.blocked("p")  # nothing of it queued, no take would unblock it
    assert inbox.offer("p", "small", 10) == []


@st.composite
def traffic(draw: st.DrawFn) -> tuple[InboxLimits, list[tuple[str, int] | None]]:
    items = draw(st.integers(1, 12))
    limits = InboxLimits(items=items, total_bytes=draw(st.integers(1, 120)),
                         peer_items=draw(st.none() | st.integers(1, items + 2)),
                         peer_bytes=draw(st.none() | st.integers(1, 80)))
    step = (st.none() | st.tuples(st.sampled_from("abcd"), st.integers(0, 40))
            | st.tuples(st.sampled_from(["depart", "arrive"]), st.sampled_from("abcd")))
    return limits, draw(st.lists(step, max_size=80))


def _load(limits: InboxLimits, held: tuple[int, int]) -> float:
    return max(held[0] / limits.per_peer_items, held[1] / limits.per_peer_bytes)


@settings(max_examples=200, deadline=None)
@given(traffic())
def test_the_inbox_keeps_its_bounds_its_order_and_never_displaces_a_quieter_peer(case):
    limits, steps = case
    inbox = FairInbox[tuple[str, int]](limits)
    model: dict[str, deque[tuple[tuple[str, int], int]]] = defaultdict(deque)
    fate: Counter[str] = Counter()
    departed: set[str] = set()  # peers departed while holding deliveries
    unread: set[str] = set()  # peers departed and not back: the mesh reads nothing of them
    serial = 0
    for step in steps:
        if step is None:
            taken = inbox.take()
            if taken is None:
                assert not any(model.values())
                continue
            peer, item = taken
            assert model[peer].popleft()[0] == item  # first in, first out per peer
            if not model[peer]:
                departed.discard(peer)
            fate["taken"] += 1
            continue
        if step[0] in ("depart", "arrive"):
            getattr(inbox, step[0])(step[1])
            if step[0] == "depart":
                unread.add(step[1])
                if model[step[1]]:
                    departed.add(step[1])
            else:
                unread.discard(step[1])
                departed.discard(step[1])
            continue
        peer, size = step
        assert isinstance(size, int)
        if peer in unread:
            continue  # no link, nothing read from it
        serial += 1
        item = (peer, serial)
        before = {p: inbox.held_by(p) for p in "abcd"}
        newcomer_load = _load(limits, (before[peer][0] + 1, before[peer][1] + size))
        dropped = inbox.offer(peer, item, size)
        if dropped and dropped[0][0] == item:
            assert len(dropped) == 1 and dropped[0][1] in (DropReason.PEER_FULL,
                                                          DropReason.FULL)
            fate["refused"] += 1
        else:
            model[peer].append((item, size))
            for lost, reason in dropped:
                assert reason is DropReason.DISPLACED
                owner = lost[0]
                assert owner != peer
                # A departed peer's first, else a heavier peer's.
                assert owner in departed or (not departed & {p for p in model if model[p]}
                                             and _load(limits, before[owner]) > newcomer_load)
                assert model[owner].pop()[0] == lost  # its newest
                fate["displaced"] += 1
        for p, queue in model.items():
            if len(queue) >= limits.per_peer_items and p not in unread:
                assert inbox.blocked(p)  # its next would be dropped: not read
        assert inbox.items == sum(len(q) for q in model.values()) <= limits.items
        assert inbox.bytes == sum(s for q in model.values() for _, s in q) <= limits.total_bytes
        for p, queue in model.items():
            assert inbox.held_by(p) == (len(queue), sum(s for _, s in queue))
            assert len(queue) <= limits.per_peer_items
            assert sum(s for _, s in queue) <= limits.per_peer_bytes
    assert fate["taken"] + fate["refused"] + fate["displaced"] + inbox.items == serial
    drain_all = drain(inbox)  # type: ignore[arg-type]
    assert len(drain_all) == sum(len(q) for q in model.values())
    assert not [p for p in "abcd" if inbox.blocked(p)]  # no reader is left waiting


async def test_the_receive_side_waits_ends_after_what_is_queued_and_refuses_after_close():
    inbox = Inbox[str](InboxLimits())
    got: list[str] = []

    async def read() -> None:
        async for item in inbox:
            got.append(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.WouldBlock):
            inbox.receive_nowait()
        inbox.put("p", "one", 1)
        await trio.testing.wait_all_tasks_blocked()
        assert got == ["one"]
        inbox.put("p", "two", 1)
        inbox.put("p", "three", 1)
        inbox.close()
        assert inbox.put("p", "late", 1) == [("late", DropReason.CLOSED)]
    assert got == ["one", "two", "three"]
    with pytest.raises(trio.EndOfChannel):
        inbox.receive_nowait()


async def test_a_cancelled_receive_loses_nothing():
    inbox = Inbox[str](InboxLimits())
    with trio.move_on_after(0.01):
        await inbox.receive()
    inbox.put("p", "kept", 1)
    assert await inbox.receive() == "kept"


async def start_mesh(nursery: trio.Nursery, network: MemoryNetwork, **options) -> Mesh:
    key = nacl.signing.SigningKey.generate()
    mesh = Mesh(key, network.transport(key), listen="memory://", exchange_interval=1000.0,
                backoff=Backoff(initial=0.1, maximum=1.0), **options)
    await nursery.start(mesh.run)
    return mesh


async def test_a_flooding_link_peer_fills_only_its_share_and_is_then_read_no_further(
        autojump_clock):
    """While the consumer was busy, a flooding link peer's unicasts filled the one shared
    queue (1024) and another peer's were dropped with the flood. Now the flood fills its
    share, its link is read no further (its frames wait in its connection, where they
    cost this node nothing), and the other peer's unicasts are all there."""
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        victim = await start_mesh(nursery, network)
        quiet = await start_mesh(nursery, network, bootstrap=[victim.listen_address])
        await quiet.wait_connected()
        flooder_key = nacl.signing.SigningKey.generate()
        async with network.transport(flooder_key) as flooder:
            link = await flooder.connect(victim.listen_address)
            sent = 0
            for batch in range(10):
                for _ in range(200):  # what its send buffer holds, and then some
                    with contextlib.suppress(LinkBusy):
                        link.send_nowait(encode(Unicast(b"flood %d" % sent)))
                        sent += 1
                await quiet.send(victim.peer_id, b"quiet %d" % batch)
                await trio.testing.wait_all_tasks_blocked()
            share = victim.incoming.limits.per_peer_items
            assert victim.incoming.held_by(flooder.peer_id)[0] == share
            assert sent > share and victim.metrics["mesh.reads_paused"] >= 1
            got = [victim.incoming.receive_nowait() for _ in range(len(victim.incoming))]
            quiet_ones = [d.payload for d in got if d.peer == quiet.peer_id]
            assert quiet_ones == [b"quiet %d" % n for n in range(10)]
            # Its first waited behind at most one of the flood's.
            assert quiet.peer_id in {got[0].peer, got[1].peer}
            # Nothing of the flood was lost: the rest comes as the consumer takes it.
            flood = [d.payload for d in got if d.peer == flooder.peer_id]
            while len(flood) < sent:
                delivery = await victim.incoming.receive()
                flood.append(delivery.payload)
            assert flood == [b"flood %d" % n for n in range(sent)]
            assert not [k for k in victim.metrics if k.startswith("mesh.dropped_incoming")]
        nursery.cancel_scope.cancel()


async def test_a_publication_displaced_from_the_inbox_is_not_marked_seen(autojump_clock):
    """A publication pushed out of a full inbox was dropped unprocessed: a later copy of
    it (a republished revocation) must get in."""
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        victim = await start_mesh(nursery, network, inbox=InboxLimits(items=2, peer_items=2))
        victim.subscribe("/t")
        heavy_key = nacl.signing.SigningKey.generate()
        async with network.transport(heavy_key) as heavy:
            link = await heavy.connect(victim.listen_address)
            for payload in (b"first", b"second"):
                await link.send(encode(Publish(content_id("/t", payload), "/t", 1, payload)))
            quiet = await start_mesh(nursery, network, bootstrap=[victim.listen_address],
                                     hop_limit=1)
            await quiet.wait_connected()
            await trio.testing.wait_all_tasks_blocked()
            await quiet.publish("/t", b"quiet news")
            await trio.testing.wait_all_tasks_blocked()
            assert victim.metrics["mesh.dropped_incoming_displaced"] == 1
            got = [victim.incoming.receive_nowait().payload for _ in range(2)]
            assert got == [b"first", b"quiet news"]
            await link.send(encode(Publish(content_id("/t", b"second"), "/t", 1, b"second")))
            with trio.fail_after(5):
                assert await victim.incoming.receive() == Delivery(heavy.peer_id, "/t",
                                                                  b"second")
        nursery.cancel_scope.cancel()
