"""Branch-and-bound backtracking over a compiled `Problem`.

Variables are slots (each replica of each ensemble node), values are provider indices.
The search picks the slot with the fewest remaining providers (ties: most constraints,
then lowest index), tries providers cheapest-first by the objective, and after each
assignment forward-checks shared capacity and ports, replica separation and edge
constraints, so a dead end shows as an empty domain one step after the choice that
caused it. Once a solution is known, a lower bound on the objective prunes branches
that cannot beat it. Standbys of one node are interchangeable, so they take providers
in increasing index order: every placement is still reachable, each only once.

`Active` names the cross-node constraints in force; the explainer switches some off to
find a conflicting set. The search is pure: time comes from the budget's clock.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Sequence

import attrs

from ._model import Objective, SearchBudget, SearchStats
from ._problem import Edge, Problem

_TOLERANCE = 1e-9
_NO_PORTS: frozenset[int] = frozenset()
# assignments in the first run before a restart, at least, and per open slot: a run
# must be able to assign every slot and undo some, or it only ever restarts
_FIRST_CUTOFF = 100
_CUTOFF_PER_SLOT = 2
# a revision gathers the other end's support when that end has this many times fewer
# providers: a union per partner costs about that many partner checks
_UNION_COST = 2


@attrs.frozen
class Active:
    edges: frozenset[int]  # indices into problem.edges
    separations: frozenset[int]  # nodes whose replicas need distinct providers
    capacities: frozenset[int]  # providers whose resources and ports are enforced

    @classmethod
    def everything(cls, problem: Problem) -> Active:
        return cls(
            edges=frozenset(range(len(problem.edges))),
            separations=frozenset(range(len(problem.nodes))),
            capacities=frozenset(range(len(problem.peers))),
        )


@attrs.frozen
class Outcome:
    """`complete` means the whole space was searched: `values` (provider per slot) is
    then optimal, or None because no placement exists under the active constraints."""

    values: tuple[int, ...] | None
    objective: Objective | None
    complete: bool
    stats: SearchStats
    # providers left to each slot once the root was made arc consistent (None when the
    # root already failed): what the lower bound reasons about
    root_domains: tuple[frozenset[int], ...] | None = None


def evaluate(problem: Problem, values: tuple[int, ...]) -> Objective:
    """The objective of a full assignment, summed exactly (fsum) so it does not depend
    on the order the search assigned slots in."""
    primary = {}
    for s, p in enumerate(values):
        if problem.slot_replica[s] == 0:
            primary[problem.slot_node[s]] = p
    return Objective(
        disruption=sum(problem.disruption(problem.slot_node[s], p) for s, p in enumerate(values)),
        price=math.fsum(problem.price[p] for p in values),
        rtt_ms=math.fsum(
            problem.rtt(primary[e.source], primary[e.target]) for e in problem.edges if e.rtt_counts
        ),
        providers=len(set(values)),
    )


def _compare(a: tuple[float, ...], b: tuple[float, ...]) -> int:
    """-1, 0 or 1 as a is lexicographically below, equal to or above b, treating values
    within rounding error of each other as equal (partial sums drift; totals do not)."""
    for x, y in zip(a, b, strict=True):
        if abs(x - y) <= _TOLERANCE * max(1.0, abs(x), abs(y)):
            continue
        return 1 if x > y else -1
    return 0


class _OutOfBudget(Exception):
    pass


class _Found(Exception):
    pass


@attrs.define
class _Frame:
    slot: int
    values: Iterator[int]
    assigned: int = -1
    mark: int = 0
    bound: tuple[int, float] | None = None


Partners = dict[tuple[int, int], frozenset[int]]  # (edge position, provider) -> partners


@attrs.frozen
class Start:
    """Where an improving search starts: `values` (a feasible placement, provider per
    slot) is the incumbent to beat, and only the slots in `free` may change; the others
    keep their providers."""

    values: tuple[int, ...]
    objective: Objective
    free: frozenset[int]
    domains: tuple[frozenset[int], ...]  # per slot, the providers a free slot may take
    # keep only this many of a free slot's providers (cheapest first, and its own), once
    # the kept slots have ruled some out; None keeps them all (needed for a proof)
    width: int | None = None
    # free slots that together cost at least the given price, whatever the others do
    groups: tuple[tuple[frozenset[int], float], ...] = ()


def search(
    problem: Problem,
    active: Active,
    budget: SearchBudget,
    *,
    first_only: bool = False,
    start: Start | None = None,
    consistent: bool = False,
    partners: Partners | None = None,
) -> Outcome:
    """Search for the best placement (or any, with `first_only`) within `budget`. With
    `start`, only its free slots are searched and only placements better than its
    incumbent are recorded (`Outcome.values` is the incumbent if none is); `complete`
    then means no better placement exists with the other slots where they are.
    `consistent` says the problem's domains are already arc consistent (the root's own
    propagation is then skipped). `partners` caches which providers each provider may
    pair with over each edge; searches over problems with the same providers and
    edges may share one."""
    return _Search(problem, active, budget, first_only, start, consistent, partners).run()


class _Search:
    def __init__(
        self,
        problem: Problem,
        active: Active,
        budget: SearchBudget,
        first_only: bool,
        start: Start | None = None,
        consistent: bool = False,
        partners: Partners | None = None,
    ) -> None:
        self.problem = problem
        self.active = active
        self.budget = budget
        self.first_only = first_only
        self.start_at = start
        self.consistent = consistent
        self.pack = problem.strategy == "pack"
        nslots = len(problem.slot_node)
        self.slots = range(nslots)
        # the slots the search may assign: an improving search never touches kept ones
        self.open_slots: Sequence[int] = self.slots if start is None else sorted(start.free)
        self.groups = () if start is None else start.groups
        self.group_of = {s: g for g, (slots, _) in enumerate(self.groups) for s in slots}
        if start is None:
            self.dom = [set(d) for d in problem.slot_domain]
        else:
            self.dom = [
                set(start.domains[s]) if s in start.free else {start.values[s]} for s in self.slots
            ]
        self.val = [-1] * nslots
        self.unassigned = nslots
        # what is left of the providers that host something, copied on first use: an
        # improving search touches a few of a thousand providers, and copying them all
        # was a tenth of its time
        self.remaining: dict[int, list[float]] = {}
        self.ports_taken: dict[int, set[int]] = {}
        self.anys_taken = [0] * len(problem.peers)
        self.hosted = [0] * len(problem.peers)
        self.used = 0
        self.part_d = 0
        self.part_price = 0.0
        self.part_rtt = 0.0
        self.contrib: list[tuple[int, float, float]] = [(0, 0.0, 0.0)] * nslots
        self.trail: list[tuple[int, set[int]]] = []
        self.node_slots: list[list[int]] = [[] for _ in problem.nodes]
        for s in self.slots:
            self.node_slots[problem.slot_node[s]].append(s)
        self.incident: list[list[tuple[Edge, int]]] = [[] for _ in problem.nodes]
        for e in sorted(active.edges):
            edge = problem.edges[e]
            self.incident[edge.source].append((edge, edge.target))
            self.incident[edge.target].append((edge, edge.source))
        self.degree = [
            len(self.node_slots[problem.slot_node[s]])
            + (len(self.incident[problem.slot_node[s]]) if problem.slot_replica[s] == 0 else 0)
            for s in self.slots
        ]
        # conflict weights (dom/wdeg): slots that keep failing get chosen earlier
        self.weight = [1.0 + d for d in self.degree]
        self.wiped = -1
        self.residue: dict[tuple[int, int], dict[int, int]] = {}
        self.partners: Partners = {} if partners is None else partners
        # a first search scans each provider's nearest links (`RankedLinks`) and stops
        # at the first partner; searches that share partners build each set once
        self.share_partners = partners is not None
        self.within = problem.ranked.within
        self.explored = 0
        self.revisions = 0  # edge revisions by `_propagate`, which read the clock too
        self.solutions = 0
        self.best: tuple[int, ...] | None = None
        self.best_objective: Objective | None = None
        self.best_key: tuple[float, ...] | None = None
        self.root_domains: tuple[frozenset[int], ...] | None = None
        if start is not None:
            self.best, self.best_objective = start.values, start.objective
            self.best_key = start.objective.key(problem.strategy)
        self.first_seconds: float | None = None
        self.first_explored: int | None = None
        self.clock = budget.clock
        self.start = self.clock()

    # -- driver ----------------------------------------------------------------------

    def run(self) -> Outcome:
        complete = True
        try:
            if self._fix_kept() and self._arc_consistent():
                if self.start_at is None:
                    self.root_domains = tuple(frozenset(d) for d in self.dom)
                cutoff = max(_FIRST_CUTOFF, _CUTOFF_PER_SLOT * len(self.open_slots))
                while not self._descend(cutoff):
                    cutoff = cutoff * 3 // 2
        except _OutOfBudget:
            complete = False
        except _Found:
            complete = False  # stopped at the first solution: not proven optimal
        return Outcome(
            values=self.best,
            objective=self.best_objective,
            complete=complete,
            stats=SearchStats(
                explored=self.explored,
                solutions=self.solutions,
                seconds=self.clock() - self.start,
                first_solution_seconds=self.first_seconds,
                first_solution_explored=self.first_explored,
            ),
            root_domains=self.root_domains,
        )

    def _fix_kept(self) -> bool:
        """Put the slots an improving search keeps on their providers, then take from
        the free slots' providers what the kept ones rule out (capacity, ports, edges to
        a kept neighbour). The kept slots are a feasible part of a placement, so this
        needs none of the forward checking `_assign` does between them."""
        start = self.start_at
        if start is None:
            return True
        problem, val, dom = self.problem, self.val, self.dom
        hosting: set[int] = set()
        for s in self.slots:
            if s in start.free:
                continue
            p, n = start.values[s], problem.slot_node[s]
            val[s] = p
            self.unassigned -= 1
            if p in self.active.capacities:
                rem, dem = self._remaining(p), problem.demand[n]
                for i in range(4):
                    rem[i] -= dem[i]
                self._ports(p).update(problem.fixed_ports[n])
                self.anys_taken[p] += problem.any_ports[n]
                hosting.add(p)
            self.hosted[p] += 1
            if self.hosted[p] == 1:
                self.used += 1
            self.part_d += problem.disruption(n, p)
            self.part_price += problem.price[p]
        for edge in problem.edges:
            if not edge.rtt_counts:
                continue
            p = val[self.node_slots[edge.source][0]]
            q = val[self.node_slots[edge.target][0]]
            if p >= 0 and q >= 0:
                self.part_rtt += problem.rtt(p, q)
        for u in sorted(start.free):
            du = dom[u]
            du -= {p for p in du & hosting if not self._fits(u, p)}
            if problem.slot_replica[u] == 0:
                for edge, m in self.incident[problem.slot_node[u]]:
                    q = val[self.node_slots[m][0]]
                    if q >= 0:
                        du &= self._allowed(edge, q) | {q}
            if start.width is not None and len(du) > start.width:
                n = problem.slot_node[u]
                keep = [p for p in problem.candidates[n] if p in du][: start.width]
                du &= {*keep, start.values[u]}
            if not du:
                self.wiped = u
                return False
        return True

    def _descend(self, cutoff: int) -> bool:
        """One depth-first run from the root. Until a solution is known, a run that
        tries `cutoff` assignments is abandoned (False) so the next one can start with
        what the conflict weights learnt; after that the run goes on to the end (True).
        Cutoffs grow, so some run always completes."""
        first = self._select()
        if first is None:
            self._record()
            return True
        stack = [_Frame(first, self._values(first))]
        started = self.explored
        while stack:
            frame = stack[-1]
            if frame.assigned >= 0:
                self._unassign(frame.slot, frame.assigned, frame.mark)
                frame.assigned = -1
            if self.best is None and self.explored - started >= cutoff:
                for below in reversed(stack[:-1]):
                    self._unassign(below.slot, below.assigned, below.mark)
                return False
            p = self._next_value(frame)
            if p is None:
                stack.pop()
                continue
            self._tick()
            frame.assigned, frame.mark = p, len(self.trail)
            if not self._assign(frame.slot, p):
                self.weight[frame.slot] += 1
                self.weight[self.wiped] += 1
                continue
            if self._prunes():
                continue
            following = self._select()
            if following is None:
                self._record()
            else:
                stack.append(_Frame(following, self._values(following)))
        return True

    def _tick(self) -> None:
        if self.explored >= self.budget.max_nodes:
            raise _OutOfBudget
        self.explored += 1
        if self.explored % 64 == 0:
            self._check_clock()

    def _check_clock(self) -> None:
        limit = self.budget.max_seconds
        if limit is not None:
            elapsed = self.clock() - self.start
            if elapsed > limit and not self._owed_a_first(elapsed):
                raise _OutOfBudget

    def _owed_a_first(self, elapsed: float) -> bool:
        """Whether the clock may not stop this search yet (see `SearchBudget`)."""
        limit = self.budget.max_seconds
        return (self.first_only and self.best is None
                and self.explored < self.budget.first_nodes
                and (limit is None or elapsed <= limit * self.budget.first_ceiling))

    def _record(self) -> None:
        values = tuple(self.val)
        if self.first_seconds is None:
            self.first_seconds = self.clock() - self.start
            self.first_explored = self.explored
        if self.first_only:
            self.best, self.solutions = values, 1
            raise _Found
        objective = evaluate(self.problem, values)
        key = objective.key(self.problem.strategy)
        if self.best_key is None or key < self.best_key:
            self.best, self.best_objective, self.best_key = values, objective, key
            self.solutions += 1

    # -- preprocessing ---------------------------------------------------------------

    def _arc_consistent(self) -> bool:
        """Make the open primaries' providers arc consistent over the edges; False when
        some slot is left without providers."""
        if self.consistent:
            return all(self.dom)
        return all(self.dom) and self._propagate(set(range(len(self.node_slots))))

    def _propagate(self, shrunk: set[int]) -> bool:
        """AC-3 over edge constraints between open primaries, starting from the nodes in
        `shrunk` whose primary lost providers: drop every provider that no remaining
        provider of an edge's other end can pair with. Removals go on the trail."""
        primary = [slots[0] for slots in self.node_slots]
        val, dom, trail = self.val, self.dom, self.trail
        # smallest domain first: its neighbours are then revised against few providers
        queue = [(len(dom[primary[y]]), y) for y in shrunk]
        heapq.heapify(queue)
        residues, supported = self.residue, self._supported
        while queue:
            _, y = heapq.heappop(queue)
            if y not in shrunk:
                continue  # queued again since, with fewer providers; already revised
            shrunk.discard(y)
            if val[primary[y]] >= 0:
                continue
            dy = dom[primary[y]]
            for edge, x in self.incident[y]:
                if val[primary[x]] >= 0:
                    continue
                self.revisions += 1
                if self.revisions % 16 == 0:
                    # a revision costs up to a domain's providers in partner checks: a
                    # crafted market and a 60-node clique of edges made the root's
                    # propagation alone 8 s, before any assignment read the clock
                    self._check_clock()
                dx = dom[primary[x]]
                residue = residues.get((edge.position, x))
                if residue is None:
                    residue = residues[(edge.position, x)] = {}
                reverse = residues.get((edge.position, y))
                if reverse is None:
                    reverse = residues[(edge.position, y)] = {}
                if len(dy) * _UNION_COST < len(dx):
                    # few providers left at y: gather what they support (C-level set
                    # unions) rather than look for a partner for each of x's many
                    dead = dx - self._support(edge, dy)
                else:
                    dead = {
                        p
                        for p in dx
                        if residue.get(p) not in dy and not supported(edge, p, residue, reverse, dy)
                    }
                if dead:
                    dx -= dead
                    trail.append((primary[x], dead))
                    if not dx:
                        self.wiped = primary[x]
                        return False
                    shrunk.add(x)
                    heapq.heappush(queue, (len(dx), x))
        return True

    def _supported(
        self,
        edge: Edge,
        p: int,
        residue: dict[int, int],
        reverse: dict[int, int],
        others: set[int],
    ) -> bool:
        """Whether provider p has a partner for `edge` in `others`. The partner found is
        kept in `residue` (one per edge end) and tried first next time (AC-3rm); links
        are symmetric, so p is kept as the partner's own in `reverse`, the other end's
        residue, which spares that end's revision most of its first look."""
        if p in others:
            residue[p] = reverse[p] = p
            return True
        allowed = self.partners.get((edge.position, p))
        if allowed is None and self.share_partners:
            allowed = self._allowed(edge, p)  # worth keeping: later searches reuse it
        if allowed is not None:
            return not allowed.isdisjoint(others)
        # the partners within the edge's bounds, nearest first; the scan runs in C
        near = self.within(p, edge.rtt_limit, edge.bandwidth_floor)
        q = next(filter(others.__contains__, near), None)
        if q is None:
            return False
        residue[p], reverse[q] = q, p
        return True

    def _support(self, edge: Edge, others: set[int]) -> set[int]:
        """Every provider with a partner for `edge` in `others` (others included: a
        provider pairs with itself)."""
        support = set(others)
        within, limit, floor = self.within, edge.rtt_limit, edge.bandwidth_floor
        partners, position = self.partners, edge.position
        for q in others:
            allowed = partners.get((position, q))
            support.update(within(q, limit, floor) if allowed is None else allowed)
        return support

    def _allowed(self, edge: Edge, p: int) -> frozenset[int]:
        """The other providers p may pair with over `edge` (measured and in bounds)."""
        key = (edge.position, p)
        allowed = self.partners.get(key)
        if allowed is None:
            allowed = frozenset(self.within(p, edge.rtt_limit, edge.bandwidth_floor))
            self.partners[key] = allowed
        return allowed

    # -- variable and value ordering --------------------------------------------------

    def _select(self) -> int | None:
        """The open slot with the fewest providers per unit of conflict weight."""
        best = None
        best_key = math.inf
        dom, val, weight = self.dom, self.val, self.weight
        for s in self.open_slots:
            if val[s] < 0:
                key = len(dom[s]) / weight[s]
                if key < best_key:
                    best, best_key = s, key
        return best

    def _values(self, s: int) -> Iterator[int]:
        """Providers for slot s by (disruption, price), ties by rtt to assigned
        neighbours, then by whether the provider is already used, then index."""
        problem = self.problem
        n = problem.slot_node[s]
        dom = self.dom[s]
        group: list[int] = []
        key: tuple[int, float] | None = None
        for p in problem.candidates[n]:
            if p not in dom:
                continue
            k = (problem.disruption(n, p), problem.price[p])
            if k != key and group:
                yield from self._tie_break(s, group)
                group = []
            key = k
            group.append(p)
        if group:
            yield from self._tie_break(s, group)

    def _tie_break(self, s: int, group: list[int]) -> list[int]:
        if len(group) == 1:
            return group
        problem = self.problem
        n = problem.slot_node[s]
        neighbours = []
        if problem.slot_replica[s] == 0:
            for edge, m in self.incident[n]:
                q = self.val[self.node_slots[m][0]]
                if edge.rtt_counts and q >= 0:
                    neighbours.append(q)
        hosted = self.hosted
        pack = self.pack

        def key(p: int) -> tuple[float, bool, int]:
            rtt = math.fsum(problem.rtt(p, q) for q in neighbours)
            fresh = hosted[p] == 0
            return (rtt, fresh if pack else not fresh, p)

        return sorted(group, key=key)

    def _next_value(self, frame: _Frame) -> int | None:
        """The frame's next provider, or None when none is left or, once a solution is
        known, every remaining one is bound to do worse (they come in objective order)."""
        p = next(frame.values, None)
        if p is None or self.best_key is None:
            return p
        if frame.bound is None:
            frame.bound = self._partial_bound(skip=frame.slot)
        n = self.problem.slot_node[frame.slot]
        d, price = frame.bound
        head = (d + self.problem.disruption(n, p), price + self.problem.price[p])
        if _compare(head, self.best_key[:2]) > 0:
            return None
        return p

    # -- bounds ----------------------------------------------------------------------

    def _partial_bound(self, skip: int = -1) -> tuple[int, float]:
        """Disruption and price so far plus, for every other open slot, its cheapest
        remaining provider: no completion can do better on these two."""
        problem = self.problem
        d, price = self.part_d, self.part_price
        group_of = self.group_of
        grouped = [0.0] * len(self.groups)
        unset = [0] * len(self.groups)
        for u in self.open_slots:
            if self.val[u] >= 0 or u == skip:
                continue
            n = problem.slot_node[u]
            dom = self.dom[u]
            order = problem.candidates[n]
            if len(dom) * 4 < len(order):
                p = min((problem.disruption(n, q), problem.price[q], q) for q in dom)[2]
            else:
                p = next(q for q in order if q in dom)
            d += problem.disruption(n, p)
            g = group_of.get(u, -1)
            if g < 0:
                price += problem.price[p]
            else:
                grouped[g] += problem.price[p]
                unset[g] += 1
        for g, (slots, bound) in enumerate(self.groups):
            # a group none of whose slots is set yet costs at least its own bound
            price += max(grouped[g], bound) if unset[g] == len(slots) else grouped[g]
        return d, price

    def _prunes(self) -> bool:
        if self.best_key is None:
            return False
        d, price = self._partial_bound()
        providers = self.used if self.pack else -(self.used + self.unassigned)
        return _compare((d, price, self.part_rtt, providers), self.best_key) >= 0

    # -- assignment with forward checking ----------------------------------------------

    def _assign(self, s: int, p: int) -> bool:
        """Put slot s on provider p and prune the open slots' providers accordingly.
        False on a wipe-out; the caller undoes with _unassign either way."""
        problem = self.problem
        n = problem.slot_node[s]
        self.val[s] = p
        self.unassigned -= 1
        enforce = p in self.active.capacities
        if enforce:
            rem, dem = self._remaining(p), problem.demand[n]
            for i in range(4):
                rem[i] -= dem[i]
            self._ports(p).update(problem.fixed_ports[n])
            self.anys_taken[p] += problem.any_ports[n]
        self.hosted[p] += 1
        if self.hosted[p] == 1:
            self.used += 1
        rtt = 0.0
        if problem.slot_replica[s] == 0:
            for edge, m in self.incident[n]:
                q = self.val[self.node_slots[m][0]]
                if edge.rtt_counts and q >= 0:
                    rtt += problem.rtt(p, q)
        contrib = (problem.disruption(n, p), problem.price[p], rtt)
        self.contrib[s] = contrib
        self.part_d += contrib[0]
        self.part_price += contrib[1]
        self.part_rtt += contrib[2]

        dom, val, trail = self.dom, self.val, self.trail
        shrunk: set[int] = set()
        strict = n in self.active.separations
        for u in self.node_slots[n]:
            if val[u] < 0:
                removed = self._separate(s, u, p, strict)
                if removed:
                    dom[u] -= removed
                    trail.append((u, removed))
                    if not dom[u]:
                        self.wiped = u
                        return False
                    if problem.slot_replica[u] == 0:
                        shrunk.add(n)
        if enforce:
            for u in self.open_slots:
                if val[u] < 0 and p in dom[u] and not self._fits(u, p):
                    dom[u].discard(p)
                    trail.append((u, {p}))
                    if not dom[u]:
                        self.wiped = u
                        return False
                    if problem.slot_replica[u] == 0:
                        shrunk.add(problem.slot_node[u])
        if problem.slot_replica[s] == 0:
            for edge, m in self.incident[n]:
                u = self.node_slots[m][0]
                if val[u] >= 0:
                    continue
                du = dom[u]
                removed = du.difference(self._allowed(edge, p))
                removed.discard(p)
                if removed:
                    du -= removed
                    trail.append((u, removed))
                    if not du:
                        self.wiped = u
                        return False
                    shrunk.add(m)
        return self._propagate(shrunk)

    def _separate(self, s: int, u: int, p: int, strict: bool) -> set[int]:
        """Providers slot u may no longer take once its sibling s is on p."""
        rs, ru = self.problem.slot_replica[s], self.problem.slot_replica[u]
        du = self.dom[u]
        if rs == 0 or ru == 0:
            return {p} if strict and p in du else set()
        if ru > rs:
            return {q for q in du if q < p or (strict and q == p)}
        return {q for q in du if q > p or (strict and q == p)}

    def _fits(self, u: int, p: int) -> bool:
        problem = self.problem
        n = problem.slot_node[u]
        dem = problem.demand[n]
        rem: Sequence[float] | None = self.remaining.get(p)
        if rem is None:
            rem = problem.capacity[p]
        if dem[0] > rem[0] + 1e-9 or dem[1] > rem[1] or dem[2] > rem[2] or dem[3] > rem[3]:
            return False
        fixed, anys = problem.fixed_ports[n], problem.any_ports[n]
        taken = self.ports_taken.get(p, _NO_PORTS)
        if fixed and not fixed.isdisjoint(taken):
            return False
        free = problem.free_ports[p]
        return (
            free is None
            or not (fixed or anys)
            or len(taken) + self.anys_taken[p] + len(fixed) + anys <= len(free)
        )

    def _remaining(self, p: int) -> list[float]:
        rem = self.remaining.get(p)
        if rem is None:
            rem = self.remaining[p] = list(self.problem.capacity[p])
        return rem

    def _ports(self, p: int) -> set[int]:
        taken = self.ports_taken.get(p)
        if taken is None:
            taken = self.ports_taken[p] = set()
        return taken

    def _unassign(self, s: int, p: int, mark: int) -> None:
        problem = self.problem
        trail, dom = self.trail, self.dom
        while len(trail) > mark:
            u, removed = trail.pop()
            dom[u] |= removed
        n = problem.slot_node[s]
        if p in self.active.capacities:
            rem, dem = self.remaining[p], problem.demand[n]  # copied when assigned
            for i in range(4):
                rem[i] += dem[i]
            self.ports_taken[p] -= problem.fixed_ports[n]
            self.anys_taken[p] -= problem.any_ports[n]
        self.hosted[p] -= 1
        if self.hosted[p] == 0:
            self.used -= 1
        d, price, rtt = self.contrib[s]
        self.part_d -= d
        self.part_price -= price
        self.part_rtt -= rtt
        self.val[s] = -1
        self.unassigned += 1
