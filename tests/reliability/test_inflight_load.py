"""Load: 1,000 requests kept in flight for 10 s across 10 nodes (memory transport,
virtual time so the load on the machine cannot turn into timeouts). One worker per
request slot asks again as soon as its request ends, so as each reply arrives a new
request takes its place. A quarter of the workers ask from one node to one other, more
than that receiver queues for one sender. Every request ends with its own reply or an
explicit refusal (the receiver's `Busy`, or the sender's `Undeliverable` when its send
buffer is full), none is lost or left hanging, and every node answers a fresh request
afterwards. (`bench/load_bench.py` keeps 1,000 in flight for a minute on the wall clock
and reports latencies and RSS.)"""

from __future__ import annotations

import trio

from dms.testing import open_testbed

from .inflight import Tally, ask, keep_in_flight, pairs, serve_work

NODES, IN_FLIGHT, HOT = 10, 1000, 250
HOLD = 2.0  # seconds (virtual) each request is held by its receiver
SUSTAIN = 10.0  # seconds (virtual) the workers keep asking
PAUSE = 1.0  # seconds (virtual) a refused worker waits before it asks again
TIMEOUT = 30.0  # seconds (virtual) a request may take before it counts as lost


async def sample_in_flight(tally: Tally, seconds: float, samples: list[int]) -> None:
    """`tally.in_flight` every tenth of a (virtual) second, from half the first hold
    (everyone has asked once by then) until `seconds`."""
    began = trio.current_time()
    await trio.sleep(HOLD / 2)
    while trio.current_time() - began < seconds:
        samples.append(tally.in_flight)
        await trio.sleep(0.1)


async def test_a_thousand_requests_kept_in_flight_for_10s_each_end_with_a_reply_or_a_refusal(
        autojump_clock: object) -> None:
    async with open_testbed(NODES) as nodes:
        tally = Tally()
        serve_work(nodes.nodes, tally, HOLD)
        # 750 workers over every ordered pair, 250 more from n1 to n0: over n0's
        # share for n1, so that hot spot is refused all along.
        plan = pairs(NODES, IN_FLIGHT - HOT) + [(1, 0)] * HOT
        samples: list[int] = []
        began = trio.current_time()
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sample_in_flight, tally, SUSTAIN, samples)
                await keep_in_flight(nodes.nodes, plan, SUSTAIN, tally, TIMEOUT, PAUSE)
        took = trio.current_time() - began
        # The last ones asked before 10 s end later: queued at a busy receiver, but
        # within their timeout (else they would be lost).
        assert SUSTAIN <= took < SUSTAIN + TIMEOUT

        assert tally.ends["lost"] == 0, tally.lost
        assert tally.ends["reply"] + tally.ends["refused"] == tally.total
        assert tally.in_flight == 0  # none left hanging
        # As each reply arrived a new request took its place: the 750 workers off the
        # hot spot would have one reply a hold each (5 holds in 10 s) were none queued;
        # those to n0 queue behind the hot spot's share, so at least most of that.
        assert tally.ends["reply"] >= 0.8 * (IN_FLIGHT - HOT) * (SUSTAIN / HOLD)
        assert tally.ends["refused"] > 0  # the hot spot was told, not dropped, all along
        busy = sum(node.system.counters["dropped.busy"] for node in nodes)
        assert tally.refusals["Busy"] == busy  # each one the receivers counted
        # Undeliverable: n1's send buffer to n0 (256 frames) was full, nothing was sent.
        assert set(tally.refusals) <= {"Busy", "Undeliverable"}, tally.refusals
        # Held all along: at every sample the unrefused workers' requests were out
        # (refused workers pause between asks; they are the only gaps).
        assert len(samples) >= 8 * SUSTAIN
        assert min(samples) >= IN_FLIGHT - HOT, min(samples)
        assert tally.peak_in_flight >= 0.9 * IN_FLIGHT
        assert tally.peak_serving >= 5 * NODES  # receivers held many at once

        fresh = Tally()
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for n, node in enumerate(nodes):
                    nursery.start_soon(ask, node, nodes[(n + 1) % NODES], n, fresh, 10.0)
        assert fresh.ends == {"reply": NODES}, fresh.lost
