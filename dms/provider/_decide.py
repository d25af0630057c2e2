"""Bid or decline: what a provider answers a deployment request.

Each ensemble node of the request is checked on its own against what is free now:
excluded or pinned elsewhere first (nothing else matters then), then executors,
location, ports, cpu, ram, disk and GPUs. The nodes that fit get one `placement.Bid`
(the solver sums nodes per provider itself); the others get a `Decline` naming every
requirement they miss. Pure: the caller passes the free capacity, typically
`book.free(now)`, and sends what comes back.
"""

from __future__ import annotations

from collections import Counter

import attrs

from dms.ensemble._requirements import EnsembleRequirements, Location, NodeRequirements
from dms.orchestrator.placement import Bid

from ._ask import Ask, InvalidRequest
from ._capacity import Capacity
from ._decline import Decline, Unmet
from ._fit import shortfalls


@attrs.frozen
class Decision:
    """The answer to one request: a bid for the nodes that fit (None if none does) and
    a decline for the others (None if all fit). Both are None only for a request that
    names no node."""

    bid: Bid | None
    decline: Decline | None


def describe_place(place: Location) -> str:
    """`continent EU country DE`: the fields that are set, as the ensemble names them."""
    fields = attrs.asdict(place)
    return " ".join(f"{name} {value}" for name, value in fields.items() if value is not None)


def _location(node: NodeRequirements, here: Location) -> Unmet | None:
    constraint = node.location
    if constraint.admits(here):
        return None
    rejected = tuple(describe_place(e) for e in constraint.reject if e.covers(here))
    accepted = constraint.accept and not any(e.covers(here) for e in constraint.accept)
    asked = tuple(describe_place(e) for e in constraint.accept) if accepted else ()
    have = describe_place(here) if here != Location() else "an unknown place"
    return Unmet(node.name, "location", asked=asked, have=(have,), rejected=rejected)


def _unmet(peer: str, node: NodeRequirements, ask: Ask, free: Capacity,
           excluded: frozenset[str]) -> tuple[Unmet, ...]:
    if peer in excluded:
        return (Unmet(node.name, "excluded"),)
    if node.peer is not None and node.peer != peer:
        return (Unmet(node.name, "pinned", asked=(node.peer,)),)
    found: list[Unmet] = []
    missing = node.executors - free.executor_names
    if missing:
        found.append(Unmet(node.name, "executor", asked=tuple(sorted(missing)),
                           have=tuple(sorted(free.executor_names))))
    place = _location(node, free.location)
    if place is not None:
        found.append(place)
    found.extend(shortfalls(ask, free))
    return tuple(found)


def _bid_ports(asks: list[Ask], fitting: list[Ask], free: Capacity) -> frozenset[int]:
    """The public ports the bid reports: the fixed ports the fitting nodes ask (all free,
    or they would not fit) and as many others as they ask "any" of. Reporting only
    these keeps a bid small however many ports the provider has, and leaves out ports
    another node of the request wants by number, unless the "any" ports need them: a
    node that fit on a port must be bid with it (one wanted by a node this bid declines
    may be the only one left). "Any" ports come from the top of the range, as the
    reservation book assigns them."""
    wanted = frozenset().union(*(a.fixed_ports for a in asks))
    fixed = frozenset().union(*(a.fixed_ports for a in fitting))
    extra = sum(a.any_ports for a in fitting)
    spare = free.top_ports(extra, avoid=wanted)
    if len(spare) < extra:
        spare = free.top_ports(extra, avoid=fixed)
    return fixed | frozenset(spare)


def decide(peer: str, free: Capacity, request: EnsembleRequirements, *, price: float = 0.0) -> Decision:
    """Bid for the nodes of `request` that fit `free`, decline the rest.

    Raises InvalidRequest (naming the node and field) when a node's numbers mean
    nothing or two nodes share a name: a request that cannot be read is refused as a
    whole, never answered in part. `price` is per hosted node instance (see `Bid`).
    """
    twice = sorted(name for name, n in Counter(node.name for node in request.nodes).items() if n > 1)
    if twice:
        raise InvalidRequest(f"nodes: node {twice[0]!r} appears more than once")
    asks = [Ask.of_node(node) for node in request.nodes]
    unmet: list[Unmet] = []
    fitting: list[Ask] = []
    for node, ask in zip(request.nodes, asks, strict=True):
        missed = _unmet(peer, node, ask, free, request.exclude_peers)
        unmet.extend(missed)
        if not missed:
            fitting.append(ask)
    bid = None
    if fitting:
        bid = Bid(
            peer=peer,
            free=free.as_resources(),
            executors=free.executor_names,
            location=free.location,
            price=price,
            public_ports=_bid_ports(asks, fitting, free),
            nodes=frozenset(a.node for a in fitting),
        )
    return Decision(bid=bid, decline=Decline(peer, tuple(unmet)) if unmet else None)
