"""CP-SAT (OR-Tools) model of the placement problem, for the benchmark only.

It is built from the solver's compiled `Problem` so both see exactly the same
candidates: one boolean per (instance, provider) the solver's root arc consistency
kept, exactly one per instance, distinct providers per node, summed resources within
each provider's free resources, and for every edge and every provider of one end, at
least one compatible provider (or the same one) for the other end. Public ports are
not modelled (the bench's instances have none); the objective is price only (the
solver's rtt and provider-count tie-breaks are ignored).
"""

from __future__ import annotations

from collections.abc import Sequence

from dms.orchestrator.placement._problem import Problem

try:
    from ortools.sat.python import cp_model
except ImportError as missing:  # the bench runs without it and says so
    cp_model = None
    MISSING = f"ortools is not installed ({missing}); pip install '.[bench]'"
else:
    MISSING = ""

PRICE_SCALE = 100  # bench prices have two decimals
CPU_SCALE = 1000


class Result:
    def __init__(
        self,
        price: float | None,
        bound: float,
        optimal: bool,
        seconds: float,
        values: list[int] | None = None,
    ) -> None:
        self.price, self.bound, self.optimal, self.seconds = price, bound, optimal, seconds
        self.values = values  # provider per slot


def solve_cpsat(
    problem: Problem,
    domains: Sequence[frozenset[int]],
    seconds: float,
    *,
    workers: int = 2,
    hint: Sequence[int] | None = None,
) -> Result:
    assert cp_model is not None, MISSING
    model = cp_model.CpModel()
    x: list[dict[int, object]] = []
    for s, dom in enumerate(domains):
        x.append({p: model.NewBoolVar(f"x{s}_{p}") for p in sorted(dom)})
        model.AddExactlyOne(x[s].values())
    by_node: dict[int, list[int]] = {}
    for s, n in enumerate(problem.slot_node):
        by_node.setdefault(n, []).append(s)
    for slots in by_node.values():
        if len(slots) > 1:
            peers = set().union(*(x[s].keys() for s in slots))
            for p in peers:
                model.AddAtMostOne(x[s][p] for s in slots if p in x[s])
    on: dict[int, list[int]] = {}
    for s in range(len(domains)):
        for p in x[s]:
            on.setdefault(p, []).append(s)
    for p, slots in on.items():
        if len(slots) < 2:
            continue
        cap = problem.capacity[p]
        for i in range(4):
            scale = CPU_SCALE if i == 0 else 1
            demand = [round(problem.demand[problem.slot_node[s]][i] * scale) for s in slots]
            if sum(demand) > cap[i] * scale:
                model.Add(
                    sum(d * x[s][p] for d, s in zip(demand, slots, strict=True)) <= int(cap[i] * scale + 1e-6)
                )
    primary = {problem.slot_node[s]: s for s in range(len(domains)) if problem.slot_replica[s] == 0}
    for edge in problem.edges:
        for a, b in ((edge.source, edge.target), (edge.target, edge.source)):
            sa, sb = primary[a], primary[b]
            for p, var in x[sa].items():
                partners = [v for q, v in x[sb].items() if problem.edge_allows(edge, p, q)]
                model.AddBoolOr([var.Not(), *partners])  # type: ignore[attr-defined]
    model.Minimize(
        sum(round(problem.price[p] * PRICE_SCALE) * v for row in x for p, v in row.items())
    )
    if hint is not None:
        for s, p in enumerate(hint):
            for q, v in x[s].items():
                model.AddHint(v, q == p)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = workers
    status = solver.Solve(model)
    found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    return Result(
        solver.ObjectiveValue() / PRICE_SCALE if found else None,
        solver.BestObjectiveBound() / PRICE_SCALE,
        status == cp_model.OPTIMAL,
        solver.WallTime(),
        [next(p for p, v in row.items() if solver.Value(v)) for row in x] if found else None,
    )
