"""The queue of revocations a node still has to publish is bounded, and what it
refuses when full still reaches the node's peers (applied and kept first, then
republished once the queue drains)."""

from __future__ import annotations

import pytest
import trio

from dms import open_node
from dms.actor import encode_message
from dms.net import MemoryNetwork
from dms.node._revocation_flood import RevocationFlood
from ucan import SigningKey, delegate, revoke


def test_the_flood_queue_refuses_past_its_count_and_counts_it() -> None:
    flood = RevocationFlood(max_count=2, max_bytes=1000)
    assert flood.put(b"a") and flood.put(b"b")
    assert not flood.put(b"c")
    assert (len(flood), flood.bytes, flood.dropped) == (2, 2, 1)
    assert flood.take() == b"a"  # oldest first
    assert flood.put(b"d")
    assert [flood.take(), flood.take(), flood.take()] == [b"b", b"d", None]


def test_the_flood_queue_refuses_past_its_bytes() -> None:
    flood = RevocationFlood(max_count=100, max_bytes=10)
    assert flood.put(b"x" * 6)
    assert not flood.put(b"y" * 5)  # 11 bytes in all
    assert flood.put(b"z" * 4)
    assert flood.bytes == 10 and flood.dropped == 1


def test_overflow_names_the_first_refused_once_until_the_next_refusal() -> None:
    flood = RevocationFlood(max_count=1)
    assert flood.take_overflow() is None
    flood.put(b"a", "a")
    flood.put(b"b", "b")
    flood.put(b"c", "c")
    assert flood.take_overflow() == "b" and flood.take_overflow() is None
    flood.put(b"d", "d")
    assert flood.take_overflow() == "d"


def test_the_flood_queue_refuses_bounds_below_one() -> None:
    with pytest.raises(ValueError, match="max_count and max_bytes"):
        RevocationFlood(max_count=0)


async def test_revocations_the_full_queue_refused_still_reach_a_peer(
        autojump_clock: object) -> None:
    network = MemoryNetwork()
    key = SigningKey.generate()
    async with open_node(key, listen="memory://a", network=network) as a, \
            open_node(network=network, anchors=[key.did], bootstrap=["memory://a"]) as b:
        await a.mesh.wait_connected()
        a._flood = RevocationFlood(max_count=2)
        grants = [delegate(key, SigningKey.generate().did, "/jobs", expiration=None)
                  for _ in range(6)]
        revocations = [revoke(key, grant) for grant in grants]
        for revocation in revocations:  # at once, as children stopping together would
            a._revoke_grant(revocation, None)
        assert a.metrics()["dropped.revocation-flood-full"] == 4
        assert len(a._flood) == 2  # bounded: the rest was refused, not queued
        assert all(key.did in a.trust.revocations.revokers(g.cid) for g in grants)
        with trio.fail_after(30):
            while not all(key.did in b.trust.revocations.revokers(g.cid) for g in grants):
                await trio.sleep(0.05)
        assert len(a._flood) == 0


async def test_a_full_flood_queue_does_not_block_the_revoking_caller(
        autojump_clock: object) -> None:
    network = MemoryNetwork()
    key = SigningKey.generate()
    async with open_node(key, listen="memory://a", network=network) as a:
        a._flood = RevocationFlood(max_count=1, max_bytes=len(encode_message(
            revoke(key, delegate(key, key.did, "/x", expiration=None)))) * 2)
        for _ in range(50):  # synchronous: nothing here may wait for the publisher
            a._revoke_grant(revoke(key, delegate(key, SigningKey.generate().did, "/x",
                                                 expiration=None)), None)
        assert len(a._flood) == 1
        assert a.metrics()["dropped.revocation-flood-full"] == 49


async def test_a_burst_many_times_the_queue_and_the_greeting_still_reaches_a_peer(
        autojump_clock: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # The republish once used to send the newest GREETING_LIMIT kept revocations only:
    # a burst past twice that lost the ones in between.
    monkeypatch.setattr("dms.node._node.GREETING_LIMIT", 3)
    network = MemoryNetwork()
    key = SigningKey.generate()
    async with open_node(key, listen="memory://a", network=network) as a, \
            open_node(network=network, anchors=[key.did], bootstrap=["memory://a"]) as b:
        await a.mesh.wait_connected()
        a._flood = RevocationFlood(max_count=2)
        grants = [delegate(key, SigningKey.generate().did, "/jobs", expiration=None)
                  for _ in range(20)]
        for grant in grants:
            a._revoke_grant(revoke(key, grant), None)
        assert a.metrics()["dropped.revocation-flood-full"] == 18
        with trio.fail_after(30):
            while not all(key.did in b.trust.revocations.revokers(g.cid) for g in grants):
                await trio.sleep(0.05)
