"""An actor's slots and queue are shared fairly between senders: one caller's slow or
many requests cannot make another caller wait behind them all, or be told Busy."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from dms.actor import FairQueue, FairShare, RemoteError
from dms.testing import grant, network

__all__ = ["network"]  # the fixture, imported for pytest


def test_queued_work_starts_round_robin_between_senders() -> None:
    work: FairQueue[str] = FairQueue(FairShare(slots=4, queue=100, sender_slots=4))
    for n in range(10):
        assert work.offer("hog", f"h{n}")
    assert work.offer("other", "o0")
    started = [item for _, item in work.ready()]
    assert started[:2] == ["h0", "o0"]  # the other sender's turn comes next, not tenth
    assert len(started) == 4


def test_a_sender_holds_at_most_its_share_of_the_slots() -> None:
    work: FairQueue[int] = FairQueue(FairShare(slots=8, queue=100))
    for n in range(20):
        work.offer("hog", n)
    assert len(work.ready()) == 4  # half the slots
    work.offer("other", 99)
    assert work.ready() == [("other", 99)]
    work.done("hog")
    assert [sender for sender, _ in work.ready()] == ["hog"]


def test_a_sender_is_refused_past_its_share_of_the_queue_in_items_and_bytes() -> None:
    work: FairQueue[int] = FairQueue(FairShare(slots=1, queue=64, queue_bytes=1000))
    assert all(work.offer("hog", n) for n in range(8))
    assert not work.offer("hog", 8)  # an eighth of the queue
    assert work.offer("other", 0, size=250)
    assert not work.offer("other", 1, size=1)  # a quarter of the bytes
    assert work.offer("third", 0, size=250)


def test_everything_given_out_and_done_leaves_the_queue_empty() -> None:
    work: FairQueue[int] = FairQueue(FairShare(slots=3, queue=100))
    for n in range(12):
        work.offer(f"s{n % 3}", n)
    seen = 0
    while work.queued or work.running:
        for sender, _ in work.ready():
            seen += 1
            work.done(sender)
    assert seen == 12 and work.queued_bytes == 0


async def test_a_callers_slow_requests_do_not_hold_up_another_callers(
        network: Any, autojump_clock: Any) -> None:
    server, hog, client = network[0], network[1], network[2]

    @server.root.behavior("/jobs/slow")
    async def slow(message: Any) -> Any:
        await trio.sleep(5)
        return "slow"

    @server.root.behavior("/jobs/quick")
    async def quick(message: Any) -> Any:
        return "quick"

    grant(server, hog, "/jobs")
    grant(server, client, "/jobs")
    outcomes: list[str] = []

    async def hog_request() -> None:
        try:
            outcomes.append(await hog.root.invoke(server.root.handle, "/jobs/slow", timeout=120))
        except RemoteError as exc:
            outcomes.append(exc.name)

    async with trio.open_nursery() as nursery:
        for n in range(300):  # more than the actor's slots, and than the hog's queue share
            nursery.start_soon(hog_request)
            if n % 100 == 99:
                await trio.sleep(0.05)  # the hog's link sends at most 256 frames at once
        await trio.sleep(1)
        started = trio.current_time()
        assert await client.root.invoke(server.root.handle, "/jobs/quick") == "quick"
        assert trio.current_time() - started < 1.0  # not after a slow request ended
    assert outcomes.count("slow") == 32 + 128  # its share of the slots and of the queue
    assert set(outcomes) == {"slow", "Busy"}


def test_a_share_needs_at_least_one_slot() -> None:
    with pytest.raises(ValueError):
        FairShare(slots=0)


def test_work_starts_without_queueing_only_while_nothing_waits_and_shares_allow() -> None:
    work: FairQueue[int] = FairQueue(FairShare(slots=2, queue=100, sender_slots=1))
    assert work.start("a")  # nothing waits, both below their share
    assert not work.start("a")  # a is at its one slot
    assert work.offer("a", 1)
    assert not work.start("b")  # a's item waits: b may not jump it
    assert work.ready() == []  # a is still at its share
    work.done("a")
    assert work.ready() == [("a", 1)]
    assert work.start("b")
    assert not work.start("c")  # the two slots are taken
    assert work.running == 2 and work.queued == 0


def test_the_fast_start_refuses_what_the_queue_would_refuse_by_size() -> None:
    # Hostile: `start` skips the queue when nothing waits; it must not start a message
    # `offer` would have refused for its size (over the sender's or the queue's bytes).
    from dms.actor._fair import FairQueue, FairShare

    share = FairShare(slots=4, queue=8, queue_bytes=1000, sender_bytes=300)
    for size, allowed in ((300, True), (301, False), (1001, False)):
        fast, slow = FairQueue[str](share), FairQueue[str](share)
        offered = slow.offer("peer", "m", size)
        assert (offered and slow.ready() == [("peer", "m")]) is allowed
        assert fast.start("peer", size) is allowed
        assert (fast.running, fast.queued) == (int(allowed), 0)
