"""The root's arc consistency against a naive fixpoint written here, and the ranked
links the fast support checks read against a plain filter of each row.

The search revises a large domain against a small one by gathering the small side's
partners, and takes the smallest domain first; neither may change which providers
survive, only how fast they are found.
"""

from __future__ import annotations

import itertools
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dms.ensemble._requirements import (
    EdgeRequirement,
    EnsembleRequirements,
    Location,
    LocationConstraint,
    NodeRequirements,
    Resources,
)
from dms.orchestrator.placement import Bid, Measurements, ProviderPath, SearchBudget
from dms.orchestrator.placement._links import RankedLinks, Rows
from dms.orchestrator.placement._problem import Problem, compile_problem
from dms.orchestrator.placement._search import Active, search

REGIONS = ("EU", "US", "AS")
RTTS = (None, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0)
BANDWIDTHS = (None, 1e8, 1e9, 1e10)


def compiled(seed: int) -> Problem:
    """Up to 40 providers, 6 nodes (some held to one region, so domains differ in size
    and both ways of revising run) and 8 rtt/bandwidth-bounded edges."""
    rng = random.Random(seed)
    peers = [f"did:key:p{i:02d}" for i in range(rng.randint(5, 40))]
    bids = [
        Bid(
            peer=peer,
            free=Resources(cpu=4.0, ram=4 << 30),
            executors=frozenset({"docker"}),
            location=Location(continent=rng.choice(REGIONS)),
            price=float(rng.randint(1, 9)),
        )
        for peer in peers
    ]
    names = [f"n{i}" for i in range(rng.randint(2, 6))]
    nodes = [
        NodeRequirements(
            name=name,
            resources=Resources(cpu=1.0, ram=1 << 30),
            executors=frozenset({"docker"}),
            location=LocationConstraint(accept=(Location(continent=rng.choice(REGIONS)),))
            if rng.random() < 0.5
            else LocationConstraint(),
        )
        for name in names
    ]
    edges = [
        EdgeRequirement(
            *rng.sample(names, 2),
            max_rtt_ms=rng.choice((None, 2.0, 4.0, 9.0)),
            min_bandwidth=rng.choice((None, 10**8, 10**9)),
        )
        for _ in range(rng.randint(1, 8))
    ]
    links = {
        (a, b): ProviderPath(rtt_ms=rng.choice(RTTS), bandwidth=rng.choice(BANDWIDTHS))
        for a, b in itertools.combinations(peers, 2)
        if rng.random() < 0.3
    }
    return compile_problem(
        EnsembleRequirements(nodes=tuple(nodes), edges=tuple(edges)),
        bids,
        Measurements(links),
        exclude=frozenset(),
        strategy="pack",
        previous=None,
        replace=frozenset(),
    )


def naive_fixpoint(problem: Problem) -> list[set[int]]:
    """Remove unsupported providers from the primaries, one edge end at a time, until
    nothing changes."""
    primary = {
        problem.slot_node[s]: s
        for s in range(len(problem.slot_node))
        if problem.slot_replica[s] == 0
    }
    domains = [set(d) for d in problem.slot_domain]
    changed = True
    while changed:
        changed = False
        for edge in problem.edges:
            for x, y in ((edge.source, edge.target), (edge.target, edge.source)):
                dx, dy = domains[primary[x]], domains[primary[y]]
                dead = {p for p in dx if not any(problem.edge_allows(edge, p, q) for q in dy)}
                if dead:
                    dx -= dead
                    changed = True
    return domains


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1))
def test_root_domains_are_the_arc_consistent_fixpoint(seed: int) -> None:
    problem = compiled(seed)
    expected = naive_fixpoint(problem)
    outcome = search(problem, Active.everything(problem), SearchBudget(), first_only=True)
    if outcome.root_domains is None:
        assert not all(expected)
    else:
        assert [set(d) for d in outcome.root_domains] == expected


@given(
    st.dictionaries(
        st.integers(0, 30),
        st.tuples(
            st.sampled_from((1.0, 2.0, 2.0, 5.0, float("inf"))),
            st.sampled_from((-1.0, 1e8, 1e9)),
        ),
    ),
    st.sampled_from((0.5, 2.0, 5.0, float("inf"))),
    st.sampled_from((float("-inf"), 1e8, 1e9)),
)
def test_ranked_partners_are_the_links_within_both_bounds(
    row: dict[int, tuple[float, float]], limit: float, floor: float
) -> None:
    ranked = RankedLinks([row])
    for _ in range(2):  # the second answer comes from the cache
        near = ranked.within(0, limit, floor)
        assert sorted(near) == sorted(
            q for q, (rtt, bw) in row.items() if rtt <= limit and bw >= floor
        )
        assert [row[q][0] for q in near] == sorted(row[q][0] for q in near)


@given(st.integers(0, 2**32 - 1), st.randoms(use_true_random=False))
def test_a_row_holds_the_measured_bidders_whichever_row_is_built_first(
    seed: int, order: random.Random
) -> None:
    rng = random.Random(seed)
    peers = [f"did:key:p{i}" for i in range(8)]
    bidders = sorted(rng.sample(peers, 5))  # links to peers that did not bid are dropped
    links = {
        (a, b): ProviderPath(rtt_ms=rng.choice(RTTS), bandwidth=rng.choice(BANDWIDTHS))
        for a, b in itertools.combinations(peers, 2)
        if rng.random() < 0.5
    }
    measurements = Measurements(links)
    rows = Rows(bidders, measurements)
    asked = list(range(len(bidders)))
    order.shuffle(asked)
    for p in asked:
        expected = {}
        for q, other in enumerate(bidders):
            link = measurements.link(bidders[p], other) if q != p else None
            if link is not None:
                rtt = float("inf") if link.rtt_ms is None else link.rtt_ms
                expected[q] = (rtt, -1.0 if link.bandwidth is None else link.bandwidth)
        assert rows[p] == expected
