"""Placement solver benchmark: tight, satisfiable, seeded instances.

Every instance hides a planted placement (so it is satisfiable) and is made tight
around it: node resources are a large share of the planted provider's, edge bounds sit
just above the planted pair's measured rtt/bandwidth, and providers only have
measurements to their geographic neighbours. We report, for 1,000 providers x 100
ensemble nodes x 200 edges:

- the solver's time to its first solution and the budgeted best (same time budget);
- its success rate beside random sampling of bid combinations with the same time
  budget (the reference implementation's approach, implemented below);

and how time to first solution grows from 100 to 10,000 providers.

    .venv/bin/python bench/placement_bench.py [--instances 50] [--budget 0.5]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections import defaultdict

from dms.ensemble._requirements import (
    EdgeRequirement,
    EnsembleRequirements,
    Location,
    LocationConstraint,
    NodeRequirements,
    Resources,
)
from dms.orchestrator.placement import (
    Bid,
    Measurements,
    ProviderPath,
    SearchBudget,
    Unplaceable,
    solve,
)

GiB = 1 << 30
EXECUTORS: list[str] = ["docker", "process", "firecracker"]
DENSITY = 1e-3  # providers per square unit: ~40 measured neighbours within RADIUS
RADIUS = 113.0


def continent(x: float, y: float, width: float) -> str:
    return ("EU", "US", "AS", "AF")[(x > width / 2) * 2 + (y > width / 2)]


class Instance:
    def __init__(self, providers: int, nodes: int, edges: int, seed: int) -> None:
        rng = random.Random(seed)
        width = math.sqrt(providers / DENSITY)
        self.points = [(rng.uniform(0, width), rng.uniform(0, width)) for _ in range(providers)]
        self.peers = [f"did:key:z6Mk{seed:04d}{i:06d}" for i in range(providers)]
        self.bids = []
        for i, (x, y) in enumerate(self.points):
            cpu = rng.choice((2, 4, 8, 16, 32))
            self.bids.append(
                Bid(
                    peer=self.peers[i],
                    free=Resources(cpu=cpu, ram=cpu * rng.choice((2, 4, 8)) * GiB, disk=500 * GiB),
                    executors=frozenset(rng.sample(EXECUTORS, rng.randint(1, 3))),
                    location=Location(continent=continent(x, y, width)),
                    price=round(rng.uniform(1, 10), 2),
                )
            )
        self.links, self.neighbours = self._measure(rng)
        self.requirements = self._plant(rng, nodes, edges)

    def _measure(self, rng: random.Random) -> tuple[dict[tuple[str, str], ProviderPath], list[list[int]]]:
        cells: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, (x, y) in enumerate(self.points):
            cells[(int(x // RADIUS), int(y // RADIUS))].append(i)
        links = {}
        neighbours: list[list[int]] = [[] for _ in self.points]
        for (cx, cy), members in cells.items():
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    for i in members:
                        for j in cells.get((cx + dx, cy + dy), ()):
                            if i < j and math.dist(self.points[i], self.points[j]) <= RADIUS:
                                rtt = 1 + 0.05 * math.dist(self.points[i], self.points[j])
                                bandwidth = rng.choice((1e8, 1e9, 1e10))
                                links[(self.peers[i], self.peers[j])] = ProviderPath(
                                    round(rtt, 3), bandwidth
                                )
                                neighbours[i].append(j)
                                neighbours[j].append(i)
        return links, neighbours

    def _plant(self, rng: random.Random, count: int, edge_count: int) -> EnsembleRequirements:
        """Pick a hidden host per node in groups of neighbouring providers, then derive
        requirements that the hidden hosts meet with little room to spare."""
        used: set[int] = set()
        planted: list[int] = []
        groups: list[list[int]] = []
        while len(planted) < count:
            seed = rng.randrange(len(self.points))
            area = [p for p in [seed, *self.neighbours[seed]] if p not in used]
            wanted = min(10, count - len(planted))
            take = area[:wanted]
            if len(take) < min(3, wanted):  # the last one or two nodes form a small group
                continue
            used.update(take)
            groups.append(list(range(len(planted), len(planted) + len(take))))
            planted.extend(take)
        names = [f"n{i:03d}" for i in range(count)]
        nodes = []
        for i, host in enumerate(planted):
            bid = self.bids[host]
            share = rng.uniform(0.6, 0.95)
            location = (
                LocationConstraint(accept=(Location(continent=bid.location.continent),))
                if rng.random() < 0.3
                else LocationConstraint()
            )
            redundancy = 0
            if rng.random() < 0.1:
                spare = [
                    p for p in range(len(self.bids)) if p not in used and self._hosts(p, bid, share)
                ]
                if spare:
                    used.add(rng.choice(spare))
                    redundancy = 1
            nodes.append(
                NodeRequirements(
                    name=names[i],
                    resources=Resources(
                        cpu=round(bid.free.cpu * share, 2), ram=int(bid.free.ram * share)
                    ),
                    executors=frozenset({rng.choice(sorted(bid.executors))}),
                    location=location,
                    redundancy=redundancy,
                )
            )
        pairs = []
        for group in groups:
            for a in group:
                for b in group:
                    if a < b and (self.peers[planted[a]], self.peers[planted[b]]) in self.links:
                        pairs.append((a, b))
        rng.shuffle(pairs)
        edges = []
        for a, b in pairs[:edge_count]:
            link = self.links[(self.peers[planted[a]], self.peers[planted[b]])]
            assert link.rtt_ms is not None and link.bandwidth is not None
            edges.append(
                EdgeRequirement(
                    names[a],
                    names[b],
                    max_rtt_ms=round(link.rtt_ms * rng.uniform(1.0, 1.15), 3) + 0.001,
                    min_bandwidth=int(link.bandwidth) if rng.random() < 0.3 else None,
                )
            )
        return EnsembleRequirements(nodes=tuple(nodes), edges=tuple(edges))

    def _hosts(self, p: int, like: Bid, share: float) -> bool:
        free = self.bids[p].free
        return free.cpu >= like.free.cpu * share and free.ram >= like.free.ram * share

    def measurements(self) -> Measurements:
        return Measurements(self.links)


def suitable_bids(instance: Instance) -> dict[str, list[Bid]]:
    """Per node, the bids that suit it on their own (screened once per instance)."""
    return {
        node.name: [
            b
            for b in instance.bids
            if node.executors <= b.executors
            and node.location.admits(b.location)
            and node.resources.fits_in(b.free)
        ]
        for node in instance.requirements.nodes
    }


def sample(instance: Instance, measurements: Measurements, seconds: float, seed: int,
           suits: dict[str, list[Bid]]) -> bool:
    """The reference approach: draw random bid combinations (each node from the bids
    that suit it on their own) until one meets every constraint or time runs out."""
    rng = random.Random(seed)
    req = instance.requirements
    if any(len(suits[n.name]) < n.redundancy + 1 for n in req.nodes):
        return False
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        primary = {}
        load: dict[str, Resources] = {}
        ok = True
        for node in req.nodes:
            chosen = rng.sample(suits[node.name], node.redundancy + 1)
            primary[node.name] = chosen[0].peer
            for host in chosen:
                total = load.get(host.peer, Resources()) + node.resources
                if not total.fits_in(host.free):
                    ok = False
                load[host.peer] = total
        if not ok:
            continue
        for edge in req.edges:
            link = measurements.link(primary[edge.source], primary[edge.target])
            if (
                link is None
                or (
                    edge.max_rtt_ms is not None
                    and (link.rtt_ms is None or link.rtt_ms > edge.max_rtt_ms)
                )
                or (
                    edge.min_bandwidth is not None
                    and (link.bandwidth is None or link.bandwidth < edge.min_bandwidth)
                )
            ):
                ok = False
                break
        if ok:
            return True
    return False


def timed_solve(instance: Instance, measurements: Measurements, seconds: float):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    try:
        placement = solve(
            instance.requirements,
            instance.bids,
            measurements,
            budget=SearchBudget(max_nodes=10**9, max_seconds=seconds),
        )
    except Unplaceable as failure:
        return None, time.perf_counter() - start, str(failure).splitlines()[0]
    return placement, time.perf_counter() - start, ""


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--budget", type=float, default=0.6, help="seconds per instance")
    parser.add_argument("--providers", type=int, default=1000)
    args = parser.parse_args()

    print(
        f"tight satisfiable instances: {args.providers} providers x 100 nodes x 200 edges, "
        f"time budget {args.budget} s each (solver and sampling alike)"
    )
    print(
        f"{'#':>3} {'links':>6} {'cand/node':>9} {'first s':>8} {'total s':>8} "
        f"{'improved':>8} {'best price':>10} {'optimal':>7} {'explored':>8} {'sampling':>8}"
    )
    firsts, solved, sampled = [], 0, 0
    for k in range(args.instances):
        instance = Instance(args.providers, 100, 200, seed=k)
        measurements = instance.measurements()
        placement, elapsed, why = timed_solve(instance, measurements, args.budget)
        suits = suitable_bids(instance)
        hit = sample(instance, measurements, args.budget, seed=k, suits=suits)
        sampled += hit
        if placement is None:
            print(f"{k:>3} solver failed after {elapsed:.3f} s: {why}")
            continue
        solved += 1
        stats = placement.stats
        first = stats.first_solution_seconds
        assert first is not None
        firsts.append(first + (elapsed - stats.seconds))  # include compile time
        cands = statistics.mean(len(bids) for bids in suits.values())
        print(
            f"{k:>3} {len(instance.links):>6} {cands:>9.0f} {firsts[-1]:>8.3f} {elapsed:>8.3f} "
            f"{stats.solutions - 1:>8} {placement.objective.price:>10.2f} "
            f"{'yes' if placement.optimal else 'no':>7} {stats.explored:>8} "
            f"{'yes' if hit else 'no':>8}"
        )
    print()
    print(
        f"solver:   {solved}/{args.instances} solved ({100 * solved / args.instances:.0f} %), "
        f"time to first solution median {statistics.median(firsts):.3f} s, "
        f"max {max(firsts):.3f} s"
    )
    print(
        f"sampling: {sampled}/{args.instances} solved ({100 * sampled / args.instances:.0f} %) "
        f"with the same {args.budget} s budget"
    )

    print()
    print("scaling (30 nodes x 60 edges, one seeded instance per size)")
    print(f"{'providers':>9} {'links':>7} {'first s':>8} {'total s':>8} {'optimal':>7}")
    for providers in (100, 300, 1000, 3000, 10000):
        instance = Instance(providers, 30, 60, seed=1000 + providers)
        measurements = instance.measurements()
        placement, elapsed, why = timed_solve(instance, measurements, args.budget)
        if placement is None:
            print(f"{providers:>9} failed: {why}")
            continue
        first = placement.stats.first_solution_seconds or 0.0
        compile_time = elapsed - placement.stats.seconds
        print(
            f"{providers:>9} {len(instance.links):>7} {first + compile_time:>8.3f} "
            f"{elapsed:>8.3f} {'yes' if placement.optimal else 'no':>7}"
        )


if __name__ == "__main__":
    main()
