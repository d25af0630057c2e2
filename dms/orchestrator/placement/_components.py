"""Ensemble nodes split by edges into independent groups, and one group as a problem of
its own.

Edges only join the nodes they name, so the nodes of different connected components
interact only through shared provider capacity. A component solved alone, with every
provider's whole capacity, therefore costs at most what it costs in any placement of
the whole ensemble: the sum of the components' optimal prices bounds the whole price
from below, and it is exact when their optimal placements happen not to share capacity.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from ._problem import Problem


def components(problem: Problem) -> list[list[int]]:
    """Node indices grouped by the edges between them, each group sorted, groups in the
    order of their smallest node."""
    parent = list(range(len(problem.nodes)))

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for edge in problem.edges:
        a, b = root(edge.source), root(edge.target)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for n in range(len(problem.nodes)):
        groups.setdefault(root(n), []).append(n)
    return [groups[r] for r in sorted(groups)]


@attrs.frozen
class Part:
    """`problem` holds only `nodes` (indices of the whole problem's nodes, in order) and
    their edges; its slot `i` is the whole problem's slot `slots[i]`."""

    problem: Problem
    nodes: tuple[int, ...]
    slots: tuple[int, ...]


def restrict(problem: Problem, nodes: Sequence[int], domains: Sequence[frozenset[int]]) -> Part:
    """The sub-problem over `nodes` with `domains` (per whole-problem slot) as its
    providers and price as its first objective (disruption is dropped, so the part's
    optimum is the cheapest way to place it)."""
    index = {n: i for i, n in enumerate(nodes)}
    price = problem.price
    slots = tuple(s for s, n in enumerate(problem.slot_node) if n in index)

    def by_price(peers: frozenset[int]) -> tuple[int, ...]:
        return tuple(sorted(peers, key=lambda p: (price[p], p)))

    candidates = tuple(
        by_price(frozenset().union(*(domains[s] for s in slots if problem.slot_node[s] == n)))
        for n in nodes
    )
    part = problem.evolve(
        nodes=tuple(problem.nodes[n] for n in nodes),
        demand=tuple(problem.demand[n] for n in nodes),
        fixed_ports=tuple(problem.fixed_ports[n] for n in nodes),
        any_ports=tuple(problem.any_ports[n] for n in nodes),
        candidates=candidates,
        previous=None,
        slot_node=tuple(index[problem.slot_node[s]] for s in slots),
        slot_replica=tuple(problem.slot_replica[s] for s in slots),
        slot_domain=tuple(by_price(domains[s]) for s in slots),
        edges=tuple(
            attrs.evolve(edge, source=index[edge.source], target=index[edge.target])
            for edge in problem.edges
            if edge.source in index
        ),
        reports=tuple(problem.reports[n] for n in nodes),
    )
    return Part(part, tuple(nodes), slots)
