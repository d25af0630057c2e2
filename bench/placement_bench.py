"""Placement solver benchmark: tight, satisfiable, seeded instances.

Every instance hides a planted placement (so it is satisfiable) and is made tight
around it: node resources are a large share of the planted provider's, edge bounds sit
just above the planted pair's measured rtt/bandwidth, and providers only have
measurements to their geographic neighbours. For 1,000 providers x 100 ensemble nodes x
200 edges we report, per instance and in the same run:

- the solver's time to its first solution (compile included) and its price after a
  budget of 0.5 s and 1 s, with the lower bound and gap it reports;
- OR-Tools CP-SAT (2 workers) on the same model (bench/_cpsat.py) for 1 s and for
  `--cpsat-seconds` (10), and CP-SAT for 1 s seeded with the solver's first solution as
  a hint; skipped, saying why, when ortools is not installed (pip install '.[bench]');
- gaps to the best price known in this run (the least any method found) and to the
  best bound (the greater of the solver's and CP-SAT's);

optionally (--sampling) the success rate of random sampling of bid combinations with
the same budget (the reference implementation's approach), and how time to first
solution grows from 100 to 10,000 providers.

    .venv/bin/python bench/placement_bench.py [--instances 41] [--cpsat-seconds 10]
    .venv/bin/python bench/placement_bench.py --seeds 7 19 --no-scaling  # chosen instances
    .venv/bin/python bench/placement_bench.py --against /work/main --rounds 4 --instances 7

`--against DIR` compares this checkout's CPU time to a first solution (compile + first
search) with another checkout's, in alternating rounds of fresh processes, and prints
the median of the per-round ratios (below 1: this checkout is faster), at 1,000
providers x 100 nodes x 200 edges and 10,000 providers x 30 nodes x 60 edges.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

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
from dms.orchestrator.placement._problem import compile_problem
from dms.orchestrator.placement._search import Active, search

sys.path.insert(0, str(Path(__file__).parent))
from _cpsat import MISSING, solve_cpsat  # noqa: E402

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


def compiled(instance: Instance, measurements: Measurements):  # type: ignore[no-untyped-def]
    """The solver's compiled problem, its root domains and first solution (for CP-SAT)."""
    problem = compile_problem(
        instance.requirements,
        instance.bids,
        measurements,
        exclude=frozenset(),
        strategy="pack",
        previous=None,
        replace=frozenset(),
    )
    first = search(problem, Active.everything(problem), SearchBudget(), first_only=True)
    return problem, first.root_domains, first.values


class Table:
    """Fixed-width columns: every row has one cell per column, "-" where a method gave
    nothing (no placement, no bound), so a missing result never shifts the others."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.widths = [max(len(c), 3 if c == "#" else 8) for c in columns]

    def header(self) -> str:
        return " ".join(c.rjust(w) for c, w in zip(self.columns, self.widths, strict=True))

    def row(self, cells: dict[str, str]) -> str:
        assert set(cells) <= set(self.columns), set(cells) - set(self.columns)
        return " ".join(
            cells.get(c, "-").rjust(w) for c, w in zip(self.columns, self.widths, strict=True)
        )


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def summary(name: str, gaps: list[float]) -> str:
    if not gaps:
        return f"{name}: no instances"
    return (
        f"{name:<34} median {pct(statistics.median(gaps)):>6}  worst {pct(max(gaps)):>6}  "
        f"within 2 %: {sum(g <= 0.02 for g in gaps)}/{len(gaps)}"
    )


def first_times(seeds: list[int]) -> dict[str, list[list[float]]]:
    """CPU seconds of compile and of the first search, and wall seconds of both, per
    instance: the 1,000-provider instances of `seeds` and the 10,000-provider scaling
    instance (twice; the instance is built outside the timed part)."""
    def once(instance: Instance) -> list[float]:
        measurements = instance.measurements()
        cpu, wall = time.process_time(), time.perf_counter()
        problem = compile_problem(
            instance.requirements, instance.bids, measurements, exclude=frozenset(),
            strategy="pack", previous=None, replace=frozenset(),
        )
        compiled_cpu = time.process_time()
        search(problem, Active.everything(problem), SearchBudget(), first_only=True)
        return [compiled_cpu - cpu, time.process_time() - compiled_cpu,
                time.perf_counter() - wall]

    large = Instance(10000, 30, 60, seed=11000)
    return {
        "1k": [once(Instance(1000, 100, 200, seed=k)) for k in seeds],
        "10k": [once(large) for _ in range(2)],
    }


def against(baseline: Path, rounds: int, seeds: list[int]) -> None:
    """Alternate fresh processes of the two checkouts; per round, the ratio of this
    checkout's median (1k) or best (10k) first-solution CPU time to the baseline's."""
    here = Path(__file__).resolve().parent.parent
    figures = ("1k first cpu", "1k compile cpu", "1k search cpu", "1k first wall",
               "10k first cpu", "10k first wall")
    ratios: dict[str, list[float]] = defaultdict(list)
    seen: dict[str, dict[str, list[float]]] = {"this": defaultdict(list), "base": defaultdict(list)}
    for r in range(rounds):
        order = [("base", baseline), ("this", here)]
        if r % 2:
            order.reverse()
        got: dict[str, dict[str, float]] = {}
        for name, root in order:
            out = subprocess.run(
                [sys.executable, __file__, "--first-times", "--seeds", *map(str, seeds)],
                capture_output=True, text=True, check=True,
                env={**os.environ, "PYTHONPATH": str(root)},
            )
            times = json.loads(out.stdout.splitlines()[-1])
            small, large = times["1k"], times["10k"]
            got[name] = {
                "1k first cpu": statistics.median(c + s for c, s, _ in small),
                "1k compile cpu": statistics.median(c for c, _, _ in small),
                "1k search cpu": statistics.median(s for _, s, _ in small),
                "1k first wall": statistics.median(w for _, _, w in small),
                "10k first cpu": min(c + s for c, s, _ in large),
                "10k first wall": min(w for _, _, w in large),
            }
            for f in figures:
                seen[name][f].append(got[name][f])
        for f in figures:
            ratios[f].append(got["this"][f] / got["base"][f])
        print(f"round {r + 1} ({order[0][0]} first): "
              + "  ".join(f"{f} {ratios[f][-1]:.3f}" for f in figures))
    print(f"median of per-round ratios, this checkout / {baseline} ({rounds} rounds, "
          f"{len(seeds)} instances at 1k):")
    for f in figures:
        print(f"  {f:<15} {statistics.median(ratios[f]):.3f}   "
              f"this {statistics.median(seen['this'][f]):.3f} s   "
              f"base {statistics.median(seen['base'][f]):.3f} s")
    print("ceiling: a search-only speedup cannot take first cpu below compile cpu; "
          "no change takes it below this checkout's compile time")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=41,
                        help="instances to run: seeds 0..N-1 (default 41)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None,
        help="run only these instance seeds (e.g. the worst ones) instead of 0..instances-1",
    )
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.5, 1.0],
                        help="the solver's max_seconds, one solve per budget per instance "
                             "(default 0.5 1)")
    parser.add_argument("--cpsat-seconds", type=float, default=10.0,
                        help="the long CP-SAT run (besides 1 s and 1 s hinted); "
                             "needs ortools: pip install '.[bench]' (default 10)")
    parser.add_argument("--providers", type=int, default=1000,
                        help="providers per instance, 100 or more (100 nodes x 200 edges each; "
                             "default 1000)")
    parser.add_argument("--sampling", action="store_true", help="also run random sampling")
    parser.add_argument("--no-scaling", action="store_true",
                        help="skip the 100 to 10,000 providers first-solution series")
    parser.add_argument("--against", type=Path, default=None, metavar="DIR",
                        help="compare first-solution CPU time with the checkout in DIR")
    parser.add_argument("--rounds", type=int, default=4,
                        help="with --against: alternating rounds (median of their ratios; default 4)")
    parser.add_argument("--first-times", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    seeds = args.seeds if args.seeds is not None else list(range(args.instances))
    if not seeds:
        parser.error("--instances must be at least 1")
    if args.providers < 100:  # fewer cannot host the planted 100 nodes: it never ends
        parser.error(f"--providers must be at least 100, got {args.providers}")
    for budget in (*args.budgets, args.cpsat_seconds):
        if not (math.isfinite(budget) and budget > 0):
            parser.error(f"--budgets and --cpsat-seconds must be seconds > 0, got {budget:g}")
    if args.first_times:
        print(json.dumps(first_times(seeds)))
        return
    if args.against is not None:
        if args.rounds < 1:
            parser.error("--rounds must be at least 1")
        if not (args.against / "dms" / "orchestrator" / "placement").is_dir():
            parser.error(f"--against {args.against}: no dms/orchestrator/placement there")
        against(args.against, args.rounds, seeds)
        return
    budgets = args.budgets
    cpsat = not MISSING
    print(
        f"tight satisfiable instances: {args.providers} providers x 100 nodes x 200 edges; "
        f"solver budgets {budgets} s"
    )
    if cpsat:
        print(f"CP-SAT: 2 workers, 1 s, 1 s hinted with the solver's first solution, "
              f"{args.cpsat_seconds} s")
    else:
        print(f"CP-SAT skipped: {MISSING}")
    columns = ["#", "first s", *(f"price@{b:g}" for b in budgets), "bound", "gap"]
    long_column = f"cp@{args.cpsat_seconds:g}" + (" long" if args.cpsat_seconds == 1 else "")
    if cpsat:
        columns += ["cp@1", "cp+hint@1", long_column, "cp bound"]
    if args.sampling:
        columns.append("sampling")
    table = Table(columns)
    print(table.header())
    firsts: list[float] = []
    gaps: dict[str, list[float]] = defaultdict(list)
    above_bound: list[float] = []  # the solver's price at its longest budget over the best bound
    reported: dict[float, list[float]] = defaultdict(list)
    proven = 0
    sampled = 0
    failures: dict[float, int] = defaultdict(int)
    load = os.getloadavg()
    for k in seeds:
        instance = Instance(args.providers, 100, 200, seed=k)
        measurements = instance.measurements()
        prices: dict[str, float] = {}
        row: dict[str, str] = {"#": str(k)}
        bound, gap, last = 0.0, math.nan, None
        for n, budget in enumerate(budgets):
            placement, elapsed, why = timed_solve(instance, measurements, budget)
            if placement is None:
                failures[budget] += 1
                row[f"price@{budget:g}"] = "failed"
                print(f"    solver @{budget:g} s failed after {elapsed:.3f} s: {why}")
                continue
            if n == 0:
                stats = placement.stats
                assert stats.first_solution_seconds is not None
                firsts.append(stats.first_solution_seconds + (elapsed - stats.seconds))
                row["first s"] = f"{firsts[-1]:.3f}"
            prices[f"solver@{budget:g}"] = last = placement.objective.price
            reported[budget].append(placement.gap)
            bound, gap = max(bound, placement.lower_bound), placement.gap
            row[f"price@{budget:g}"] = f"{placement.objective.price:.2f}"
        if last is not None:
            row["bound"], row["gap"] = f"{bound:.2f}", pct(gap)
        if cpsat:
            problem, domains, first = compiled(instance, measurements)
            runs = {
                "cp@1": solve_cpsat(problem, domains, 1.0),
                "cp+hint@1": solve_cpsat(problem, domains, 1.0, hint=first),
                long_column: solve_cpsat(problem, domains, args.cpsat_seconds),
            }
            for column, result in runs.items():
                if result.price is not None:  # none found: the cell stays "-"
                    prices[column.replace("cp", "cp-sat", 1)] = result.price
                    row[column] = f"{result.price:.2f}"
            long = runs[long_column]
            proven += long.optimal
            if long.bound > 0:  # CP-SAT reports 0 when it has no bound
                row["cp bound"] = f"{long.bound:.2f}"
                bound = max(bound, long.bound)
        if last is not None and bound > 0:
            above_bound.append((last - bound) / last)
        if args.sampling:
            hit = sample(instance, measurements, budgets[0], seed=k, suits=suitable_bids(instance))
            sampled += hit
            row["sampling"] = "yes" if hit else "no"
        print(table.row(row))
        if prices:
            best = min(prices.values())
            for name, price in prices.items():
                gaps[name].append((price - best) / best)
    print()
    print(f"load average (1, 5, 15 min) at start {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, "
          f"at end {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cpus")
    print(f"first solution: median {statistics.median(firsts):.3f} s, max {max(firsts):.3f} s "
          f"({len(firsts)}/{len(seeds)} instances placed at {budgets[0]:g} s)")
    for budget in budgets:
        if failures[budget]:
            print(f"  solver @{budget:g} s found no placement on {failures[budget]} instances")
    print("price above the best known in this run (least price any method found):"
          if cpsat else "price above the best known in this run (without CP-SAT only the "
          "solver's own prices: its longest budget is 0 % by construction):")
    for name in sorted(gaps, key=lambda n: (n.startswith("cp"), n)):
        print("  " + summary(name, gaps[name]))
    for budget in budgets:
        print("  " + summary(f"gap the solver reports @{budget:g} s", reported[budget]))
    if cpsat:
        print("  " + summary(f"solver@{budgets[-1]:g} above the best bound", above_bound))
    if cpsat:
        print(f"  CP-SAT proved optimality on {proven}/{len(seeds)} in {args.cpsat_seconds:g} s")
    if args.sampling:
        print(f"sampling: {sampled}/{len(seeds)} solved with the same {budgets[0]} s budget")
    if args.no_scaling:
        return
    print()
    print("scaling (30 nodes x 60 edges, one seeded instance per size)")
    print(f"{'providers':>9} {'links':>7} {'first s':>8} {'total s':>8} {'price':>8} {'gap':>6}")
    for providers in (100, 300, 1000, 3000, 10000):
        instance = Instance(providers, 30, 60, seed=1000 + providers)
        measurements = instance.measurements()
        placement, elapsed, why = timed_solve(instance, measurements, budgets[0])
        if placement is None:
            print(f"{providers:>9} failed: {why}")
            continue
        first_s = placement.stats.first_solution_seconds or 0.0
        compile_time = elapsed - placement.stats.seconds
        print(
            f"{providers:>9} {len(instance.links):>7} {first_s + compile_time:>8.3f} "
            f"{elapsed:>8.3f} {placement.objective.price:>8.2f} {pct(placement.gap):>6}"
        )


if __name__ == "__main__":
    main()
