"""Property tests: the solver against a brute-force enumerator written here, separately.

On random small instances (up to 5 nodes, 8 providers) the solver must find a placement
exactly when enumeration does, every placement must pass an independent checker, its
objective must equal the enumerated optimum, and when it reports a conflicting set that
set must be unsatisfiable on its own and 1-minimal. Its lower bound must never exceed
the cheapest enumerated placement; on larger instances (where enumeration is out of
reach) the improved placement must pass the checker and never be worse than the first.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence

import attrs
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dms.ensemble._requirements import (
    EdgeRequirement,
    EnsembleRequirements,
    Gpu,
    Location,
    LocationConstraint,
    NodeRequirements,
    PortRequirement,
    Resources,
)
from dms.orchestrator.placement import (
    Assignment,
    Bid,
    CapacityConflict,
    EdgeConflict,
    Measurements,
    ProviderPath,
    Reason,
    SearchBudget,
    SeparationConflict,
    Unplaceable,
    solve,
)
from dms.orchestrator.placement._problem import _rejection, compile_problem

GiB = 1 << 30
EXECUTORS = ("docker", "process")
CONTINENTS = ("EU", "US")


@attrs.frozen
class Instance:
    requirements: EnsembleRequirements
    bids: tuple[Bid, ...]
    measurements: Measurements
    exclude: frozenset[str]
    strategy: str
    previous: Assignment | None


# -- the independent checker -----------------------------------------------------------


@attrs.frozen
class Checked:
    """Which cross-node constraints to check (None = all): the brute force relaxes some
    to verify conflict sets."""

    edges: frozenset[int] | None = None
    separations: frozenset[str] | None = None
    capacities: frozenset[str] | None = None


def node_level_ok(node: NodeRequirements, bid: Bid, excluded: frozenset[str]) -> bool:
    fixed = [p.public for p in node.ports if p.public]
    anys = [p for p in node.ports if not p.public]
    ports_ok = bid.public_ports is None or (
        set(fixed) <= bid.public_ports and len(fixed) + len(anys) <= len(bid.public_ports)
    )
    return (
        (bid.nodes is None or node.name in bid.nodes)
        and bid.peer not in excluded
        and node.executors <= bid.executors
        and node.location.admits(bid.location)
        and ports_ok
        and node.resources.fits_in(bid.free)
    )


def violations(
    inst: Instance,
    primary: dict[str, str],
    standbys: dict[str, tuple[str, ...]],
    checked: Checked = Checked(),
) -> list[str]:
    req = inst.requirements
    bids = {b.peer: b for b in inst.bids}
    excluded = inst.exclude | req.exclude_peers
    found = []
    hosted: dict[str, list[NodeRequirements]] = {}
    for node in req.nodes:
        chosen = (primary[node.name], *standbys.get(node.name, ()))
        if len(chosen) != node.redundancy + 1:
            found.append(f"{node.name}: {len(chosen)} instances")
        separate = checked.separations is None or node.name in checked.separations
        if separate and len(set(chosen)) != len(chosen):
            found.append(f"{node.name}: replicas share a provider")
        if node.peer is not None and chosen[0] != node.peer:
            found.append(f"{node.name}: not on pinned peer")
        for peer in chosen:
            if peer not in bids or not node_level_ok(node, bids[peer], excluded):
                found.append(f"{node.name}: {peer} fails node constraints")
            hosted.setdefault(peer, []).append(node)
    for peer, nodes in hosted.items():
        if checked.capacities is not None and peer not in checked.capacities:
            continue
        total = Resources()
        for node in nodes:
            total = total + node.resources
        if peer in bids and not total.fits_in(bids[peer].free):
            found.append(f"{peer}: over capacity")
        fixed = [p.public for node in nodes for p in node.ports if p.public]
        anys = [p for node in nodes for p in node.ports if not p.public]
        if len(set(fixed)) != len(fixed):
            found.append(f"{peer}: public port clash")
        free = bids[peer].public_ports if peer in bids else None
        if free is not None and len(fixed) + len(anys) > len(free):
            found.append(f"{peer}: out of public ports")
    for i, edge in enumerate(req.edges):
        if checked.edges is not None and i not in checked.edges:
            continue
        a, b = primary[edge.source], primary[edge.target]
        if a == b:
            continue
        link = inst.measurements.link(a, b)
        if edge.max_rtt_ms is not None and (
            link is None or link.rtt_ms is None or link.rtt_ms > edge.max_rtt_ms
        ):
            found.append(f"edge {i}: rtt")
        if edge.min_bandwidth is not None and (
            link is None or link.bandwidth is None or link.bandwidth < edge.min_bandwidth
        ):
            found.append(f"edge {i}: bandwidth")
    return found


def objective_key(
    inst: Instance, primary: dict[str, str], standbys: dict[str, tuple[str, ...]]
) -> tuple[float, ...]:
    prices = {b.peer: b.price for b in inst.bids}
    instances = [(n, p) for n, p in primary.items()] + [
        (n, p) for n, peers in standbys.items() for p in peers
    ]
    disruption = 0
    if inst.previous is not None:
        disruption = sum(1 for n, p in instances if p not in inst.previous.providers_of(n))
    rtt = 0.0
    for edge in inst.requirements.edges:
        if edge.max_rtt_ms is None or edge.source == edge.target:
            continue
        a, b = primary[edge.source], primary[edge.target]
        if a != b:
            link = inst.measurements.link(a, b)
            rtt += math.inf if link is None or link.rtt_ms is None else link.rtt_ms
    providers = len({p for _, p in instances})
    return (
        disruption,
        math.fsum(prices[p] for _, p in instances),
        rtt,
        providers if inst.strategy == "pack" else -providers,
    )


# -- brute force -----------------------------------------------------------------------


def node_options(
    inst: Instance, node: NodeRequirements, separate: bool
) -> list[tuple[str, tuple[str, ...]]]:
    excluded = inst.exclude | inst.requirements.exclude_peers
    fine = [b.peer for b in inst.bids if node_level_ok(node, b, excluded)]
    primaries = [p for p in fine if node.peer is None or p == node.peer]
    combos = (
        itertools.combinations(fine, node.redundancy)
        if separate
        else itertools.combinations_with_replacement(fine, node.redundancy)
    )
    standby_sets = list(combos)
    return [(p, s) for p in primaries for s in standby_sets if not separate or p not in s]


def enumerate_placements(
    inst: Instance, checked: Checked = Checked()
) -> Iterator[tuple[dict[str, str], dict[str, tuple[str, ...]]]]:
    nodes = inst.requirements.nodes
    options = [
        node_options(inst, n, checked.separations is None or n.name in checked.separations)
        for n in nodes
    ]
    for combo in itertools.product(*options):
        primary = {n.name: c[0] for n, c in zip(nodes, combo, strict=True)}
        standbys = {n.name: c[1] for n, c in zip(nodes, combo, strict=True) if c[1]}
        if not violations(inst, primary, standbys, checked):
            yield primary, standbys


def search_space(inst: Instance) -> int:
    return math.prod(len(node_options(inst, n, True)) for n in inst.requirements.nodes)


def brute_optimum(inst: Instance) -> tuple[float, ...] | None:
    keys = [objective_key(inst, p, s) for p, s in enumerate_placements(inst)]
    return min(keys) if keys else None


# -- instances -------------------------------------------------------------------------


@st.composite
def instances(
    draw: st.DrawFn, max_nodes: int = 5, max_providers: int = 8, linked: float = 0.7
) -> Instance:
    # One seed drives the details: instances stay varied at every size instead of
    # clustering at hypothesis' favourite boundary values.
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    n_providers = rng.randint(min(3, max_providers), max_providers)
    n_nodes = rng.randint(1, max_nodes)
    peers = [f"did:key:p{i}" for i in range(n_providers)]
    bids = []
    for peer in peers:
        bids.append(
            Bid(
                peer=peer,
                free=Resources(
                    cpu=rng.choice((1.0, 2.0, 4.0, 4.0)),
                    ram=rng.choice((1, 2, 4, 4)) * GiB,
                    gpus=(Gpu(),) * rng.choice((0, 0, 1)),
                ),
                executors=frozenset(rng.sample(EXECUTORS, rng.choice((1, 2, 2)))),
                location=Location(continent=rng.choice(CONTINENTS)),
                price=float(rng.choice((1, 2, 3))),
                public_ports=rng.choice((None, None, frozenset({80, 443}), frozenset({443}))),
                nodes=None,
            )
        )
    names = [f"n{i}" for i in range(n_nodes)]
    nodes = []
    for i, name in enumerate(names):
        location = rng.choice(
            (
                LocationConstraint(),
                LocationConstraint(),
                LocationConstraint(),
                LocationConstraint(),
                LocationConstraint(accept=(Location(continent=rng.choice(CONTINENTS)),)),
                LocationConstraint(reject=(Location(continent=rng.choice(CONTINENTS)),)),
            )
        )
        ports = rng.choice(
            ((), (), (), (), (PortRequirement(443, 8443, "a"),), (PortRequirement(0, 80, "a"),))
        )
        nodes.append(
            NodeRequirements(
                name=name,
                resources=Resources(
                    cpu=rng.choice((0.5, 1.0, 1.0, 2.0)),
                    ram=rng.choice((1, 1, 2)) * GiB,
                    gpus=(Gpu(),) * (rng.random() < 0.05),
                ),
                executors=frozenset({rng.choice(EXECUTORS[:1] * 3 + EXECUTORS[1:])}),
                ports=ports,
                location=location,
                peer=rng.choice(peers) if rng.random() < 0.05 else None,
                redundancy=1 if i == 0 and rng.random() < 0.3 else 0,
            )
        )
    edges = []
    for _ in range(rng.randint(0, 4)):
        if n_nodes < 2:
            break
        a, b = rng.sample(names, 2)
        edges.append(
            EdgeRequirement(
                a,
                b,
                max_rtt_ms=rng.choice((None, 5.0, 10.0, 20.0)),
                min_bandwidth=rng.choice((None, None, 10**8, 10**9)),
            )
        )
    links = {}
    for a, b in itertools.combinations(peers, 2):
        if rng.random() < linked:
            links[(a, b)] = ProviderPath(
                rtt_ms=rng.choice((None, 1.0, 4.0, 8.0, 15.0, 30.0)),
                bandwidth=rng.choice((None, 1e8, 1e9, 1e10)),
            )
    previous = None
    if rng.random() < 0.3:
        previous = Assignment(
            primary={name: rng.choice(peers) for name in names},
            standbys={names[0]: (rng.choice(peers),)} if nodes[0].redundancy else {},
        )
    return Instance(
        requirements=EnsembleRequirements(
            nodes=tuple(nodes),
            edges=tuple(edges),
            exclude_peers=frozenset({rng.choice(peers)}) if rng.random() < 0.2 else frozenset(),
        ),
        bids=tuple(bids),
        measurements=Measurements(links),
        exclude=frozenset({rng.choice(peers)}) if rng.random() < 0.2 else frozenset(),
        strategy=rng.choice(("pack", "spread")),
        previous=previous,
    )


def run(inst: Instance):  # type: ignore[no-untyped-def]
    return solve(
        inst.requirements,
        inst.bids,
        inst.measurements,
        exclude=inst.exclude,
        strategy=inst.strategy,  # type: ignore[arg-type]
        previous=inst.previous,
    )


SMALL = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SMALL
@given(instances())
def test_solver_agrees_with_brute_force(inst: Instance) -> None:
    optimum = brute_optimum(inst)
    try:
        placement = run(inst)
    except Unplaceable as failure:
        assert optimum is None, f"solver gave up but {optimum} exists: {failure}"
        assert failure.explanation.reason is not Reason.BUDGET_EXHAUSTED
        return
    assert optimum is not None, "solver placed an unplaceable instance"
    event(f"placed {len(inst.requirements.nodes)} nodes, {len(inst.requirements.edges)} edges")
    primary = dict(placement.assignment.primary)
    standbys = dict(placement.assignment.standbys)
    assert violations(inst, primary, standbys) == []
    assert placement.optimal
    key = objective_key(inst, primary, standbys)
    assert key == optimum
    assert placement.objective.key(placement.strategy) == key


def core_items(inst: Instance, conflicts: Sequence[object]) -> Checked:
    edges, separations, capacities = set(), set(), set()
    for conflict in conflicts:
        if isinstance(conflict, EdgeConflict):
            edge = inst.requirements.edges[conflict.edge]
            assert (edge.source, edge.target) == (conflict.source, conflict.target)
            edges.add(conflict.edge)
        elif isinstance(conflict, SeparationConflict):
            separations.add(conflict.node)
        else:
            assert isinstance(conflict, CapacityConflict)
            capacities.add(conflict.peer)
    return Checked(frozenset(edges), frozenset(separations), frozenset(capacities))


def without(checked: Checked, kind: str, item: object) -> Checked:
    return attrs.evolve(checked, **{kind: getattr(checked, kind) - {item}})


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_nodes=4, max_providers=5, linked=0.4))
def test_conflicting_set_is_unsatisfiable_and_minimal(inst: Instance) -> None:
    try:
        run(inst)
    except Unplaceable as failure:
        explanation = failure.explanation
    else:
        return
    event(explanation.reason.value)
    if explanation.reason is not Reason.CONFLICTING_CONSTRAINTS:
        assert explanation.reason is Reason.NODE_WITHOUT_CANDIDATES
        assert any(not report.placeable for report in explanation.nodes)
        return
    assert explanation.core_minimal and explanation.conflicts
    checked = core_items(inst, explanation.conflicts)
    assert next(enumerate_placements(inst, checked), None) is None
    for kind in ("edges", "separations", "capacities"):
        for item in getattr(checked, kind):
            relaxed = without(checked, kind, item)
            assert next(enumerate_placements(inst, relaxed), None) is not None, (kind, item)


@settings(max_examples=100, deadline=None)
@given(instances(max_nodes=5, max_providers=8), st.randoms(use_true_random=False))
def test_input_order_does_not_change_the_placement(inst: Instance, rng: random.Random) -> None:
    shuffled_bids = list(inst.bids)
    rng.shuffle(shuffled_bids)
    shuffled_nodes = list(inst.requirements.nodes)
    rng.shuffle(shuffled_nodes)
    other = attrs.evolve(
        inst,
        bids=tuple(shuffled_bids),
        requirements=attrs.evolve(inst.requirements, nodes=tuple(shuffled_nodes)),
    )
    try:
        first = run(inst)
    except Unplaceable as failure:
        try:
            run(other)
        except Unplaceable as again:
            assert again.explanation.to_json() | {"seconds": 0} == (
                failure.explanation.to_json() | {"seconds": 0}
            )
            return
        raise AssertionError("placeable only in one input order") from None
    second = run(other)
    assert second.assignment == first.assignment
    assert second.objective == first.objective


# -- the improvement phase and its lower bound -------------------------------------------


def cheapest_price(inst: Instance) -> float | None:
    """The least price of any feasible placement, whatever it moves off `previous`."""
    prices = [
        objective_key(attrs.evolve(inst, previous=None), p, s)[1]
        for p, s in enumerate_placements(inst)
    ]
    return min(prices) if prices else None


@SMALL
@given(instances())
def test_lower_bound_never_exceeds_the_cheapest_placement(inst: Instance) -> None:
    try:
        placement = run(inst)
    except Unplaceable:
        return
    cheapest = cheapest_price(inst)
    assert cheapest is not None
    assert placement.lower_bound <= cheapest + 1e-9
    assert placement.lower_bound <= placement.objective.price
    assert placement.optimal and placement.gap == 0.0
    if inst.previous is None:
        assert placement.lower_bound == placement.objective.price


def first_only(inst: Instance, steps: int):  # type: ignore[no-untyped-def]
    """The solve stopped right after its first solution (no steps left to improve)."""
    return solve(
        inst.requirements,
        inst.bids,
        inst.measurements,
        exclude=inst.exclude,
        strategy=inst.strategy,  # type: ignore[arg-type]
        previous=inst.previous,
        budget=SearchBudget(max_nodes=steps),
    )


MEDIUM = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@MEDIUM
@given(instances(max_nodes=14, max_providers=12, linked=0.8))
def test_improved_placement_is_feasible_and_never_worse_than_the_first(inst: Instance) -> None:
    try:
        placement = solve(
            inst.requirements,
            inst.bids,
            inst.measurements,
            exclude=inst.exclude,
            strategy=inst.strategy,  # type: ignore[arg-type]
            previous=inst.previous,
            budget=SearchBudget(max_nodes=3_000),
        )
    except Unplaceable:
        return
    assert placement.stats.explored <= 3_000
    primary = dict(placement.assignment.primary)
    standbys = dict(placement.assignment.standbys)
    assert violations(inst, primary, standbys) == []
    first_steps = placement.stats.first_solution_explored
    assert first_steps is not None
    first = first_only(inst, first_steps)
    assert violations(inst, dict(first.assignment.primary), dict(first.assignment.standbys)) == []
    key = placement.objective.key(placement.strategy)
    first_key = first.objective.key(first.strategy)
    assert key <= first_key
    event("improved" if key < first_key else "first was kept")
    event("proven optimal" if placement.optimal else "budget ended first")
    assert placement.lower_bound <= placement.objective.price
    assert 0.0 <= placement.gap <= 1.0
    if placement.optimal:
        assert placement.gap == 0.0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    instances(max_nodes=14, max_providers=12, linked=0.8),
    st.integers(50, 2_000),
    st.randoms(use_true_random=False),
)
def test_a_step_budget_gives_the_same_placement_in_any_input_order(
    inst: Instance, steps: int, rng: random.Random
) -> None:
    bids = list(inst.bids)
    rng.shuffle(bids)
    other = attrs.evolve(inst, bids=tuple(bids))
    try:
        first = first_only(inst, steps)
    except Unplaceable:
        return
    again = first_only(other, steps)
    assert again.assignment == first.assignment
    assert again.objective == first.objective
    assert again.lower_bound == first.lower_bound


@given(instances(max_nodes=5, max_providers=8))
def test_compiled_candidates_are_the_bids_that_pass_each_node_cheapest_first(
    inst: Instance,
) -> None:
    """The bid screening (one inlined loop per node) keeps exactly the bids the checker
    here admits, in (disruption, price, index) order, and counts each rejected bid
    under the first constraint `_rejection` says it fails."""
    problem = compile_problem(
        inst.requirements,
        inst.bids,
        inst.measurements,
        exclude=inst.exclude,
        strategy=inst.strategy,  # type: ignore[arg-type]
        previous=inst.previous,
        replace=frozenset(),
    )
    excluded = inst.exclude | inst.requirements.exclude_peers
    for n, node in enumerate(problem.nodes):
        fine = [i for i, bid in enumerate(problem.bids) if node_level_ok(node, bid, excluded)]
        assert sorted(problem.candidates[n]) == fine
        order = [(problem.disruption(n, i), problem.price[i], i) for i in problem.candidates[n]]
        assert order == sorted(order)
        reasons = Counter(
            _rejection(
                node,
                problem.demand[n],
                problem.fixed_ports[n],
                problem.any_ports[n],
                bid,
                problem.capacity[i],
                excluded,
            )
            for i, bid in enumerate(problem.bids)
        )
        reasons.pop(None, None)
        counted = {e.constraint: e.count for e in problem.reports[n].eliminated}
        assert counted == dict(reasons)
