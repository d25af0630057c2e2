"""Turning a failed search into an `Explanation`.

Node-level counts come straight from the compiled problem. For cross-node failures we
look for a small conflicting set: every edge, every replica separation and every
provider whose capacity could bind is a candidate; the set is shrunk by dropping
chunks (halves, then quarters, ... then single items) whenever what remains still
cannot be satisfied. When no check runs out of budget the result is 1-minimal: drop
any one member and the rest can be met together.
"""

from __future__ import annotations

from collections.abc import Sequence

from dms.ensemble._requirements import Resources

from ._explanation import (
    CapacityConflict,
    Conflict,
    EdgeConflict,
    Explanation,
    Reason,
    SeparationConflict,
)
from ._model import SearchBudget
from ._problem import Problem
from ._search import Active, Outcome, search

Item = tuple[str, int]  # ("capacity", provider) | ("separation", node) | ("edge", edge)


def explain(problem: Problem, outcome: Outcome | None, budget: SearchBudget) -> Explanation:
    """Why `problem` has no placement. `outcome` is the failed main search (None when
    it was skipped because some node had too few candidates of its own)."""
    explored = 0 if outcome is None else outcome.stats.explored
    seconds = 0.0 if outcome is None else outcome.stats.seconds
    if outcome is None or not problem.placeable_alone:
        return Explanation(
            Reason.NODE_WITHOUT_CANDIDATES, problem.reports, explored=explored, seconds=seconds
        )
    if not outcome.complete:
        return Explanation(
            Reason.BUDGET_EXHAUSTED, problem.reports, explored=explored, seconds=seconds
        )
    core, minimal = _conflicting_set(problem, budget)
    return Explanation(
        Reason.CONFLICTING_CONSTRAINTS,
        problem.reports,
        conflicts=tuple(_describe(problem, item) for item in core),
        core_minimal=minimal,
        explored=explored,
        seconds=seconds,
    )


def _holders(problem: Problem) -> list[list[int]]:
    """Per provider, the slots that could be placed on it."""
    holders: list[list[int]] = [[] for _ in problem.peers]
    for s, domain in enumerate(problem.slot_domain):
        for p in domain:
            holders[p].append(s)
    return holders


def _could_bind(problem: Problem, p: int, slots: Sequence[int]) -> bool:
    """False when the provider could host every slot that might land on it at once."""
    if len(slots) < 2:
        return False
    need = [0.0, 0, 0, 0]
    ports: list[int] = []
    anys = 0
    for s in slots:
        n = problem.slot_node[s]
        for i in range(4):
            need[i] += problem.demand[n][i]
        ports.extend(problem.fixed_ports[n])
        anys += problem.any_ports[n]
    cap = problem.capacity[p]
    free = problem.free_ports[p]
    return (
        need[0] > cap[0] + 1e-9
        or any(need[i] > cap[i] for i in (1, 2, 3))
        or len(set(ports)) < len(ports)
        or (free is not None and len(ports) + anys > len(free))
    )


def _candidate_items(problem: Problem) -> list[Item]:
    # Capacities first and edges last: chunks near the front are tried for removal
    # first, so a core made of edges and separations (easier to act on) is preferred.
    holders = _holders(problem)
    items: list[Item] = [
        ("capacity", p) for p in range(len(problem.peers)) if _could_bind(problem, p, holders[p])
    ]
    items += [("separation", n) for n, node in enumerate(problem.nodes) if node.redundancy]
    items += [("edge", e) for e in range(len(problem.edges))]
    return items


def _active(items: Sequence[Item]) -> Active:
    chosen: dict[str, set[int]] = {"edge": set(), "separation": set(), "capacity": set()}
    for kind, index in items:
        chosen[kind].add(index)
    return Active(
        edges=frozenset(chosen["edge"]),
        separations=frozenset(chosen["separation"]),
        capacities=frozenset(chosen["capacity"]),
    )


def _conflicting_set(problem: Problem, budget: SearchBudget) -> tuple[list[Item], bool]:
    """Shrink the candidate items to a conflicting set, spending at most one more
    `budget` in total. Returns the set and whether it is known to be 1-minimal."""
    start = budget.clock()
    spent = 0
    exhausted = False

    def unsatisfiable(items: Sequence[Item]) -> bool:
        nonlocal spent, exhausted
        remaining_seconds = None
        if budget.max_seconds is not None:
            remaining_seconds = budget.max_seconds - (budget.clock() - start)
        remaining_nodes = budget.max_nodes - spent
        if remaining_nodes <= 0 or (remaining_seconds is not None and remaining_seconds <= 0):
            exhausted = True
            return False
        # no grace for a first placement here (see `SearchBudget`): a check that runs
        # out only makes the set not known to be minimal, and with the grace one check
        # could take first_ceiling times the budget
        check = SearchBudget(
            max_nodes=remaining_nodes, max_seconds=remaining_seconds, first_nodes=0,
            clock=budget.clock,
        )
        outcome = search(problem, _active(items), check, first_only=True)
        spent += outcome.stats.explored
        if not outcome.complete and outcome.values is None:
            exhausted = True
        return outcome.complete and outcome.values is None

    core = _candidate_items(problem)
    chunk = max(1, len(core) // 2)
    while True:
        i = 0
        while i < len(core):
            trial = core[:i] + core[i + chunk :]
            if unsatisfiable(trial):
                core = trial
            else:
                i += chunk
        if chunk == 1:
            break
        chunk = max(1, chunk // 2)
    return core, not exhausted


def _describe(problem: Problem, item: Item) -> Conflict:
    kind, index = item
    if kind == "edge":
        return _describe_edge(problem, index)
    if kind == "separation":
        node = problem.nodes[index]
        return SeparationConflict(
            node=node.name,
            replicas=node.redundancy + 1,
            candidates=len(problem.candidates[index]),
        )
    holders = _holders(problem)[index]
    need = Resources()
    for s in holders:
        need = need + problem.nodes[problem.slot_node[s]].resources
    return CapacityConflict(
        peer=problem.peers[index],
        free=problem.bids[index].free,
        nodes=tuple(sorted({problem.nodes[problem.slot_node[s]].name for s in holders})),
        need=need,
    )


def _primary_domain(problem: Problem, node: int) -> tuple[int, ...]:
    return problem.slot_domain[problem.slot_node.index(node)]


def _describe_edge(problem: Problem, index: int) -> EdgeConflict:
    edge = problem.edges[index]
    sources = _primary_domain(problem, edge.source)
    targets = set(_primary_domain(problem, edge.target))
    shared = sum(1 for p in sources if p in targets)
    measured = satisfying = 0
    best_rtt: float | None = None
    best_bandwidth: float | None = None
    for p in sources:
        row = problem.links[p]
        others = (
            (q for q in row if q in targets)
            if len(row) < len(targets)
            else (q for q in targets if q in row)
        )
        for q in others:
            if q == p:
                continue
            rtt, bandwidth = row[q]
            measured += 1
            satisfying += problem.edge_allows(edge, p, q)
            if rtt != float("inf") and (best_rtt is None or rtt < best_rtt):
                best_rtt = rtt
            if bandwidth >= 0 and (best_bandwidth is None or bandwidth > best_bandwidth):
                best_bandwidth = bandwidth
    return EdgeConflict(
        edge=edge.position,
        source=problem.nodes[edge.source].name,
        target=problem.nodes[edge.target].name,
        max_rtt_ms=edge.max_rtt_ms,
        min_bandwidth=edge.min_bandwidth,
        source_candidates=len(sources),
        target_candidates=len(targets),
        shared=shared,
        measured_pairs=measured,
        satisfying_pairs=satisfying + shared,
        best_rtt_ms=best_rtt,
        best_bandwidth=best_bandwidth,
    )
