"""Improve a feasible placement inside the budget, and bound how far it can be from
the cheapest.

1. *Parts alone*: the nodes split by edges into components (`_components`); each is
   solved to optimality on its own, with every provider's whole capacity. The sum of
   their prices is the lower bound (a part that does not finish within its step share
   contributes its `_bound.price_bound` instead). Once phases 2 and 3 are done and the
   price still exceeds it and edges made it no stronger than the trivial bound, the
   Lagrangian bound of the whole (`_bound.price_bound`, which prices the capacity
   parts compete for) replaces it if higher.
   Parts whose own optima compete for a provider are then solved two at a time
   (`_pair_bounds`, a tenth of the budget): a pair's joint optimum replaces the sum
   of its two.
2. *Composed*: the parts' own optima put together, those that clash re-solved one
   after another on what the others left; adopted if cheaper.
3. *Part moves*, in rounds that take turns until three in a row gain nothing (one
   move's gain often opens another's): *insert* puts a part above its own optimum on
   that optimum and searches again only the nodes it displaces; *part by part* frees
   such a part together with the nodes occupying the providers its own optimum uses
   (with their whole parts while the neighbourhood stays small; a freed part's own
   optimum bounds it inside the search); *pairs* frees it with one other part that
   holds providers it could use more cheaply. Everything else is kept, and the
   ordinary branch-and-bound search (`search` with a `Start`) looks for a cheaper
   placement of the freed nodes; a neighbourhood that gains but runs out of steps is
   searched again with twice the steps. When the parts' optima share no provider,
   one round reaches the bound.
4. *Large-neighbourhood search*: random neighbourhoods of a few nodes (`_neighbourhoods`)
   re-solved the same way; the size grows when several in a row were searched
   completely without a gain, and once it covers every node a complete search proves
   the placement optimal.

Work stops at the budget, at that proof, or when the price meets the bound (when
nothing was moved off `previous`, so price decides).

Determinism: neighbourhoods come from a generator seeded with a constant and every
limit is counted in search steps, so the same problem and `max_nodes` give the same
sequence of improving placements. A `max_seconds` limit only decides where in that
sequence the work stops: the result is always one of its members.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from ._bound import price_bound
from ._components import Part, components, restrict
from ._joint import clashing_pairs, overused
from ._model import Objective, SearchBudget
from ._neighbourhoods import Neighbourhoods
from ._problem import Problem
from ._search import Active, Outcome, Partners, Start, _compare, evaluate, search

_PART_STEPS = 5_000  # steps one part may take on its own
_START_SIZE = 6  # nodes a random neighbourhood frees at first
_STEPS_PER_NODE = 60  # step limit per neighbourhood, per freed node
_PATIENCE = 8  # complete neighbourhoods without a gain before the size grows
_PART_STEPS_PER_NODE = 60  # step limit per part-by-part neighbourhood, per freed node
_PAIR_TRIES = 4  # other parts tried with one part above its optimum
_MAX_FREED = 16  # nodes a part-by-part neighbourhood frees at most
_JOINT_STEPS = 300  # steps for a pair of parts solved together for the bound
_JOINT_SHARE = 0.1  # of the steps and seconds left, the most the pair bounds take
_PERSIST = 3  # tries of one neighbourhood while it gains but runs out of steps
_WIDTH: int | None = None  # providers a freed slot may choose from (None: all)
_TOLERANCE = 1e-9


@attrs.frozen
class Improved:
    values: tuple[int, ...]
    objective: Objective
    bound: float  # at most the price of any feasible placement
    optimal: bool  # a complete search over every node found nothing better
    explored: int
    improvements: int
    neighbourhoods: int


def improve(
    problem: Problem,
    values: tuple[int, ...],
    objective: Objective,
    domains: Sequence[frozenset[int]],
    budget: SearchBudget,
    *,
    explored: int,
    started: float,
) -> Improved:
    """Improve `values` within what is left of `budget` (`explored` steps were spent,
    the solve started at `started` on the budget's clock)."""
    return _Improvement(problem, values, objective, domains, budget, explored, started).run()


@attrs.frozen
class _Alone:
    bound: float
    values: tuple[int, ...] | None  # the part's own optimum, per part slot


class _Improvement:
    def __init__(
        self,
        problem: Problem,
        values: tuple[int, ...],
        objective: Objective,
        domains: Sequence[frozenset[int]],
        budget: SearchBudget,
        explored: int,
        started: float,
    ) -> None:
        self.problem = problem
        self.values, self.objective = values, objective
        self.domains = tuple(domains)
        self.budget = budget
        self.explored = explored
        self.started = started
        self.partners: Partners = {}
        self.everything = Active.everything(problem)
        self.improvements = 0
        self.tried = 0
        self.optimal = not problem.nodes
        self.bound = -math.inf
        self.late_bound = -math.inf  # a bound found too late to stop on (`_pair_bounds`)
        self.groups: list[tuple[Part, _Alone]] = []  # parts and what they cost alone
        self.slots_of: list[list[int]] = [[] for _ in problem.nodes]
        for s, n in enumerate(problem.slot_node):
            self.slots_of[n].append(s)

    def run(self) -> Improved:
        parts = [restrict(self.problem, c, self.domains) for c in components(self.problem)]
        alone = [self._alone(part) for part in parts]
        self.groups = list(zip(parts, alone, strict=True))
        self.bound = math.fsum(a.bound for a in alone) - _TOLERANCE * max(
            1.0, sum(abs(a.bound) for a in alone)
        )
        if len(parts) > 1:
            self._pair_bounds(parts, alone)
            self._compose(parts, alone)
            self._cycle(parts, alone)
            if not self._at_bound() and self._left() is not None:
                self._price_capacity()
        self._random_neighbourhoods()
        return Improved(
            self.values,
            self.objective,
            max(self.bound, self.late_bound),
            self.optimal,
            self.explored,
            self.improvements,
            self.tried,
        )

    # -- budget ----------------------------------------------------------------------

    def _left(self) -> tuple[int, float | None] | None:
        """Steps and seconds left, None when either ran out."""
        steps = self.budget.max_nodes - self.explored
        seconds = None
        if self.budget.max_seconds is not None:
            seconds = self.budget.max_seconds - (self.budget.clock() - self.started)
        if steps <= 0 or (seconds is not None and seconds <= 0):
            return None
        return steps, seconds

    def _search(
        self,
        problem: Problem,
        steps: int,
        start: Start | None,
        consistent: bool = False,
        seconds: float | None = None,
    ) -> Outcome | None:
        left = self._left()
        if left is None:
            return None
        limit = left[1] if seconds is None or left[1] is None else min(seconds, left[1])
        outcome = search(
            problem,
            self.everything if start is not None else Active.everything(problem),
            SearchBudget(max_nodes=min(steps, left[0]), max_seconds=limit, clock=self.budget.clock),
            start=start,
            consistent=consistent,
            partners=self.partners,
        )
        self.explored += outcome.stats.explored
        return outcome

    def _at_bound(self) -> bool:
        price = self.objective.price
        # the bound was lowered by one tolerance against rounding: within two it is met
        return self.objective.disruption == 0 and price - self.bound <= 2 * _TOLERANCE * max(
            1.0, abs(price)
        )

    # -- phases ----------------------------------------------------------------------

    def _alone(self, part: Part) -> _Alone:
        outcome = self._search(part.problem, _PART_STEPS, None, consistent=True)
        if outcome is not None and outcome.complete and outcome.objective is not None:
            return _Alone(outcome.objective.price, outcome.values)
        upper = None if outcome is None or outcome.objective is None else outcome.objective.price
        domains = [self.domains[s] for s in part.slots]
        return _Alone(price_bound(part.problem, domains, upper), None)

    def _pair_bounds(self, parts: Sequence[Part], alone: Sequence[_Alone]) -> None:
        """Raise the bound with parts whose own optima compete for a provider, solved two
        at a time with every provider's whole capacity: a pair's optimum is at least the
        sum of its parts' and bounds what the two cost in any placement, so over pairs
        that share no part (and the other parts alone) it bounds the whole. A tenth of
        the steps and seconds left; a pair not solved completely within it counts alone.

        Determinism: when the seconds' share cut the work short, the raised bound is
        only reported (`late_bound`), not used to stop early, so a timed run still
        passes through the placements the untimed one does."""
        left = self._left()
        if left is None:
            return
        steps = max(1, int(_JOINT_SHARE * left[0]))
        seconds = None if left[1] is None else _JOINT_SHARE * left[1]
        started, spent = self.budget.clock(), self.explored
        joint = [a.bound for a in alone]
        timed_out = False
        for i, j in clashing_pairs(self.problem, parts, [a.values for a in alone]):
            elapsed = self.budget.clock() - started
            if self.explored - spent >= steps:
                break
            if seconds is not None and elapsed >= seconds:
                timed_out = True
                break
            nodes = sorted((*parts[i].nodes, *parts[j].nodes))
            pair = restrict(self.problem, nodes, self.domains)
            limit = min(_JOINT_STEPS, steps - (self.explored - spent))
            outcome = self._search(
                pair.problem,
                limit,
                None,
                consistent=True,
                seconds=None if seconds is None else seconds - elapsed,
            )
            if outcome is None:
                return
            if outcome.complete and outcome.objective is not None:
                joint[i], joint[j] = outcome.objective.price, 0.0
            elif outcome.stats.explored < limit:
                timed_out = True  # stopped by the clock, not by its steps
        total = math.fsum(joint)
        raised = total - _TOLERANCE * max(1.0, abs(total))
        if timed_out:
            self.late_bound = max(self.late_bound, raised)
        else:
            self.bound = max(self.bound, raised)

    def _price_capacity(self) -> None:
        """Parts alone ignore the capacity they compete for; pricing it (Lagrangian) can
        do better, but on edge-bound ensembles parts alone are far stronger, so it is
        tried only when edges gave nothing over the trivial bound."""
        trivial = price_bound(self.problem, self.domains, None)
        if self.bound <= trivial + _TOLERANCE * max(1.0, abs(trivial)):
            priced = price_bound(self.problem, self.domains, self.objective.price)
            self.bound = max(self.bound, priced)

    def _compose(self, parts: Sequence[Part], alone: Sequence[_Alone]) -> None:
        """Build a placement from the parts' own optima: first the parts whose optima
        share no overused provider with another's, then the others (largest first), each
        solved again, when its optimum no longer fits, on what the placed ones left.
        Adopted when it beats the current placement."""
        problem = self.problem
        clash = overused(problem, parts, [a.values for a in alone])
        order = sorted(
            range(len(parts)),
            key=lambda k: (
                not clash.isdisjoint(alone[k].values or clash),
                -len(parts[k].slots),
                k,
            ),
        )
        residual = _Residual(problem)
        values = [-1] * len(problem.slot_node)
        for k in order:
            part, own = parts[k], alone[k].values
            if own is None or not residual.admits(part, own):
                outcome = self._search(residual.problem(part, self.domains), _PART_STEPS, None)
                if outcome is None or outcome.values is None:
                    return
                own = outcome.values
            residual.take(part, own)
            for s, p in zip(part.slots, own, strict=True):
                values[s] = p
        composed = tuple(values)
        objective = evaluate(problem, composed)
        strategy = problem.strategy
        if _compare(objective.key(strategy), self.objective.key(strategy)) < 0:
            self.values, self.objective = composed, objective
            self.improvements += 1

    def _try(self, free: frozenset[int], steps: int, width: int | None) -> Outcome | None:
        """Search for a better placement moving only the `free` slots (each among its
        `width` cheapest providers left); adopt it."""
        groups = tuple(
            (frozenset(part.slots), alone.bound)
            for part, alone in self.groups
            if free.issuperset(part.slots) and alone.values is not None
        )
        start = Start(self.values, self.objective, free, self.domains, width=width, groups=groups)
        outcome = self._search(self.problem, steps, start)
        if outcome is None:
            return None
        self.tried += 1
        if outcome.stats.solutions and outcome.values is not None and outcome.objective:
            self.values, self.objective = outcome.values, outcome.objective
            self.improvements += 1
        return outcome

    def _cycle(self, parts: Sequence[Part], alone: Sequence[_Alone]) -> None:
        """Rounds of the part moves in turn (insert, part by part, pairs) until none of
        three rounds in a row gains: one move's gain often opens another's, and a round
        of one that gained is rarely worth repeating before the others had a turn."""
        moves = (self._insert, self._part_by_part, self._pairs)
        idle = 0
        while idle < len(moves):
            for move in moves:
                if self._at_bound():
                    return
                gained = move(parts, alone)
                if gained is None:
                    return
                idle = 0 if gained else idle + 1
                if idle >= len(moves):
                    return

    def _persist(self, free: frozenset[int], steps: int) -> bool | None:
        """`_try` the neighbourhood, and again with twice the steps while it gains but
        was cut off by its step limit (there is likely more to find there). Whether it
        gained; None once the budget is out or the bound is met."""
        gained = False
        for _ in range(_PERSIST):
            before = self.objective
            outcome = self._try(free, steps, _WIDTH)
            if outcome is None:
                return None
            if self.objective is before:
                break
            gained = True
            if self._at_bound():
                return None
            if outcome.complete:
                break
            steps *= 2
        return gained

    def _insert(self, parts: Sequence[Part], alone: Sequence[_Alone]) -> bool | None:
        """One round: each part above its own optimum put on that optimum, and only the
        nodes it displaces (the others on the providers it takes) searched again, the
        rest kept: a far smaller search than freeing the part too, and the move that
        pays off when parts compete for a few cheap providers. Whether it gained; None
        once the budget is out or the bound is met."""
        problem = self.problem
        gained = False
        for k in self._regrets(parts, alone):
            own = alone[k].values
            if own is None:
                continue
            mine = set(parts[k].nodes)
            wanted = set(own)
            displaced = {
                problem.slot_node[s]
                for s, p in enumerate(self.values)
                if p in wanted and problem.slot_node[s] not in mine
            }
            if not displaced:
                continue
            values = list(self.values)
            for s, p in zip(parts[k].slots, own, strict=True):
                values[s] = p
            free = frozenset(s for n in displaced for s in self.slots_of[n])
            # the incumbent to beat is the current placement, not the one tried
            start = Start(tuple(values), self.objective, free, self.domains)
            outcome = self._search(problem, _PART_STEPS_PER_NODE * len(displaced), start)
            if outcome is None:
                return None
            self.tried += 1
            if outcome.stats.solutions and outcome.values is not None and outcome.objective:
                self.values, self.objective = outcome.values, outcome.objective
                self.improvements += 1
                gained = True
                if self._at_bound():
                    return None
        return gained

    def _part_by_part(self, parts: Sequence[Part], alone: Sequence[_Alone]) -> bool | None:
        """One round: each part above its own optimum freed with the nodes on the
        providers its optimum uses (their whole parts while that stays small)."""
        part_of = self._part_of(parts)
        gained = False
        for k in self._regrets(parts, alone):
            freed = set(parts[k].nodes)
            own = alone[k].values
            if own is not None:
                wanted = set(own)
                for s, p in enumerate(self.values):
                    n = self.problem.slot_node[s]
                    if p not in wanted or n in freed:
                        continue
                    whole = parts[part_of[n]].nodes
                    if len(freed) + len(whole) <= _MAX_FREED:
                        freed.update(whole)
                    elif len(freed) < _MAX_FREED:
                        freed.add(n)
            free = frozenset(s for n in freed for s in self.slots_of[n])
            result = self._persist(free, _PART_STEPS_PER_NODE * len(freed))
            if result is None:
                return None
            gained = gained or result
        return gained

    def _part_of(self, parts: Sequence[Part]) -> list[int]:
        part_of = [0] * len(self.problem.nodes)
        for k, part in enumerate(parts):
            for n in part.nodes:
                part_of[n] = k
        return part_of

    def _regrets(self, parts: Sequence[Part], alone: Sequence[_Alone]) -> list[int]:
        """Parts costing more than their own optimum, most above it first."""
        price = self.problem.price
        regret = [
            math.fsum(price[self.values[s]] for s in part.slots) - a.bound
            for part, a in zip(parts, alone, strict=True)
        ]
        return sorted(
            (k for k in range(len(parts)) if regret[k] > _TOLERANCE * max(1.0, alone[k].bound)),
            key=lambda k: (-regret[k], k),
        )

    def _pairs(self, parts: Sequence[Part], alone: Sequence[_Alone]) -> bool | None:
        """One round: each part above its own optimum freed with one other part at a
        time, those holding the most providers it could use more cheaply first: two
        parts can trade providers, which neither can do alone."""
        problem, price = self.problem, self.problem.price
        part_of = self._part_of(parts)
        gained = False
        for k in self._regrets(parts, alone):
            cheaper: set[int] = set()
            for s in parts[k].slots:
                paid = price[self.values[s]]
                cheaper.update(p for p in self.domains[s] if price[p] < paid)
            held: dict[int, int] = {}
            for s, p in enumerate(self.values):
                j = part_of[problem.slot_node[s]]
                if p in cheaper and j != k:
                    held[j] = held.get(j, 0) + 1
            for j in sorted(held, key=lambda j: (-held[j], j))[:_PAIR_TRIES]:
                free = frozenset(parts[k].slots) | frozenset(parts[j].slots)
                result = self._persist(free, _PART_STEPS_PER_NODE * len(free))
                if result is None:
                    return None
                if result:
                    gained = True
                    break
        return gained

    def _random_neighbourhoods(self) -> None:
        nodes = len(self.problem.nodes)
        neighbourhood = Neighbourhoods(self.problem, self.domains)
        size, misses, turn = min(nodes, _START_SIZE), 0, 0
        while not self.optimal:
            if size < nodes and self._at_bound():
                return
            freed = neighbourhood.pick(size, turn, self.values)
            turn += 1
            free = frozenset(s for n in freed for s in neighbourhood.slots[n])
            steps = self.budget.max_nodes if size == nodes else _STEPS_PER_NODE * size
            before = self.objective
            outcome = self._try(free, steps, None if size == nodes else _WIDTH)
            if outcome is None:
                return
            if self.objective is not before:
                misses = 0
            elif outcome.complete:
                misses += 1
            if outcome.complete and size == nodes:
                self.optimal = True
            elif misses >= _PATIENCE:
                size, misses = min(nodes, size + 1), 0


class _Residual:
    """What providers have left while parts are placed one after another. A provider
    hosting an instance with public ports is closed to other parts' instances with
    public ports: conservative, so every composed placement is feasible."""

    def __init__(self, problem: Problem) -> None:
        self.whole = problem
        self.remaining = [list(c) for c in problem.capacity]
        self.ported: set[int] = set()

    def _ports(self, n: int) -> bool:
        return bool(self.whole.fixed_ports[n] or self.whole.any_ports[n])

    def admits(self, part: Part, values: Sequence[int]) -> bool:
        need: dict[int, list[float]] = {}
        for s, p in zip(part.slots, values, strict=True):
            n = self.whole.slot_node[s]
            if self._ports(n) and p in self.ported:
                return False
            row = need.setdefault(p, [0.0, 0.0, 0.0, 0.0])
            for i, d in enumerate(self.whole.demand[n]):
                row[i] += d
        return all(self._fits(row, p) for p, row in need.items())

    def _fits(self, need: Sequence[float], p: int) -> bool:
        rem = self.remaining[p]
        return need[0] <= rem[0] + 1e-9 and all(need[i] <= rem[i] for i in (1, 2, 3))

    def take(self, part: Part, values: Sequence[int]) -> None:
        for s, p in zip(part.slots, values, strict=True):
            n = self.whole.slot_node[s]
            for i, d in enumerate(self.whole.demand[n]):
                self.remaining[p][i] -= d
            if self._ports(n):
                self.ported.add(p)

    def problem(self, part: Part, domains: Sequence[frozenset[int]]) -> Problem:
        """The part on what is left: each slot keeps the providers it still fits."""
        whole = self.whole
        left = [frozenset[int]()] * len(whole.slot_node)
        for s in part.slots:
            n = whole.slot_node[s]
            ports = self._ports(n)
            left[s] = frozenset(
                p
                for p in domains[s]
                if self._fits(whole.demand[n], p) and not (ports and p in self.ported)
            )
        sub = restrict(whole, part.nodes, left).problem
        capacity = tuple((float(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in self.remaining)
        return sub.evolve(capacity=capacity)
