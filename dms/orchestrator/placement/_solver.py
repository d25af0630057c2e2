"""`solve`: the placement solver's one entry point (see spec/placement.md)."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from dms.ensemble._requirements import EnsembleRequirements

from ._explain import explain
from ._explanation import Unplaceable
from ._improve import improve
from ._model import Assignment, Bid, Measurements, Placement, SearchBudget, Strategy
from ._problem import Problem, compile_problem
from ._search import Active, evaluate, search


def solve(
    requirements: EnsembleRequirements,
    bids: Sequence[Bid],
    measurements: Measurements | None = None,
    *,
    exclude: frozenset[str] = frozenset(),
    strategy: Strategy = "pack",
    budget: SearchBudget | None = None,
    previous: Assignment | None = None,
    replace: frozenset[str] = frozenset(),
) -> Placement:
    """Place every ensemble node (and its standbys) on the bidding providers.

    Finds a first placement, then makes it cheaper by large-neighbourhood search until
    the budget ends, optimality is proven or the price meets a lower bound; returns the
    best found by the objective in spec/placement.md, with that bound and its `gap`. It
    is `optimal` when a complete search proved it. `exclude` adds providers that
    must not be chosen (e.g. those that failed to commit). With `previous`, the solver
    first minimises how many node instances move off their previous providers, so a
    re-solve after a failure keeps every other assignment when it can; nodes named in
    `replace` are placed afresh. The same inputs, in any order, give the same result
    (when the budget has no time limit; with one, the result is one of the improving
    placements the untimed search goes through).

    Raises `Unplaceable` (with an `Explanation`) when no placement exists or the budget
    ran out before one was found; `UnknownNode`/`DuplicateBid` for inconsistent inputs.
    """
    budget = SearchBudget() if budget is None else budget
    problem = compile_problem(
        requirements,
        bids,
        Measurements() if measurements is None else measurements,
        exclude=exclude,
        strategy=strategy,
        previous=previous,
        replace=replace,
    )
    if not problem.placeable_alone:
        raise Unplaceable(explain(problem, None, budget))
    started = budget.clock()
    first = search(problem, Active.everything(problem), budget, first_only=True)
    if first.values is None or first.root_domains is None:
        raise Unplaceable(explain(problem, first, budget))
    objective = evaluate(problem, first.values)
    better = improve(
        problem,
        first.values,
        objective,
        first.root_domains,
        budget,
        explored=first.stats.explored,
        started=started,
    )
    bound = better.bound
    if better.optimal and problem.previous is None:
        bound = better.objective.price  # proven: nothing is cheaper
    assignment = _assignment(problem, better.values)
    return Placement(
        assignment=assignment,
        objective=better.objective,
        strategy=strategy,
        optimal=better.optimal,
        stats=attrs.evolve(
            first.stats,
            explored=better.explored,
            solutions=1 + better.improvements,
            seconds=budget.clock() - started,
            neighbourhoods=better.neighbourhoods,
        ),
        moved=_moved(assignment, previous),
        lower_bound=min(bound, better.objective.price),
    )


def _assignment(problem: Problem, values: Sequence[int]) -> Assignment:
    primary: dict[str, str] = {}
    standbys: dict[str, list[str]] = {}
    for s, p in enumerate(values):
        name = problem.nodes[problem.slot_node[s]].name
        if problem.slot_replica[s] == 0:
            primary[name] = problem.peers[p]
        else:
            standbys.setdefault(name, []).append(problem.peers[p])
    return Assignment(primary=primary, standbys=standbys)


def _moved(assignment: Assignment, previous: Assignment | None) -> frozenset[str]:
    """Nodes with an instance on a provider that did not host the node before."""
    if previous is None:
        return frozenset()
    return frozenset(
        node
        for node in assignment.primary
        if not set(assignment.providers_of(node)) <= set(previous.providers_of(node))
    )
