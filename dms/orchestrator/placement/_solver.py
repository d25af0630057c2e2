"""`solve`: the placement solver's one entry point (see spec/placement.md)."""

from __future__ import annotations

from collections.abc import Sequence

from dms.ensemble._requirements import EnsembleRequirements

from ._explain import explain
from ._explanation import Unplaceable
from ._model import Assignment, Bid, Measurements, Placement, SearchBudget, Strategy
from ._problem import Problem, compile_problem
from ._search import Active, search


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

    Returns the best placement found by the objective in spec/placement.md; it is
    `optimal` unless the budget stopped the search first. `exclude` adds providers that
    must not be chosen (e.g. those that failed to commit). With `previous`, the solver
    first minimises how many node instances move off their previous providers, so a
    re-solve after a failure keeps every other assignment when it can; nodes named in
    `replace` are placed afresh. The same inputs, in any order, give the same result
    (when the budget has no time limit).

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
    outcome = search(problem, Active.everything(problem), budget)
    if outcome.values is None or outcome.objective is None:
        raise Unplaceable(explain(problem, outcome, budget))
    assignment = _assignment(problem, outcome.values)
    return Placement(
        assignment=assignment,
        objective=outcome.objective,
        strategy=strategy,
        optimal=outcome.complete,
        stats=outcome.stats,
        moved=_moved(assignment, previous),
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
