"""Which nodes a random large-neighbourhood step frees: seeded by regret (what a node
pays above the cheapest providers left to it), grown along edges, sometimes an edge's
two ends or the nodes blocking a node's cheaper providers. All randomness comes from
one generator seeded with a constant, so the sequence is deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ._problem import Problem

_SEED = 0x5EED


class Neighbourhoods:
    """Chooses which nodes to free; all randomness comes from one seeded generator."""

    def __init__(self, problem: Problem, domains: Sequence[frozenset[int]]) -> None:
        self.problem = problem
        self.rng = random.Random(_SEED)
        self.slots: list[list[int]] = [[] for _ in problem.nodes]
        for s, n in enumerate(problem.slot_node):
            self.slots[n].append(s)
        self.adjacent: list[list[int]] = [[] for _ in problem.nodes]
        for edge in problem.edges:
            self.adjacent[edge.source].append(edge.target)
            self.adjacent[edge.target].append(edge.source)
        price = problem.price
        # the cheapest price each slot could pay: regret is measured against it
        self.floor = [min((price[p] for p in d), default=0.0) for d in domains]
        self.domains = domains

    def pick(self, size: int, turn: int, values: tuple[int, ...]) -> list[int]:
        nodes = len(self.problem.nodes)
        if size >= nodes:
            return list(range(nodes))
        mode = turn % 3
        chosen: list[int] = []
        if mode == 2 and self.problem.edges:
            edge = self.problem.edges[self.rng.randrange(len(self.problem.edges))]
            chosen = [edge.source, edge.target]
        else:
            seed = self._by_regret(values)
            chosen = [seed]
            if mode == 1:
                chosen += self._blockers(seed, values, size)
        self._grow(chosen, size, values)
        return sorted(chosen[:size])

    def _regret(self, n: int, values: tuple[int, ...]) -> float:
        price = self.problem.price
        return sum(price[values[s]] - self.floor[s] for s in self.slots[n])

    def _by_regret(self, values: tuple[int, ...], besides: set[int] | None = None) -> int:
        """A node not in `besides`, drawn with probability growing with its regret (any
        such node if none has regret)."""
        besides = besides or set()
        weights = [
            0.0 if n in besides else self._regret(n, values) for n in range(len(self.problem.nodes))
        ]
        if not any(w > 0 for w in weights):
            left = [n for n in range(len(weights)) if n not in besides]
            return left[self.rng.randrange(len(left))]
        return self.rng.choices(range(len(weights)), weights=weights)[0]

    def _blockers(self, n: int, values: tuple[int, ...], size: int) -> list[int]:
        """Nodes on providers cheaper than where n's primary is that n could take."""
        price = self.problem.price
        primary = self.slots[n][0]
        current = price[values[primary]]
        cheaper = sorted(
            (p for p in self.domains[primary] if price[p] < current), key=lambda p: (price[p], p)
        )[: 4 * size]
        occupants: dict[int, list[int]] = {}
        for s, p in enumerate(values):
            occupants.setdefault(p, []).append(self.problem.slot_node[s])
        found: list[int] = []
        for p in cheaper:
            for m in occupants.get(p, ()):
                if m != n and m not in found:
                    found.append(m)
        self.rng.shuffle(found)
        return found[: size // 2]

    def _grow(self, chosen: list[int], size: int, values: tuple[int, ...]) -> None:
        """Add edge neighbours breadth first (in random order), then regret draws."""
        seen = set(chosen)
        frontier = list(chosen)
        while frontier and len(chosen) < size:
            n = frontier.pop(0)
            around = sorted({m for m in self.adjacent[n] if m not in seen})
            self.rng.shuffle(around)
            for m in around:
                if len(chosen) >= size:
                    break
                seen.add(m)
                chosen.append(m)
                frontier.append(m)
        while len(chosen) < size:
            m = self._by_regret(values, seen)
            seen.add(m)
            chosen.append(m)
