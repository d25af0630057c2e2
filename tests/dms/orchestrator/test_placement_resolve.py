"""Re-solving after a failure: keep every assignment that can stay."""

from __future__ import annotations

import pytest

from dms.ensemble._requirements import (
    EdgeRequirement,
    EnsembleRequirements,
    NodeRequirements,
    Resources,
)
from dms.orchestrator.placement import (
    Assignment,
    Bid,
    Measurements,
    ProviderPath,
    UnknownNode,
    solve,
)


def node(name: str, **kw: object) -> NodeRequirements:
    return NodeRequirements(name, Resources(cpu=1), frozenset({"x"}), **kw)  # type: ignore[arg-type]


def bids(*prices: float) -> list[Bid]:
    return [Bid(f"p{i}", Resources(cpu=1), {"x"}, price=price) for i, price in enumerate(prices)]


REQ = EnsembleRequirements(nodes=(node("a"), node("b"), node("c")))


def test_excluding_one_provider_moves_only_its_node() -> None:
    first = solve(REQ, bids(1, 2, 3, 4, 5))
    assert first.assignment.primary == {"a": "p0", "b": "p1", "c": "p2"}
    # p1 failed to commit; cheaper overall would be to shuffle, but nothing else moves
    again = solve(REQ, bids(1, 2, 3, 4, 5), exclude=frozenset({"p1"}), previous=first.assignment)
    assert again.assignment.primary == {"a": "p0", "b": "p3", "c": "p2"}
    assert again.moved == {"b"}
    assert again.objective.disruption == 1


def test_previous_providers_are_kept_even_when_a_cheaper_one_appears() -> None:
    previous = Assignment(primary={"a": "p3", "b": "p1", "c": "p2"})
    again = solve(REQ, bids(1, 2, 3, 4), previous=previous)
    assert again.assignment.primary == previous.primary
    assert again.moved == frozenset()
    assert again.objective.disruption == 0


def test_replace_places_a_node_afresh() -> None:
    previous = Assignment(primary={"a": "p3", "b": "p1", "c": "p2"})
    again = solve(REQ, bids(1, 2, 3, 4), previous=previous, replace=frozenset({"a"}))
    assert again.assignment.primary == {"a": "p0", "b": "p1", "c": "p2"}
    assert again.moved == {"a"}


def test_a_kept_node_moves_when_an_edge_forces_it() -> None:
    req = EnsembleRequirements(
        nodes=(node("a"), node("b")), edges=(EdgeRequirement("a", "b", max_rtt_ms=5),)
    )
    links = Measurements({("p0", "p1"): ProviderPath(rtt_ms=1), ("p2", "p3"): ProviderPath(rtt_ms=1)})
    first = solve(req, bids(1, 1, 2, 2), links)
    assert first.assignment.primary == {"a": "p0", "b": "p1"}
    again = solve(
        req, bids(1, 1, 2, 2), links, exclude=frozenset({"p1"}), previous=first.assignment
    )
    assert set(again.assignment.primary.values()) == {"p2", "p3"}
    assert again.moved == {"a", "b"}


def test_failed_primary_keeps_its_standby() -> None:
    req = EnsembleRequirements(nodes=(node("db", redundancy=1),))
    first = solve(req, bids(1, 2, 3))
    assert first.assignment.providers_of("db") == ("p0", "p1")
    again = solve(req, bids(1, 2, 3), exclude=frozenset({"p0"}), previous=first.assignment)
    assert "p1" in again.assignment.providers_of("db")
    assert again.objective.disruption == 1


def test_replace_of_unknown_node_is_named() -> None:
    with pytest.raises(UnknownNode, match="'zz'"):
        solve(REQ, bids(1, 2, 3), replace=frozenset({"zz"}))
    with pytest.raises(UnknownNode, match="'zz'"):
        solve(REQ, bids(1, 2, 3), previous=Assignment(primary={"zz": "p0"}))
