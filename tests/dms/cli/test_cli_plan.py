"""How `dms plan` words a plan: a line per node with its provider's name and price,
the measured links, or the explanation when there is no placement."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dms.cli import main
from dms.cli._display import Names
from dms.cli._plan import closeness, plan_lines
from dms.deployment import PlannedLink, PlannedNode, PlanView

P1, P2 = "did:key:zOne", "did:key:zTwo"
NAMES = Names({P1: "provider1", P2: "provider2"})


def test_a_placeable_plan_names_each_node_its_provider_and_price() -> None:
    view = PlanView(placeable=True, total_price=3.5, bidders=(P1, P2, "did:key:zThree"),
                    nodes=(PlannedNode("db", P1, 1.5, standbys=(P2,)),
                           PlannedNode("web", P2, 2.0)),
                    links=(PlannedLink(P1, P2, 0.42, 8e8),))
    lines = plan_lines(view, NAMES)
    assert lines[0] == "placeable on 2 of 3 bidding providers, total price 3.5 (optimal)"
    assert "  node db → provider1  price 1.5  standbys: provider2" in lines
    assert "  node web → provider2  price 2" in lines
    assert "  provider1 ↔ provider2: rtt 0.42 ms, 800 Mbit/s" in lines


def test_a_plan_not_proven_optimal_says_how_far_from_optimal_it_may_be() -> None:
    view = PlanView(placeable=True, total_price=10.0, gap=0.018, bidders=(P1,),
                    nodes=(PlannedNode("web", P1, 10.0),))
    assert plan_lines(view, NAMES)[0] == ("placeable on 1 of 1 bidding providers, total "
                                          "price 10 (within 1.8 % of optimal)")


def test_an_unplaceable_plan_is_its_explanation() -> None:
    why = "cannot place the ensemble: no suitable providers for web\ndeclines:\n  x"
    assert plan_lines(PlanView(placeable=False, text=why), NAMES) == [
        "not placeable", *why.splitlines()]


def test_an_invalid_ensemble_is_refused_before_anything_is_asked(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: V1\nallocations:\n  a:\n    executor: procss\n"
                      "    resources: {cpu: 1, ram: 1Gi, disk: 1Gi}\n"
                      "    execution: {command: 'true'}\n"
                      "nodes:\n  n: {allocations: [b]}\n")
    # a node nobody listens on: reaching it would be exit 2, not the ensemble's exit 1
    result = CliRunner().invoke(main, ["plan", str(broken), "--node", "ws://127.0.0.1:9",
                                       "--as", "nobody", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "allocations.a.executor" in result.output and "nodes.n.allocations[0]" in result.output


def test_an_infinite_timeout_is_a_one_line_usage_mistake(tmp_path: Path) -> None:
    # it used to reach the invocation's DAG-CBOR encoding and end in a traceback
    ensemble = Path(__file__).parents[3] / "examples" / "ensembles" / "hello-web.yaml"
    for command in (["plan"], ["deploy"]):
        result = CliRunner().invoke(main, [*command, str(ensemble), "--timeout", "inf",
                                           "--node", "ws://127.0.0.1:9", "--as", "nobody",
                                           "--data-dir", str(tmp_path)])
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "--timeout must be a finite number of seconds, got inf" in result.output


def test_closeness_to_optimal_is_rounded_up_so_it_never_promises_more_than_the_bound() -> None:
    assert closeness(0.0) == "optimal"
    assert closeness(0.0004) == "within 0.1 % of optimal"  # not "within 0.0 %"
    assert closeness(0.018) == "within 1.8 % of optimal"
    assert closeness(0.0181) == "within 1.9 % of optimal"
    assert closeness(0.25) == "within 25.0 % of optimal"
