"""`dms plan ENSEMBLE.yaml`: where a deployment of the ensemble would run now, and what
it would cost, without deploying it (like `nomad job plan`).

    dms plan examples/ensembles/hello-web.yaml
    dms plan ensemble.yaml --json

Validated here first (every problem at once, exit 1, nothing sent). The node asks the
providers for bids and solves, committing nothing: no provider holds anything for a
plan. Placeable: each node, its provider and price, the measured links between the
providers chosen, the total price (exit 0). Not placeable: the solver's explanation and
every provider's decline, on stdout, and one line on stderr (exit 1).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import click

from dms.actor import unstructure_result
from dms.deployment import PlanView
from dms.node._command import check_positive

from ._deploy import read_valid_ensemble
from ._display import Names, printable
from ._errors import EXIT_FAILED, run_async
from ._session import Target, open_session
from ._target import client_options

DEFAULT_TIMEOUT = 10.0


@click.command()
@click.argument("ensemble_file", metavar="ENSEMBLE.yaml")
@client_options
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
              callback=check_positive,
              help="Seconds to gather bids for (the node allows at most 60).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON object.")
def plan(ensemble_file: str, target: Callable[[], Target], timeout: float,
         as_json: bool) -> None:
    """Show where ENSEMBLE.yaml would be placed now, and at what price; deploy nothing."""
    text, _ = read_valid_ensemble(ensemble_file, as_json)
    raise SystemExit(run_async(_plan, target(), text, timeout, as_json))


async def _plan(target: Target, text: str, timeout: float, as_json: bool) -> int:
    async with open_session(target) as session:
        view = await session.plan(text, timeout)
    if as_json:
        click.echo(json.dumps(unstructure_result(view)))
    else:
        click.echo(printable("\n".join(plan_lines(view, Names(target.names)))))
    if view.placeable:
        return 0
    head = view.text.splitlines()[0] if view.text else "no placement"
    click.echo(printable(f"Error: not placeable: {head}"), err=True)
    return EXIT_FAILED


def closeness(gap: float) -> str:
    """How close to optimal a plan's price is, rounded *up* to a tenth of a percent: a
    gap of 0.0004 is "within 0.1 %", never "within 0.0 %", and 0.0181 is "within 1.9 %"
    (rounded to nearest, "1.8 %" would promise more than the bound shows)."""
    if gap <= 0:
        return "optimal"
    tenths = math.ceil(gap * 1000 - 1e-9)  # 0.018 * 1000 is 18.000000000000004
    return f"within {max(tenths, 1) / 10:.1f} % of optimal"


def plan_lines(view: PlanView, name: Names) -> list[str]:
    """The plan in words: a placement line per node, or the explanation."""
    if not view.placeable:
        return ["not placeable", *view.text.splitlines()]
    lines = [f"placeable on {len({n.provider for n in view.nodes})} of "
             f"{len(view.bidders)} bidding providers, total price {view.total_price:g} "
             f"({closeness(view.gap)})"]
    for node in view.nodes:
        line = f"  node {node.node} → {name(node.provider)}  price {node.price:g}"
        if node.standbys:
            line += f"  standbys: {', '.join(name(peer) for peer in node.standbys)}"
        lines.append(line)
    for link in view.links:
        parts = []
        if link.rtt_ms is not None:
            parts.append(f"rtt {link.rtt_ms:.3g} ms")
        if link.bandwidth is not None:
            parts.append(f"{link.bandwidth / 1e6:.3g} Mbit/s")
        lines.append(f"  {name(link.a)} ↔ {name(link.b)}: {', '.join(parts)}")
    return lines
