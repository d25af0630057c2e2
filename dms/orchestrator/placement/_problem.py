"""The solver's indexed view of one placement question.

`compile_problem` checks the inputs, numbers providers by peer id (which makes every
later tie-break deterministic and independent of input order), screens each bid
against each node's own constraints (recording why bids fail, for explanations) and
turns measurements into per-provider rows. Search and explanation read only this.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import attrs

from dms.ensemble._requirements import (
    EdgeRequirement,
    EnsembleRequirements,
    Location,
    LocationConstraint,
    NodeRequirements,
    Resources,
)

from ._explanation import NODE_CONSTRAINTS, Elimination, NodeReport, format_bytes
from ._links import RankedLinks, Rows
from ._model import Assignment, Bid, Measurements, Strategy


class UnknownNode(ValueError):
    """An edge, a previous assignment or `replace` names a node the ensemble lacks."""


class DuplicateBid(ValueError):
    """Two bids came from the same provider peer."""


Vector = tuple[float, int, int, int]  # cpu, ram, disk, gpu count


def _vector(resources: Resources) -> Vector:
    return (resources.cpu, resources.ram, resources.disk, len(resources.gpus))


@attrs.frozen
class Edge:
    """An edge constraint between node indices; `rtt_counts` puts it in the objective.
    `position` is its index in the requirements' edges."""

    position: int
    source: int
    target: int
    max_rtt_ms: float | None
    min_bandwidth: float | None
    requirement: EdgeRequirement
    # the bounds as plain numbers (unbounded = inf / -inf) for the search's inner loops
    rtt_limit: float = attrs.field(init=False)
    bandwidth_floor: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        rtt = math.inf if self.max_rtt_ms is None else self.max_rtt_ms
        floor = -math.inf if self.min_bandwidth is None else self.min_bandwidth
        object.__setattr__(self, "rtt_limit", rtt)
        object.__setattr__(self, "bandwidth_floor", floor)

    @property
    def rtt_counts(self) -> bool:
        return self.max_rtt_ms is not None


@attrs.frozen
class Problem:
    """Providers are indices into `peers` (sorted); nodes are indices into `nodes`
    (sorted by name); slot `s` is replica `slot_replica[s]` of node `slot_node[s]`,
    replica 0 being the primary."""

    peers: tuple[str, ...]
    bids: tuple[Bid, ...]
    price: tuple[float, ...]
    capacity: tuple[Vector, ...]
    free_ports: tuple[frozenset[int] | None, ...]
    links: Rows
    nodes: tuple[NodeRequirements, ...]
    demand: tuple[Vector, ...]
    fixed_ports: tuple[frozenset[int], ...]
    any_ports: tuple[int, ...]
    candidates: tuple[tuple[int, ...], ...]  # per node, ordered by (disruption, price, index)
    previous: tuple[frozenset[int], ...] | None  # per node, providers it ran on before
    slot_node: tuple[int, ...]
    slot_replica: tuple[int, ...]
    slot_domain: tuple[tuple[int, ...], ...]  # per slot, ordered like `candidates`
    edges: tuple[Edge, ...]
    reports: tuple[NodeReport, ...]
    strategy: Strategy
    # the links again, nearest first: a cache that copies made by `evolve` share
    ranked: RankedLinks = attrs.field(
        default=attrs.Factory(lambda self: RankedLinks(self.links), takes_self=True),
        eq=False,
        repr=False,
    )

    def evolve(self, **changes: object) -> Problem:
        """A copy with `changes` (the links stay: searches may share edge partners)."""
        assert "links" not in changes and "peers" not in changes
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def disruption(self, node: int, provider: int) -> int:
        """1 when this instance starts on a provider that did not run the node before."""
        if self.previous is None:
            return 0
        return 0 if provider in self.previous[node] else 1

    def edge_allows(self, edge: Edge, p: int, q: int) -> bool:
        if p == q:
            return True
        link = self.links[p].get(q)
        if link is None:
            return False
        rtt, bandwidth = link
        if edge.max_rtt_ms is not None and not rtt <= edge.max_rtt_ms:
            return False
        return edge.min_bandwidth is None or bandwidth >= edge.min_bandwidth

    def rtt(self, p: int, q: int) -> float:
        if p == q:
            return 0.0
        link = self.links[p].get(q)
        return math.inf if link is None else link[0]

    @property
    def placeable_alone(self) -> bool:
        return all(report.placeable for report in self.reports)


def _describe_location(constraint: LocationConstraint) -> str:
    def entry(place: object) -> str:
        fields = attrs.asdict(place)  # type: ignore[arg-type]
        return " ".join(f"{k} {v}" for k, v in fields.items() if v is not None) or "anywhere"

    parts = []
    if constraint.accept:
        parts.append(" or ".join(entry(e) for e in constraint.accept) + " required")
    if constraint.reject:
        parts.append("not " + " or ".join(entry(e) for e in constraint.reject))
    return ", ".join(parts)


def _details(node: NodeRequirements, fixed_ports: frozenset[int], any_ports: int) -> dict[str, str]:
    res = node.resources
    ports = ", ".join(str(p) for p in sorted(fixed_ports))
    if any_ports:
        ports += (", " if ports else "") + f"{any_ports} of any"
    return {
        "not_bid": "",
        "excluded": "",
        "executor": "needs " + ", ".join(sorted(node.executors)),
        "location": _describe_location(node.location),
        "ports": f"needs {ports}",
        "cpu": f"need {res.cpu:g} cores",
        "ram": f"need {format_bytes(res.ram)}",
        "disk": f"need {format_bytes(res.disk)}",
        "gpu": f"need {len(res.gpus)}",
    }


def _rejection(
    node: NodeRequirements,
    demand: Vector,
    fixed_ports: frozenset[int],
    any_ports: int,
    bid: Bid,
    capacity: Vector,
    excluded: frozenset[str],
) -> str | None:
    """The first node-level constraint (in NODE_CONSTRAINTS order) the bid fails."""
    if bid.nodes is not None and node.name not in bid.nodes:
        return "not_bid"
    if bid.peer in excluded:
        return "excluded"
    if not node.executors <= bid.executors:
        return "executor"
    if (node.location.accept or node.location.reject) and not node.location.admits(bid.location):
        return "location"
    free = bid.public_ports
    if free is not None and (not fixed_ports <= free or len(fixed_ports) + any_ports > len(free)):
        return "ports"
    if demand[0] > capacity[0] + 1e-9:
        return "cpu"
    if demand[1] > capacity[1]:
        return "ram"
    if demand[2] > capacity[2]:
        return "disk"
    if demand[3] > capacity[3]:
        return "gpu"
    return None


def _screen(
    node: NodeRequirements,
    demand: Vector,
    fixed_ports: frozenset[int],
    any_ports: int,
    capacity: Sequence[Vector],
    groups: _BidGroups,
) -> tuple[list[int], Counter[str]]:
    """The bids (by index, ascending) that pass every node-level constraint, and how
    many failed each: `_rejection` for every bid, inlined (it runs bids x nodes times),
    with every test but capacity asked once per group of bids that answer it alike."""
    name, executors, location = node.name, node.executors, node.location
    placed = bool(location.accept or location.reject)
    admits: list[bool | None] = [None] * len(groups.places)
    ports = len(fixed_ports) + any_ports
    cpu, ram, disk, gpus = demand
    passing: list[int] = []
    rejected: Counter[str] = Counter()
    for group in groups.groups:
        why = None
        if group.nodes is not None and name not in group.nodes:
            why = "not_bid"
        elif group.excluded:
            why = "excluded"
        elif not executors <= group.executors:
            why = "executor"
        elif placed and not (
            admits[group.place]
            if admits[group.place] is not None
            else groups.admit(location, group.place, admits)
        ):
            why = "location"
        elif (free := group.public_ports) is not None and (
            not fixed_ports <= free or ports > len(free)
        ):
            why = "ports"
        if why is not None:
            rejected[why] += len(group.bids)
            continue
        for i in group.bids:
            have = capacity[i]
            if cpu > have[0] + 1e-9:
                rejected["cpu"] += 1
            elif ram > have[1]:
                rejected["ram"] += 1
            elif disk > have[2]:
                rejected["disk"] += 1
            elif gpus > have[3]:
                rejected["gpu"] += 1
            else:
                passing.append(i)
    passing.sort()
    return passing, rejected


@attrs.frozen
class _BidGroup:
    """Bids that every node-level test but capacity answers alike."""

    nodes: frozenset[str] | None
    excluded: bool
    executors: frozenset[str]
    place: int  # index into `_BidGroups.places`
    public_ports: frozenset[int] | None
    bids: list[int]


_GroupKey = tuple[frozenset[str] | None, bool, frozenset[str], int, frozenset[int] | None]


class _BidGroups:
    """The bids grouped once per compile by what the node-level tests read (a market
    has a few dozen kinds of bid: executors, location, ports), so that those tests run
    per group and only capacity per bid; and the distinct locations numbered (hashing a
    `Location`, an attrs class, per bid per node was a third of the time to compile)."""

    def __init__(self, bids: Sequence[Bid], excluded: frozenset[str]) -> None:
        number: dict[Location, int] = {}
        members: dict[_GroupKey, list[int]] = {}
        for i, bid in enumerate(bids):
            place = number.setdefault(bid.location, len(number))
            key = (bid.nodes, bid.peer in excluded, bid.executors, place, bid.public_ports)
            members.setdefault(key, []).append(i)
        self.places = list(number)
        self.groups = [_BidGroup(nodes, out, executors, place, ports, indices)
                       for (nodes, out, executors, place, ports), indices in members.items()]

    def admit(self, constraint: LocationConstraint, place: int, seen: list[bool | None]) -> bool:
        admitted = seen[place] = constraint.admits(self.places[place])
        return admitted


def _previous(
    nodes: Sequence[NodeRequirements],
    index: Mapping[str, int],
    previous: Assignment | None,
    replace: frozenset[str],
) -> tuple[frozenset[int], ...] | None:
    names = {node.name for node in nodes}
    for name in sorted(replace - names):
        raise UnknownNode(f"replace names {name!r}, which is not a node of the ensemble")
    if previous is None:
        return None
    for name in sorted(set(previous.primary) - names):
        raise UnknownNode(f"previous assignment places {name!r}, not a node of the ensemble")
    return tuple(
        frozenset()
        if node.name in replace
        else frozenset(index[p] for p in previous.providers_of(node.name) if p in index)
        for node in nodes
    )


def compile_problem(
    requirements: EnsembleRequirements,
    bids: Sequence[Bid],
    measurements: Measurements,
    *,
    exclude: frozenset[str],
    strategy: Strategy,
    previous: Assignment | None,
    replace: frozenset[str],
) -> Problem:
    ordered = sorted(bids, key=lambda bid: bid.peer)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.peer == b.peer:
            raise DuplicateBid(f"two bids from provider {a.peer}")
    peers = tuple(bid.peer for bid in ordered)
    index = {peer: i for i, peer in enumerate(peers)}
    capacity = tuple(_vector(bid.free) for bid in ordered)
    price = tuple(bid.price for bid in ordered)

    nodes = tuple(sorted(requirements.nodes, key=lambda node: node.name))
    node_index: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if node.name in node_index:
            raise UnknownNode(f"node {node.name!r} appears twice in the requirements")
        node_index[node.name] = i
    edges = []
    for position, edge in enumerate(requirements.edges):
        for end in (edge.source, edge.target):
            if end not in node_index:
                raise UnknownNode(
                    f"edge {edge.source}-{edge.target}: no ensemble node named {end!r}"
                )
        constrained = edge.max_rtt_ms is not None or edge.min_bandwidth is not None
        if constrained and edge.source != edge.target:
            edges.append(
                Edge(
                    position,
                    node_index[edge.source],
                    node_index[edge.target],
                    edge.max_rtt_ms,
                    None if edge.min_bandwidth is None else float(edge.min_bandwidth),
                    edge,
                )
            )

    prev = _previous(nodes, index, previous, replace)
    excluded = exclude | requirements.exclude_peers
    demand = tuple(_vector(node.resources) for node in nodes)
    fixed_ports = tuple(frozenset(p.public for p in node.ports if p.public) for node in nodes)
    any_ports = tuple(sum(1 for p in node.ports if not p.public) for node in nodes)

    groups = _BidGroups(ordered, excluded)
    candidates: list[tuple[int, ...]] = []
    reports: list[NodeReport] = []
    slot_node: list[int] = []
    slot_replica: list[int] = []
    slot_domain: list[tuple[int, ...]] = []
    for n, node in enumerate(nodes):
        passing, rejected = _screen(node, demand[n], fixed_ports[n], any_ports[n], capacity, groups)
        if prev is None:
            passing.sort(key=price.__getitem__)  # stable: ties stay in index order
        else:

            def cost(i: int, n: int = n) -> tuple[int, float, int]:
                return (0 if i in prev[n] else 1, price[i], i)

            passing.sort(key=cost)
        candidates.append(tuple(passing))
        details = _details(node, fixed_ports[n], any_ports[n])
        pin_problem = None
        if node.peer is not None and node.peer not in index:
            pin_problem = "did not bid"
        elif node.peer is not None and index[node.peer] not in passing:
            i = index[node.peer]
            why = _rejection(
                node, demand[n], fixed_ports[n], any_ports[n], ordered[i], capacity[i], excluded
            )
            assert why is not None
            pin_problem = (
                "did not bid for it"
                if why == "not_bid"
                else "is " + Elimination(why, 1, details[why]).phrase
            )
        replicas = node.redundancy + 1
        reports.append(
            NodeReport(
                node=node.name,
                replicas=replicas,
                bids=len(ordered),
                candidates=len(passing),
                eliminated=tuple(
                    Elimination(name, rejected[name], details[name])
                    for name in sorted(
                        rejected, key=lambda c: (-rejected[c], NODE_CONSTRAINTS.index(c))
                    )
                ),
                pinned=node.peer,
                pin_problem=pin_problem,
            )
        )
        for replica in range(replicas):
            slot_node.append(n)
            slot_replica.append(replica)
            if replica == 0 and node.peer is not None:
                pinned = index.get(node.peer)
                slot_domain.append((pinned,) if pinned in passing else ())
            else:
                slot_domain.append(tuple(passing))

    links = Rows(peers, measurements)
    return Problem(
        peers=peers,
        bids=tuple(ordered),
        price=price,
        capacity=capacity,
        free_ports=tuple(bid.public_ports for bid in ordered),
        links=links,
        nodes=nodes,
        demand=demand,
        fixed_ports=fixed_ports,
        any_ports=any_ports,
        candidates=tuple(candidates),
        previous=prev,
        slot_node=tuple(slot_node),
        slot_replica=tuple(slot_replica),
        slot_domain=tuple(slot_domain),
        edges=tuple(edges),
        reports=tuple(reports),
        strategy=strategy,
    )
