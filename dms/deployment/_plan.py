"""What `/dms/node/deployment/plan` answers: the placement a deployment of the ensemble
would get now, or why it would get none, as data a user reads and a script parses.

Built from the orchestrator's solve (`plan_of`) with no I/O: the bids give each
provider's price, the measurements the round-trip times between chosen providers, the
bid window's `DeploymentUnplaceable` the explanation and every decline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from dms.orchestrator import DeploymentUnplaceable
from dms.orchestrator.placement import Bid, Measurements, Placement


@attrs.frozen
class PlanRequest:
    ensemble: str  # the YAML text
    timeout: float | None = None  # seconds to gather bids (default and cap: MAX_PLAN_SECONDS)


@attrs.frozen
class PlannedNode:
    """Where one ensemble node would run, at what price per instance."""

    node: str
    provider: str
    price: float
    standbys: tuple[str, ...] = ()


@attrs.frozen
class PlannedLink:
    """A measured path between two chosen providers (ms; None: not measured)."""

    a: str
    b: str
    rtt_ms: float | None
    bandwidth: float | None = None  # bits per second


@attrs.frozen
class PlannedDecline:
    provider: str
    node: str
    reasons: tuple[str, ...]


@attrs.frozen
class PlanView:
    """`placeable`: `nodes` says where each node would run and `total_price` what it
    costs; else `explanation` is the solver's (spec/placement.md gives its shape) and
    `text` the same in words, with the declines. `gap` is the solver's: how much
    cheaper any placement of these bids could be at most, as a share of the total."""

    placeable: bool
    nodes: tuple[PlannedNode, ...] = ()
    total_price: float = 0.0
    gap: float = 0.0  # at most this share of `total_price` could be saved (0: optimal)
    links: tuple[PlannedLink, ...] = ()
    bidders: tuple[str, ...] = ()  # providers whose bids were held
    declines: tuple[PlannedDecline, ...] = ()
    excluded: dict[str, str] = attrs.Factory(dict)
    explanation: dict[str, Any] | None = None
    text: str = ""


def plan_of(result: Placement | DeploymentUnplaceable, bids: Iterable[Bid],
            measurements: Measurements) -> PlanView:
    """The plan a solve's `result` describes."""
    offers = {bid.peer: bid for bid in bids}
    if isinstance(result, DeploymentUnplaceable):
        return PlanView(
            placeable=False, bidders=tuple(sorted(offers)),
            declines=tuple(PlannedDecline(d.peer, d.node, d.reasons) for d in result.declines),
            excluded=dict(result.excluded), explanation=result.explanation.to_json(),
            text=result.text())
    assignment = result.assignment
    nodes = tuple(
        PlannedNode(node, peer, offers[peer].price if peer in offers else 0.0,
                    tuple(assignment.standbys.get(node, ())))
        for node, peer in sorted(assignment.primary.items()))
    chosen = sorted({peer for node in assignment.primary
                     for peer in assignment.providers_of(node)})
    links = []
    for i, a in enumerate(chosen):
        for b in chosen[i + 1:]:
            path = measurements.link(a, b)
            if path is not None and (path.rtt_ms is not None or path.bandwidth is not None):
                links.append(PlannedLink(a, b, path.rtt_ms, path.bandwidth))
    return PlanView(placeable=True, nodes=nodes, total_price=result.objective.price,
                    gap=result.gap, links=tuple(links), bidders=tuple(sorted(offers)))
