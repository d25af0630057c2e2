"""Explanations: what `Unplaceable` says, as text and as JSON."""

from __future__ import annotations

import json

import pytest

from dms.ensemble._requirements import (
    EdgeRequirement,
    EnsembleRequirements,
    Location,
    LocationConstraint,
    NodeRequirements,
    Resources,
)
from dms.orchestrator.placement import (
    Bid,
    EdgeConflict,
    Explanation,
    Measurements,
    ProviderPath,
    Reason,
    SearchBudget,
    Unplaceable,
    solve,
)

GiB = 1 << 30
EU = LocationConstraint(accept=(Location(continent="EU"),))


def failure_of(*args: object, **kw: object) -> Explanation:
    with pytest.raises(Unplaceable) as failure:
        solve(*args, **kw)  # type: ignore[arg-type]
    return failure.value.explanation


def test_node_report_counts_each_rejected_bid_under_its_first_failing_constraint() -> None:
    db = NodeRequirements("db", Resources(cpu=1, ram=8 * GiB), frozenset({"docker"}), location=EU)
    bids = [
        Bid(f"p{i}", Resources(cpu=4, ram=4 * GiB), {"docker"}, Location(continent="EU"))
        for i in range(9)
    ] + [
        Bid(f"q{i}", Resources(cpu=4, ram=16 * GiB), {"docker"}, Location(continent="US"))
        for i in range(3)
    ]
    explanation = failure_of(EnsembleRequirements(nodes=(db,)), bids)
    assert explanation.reason is Reason.NODE_WITHOUT_CANDIDATES
    assert str(explanation.nodes[0]) == (
        "node db: 12 bids; 9 short of memory (need 8 GiB), "
        "3 rejected by location (continent EU required); 0 candidates"
    )
    assert str(explanation).startswith("cannot place the ensemble: no suitable providers for db")


def test_executor_and_exclusion_counts_name_what_is_missing() -> None:
    node = NodeRequirements("job", Resources(cpu=1), frozenset({"firecracker"}))
    bids = [Bid("a", Resources(cpu=2), {"docker"}), Bid("b", Resources(cpu=2), {"firecracker"})]
    explanation = failure_of(EnsembleRequirements(nodes=(node,)), bids, exclude=frozenset({"b"}))
    assert str(explanation.nodes[0]) == (
        "node job: 2 bids; 1 excluded, 1 lacking an executor (needs firecracker); 0 candidates"
    )


def edge_instance(max_rtt_ms: float) -> tuple[EnsembleRequirements, list[Bid], Measurements]:
    web = NodeRequirements("web", Resources(cpu=1), frozenset({"docker"}))
    db = NodeRequirements("db", Resources(cpu=1), frozenset({"docker"}))
    bids = [Bid(f"w{i}", Resources(cpu=1), {"docker"}, nodes={"web"}) for i in range(4)]
    bids += [Bid(f"d{i}", Resources(cpu=1), {"docker"}, nodes={"db"}) for i in range(3)]
    links = {(f"w{i}", f"d{j}"): ProviderPath(rtt_ms=12.0 + i + j) for i in range(4) for j in range(3)}
    req = EnsembleRequirements(
        nodes=(web, db), edges=(EdgeRequirement("web", "db", max_rtt_ms=max_rtt_ms),)
    )
    return req, bids, Measurements(links)


def test_edge_that_no_candidate_pair_meets_reports_the_best_measured_rtt() -> None:
    explanation = failure_of(*edge_instance(5))
    assert explanation.reason is Reason.CONFLICTING_CONSTRAINTS
    assert [str(c) for c in explanation.conflicts] == [
        "edge web-db rtt<=5 ms: no provider pair among web's 4 and db's 3 candidates has a "
        "measured RTT of at most 5 ms; best is 12 ms"
    ]
    assert str(explanation).splitlines()[0] == (
        "cannot place the ensemble: this constraint cannot be met"
    )
    assert "node web: 7 bids; 3 did not bid for it; 4 candidates" in str(explanation)


def test_conflict_between_edges_and_separation_names_all_three() -> None:
    # db needs two distinct providers; web must be within 5 ms of db's primary and cache
    # within 5 ms of web, but only one provider has both neighbours close.
    node = lambda name, **kw: NodeRequirements(name, Resources(cpu=1), frozenset({"x"}), **kw)  # noqa: E731
    req = EnsembleRequirements(
        nodes=(node("db", redundancy=1), node("web")),
        edges=(EdgeRequirement("web", "db", max_rtt_ms=5),),
    )
    bids = [
        Bid("p1", Resources(cpu=1), {"x"}, nodes={"db"}),
        Bid("p2", Resources(cpu=1), {"x"}, nodes={"db"}),
        Bid("w", Resources(cpu=1), {"x"}, nodes={"web"}),
    ]
    links = Measurements({("w", "p1"): ProviderPath(rtt_ms=1), ("w", "p2"): ProviderPath(rtt_ms=1)})
    assert solve(req, bids, links).assignment.primary == {"db": "p1", "web": "w"}
    explanation = failure_of(req, bids[1:], links)
    assert explanation.reason is Reason.NODE_WITHOUT_CANDIDATES
    tight = EnsembleRequirements(
        nodes=req.nodes,
        edges=(
            EdgeRequirement("web", "db", max_rtt_ms=5),
            EdgeRequirement("db", "web", min_bandwidth=10**9),
        ),
    )
    links = Measurements(
        {("w", "p1"): ProviderPath(rtt_ms=1, bandwidth=1e6), ("w", "p2"): ProviderPath(rtt_ms=9, bandwidth=1e10)}
    )
    explanation = failure_of(tight, bids, links)
    kinds = sorted(type(c).__name__ for c in explanation.conflicts)
    assert kinds == ["EdgeConflict", "EdgeConflict"]
    assert explanation.core_minimal
    rtt, bandwidth = sorted(explanation.conflicts, key=lambda c: c.edge)  # type: ignore[union-attr]
    assert isinstance(rtt, EdgeConflict) and isinstance(bandwidth, EdgeConflict)
    assert str(rtt) == (
        "edge web-db rtt<=5 ms: 1 measured provider pairs among web's 1 and db's 2 "
        "candidates meet it"
    )


def test_separation_appears_when_standbys_cannot_spread() -> None:
    # web can only go on p1, which then has no room for either db replica; p2 alone
    # cannot take both of them.
    db = NodeRequirements("db", Resources(cpu=1), frozenset({"x"}), redundancy=1)
    web = NodeRequirements("web", Resources(cpu=1), frozenset({"x"}))
    bids = [Bid("p1", Resources(cpu=1.5), {"x"}), Bid("p2", Resources(cpu=4), {"x"}, nodes={"db"})]
    explanation = failure_of(EnsembleRequirements(nodes=(db, web)), bids)
    assert explanation.reason is Reason.CONFLICTING_CONSTRAINTS
    assert [type(c).__name__ for c in explanation.conflicts] == [
        "CapacityConflict",
        "SeparationConflict",
    ]
    assert [str(c) for c in explanation.conflicts] == [
        "provider p1 (free cpu 1.5, ram 0 B, disk 0 B, 0 gpus) is a candidate for db, web, "
        "which together need cpu 3, ram 0 B, disk 0 B, 0 gpus",
        "node db needs 2 distinct providers (1 primary + 1 standby) among its 2 candidates",
    ]


def test_budget_exhaustion_says_so() -> None:
    nodes = tuple(NodeRequirements(f"n{i}", Resources(cpu=1), frozenset({"x"})) for i in range(8))
    # seven single-core providers for eight nodes: plenty of partial placements to try
    bids = [Bid(f"p{i}", Resources(cpu=1), {"x"}) for i in range(7)]
    explanation = failure_of(
        EnsembleRequirements(nodes=nodes), bids, budget=SearchBudget(max_nodes=50)
    )
    assert explanation.reason is Reason.BUDGET_EXHAUSTED
    assert explanation.explored == 50
    assert str(explanation).startswith(
        "cannot place the ensemble: the search budget ran out after 50 assignments"
    )


def test_explanation_json_round_trips() -> None:
    explanation = failure_of(*edge_instance(5))
    data = explanation.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["reason"] == "conflicting_constraints"
    assert data["conflicts"][0]["kind"] == "edge"
    assert data["conflicts"][0]["best_rtt_ms"] == 12.0
    assert data["nodes"][0]["eliminated"] == [{"constraint": "not_bid", "count": 4, "detail": ""}]
    assert Explanation.from_json(data) == explanation
