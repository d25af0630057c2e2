"""Load: 1,000 requests in flight at once across 10 nodes (memory transport, virtual
time so the load on the machine cannot turn into timeouts). A quarter of them go from
one node to one other, more than that receiver queues for one sender. Every request
ends with its own reply or an explicit refusal (the receiver's `Busy`, or the sender's
`Undeliverable` when its send buffer is full), none is lost or left hanging,
and every node answers a fresh request afterwards. (`bench/load_bench.py` keeps 1,000
in flight for a minute on the wall clock and reports latencies and RSS.)"""

from __future__ import annotations

import trio

from dms.testing import open_testbed

from .inflight import Tally, ask, pairs, serve_work

NODES, REQUESTS, HOT = 10, 1000, 250
HOLD = 1.0  # seconds (virtual) each request is held: every one is in flight at once


async def test_a_thousand_requests_in_flight_each_end_with_a_reply_or_a_refusal(
        autojump_clock: object) -> None:
    async with open_testbed(NODES) as nodes:
        tally = Tally()
        serve_work(nodes.nodes, tally, HOLD)
        # 750 over every ordered pair, 250 more from n1 to n0: over n0's share for n1.
        plan = pairs(NODES, REQUESTS - HOT) + [(1, 0)] * HOT
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for n, (sender, receiver) in enumerate(plan):
                    nursery.start_soon(ask, nodes[sender], nodes[receiver], n, tally, 30.0)
        assert tally.total == REQUESTS
        assert tally.ends["lost"] == 0, tally.lost
        assert tally.ends["reply"] + tally.ends["refused"] == REQUESTS
        # Only refusals end before everything is asked: the rest were in flight together.
        assert tally.peak_in_flight >= tally.ends["reply"]
        assert tally.ends["refused"] > 0  # the hot spot was told, not dropped
        busy = sum(node.system.counters["dropped.busy"] for node in nodes)
        assert tally.refusals["Busy"] == busy  # each one the receivers counted
        # Undeliverable: n1's send buffer to n0 (256 frames) was full, nothing was sent.
        assert set(tally.refusals) <= {"Busy", "Undeliverable"}, tally.refusals
        assert tally.peak_serving >= 5 * NODES  # receivers held many at once

        fresh = Tally()
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for n, node in enumerate(nodes):
                    nursery.start_soon(ask, node, nodes[(n + 1) % NODES], n, fresh, 10.0)
        assert fresh.ends == {"reply": NODES}, fresh.lost
