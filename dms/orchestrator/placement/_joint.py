"""Which parts' own optima compete for capacity: where composing them fails, and where
solving two parts together can raise the lower bound above the sum of their optima.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._components import Part
from ._problem import Problem


def overused(
    problem: Problem, parts: Sequence[Part], own: Sequence[tuple[int, ...] | None]
) -> set[int]:
    """Providers the parts' own optima (`own`, per part slot; None when unknown) would
    overfill together (resources), or share between instances with public ports
    (checked exactly only within one part)."""
    load: dict[int, list[float]] = {}
    ported: dict[int, int] = {}
    for part, values in zip(parts, own, strict=True):
        if values is None:
            continue
        for s, p in zip(part.slots, values, strict=True):
            n = problem.slot_node[s]
            row = load.setdefault(p, [0.0, 0.0, 0.0, 0.0])
            for i, d in enumerate(problem.demand[n]):
                row[i] += d
            if problem.fixed_ports[n] or problem.any_ports[n]:
                ported[p] = ported.get(p, 0) + 1
    return {
        p
        for p, row in load.items()
        if ported.get(p, 0) > 1
        or row[0] > problem.capacity[p][0] + 1e-9
        or any(row[i] > problem.capacity[p][i] for i in (1, 2, 3))
    }


def clashing_pairs(
    problem: Problem, parts: Sequence[Part], own: Sequence[tuple[int, ...] | None]
) -> list[tuple[int, int]]:
    """Disjoint pairs of parts whose own optima use a common overused provider, those
    sharing the most such providers first (ties: fewer nodes, then index): greedy, so
    every part is in at most one pair."""
    over = overused(problem, parts, own)
    uses = [set(values) & over if values is not None else set() for values in own]
    candidates = sorted(

            (-len(uses[i] & uses[j]), len(parts[i].nodes) + len(parts[j].nodes), i, j)
            for i in range(len(parts))
            for j in range(i + 1, len(parts))
            if uses[i] & uses[j]

    )
    paired: set[int] = set()
    chosen: list[tuple[int, int]] = []
    for _, _, i, j in candidates:
        if i not in paired and j not in paired:
            paired.update((i, j))
            chosen.append((i, j))
    return chosen
