"""A hostile market against the placement solver: what bids and measurements a peer
may send must neither break a constraint, nor let one solve run unbounded."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
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
    Bid,
    InvalidBid,
    Measurements,
    ProviderPath,
    SearchBudget,
    Unplaceable,
    solve,
)
from dms.orchestrator.placement._problem import (
    _BidGroups,
    _rejection,
    _screen,
    _vector,
    compile_problem,
)
from dms.orchestrator.placement._search import Active, Outcome, search

GiB = 1 << 30


def _node(name: str, **kw: object) -> NodeRequirements:
    return NodeRequirements(name, Resources(cpu=1), frozenset({"docker"}), **kw)  # type: ignore[arg-type]


def _two_ends(path: ProviderPath) -> tuple[EnsembleRequirements, list[Bid], Measurements]:
    """a and b joined by an rtt- and bandwidth-bounded edge; each provider fits one."""
    req = EnsembleRequirements(
        nodes=(_node("a"), _node("b")),
        edges=(EdgeRequirement("a", "b", max_rtt_ms=10.0, min_bandwidth=5),),
    )
    bids = [Bid("p1", Resources(cpu=1), {"docker"}), Bid("p2", Resources(cpu=1), {"docker"})]
    return req, bids, Measurements({("p1", "p2"): path})


@pytest.mark.parametrize(
    "path",
    [
        ProviderPath(rtt_ms=math.nan, bandwidth=100),
        ProviderPath(rtt_ms=-math.inf, bandwidth=100),
        ProviderPath(rtt_ms=-1.0, bandwidth=100),
        ProviderPath(rtt_ms=1.0, bandwidth=math.nan),
    ],
    ids=["nan-rtt", "minus-inf-rtt", "negative-rtt", "nan-bandwidth"],
)
def test_a_nan_or_negative_measurement_never_satisfies_an_edge_bound(path: ProviderPath) -> None:
    # a NaN rtt sorted anywhere in a ranked row and bisection admitted it under any
    # bound; -inf made the summed rtt -inf, then NaN once undone
    req, bids, measurements = _two_ends(path)
    with pytest.raises(Unplaceable):
        solve(req, bids, measurements)


def test_a_sane_measurement_between_the_same_providers_still_places() -> None:
    req, bids, measurements = _two_ends(ProviderPath(rtt_ms=1.0, bandwidth=math.inf))
    placement = solve(req, bids, measurements)
    assert placement.objective.rtt_ms == 1.0


@pytest.mark.parametrize("order", [0, 1])
def test_a_nan_in_either_direction_of_a_link_makes_it_unmeasured(order: int) -> None:
    good, bad = ProviderPath(rtt_ms=1.0, bandwidth=100), ProviderPath(rtt_ms=math.nan)
    links = [(("p1", "p2"), good), (("p2", "p1"), bad)]
    if order:
        links.reverse()
    req, bids, _ = _two_ends(good)
    with pytest.raises(Unplaceable):
        solve(req, bids, Measurements(dict(links)))


@pytest.mark.parametrize("price", [math.nan, math.inf, -1.0])
def test_a_non_finite_or_negative_price_is_refused_naming_the_field(price: float) -> None:
    with pytest.raises(InvalidBid, match="p1: price"):
        Bid("p1", Resources(cpu=1), {"docker"}, price=price)


def _first_search(budget: SearchBudget, providers: int = 40) -> Outcome:
    """The search for a first placement where there is none: eight gpu nodes for seven
    gpu providers, each edge-bound to two nodes any provider may take. Forward checking
    needs over ten thousand assignments to find that out."""
    bids = [
        Bid(f"p{i:04d}", Resources(cpu=16, gpus=(Gpu(),) if i < 7 else ()), {"docker"})
        for i in range(providers)
    ]
    gpu = Resources(cpu=1, gpus=(Gpu(),))
    nodes = [NodeRequirements(f"g{k}", gpu, frozenset({"docker"})) for k in range(8)]
    nodes += [_node("w0"), _node("w1")]
    edges = tuple(
        EdgeRequirement(f"g{k}", f"w{w}", max_rtt_ms=50.0) for k in range(8) for w in range(2)
    )
    measurements = Measurements(
        {(f"p{i:04d}", f"p{j:04d}"): ProviderPath(rtt_ms=1.0)
         for i in range(7) for j in range(providers) if j != i}
    )
    problem = compile_problem(
        EnsembleRequirements(nodes=tuple(nodes), edges=edges), bids, measurements,
        exclude=frozenset(), strategy="pack", previous=None, replace=frozenset(),
    )
    return search(problem, Active.everything(problem), budget, first_only=True)


def _clock_after(seconds: float) -> Callable[[], float]:
    """A clock that reads 0 once (the search's start), then `seconds` ever after."""
    readings = iter([0.0])
    return lambda: next(readings, seconds)


def test_the_first_placement_grace_ends_at_first_ceiling_times_the_budget() -> None:
    # 6 s gone, past 10 x 0.5 s: the clock's first reading (every 64 assignments, or
    # 16 edge revisions) ends the search, where first_nodes alone would go to 5,000
    outcome = _first_search(SearchBudget(max_seconds=0.5, clock=_clock_after(6.0)))
    assert (outcome.values, outcome.complete) == (None, False)
    assert outcome.stats.explored <= 64


def test_within_the_ceiling_the_first_placement_grace_still_holds() -> None:
    # 3 s gone: past the 0.5 s budget but within 10 x it, the search goes on to
    # first_nodes
    budget = SearchBudget(max_seconds=0.5, first_nodes=640, clock=_clock_after(3.0))
    outcome = _first_search(budget)
    assert (outcome.values, outcome.complete, outcome.stats.explored) == (None, False, 640)


def test_the_root_propagation_reads_the_clock_too() -> None:
    # a placeable clique whose root propagation is the whole cost: past the ceiling it
    # stops before any assignment (it ran unbounded: 8 s at 10,000 providers, 60 nodes)
    bids = [Bid(f"p{i:03d}", Resources(cpu=64), {"docker"}) for i in range(200)]
    nodes = tuple(_node(f"n{k}") for k in range(8))
    edges = tuple(EdgeRequirement(f"n{a}", f"n{b}", max_rtt_ms=50.0)
                  for a in range(8) for b in range(a + 1, 8))
    measurements = Measurements({(f"p{i:03d}", f"p{(i + 1) % 200:03d}"): ProviderPath(rtt_ms=1.0)
                                 for i in range(200)})
    req = EnsembleRequirements(nodes=nodes, edges=edges)
    assert solve(req, bids, measurements).stats.explored > 0  # untimed: it places
    problem = compile_problem(req, bids, measurements, exclude=frozenset(), strategy="pack",
                              previous=None, replace=frozenset())
    budget = SearchBudget(max_seconds=0.5, clock=_clock_after(6.0))
    outcome = search(problem, Active.everything(problem), budget, first_only=True)
    assert (outcome.values, outcome.complete, outcome.stats.explored) == (None, False, 0)


def test_without_a_clock_the_crafted_market_outruns_first_nodes() -> None:
    # the attack is real: the untimed search needs more than the 5,000-assignment grace
    outcome = _first_search(SearchBudget(max_nodes=6_000))
    assert (outcome.values, outcome.complete, outcome.stats.explored) == (None, False, 6_000)


# -- _screen's grouping against a per-bid _rejection ------------------------------------

_EXECUTORS = ["docker", "firecracker", "wasm"]
_PLACES = [Location(), Location(continent="EU", country="DE"), Location(continent="EU"),
           Location(continent="NA", country="US", city="Ashburn"), Location(country="DE")]
_PORTS = [80, 443, 8080]


@st.composite
def _markets(draw: st.DrawFn) -> tuple[NodeRequirements, list[Bid], frozenset[str]]:
    # hypothesis draws the seed and size, random fills in the market (drawing every
    # field made generation most of the test's time)
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    count = draw(st.integers(0, 30))

    def some(options: list[object], most: int) -> list[object]:
        return rng.sample(options, rng.randint(0, min(most, len(options))))

    bids = [
        Bid(
            f"p{i:02d}",
            Resources(
                cpu=rng.choice([0.5, 1.0, 2.0, 4.0]),
                ram=rng.randint(0, 4) * GiB,
                disk=rng.randint(0, 2) * GiB,
                gpus=(Gpu(),) * rng.randint(0, 2),
            ),
            some(_EXECUTORS, 3),  # type: ignore[arg-type]
            location=rng.choice(_PLACES),
            public_ports=None if rng.random() < 0.3 else some(_PORTS, 3),  # type: ignore[arg-type]
            nodes=None if rng.random() < 0.5 else some(["n", "m"], 2),  # type: ignore[arg-type]
        )
        for i in range(count)
    ]
    node = NodeRequirements(
        "n",
        Resources(cpu=rng.choice([0.5, 1.0, 2.0]), ram=rng.randint(0, 3) * GiB,
                  disk=rng.randint(0, 1) * GiB, gpus=(Gpu(),) * rng.randint(0, 1)),
        frozenset(some(_EXECUTORS, 2)),  # type: ignore[arg-type]
        ports=tuple(PortRequirement(p, 1, "tcp") for p in some([*_PORTS, 0], 2)),  # type: ignore[arg-type]
        location=LocationConstraint(
            accept=tuple(some(_PLACES[1:], 2)),  # type: ignore[arg-type]
            reject=tuple(some(_PLACES[1:], 1)),  # type: ignore[arg-type]
        ),
    )
    excluded = frozenset(b.peer for b in bids if rng.random() < 0.2)
    return node, bids, excluded


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_markets())
def test_screen_grouping_passes_and_counts_exactly_what_rejection_does_per_bid(
    market: tuple[NodeRequirements, list[Bid], frozenset[str]],
) -> None:
    node, bids, excluded = market
    demand = _vector(node.resources)
    fixed = frozenset(p.public for p in node.ports if p.public)
    anys = sum(1 for p in node.ports if not p.public)
    capacity = [_vector(b.free) for b in bids]
    passing, rejected = _screen(node, demand, fixed, anys, capacity, _BidGroups(bids, excluded))
    verdicts = [_rejection(node, demand, fixed, anys, b, c, excluded)
                for b, c in zip(bids, capacity, strict=True)]
    assert passing == [i for i, why in enumerate(verdicts) if why is None]
    assert rejected == Counter(why for why in verdicts if why is not None)
