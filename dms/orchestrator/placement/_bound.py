"""A lower bound on the price of every feasible placement, so a placement can say how
far from optimal it can be at most.

The bound is the Lagrangian relaxation of provider capacity. Each node's instances
choose their providers independently among the providers left to them once the root
was made arc consistent, replicas of one node on distinct providers, each instance
paying its provider's price plus, for every provider and resource, a multiplier times
the share of that provider's free resource it takes; the multipliers times the whole
capacity are then subtracted. For any multipliers >= 0 that is at most the price of any
feasible placement (weak duality); subgradient steps move the multipliers towards the
strongest such bound, for a fixed number of iterations (so the bound is deterministic).
With all multipliers 0 it is the trivial bound: every instance on its cheapest provider.

What it ignores, so where it is weak: edges beyond the providers arc consistency already
removed (two neighbours may each take a cheap provider that cannot reach the other's),
public ports, the integrality of sharing a provider (a multiplier prices capacity
fractionally), and disruption (it bounds price over all placements, whatever they move).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ._problem import Problem

_ITERATIONS = 30
_STALL = 5  # iterations without a better bound before the step shrinks


def price_bound(problem: Problem, domains: Sequence[frozenset[int]], upper: float | None) -> float:
    """The best Lagrangian bound found on placement price; `upper` is a known feasible
    price (it sizes the steps and ends the work once the bound reaches it). Without one
    only the trivial bound is computed."""
    relaxation = _Relaxation(problem, domains)
    multipliers: dict[int, list[float]] = {}
    best, theta, stall = -math.inf, 2.0, 0
    for _ in range(_ITERATIONS if upper is not None else 1):
        value, usage = relaxation.solve(multipliers)
        if best == -math.inf or value > best + 1e-12 * abs(best):
            best, stall = value, 0
        else:
            stall += 1
            if stall >= _STALL:
                theta, stall = theta / 2, 0
        if upper is None or best >= upper or value == -math.inf:
            break
        step = _subgradient(multipliers, usage)
        norm = math.fsum(g * g for row in step.values() for g in row)
        if norm == 0:
            break  # the relaxed choice fits every capacity: no multiplier can help
        size = theta * (upper - value) / norm
        for p, row in step.items():
            current = multipliers.get(p, [0.0, 0.0, 0.0, 0.0])
            updated = [max(0.0, lam + size * g) for lam, g in zip(current, row, strict=True)]
            if any(updated):
                multipliers[p] = updated
            else:
                multipliers.pop(p, None)
    # partial sums round; the bound must stay below every exact total
    return best - 1e-9 * max(1.0, abs(best))


def _subgradient(
    multipliers: dict[int, list[float]], usage: dict[int, list[float]]
) -> dict[int, list[float]]:
    """Per provider and resource, share used minus 1, where the multiplier may move
    (it is positive, or the share is over 1)."""
    step: dict[int, list[float]] = {}
    for p in sorted(set(usage) | set(multipliers)):
        used = usage.get(p, [0.0, 0.0, 0.0, 0.0])
        lam = multipliers.get(p, [0.0, 0.0, 0.0, 0.0])
        row = [u - 1.0 if (u > 1.0 or m > 0) else 0.0 for u, m in zip(used, lam, strict=True)]
        if any(row):
            step[p] = row
    return step


class _Relaxation:
    """The relaxed problem for given multipliers: one small choice per node."""

    def __init__(self, problem: Problem, domains: Sequence[frozenset[int]]) -> None:
        self.problem = problem
        primary: dict[int, frozenset[int]] = {}
        standby: dict[int, set[int]] = {}
        self.replicas = [0] * len(problem.nodes)
        for s, n in enumerate(problem.slot_node):
            self.replicas[n] += 1
            if problem.slot_replica[s] == 0:
                primary[n] = domains[s]
            else:
                standby.setdefault(n, set()).update(domains[s])
        price = problem.price

        def by_price(peers: frozenset[int] | set[int]) -> list[int]:
            return sorted(peers, key=lambda p: (price[p], p))

        self.primary = [by_price(primary[n]) for n in range(len(problem.nodes))]
        self.standby = [by_price(standby.get(n, set())) for n in range(len(problem.nodes))]

    def _share(self, n: int, p: int) -> list[float]:
        demand, capacity = self.problem.demand[n], self.problem.capacity[p]
        return [d / c if d and c else 0.0 for d, c in zip(demand, capacity, strict=True)]

    def _cost(self, n: int, p: int, multipliers: dict[int, list[float]]) -> float:
        lam = multipliers.get(p)
        if lam is None:
            return self.problem.price[p]
        share = self._share(n, p)
        return self.problem.price[p] + math.fsum(m * s for m, s in zip(lam, share, strict=True))

    def solve(self, multipliers: dict[int, list[float]]) -> tuple[float, dict[int, list[float]]]:
        """The relaxation's value, and the share of each provider's resources its
        choice uses."""
        total: list[float] = []
        usage: dict[int, list[float]] = {}
        for n in range(len(self.problem.nodes)):
            value, chosen = self._node(n, multipliers)
            if not chosen:
                return -math.inf, {}
            total.append(value)
            for p in chosen:
                row = usage.setdefault(p, [0.0, 0.0, 0.0, 0.0])
                for i, share in enumerate(self._share(n, p)):
                    row[i] += share
        total.extend(-lam for row in multipliers.values() for lam in row)
        return math.fsum(total), usage

    def _node(self, n: int, multipliers: dict[int, list[float]]) -> tuple[float, tuple[int, ...]]:
        """The cheapest way to put node n's instances on distinct providers at these
        costs. Costs are never below price and lists are in price order, so a walk stops
        as soon as a price alone cannot beat what it has."""
        price = self.problem.price
        standbys = self.replicas[n] - 1
        cheapest: list[tuple[float, int]] = []
        if standbys:
            for p in self.standby[n]:
                if len(cheapest) > standbys and price[p] >= cheapest[standbys][0]:
                    break
                cheapest.append((self._cost(n, p, multipliers), p))
                cheapest.sort()
            if len(cheapest) < standbys:
                return math.inf, ()
        base = math.fsum(c for c, _ in cheapest[:standbys])
        best, chosen = math.inf, tuple[int, ...]()
        for p in self.primary[n]:
            if price[p] + base >= best:
                break
            cost = self._cost(n, p, multipliers)
            others = [q for q in cheapest if q[1] != p][:standbys]
            if len(others) < standbys:
                continue
            value = cost + math.fsum(c for c, _ in others)
            if value < best:
                best, chosen = value, (p, *(q for _, q in others))
        return best, chosen
