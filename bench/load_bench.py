"""Load: 1,000 requests kept in flight across 10 nodes for a minute, against the same
nodes kept at 10 in flight, in alternating rounds.

Ten nodes on the in-memory network in this process (one CPU: the figures are what the
actor runtime, signing and admission cost, with no socket in the way), each serving
`/load/work` (answered at once) and granted it by every other. A round keeps N
requests in flight (N workers, each asking again as soon as its request ends, spread
evenly over the 90 ordered pairs of nodes) for its length. Rounds alternate between
N = 1,000 ("loaded") and N = 10 ("light", the baseline), so both see the same machine;
ratios are medians of the per-round ratios.

Reported: requests/s of each, loaded over light, and the ceiling: what one core
would answer at the light rounds' CPU cost per request (requests over this process's
CPU seconds in the same round; light does not keep the core busy, so loaded can beat
light, never by much past this ceiling unless batching makes requests cheaper), loaded p50/p99 latency and p50 over the light p50
(Little's law puts it at 100, the in-flight ratio, when throughput holds), how requests
ended (reply, refused with `Busy`/`Undeliverable`, lost: no answer within 30 s or the
wrong one), and RSS before the first round, after the first and at the end (bounded:
the end within a few MB of after-the-first). Exits 1 when any request was lost.

    .venv/bin/python bench/load_bench.py [--seconds 60] [--rounds 6] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ for the harness

from dms.testing import open_testbed  # noqa: E402
from tests.reliability.inflight import (  # noqa: E402
    Tally,
    ask,
    keep_in_flight,
    pairs,
    percentile,
    serve_work,
    wall_clock,
)

NODES, LOADED, LIGHT = 10, 1000, 10
TIMEOUT = 30.0


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def run(seconds: float, rounds: int) -> dict[str, Any]:
    loaded_round = seconds / rounds
    light_round = max(1.0, loaded_round / 3)
    async with open_testbed(NODES) as nodes:
        serve_work(nodes.nodes, Tally(clock=wall_clock), 0.0)
        # The behavior's tally only counts who is serving; each round has its own.
        rss = {"before": rss_bytes()}
        loaded_all, light_all = Tally(clock=wall_clock), Tally(clock=wall_clock)
        rates: dict[str, list[float]] = {"loaded": [], "light": []}
        per_cpu_s: dict[str, list[float]] = {"loaded": [], "light": []}
        ceilings = []
        ratios, latency_ratios = [], []
        for n in range(rounds):
            figures = {}
            for name, count, length, total in (("light", LIGHT, light_round, light_all),
                                               ("loaded", LOADED, loaded_round, loaded_all)):
                tally = Tally(clock=wall_clock)
                began, cpu = wall_clock(), time.process_time()
                await keep_in_flight(nodes, pairs(NODES, count), length, tally, TIMEOUT)
                took = wall_clock() - began  # includes the tail: requests ending late
                rates[name].append(tally.total / took)
                per_cpu_s[name].append(tally.total / max(time.process_time() - cpu, 1e-9))
                figures[name] = percentile(tally.latencies, 0.5)
                total.ends.update(tally.ends)
                total.refusals.update(tally.refusals)
                total.lost.extend(tally.lost[:5])
                total.latencies.extend(tally.latencies)
            ratios.append(rates["loaded"][-1] / rates["light"][-1])
            ceilings.append(per_cpu_s["light"][-1] / rates["light"][-1])
            latency_ratios.append(figures["loaded"] / figures["light"])
            if n == 0:
                rss["after_first"] = rss_bytes()
            print(f"round {n + 1}: light {rates['light'][-1]:7,.0f}/s, loaded "
                  f"{rates['loaded'][-1]:7,.0f}/s ({ratios[-1]:.2f}x), p50 "
                  f"{figures['light'] * 1e3:.2f} -> {figures['loaded'] * 1e3:.1f} ms",
                  flush=True)
        rss["end"] = rss_bytes()
        fresh = Tally(clock=wall_clock)
        async with trio.open_nursery() as nursery:
            for n, node in enumerate(nodes):
                nursery.start_soon(ask, node, nodes[(n + 1) % NODES], n, fresh, 10.0)
    return {
        "seconds_loaded": seconds, "rounds": rounds,
        "light_per_s": statistics.median(rates["light"]),
        "loaded_per_s": statistics.median(rates["loaded"]),
        "throughput_ratio": statistics.median(ratios),
        "ceiling_per_s": statistics.median(per_cpu_s["light"]),
        "ceiling_ratio": statistics.median(ceilings),
        "latency_ratio": statistics.median(latency_ratios),
        "loaded_p50_ms": percentile(loaded_all.latencies, 0.5) * 1e3,
        "loaded_p99_ms": percentile(loaded_all.latencies, 0.99) * 1e3,
        "light_p50_ms": percentile(light_all.latencies, 0.5) * 1e3,
        "light_p99_ms": percentile(light_all.latencies, 0.99) * 1e3,
        "loaded_ends": dict(loaded_all.ends), "loaded_refusals": dict(loaded_all.refusals),
        "light_ends": dict(light_all.ends), "lost_examples": loaded_all.lost[:5],
        "fresh_after": dict(fresh.ends), "rss": rss,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="time at 1,000 in flight, over all rounds (default 60)")
    parser.add_argument("--rounds", type=int, default=6,
                        help="alternating rounds of light (baseline) and loaded (default 6)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    options = parser.parse_args()
    if options.rounds < 1 or not options.seconds > 0:
        parser.error("--rounds must be at least 1 and --seconds above 0")
    result = trio.run(run, options.seconds, options.rounds)
    if options.json:
        print(json.dumps(result, indent=2))
    else:
        mb = {k: v / 2**20 for k, v in result["rss"].items()}
        print(f"light ({LIGHT} in flight)    {result['light_per_s']:8,.0f} requests/s (baseline), "
              f"p50 {result['light_p50_ms']:.2f} ms, p99 {result['light_p99_ms']:.2f} ms")
        print(f"loaded ({LOADED} in flight) {result['loaded_per_s']:8,.0f} requests/s = "
              f"{result['throughput_ratio']:.2f}x light (ceiling "
              f"{result['ceiling_ratio']:.2f}x: {result['ceiling_per_s']:,.0f}/s, one core "
              f"at light's CPU per request), p50 "
              f"{result['loaded_p50_ms']:.1f} ms, p99 {result['loaded_p99_ms']:.1f} ms; p50 = "
              f"{result['latency_ratio']:.0f}x light (Little's law: {LOADED // LIGHT} at equal "
              f"throughput)")
        print(f"loaded requests ended: {result['loaded_ends']} refusals "
              f"{result['loaded_refusals'] or 'none'}; a fresh request to each node after: "
              f"{result['fresh_after']}")
        print(f"RSS {mb['before']:.1f} MB before, {mb['after_first']:.1f} MB after round 1, "
              f"{mb['end']:.1f} MB at the end")
    lost = result["loaded_ends"].get("lost", 0) + result["light_ends"].get("lost", 0)
    return 1 if lost or result["fresh_after"] != {"reply": NODES} else 0


if __name__ == "__main__":
    raise SystemExit(main())
