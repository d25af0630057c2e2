"""How `dms plan` words a plan: a line per node with its provider's name and price,
the measured links, or the explanation when there is no placement."""

from __future__ import annotations

from dms.cli._display import Names
from dms.cli._plan import plan_lines
from dms.deployment import PlannedLink, PlannedNode, PlanView

P1, P2 = "did:key:zOne", "did:key:zTwo"
NAMES = Names({P1: "provider1", P2: "provider2"})


def test_a_placeable_plan_names_each_node_its_provider_and_price() -> None:
    view = PlanView(placeable=True, total_price=3.5, bidders=(P1, P2, "did:key:zThree"),
                    nodes=(PlannedNode("db", P1, 1.5, standbys=(P2,)),
                           PlannedNode("web", P2, 2.0)),
                    links=(PlannedLink(P1, P2, 0.42, 8e8),))
    lines = plan_lines(view, NAMES)
    assert lines[0] == "placeable on 2 of 3 bidding providers, total price 3.5"
    assert "  node db → provider1  price 1.5  standbys: provider2" in lines
    assert "  node web → provider2  price 2" in lines
    assert "  provider1 ↔ provider2: rtt 0.42 ms, 800 Mbit/s" in lines


def test_an_unplaceable_plan_is_its_explanation() -> None:
    why = "cannot place the ensemble: no suitable providers for web\ndeclines:\n  x"
    assert plan_lines(PlanView(placeable=False, text=why), NAMES) == [
        "not placeable", *why.splitlines()]
