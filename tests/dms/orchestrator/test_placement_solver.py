"""Hand-made placement cases: each pins one rule of spec/placement.md."""

from __future__ import annotations

import attrs
import pytest

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
    DuplicateBid,
    InvalidBid,
    Measurements,
    ProviderPath,
    SearchBudget,
    UnknownNode,
    Unplaceable,
    solve,
)

GiB = 1 << 30


def node(name: str, cpu: float = 1, ram: int = 1, **kw: object) -> NodeRequirements:
    return NodeRequirements(
        name,
        Resources(cpu=cpu, ram=ram * GiB),
        frozenset({"docker"}),
        **kw,  # type: ignore[arg-type]
    )


def bid(peer: str, cpu: float = 4, ram: int = 4, price: float = 1.0, **kw: object) -> Bid:
    return Bid(peer, Resources(cpu=cpu, ram=ram * GiB), {"docker"}, price=price, **kw)  # type: ignore[arg-type]


def ensemble(*nodes: NodeRequirements, edges: tuple[EdgeRequirement, ...] = (), **kw: object):
    return EnsembleRequirements(nodes=nodes, edges=edges, **kw)  # type: ignore[arg-type]


def test_single_node_goes_to_the_cheapest_fitting_bid() -> None:
    placement = solve(
        ensemble(node("web", ram=2)),
        [bid("p1", price=3), bid("p2", ram=1, price=1), bid("p3", price=2)],
    )
    assert placement.assignment.primary == {"web": "p3"}
    assert placement.objective.price == 2
    assert placement.optimal


def test_backtracks_when_the_cheapest_choice_strands_a_neighbour() -> None:
    # a's cheapest provider p1 is near b's only provider but far from c's, so a greedy
    # cheapest-first pick (a on p1) dead-ends; a must go to the dearer p2.
    links = Measurements(
        {
            ("p1", "p3"): ProviderPath(rtt_ms=2),
            ("p1", "p4"): ProviderPath(rtt_ms=50),
            ("p2", "p3"): ProviderPath(rtt_ms=3),
            ("p2", "p4"): ProviderPath(rtt_ms=3),
        }
    )
    req = ensemble(
        node("a", ram=3),
        node("b", ram=3, peer="p3"),
        node("c", ram=3, location=LocationConstraint(accept=(Location(city="far"),))),
        edges=(EdgeRequirement("a", "b", max_rtt_ms=5), EdgeRequirement("a", "c", max_rtt_ms=5)),
    )
    bids = [
        bid("p1", price=1),
        bid("p2", price=5),
        bid("p3", price=1),
        bid("p4", price=1, location=Location(city="far")),
    ]
    placement = solve(req, bids, links)
    assert placement.assignment.primary == {"a": "p2", "b": "p3", "c": "p4"}
    assert placement.objective.rtt_ms == 6


def test_nodes_share_a_provider_only_while_their_sum_fits() -> None:
    req = ensemble(node("a", cpu=2), node("b", cpu=2), node("c", cpu=2))
    placement = solve(req, [bid("big", cpu=4, price=1), bid("small", cpu=2, price=2)])
    hosts = sorted(placement.assignment.primary.values())
    assert hosts == ["big", "big", "small"]
    with pytest.raises(Unplaceable) as failure:
        solve(ensemble(node("a", cpu=3), node("b", cpu=3)), [bid("big", cpu=4)])
    conflict = failure.value.explanation.conflicts[0]
    assert str(conflict).startswith("provider big (free cpu 4, ram 4 GiB, disk 0 B, 0 gpus)")
    assert "a, b, which together need cpu 6" in str(conflict)


def test_gpus_are_counted_against_the_provider() -> None:
    gpu_node = NodeRequirements(
        "train", Resources(cpu=1, gpus=(Gpu(), Gpu())), frozenset({"docker"})
    )
    bids = [
        Bid("one", Resources(cpu=8, gpus=(Gpu(),)), {"docker"}),
        Bid("two", Resources(cpu=8, gpus=(Gpu(), Gpu())), {"docker"}, price=9),
    ]
    assert solve(ensemble(gpu_node), bids).assignment.primary == {"train": "two"}


def test_standbys_never_share_a_provider_with_their_primary_or_each_other() -> None:
    req = ensemble(node("db", ram=1, redundancy=2))
    bids = [bid("p1", ram=8), bid("p2", ram=8, price=2), bid("p3", ram=8, price=3)]
    placement = solve(req, bids)
    providers = placement.assignment.providers_of("db")
    assert len(providers) == 3 and len(set(providers)) == 3
    assert placement.objective.price == 6
    with pytest.raises(Unplaceable) as failure:
        solve(req, bids[:2])
    assert "needs 3 distinct providers (1 primary + 2 standbys)" in str(failure.value)


def test_pinned_primary_stays_on_its_peer_and_standbys_go_elsewhere() -> None:
    req = ensemble(node("db", peer="p2", redundancy=1))
    placement = solve(req, [bid("p1"), bid("p2", price=5), bid("p3", price=2)])
    assert placement.assignment.primary == {"db": "p2"}
    assert placement.assignment.standbys == {"db": ("p1",)}


def test_pinned_peer_that_cannot_host_is_named() -> None:
    with pytest.raises(Unplaceable) as failure:
        solve(ensemble(node("db", ram=8, peer="p1")), [bid("p1", ram=4), bid("p2", ram=16)])
    assert "pinned to p1, which is short of memory (need 8 GiB)" in str(failure.value)
    with pytest.raises(Unplaceable) as failure:
        solve(ensemble(node("db", peer="gone")), [bid("p1")])
    assert "pinned to gone, which did not bid" in str(failure.value)


def test_excluded_peers_are_never_chosen() -> None:
    bids = [bid("p1"), bid("p2", price=2), bid("p3", price=3)]
    req = ensemble(node("web"), exclude_peers=frozenset({"p1"}))
    assert solve(req, bids).assignment.primary == {"web": "p2"}
    placement = solve(req, bids, exclude=frozenset({"p2"}))
    assert placement.assignment.primary == {"web": "p3"}


def test_edge_needs_both_rtt_and_bandwidth_within_bounds() -> None:
    links = Measurements(
        {
            ("a1", "b1"): ProviderPath(rtt_ms=2, bandwidth=1e8),  # too thin
            ("a1", "b2"): ProviderPath(rtt_ms=20, bandwidth=1e10),  # too slow
            ("a2", "b2"): ProviderPath(rtt_ms=4, bandwidth=1e9),
        }
    )
    req = ensemble(
        node("web", ram=3),
        node("db", ram=3),
        edges=(EdgeRequirement("web", "db", max_rtt_ms=5, min_bandwidth=10**9),),
    )
    bids = [bid("a1", price=1), bid("b1", price=1), bid("a2", price=2), bid("b2", price=2)]
    placement = solve(req, bids, links)
    assert set(placement.assignment.primary.values()) == {"a2", "b2"}


def test_missing_measurement_makes_a_pair_unusable_for_a_constrained_edge() -> None:
    req = ensemble(
        node("web", ram=3),
        node("db", ram=3),
        edges=(EdgeRequirement("web", "db", max_rtt_ms=50),),
    )
    bids = [bid("p1"), bid("p2")]
    with pytest.raises(Unplaceable) as failure:
        solve(req, bids, Measurements())
    assert "has a measurement" in str(failure.value)
    # rtt measured but the edge bounds bandwidth: still unmeasured for that edge
    bandwidth_edge = ensemble(
        node("web", ram=3),
        node("db", ram=3),
        edges=(EdgeRequirement("web", "db", min_bandwidth=1),),
    )
    with pytest.raises(Unplaceable):
        solve(bandwidth_edge, bids, Measurements({("p1", "p2"): ProviderPath(rtt_ms=1)}))
    assert solve(req, bids, Measurements({("p2", "p1"): ProviderPath(rtt_ms=1)})).optimal


def test_same_provider_edges_are_free_of_rtt() -> None:
    req = ensemble(node("web"), node("db"), edges=(EdgeRequirement("web", "db", max_rtt_ms=1),))
    placement = solve(req, [bid("p1")])
    assert placement.objective.rtt_ms == 0
    assert placement.assignment.primary == {"web": "p1", "db": "p1"}


def test_public_ports_clash_on_one_provider_and_must_be_offered() -> None:
    https = (PortRequirement(public=443, private=8443, allocation="x"),)
    req = ensemble(node("a", ports=https), node("b", ports=https))
    placement = solve(req, [bid("p1"), bid("p2", price=2)])
    assert set(placement.assignment.primary.values()) == {"p1", "p2"}
    with pytest.raises(Unplaceable) as failure:
        solve(ensemble(node("a", ports=https)), [bid("p1", public_ports={80})])
    assert "1 without the public ports (needs 443)" in str(failure.value)


def test_spread_prefers_more_providers_at_equal_price() -> None:
    req = ensemble(node("a"), node("b"))
    bids = [bid("p1"), bid("p2")]
    assert len(set(solve(req, bids, strategy="pack").assignment.primary.values())) == 1
    spread = solve(req, bids, strategy="spread")
    assert len(set(spread.assignment.primary.values())) == 2
    assert spread.objective.providers == 2


def test_result_does_not_depend_on_input_order() -> None:
    req = ensemble(node("a"), node("b"), node("c"))
    bids = [bid(f"p{i}", cpu=2, price=1) for i in range(6)]
    first = solve(req, bids)
    again = solve(ensemble(*reversed(req.nodes)), list(reversed(bids)))
    assert first.assignment == again.assignment


def test_node_budget_returns_best_so_far_unproven() -> None:
    req = ensemble(*(node(f"n{i}", cpu=1) for i in range(6)))
    bids = [bid(f"p{i}", cpu=1, price=1 + (i * 7) % 5) for i in range(12)]
    placement = solve(req, bids, budget=SearchBudget(max_nodes=8))
    assert not placement.optimal
    assert placement.stats.explored <= 8
    assert solve(req, bids).objective.price <= placement.objective.price


def test_time_budget_reads_the_injected_clock() -> None:
    ticks = iter(range(1_000_000))
    req = ensemble(*(node(f"n{i}", cpu=1) for i in range(6)))
    bids = [bid(f"p{i}", cpu=1, price=1 + (i * 7) % 5) for i in range(12)]
    budget = SearchBudget(max_nodes=10**9, max_seconds=3, clock=lambda: float(next(ticks)))
    placement = solve(req, bids, budget=budget)
    assert not placement.optimal
    assert placement.stats.explored < 1000


@pytest.mark.parametrize(("field", "value"), [
    ("max_nodes", -1), ("max_nodes", 1.5), ("max_nodes", True), ("first_nodes", -5),
    ("max_seconds", -1.0), ("max_seconds", float("nan")), ("max_seconds", float("inf")),
    ("max_seconds", "1"),
])
def test_a_budget_out_of_range_is_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"SearchBudget.{field} must be"):
        SearchBudget(**{field: value})  # type: ignore[arg-type]


def test_a_budget_in_range_is_kept() -> None:
    budget = SearchBudget(max_nodes=0, max_seconds=0, first_nodes=0)
    assert (budget.max_nodes, budget.max_seconds, budget.first_nodes) == (0, 0, 0)


def test_edge_to_unknown_node_is_named() -> None:
    req = ensemble(node("web"), edges=(EdgeRequirement("web", "dbx", max_rtt_ms=1),))
    with pytest.raises(UnknownNode, match="edge web-dbx: no ensemble node named 'dbx'"):
        solve(req, [bid("p1")])


def test_two_bids_from_one_peer_are_refused() -> None:
    with pytest.raises(DuplicateBid, match="p1"):
        solve(ensemble(node("web")), [bid("p1"), bid("p1", price=2)])


def test_negative_price_names_the_peer() -> None:
    with pytest.raises(InvalidBid, match="bid from p1: price"):
        bid("p1", price=-1)


def test_bid_for_other_nodes_only_is_not_used() -> None:
    req = ensemble(node("web"), node("db"))
    bids = [bid("p1", nodes={"web"}), bid("p2", price=3)]
    placement = solve(req, bids)
    assert placement.assignment.primary == {"web": "p1", "db": "p2"}


def test_empty_ensemble_places_trivially() -> None:
    placement = solve(ensemble(), [bid("p1")])
    assert placement.assignment.primary == {}
    assert placement.optimal


def test_gap_is_the_share_of_the_price_the_bound_leaves_open() -> None:
    placement = solve(ensemble(node("web")), [bid("p1", price=100)])
    assert placement.gap == 0.0 and placement.lower_bound == 100
    unproven = attrs.evolve(placement, optimal=False, lower_bound=98.2)
    assert unproven.gap == pytest.approx(0.018)
    assert attrs.evolve(unproven, lower_bound=100).gap == 0.0


def test_nodes_competing_for_one_cheap_provider_are_bounded_and_placed_optimally() -> None:
    req = ensemble(node("a", cpu=2), node("b", cpu=2))
    bids = [bid("p1", cpu=2, price=1), bid("p2", cpu=2, price=5), bid("p3", cpu=2, price=9)]
    placement = solve(req, bids)
    assert sorted(placement.assignment.primary.values()) == ["p1", "p2"]
    assert placement.optimal and placement.lower_bound == 6 and placement.gap == 0.0


def test_improvement_stops_once_the_price_meets_the_lower_bound() -> None:
    # twelve independent nodes, each with its own cheapest provider: the first solution
    # already costs the bound, so no neighbourhood is searched
    req = ensemble(*(node(f"n{i:02}", cpu=4) for i in range(12)))
    bids = [bid(f"p{i:02}", cpu=4, price=1 + i % 2) for i in range(24)]
    placement = solve(req, bids)
    assert placement.objective.price == 12
    assert placement.gap == 0.0
    assert placement.stats.neighbourhoods == 0


def test_contention_between_edge_groups_is_resolved_by_the_improvement() -> None:
    # two groups (x1-x2, y1-y2) whose cheapest pairs share provider c; the bound is the
    # sum of the groups alone, and the improved placement is the proven optimum
    req = ensemble(
        node("x1", cpu=4), node("x2", cpu=4), node("y1", cpu=4), node("y2", cpu=4),
        edges=(
            EdgeRequirement("x1", "x2", max_rtt_ms=5),
            EdgeRequirement("y1", "y2", max_rtt_ms=5),
        ),
    )
    bids = [bid(p, cpu=4, price=price) for p, price in
            (("a", 1), ("b", 1), ("c", 1), ("d", 4), ("e", 4))]
    links = {(p, q): ProviderPath(rtt_ms=1) for p in "abcde" for q in "abcde" if p < q}
    placement = solve(req, bids, Measurements(links))
    assert placement.optimal and placement.objective.price == 7
    assert placement.gap == 0.0


def test_edge_groups_competing_for_cheap_providers_are_bounded_together() -> None:
    # x1-x2 and y1-y2 each want two of the three cheap providers a, b, c: alone each
    # costs 2, together 1 + 1 + 1 + 4. Solving the pair together bounds the price at
    # its optimum, so the solver stops there without searching a neighbourhood (alone
    # the bound would say 16 of 19, and the search would run to the end of its budget)
    singles = [node(f"s{i:02}", cpu=4, ram=8) for i in range(12)]  # only fit the q's
    req = ensemble(
        node("x1", cpu=4), node("x2", cpu=4), node("y1", cpu=4), node("y2", cpu=4), *singles,
        edges=(
            EdgeRequirement("x1", "x2", max_rtt_ms=5),
            EdgeRequirement("y1", "y2", max_rtt_ms=5),
        ),
    )
    bids = [bid(p, cpu=4, price=price) for p, price in
            (("a", 1), ("b", 1), ("c", 1), ("d", 4), ("e", 4))]
    bids += [bid(f"q{i:02}", cpu=4, ram=8, price=1) for i in range(12)]
    links = {(p, q): ProviderPath(rtt_ms=1) for p in "abcde" for q in "abcde" if p < q}
    placement = solve(req, bids, Measurements(links))
    assert placement.objective.price == 19
    assert placement.lower_bound == pytest.approx(19) and placement.gap == 0.0
    assert placement.stats.neighbourhoods == 0


def test_a_first_run_over_many_slots_is_not_restarted_before_it_can_finish() -> None:
    # 150 nodes need 150 assignments; a restart cutoff below that threw every first
    # run away and started again
    nodes = [node(f"n{i:03d}") for i in range(150)]
    bids = [bid(f"p{i:03d}", price=1 + i % 7) for i in range(60)]
    placement = solve(ensemble(*nodes), bids, budget=SearchBudget(max_nodes=300))
    assert placement.stats.first_solution_explored == 150


def test_a_clock_that_has_run_out_does_not_make_a_placeable_ensemble_unplaceable() -> None:
    # a loaded machine: every reading of the clock is a second later than the last
    ticks = iter(range(1_000_000))
    nodes = [node(f"n{i:03d}") for i in range(150)]
    bids = [bid(f"p{i:03d}", price=1 + i % 7) for i in range(60)]
    budget = SearchBudget(max_seconds=0.5, clock=lambda: float(next(ticks)))
    placement = solve(ensemble(*nodes), bids, budget=budget)
    assert placement.stats.first_solution_explored == 150
    assert not placement.optimal


def test_the_first_placement_floor_still_ends_a_search_that_finds_none() -> None:
    ticks = iter(range(1_000_000))
    nodes = [node(f"n{i:03d}") for i in range(150)]
    bids = [bid(f"p{i:03d}", price=1 + i % 7) for i in range(60)]
    budget = SearchBudget(max_seconds=0.5, first_nodes=100, clock=lambda: float(next(ticks)))
    with pytest.raises(Unplaceable):
        solve(ensemble(*nodes), bids, budget=budget)
