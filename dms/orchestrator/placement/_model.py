"""The placement solver's inputs and outputs, as plain frozen data.

A `Bid` is one provider's offer, a `Measurements` table says how well providers reach
each other, and a `Placement` is the solver's answer. Everything here is free of I/O so
the deployment flow can build these from messages and tests can build them by hand.
"""

from __future__ import annotations

import math
import time
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

import attrs

from dms.ensemble._requirements import Location, Resources

Strategy = Literal["pack", "spread"]


class InvalidBid(ValueError):
    """A bid that cannot be placed against (its message names the peer and the field)."""


def _check_price(bid: Bid, attribute: attrs.Attribute[float], price: float) -> None:
    if not math.isfinite(price) or price < 0:
        raise InvalidBid(f"bid from {bid.peer}: price must be a finite number >= 0, got {price!r}")


def _optional_ports(ports: Iterable[int] | None) -> frozenset[int] | None:
    return None if ports is None else frozenset(ports)


def _names(names: Iterable[str]) -> frozenset[str]:
    return frozenset(names)


def _optional_names(names: Iterable[str] | None) -> frozenset[str] | None:
    return None if names is None else frozenset(names)


@attrs.frozen
class Bid:
    """One provider's offer to host ensemble nodes.

    `free` is what the provider has left after its other reservations; every ensemble
    node (primary or standby) placed on it consumes its full resources from that.
    `price` is what the provider charges for hosting one ensemble node instance (a
    primary or a standby) for the deployment; a deployment's price is the sum over its
    instances. `public_ports` lists the public ports the provider can still open; None
    means it did not say, and then only clashes between nodes placed on it are checked.
    `nodes` names the ensemble nodes the provider bid for; None means all of them.
    """

    peer: str
    free: Resources
    executors: frozenset[str] = attrs.field(converter=_names)
    location: Location = Location()
    price: float = attrs.field(default=0.0, validator=_check_price)
    public_ports: frozenset[int] | None = attrs.field(default=None, converter=_optional_ports)
    nodes: frozenset[str] | None = attrs.field(default=None, converter=_optional_names)


@attrs.frozen
class ProviderPath:
    """What is known of the path between two providers; None = not measured."""

    rtt_ms: float | None = None
    bandwidth: float | None = None  # bits per second


SAME_PROVIDER = ProviderPath(rtt_ms=0.0, bandwidth=math.inf)


def _worse(a: float | None, b: float | None, pick: Callable[[float, float], float]) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    if a != a or b != b:
        return math.nan  # unusable either way round (max/min would keep the NaN or not by order)
    return pick(a, b)


def _symmetric(
    links: Mapping[tuple[str, str], ProviderPath],
) -> Mapping[str, Mapping[str, ProviderPath]]:
    """Index links by both ends; when both directions were measured the worse one counts
    (higher rtt, lower bandwidth), so an asymmetric path is never overrated."""
    merged: dict[tuple[str, str], ProviderPath] = {}
    for (a, b), link in links.items():
        if a == b:
            continue
        key = (a, b) if a < b else (b, a)
        seen = merged.get(key)
        if seen is not None:
            link = ProviderPath(
                rtt_ms=_worse(seen.rtt_ms, link.rtt_ms, max),
                bandwidth=_worse(seen.bandwidth, link.bandwidth, min),
            )
        merged[key] = link
    by_peer: dict[str, dict[str, ProviderPath]] = {}
    for (a, b), link in merged.items():
        by_peer.setdefault(a, {})[b] = link
        by_peer.setdefault(b, {})[a] = link
    return types.MappingProxyType(
        {peer: types.MappingProxyType(row) for peer, row in by_peer.items()}
    )


@attrs.frozen
class Measurements:
    """Provider-to-provider rtt and bandwidth known at solve time, looked up symmetrically.

    Build it from `{(peer_a, peer_b): ProviderPath(...)}`; the direction of a key does not
    matter. A pair that is absent, or whose needed quantity is None, is *unmeasured*:
    the solver never places the two ends of a constrained edge on it.
    """

    by_peer: Mapping[str, Mapping[str, ProviderPath]] = attrs.field(
        factory=dict, converter=_symmetric, hash=False, alias="links"
    )

    def link(self, a: str, b: str) -> ProviderPath | None:
        """The link between two providers; one provider reaches itself at rtt 0 with
        unlimited bandwidth."""
        if a == b:
            return SAME_PROVIDER
        return self.by_peer.get(a, {}).get(b)

    def neighbours(self, peer: str) -> Mapping[str, ProviderPath]:
        return self.by_peer.get(peer, types.MappingProxyType({}))


def _frozen_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
    return types.MappingProxyType(dict(value))


def _frozen_standbys(value: Mapping[str, Iterable[str]]) -> Mapping[str, tuple[str, ...]]:
    return types.MappingProxyType({node: tuple(peers) for node, peers in value.items()})


@attrs.frozen
class Assignment:
    """Which provider runs each ensemble node, and where its standbys wait."""

    primary: Mapping[str, str] = attrs.field(converter=_frozen_mapping, hash=False)
    standbys: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=dict, converter=_frozen_standbys, hash=False
    )

    def providers_of(self, node: str) -> tuple[str, ...]:
        """The primary's provider first, then the standbys' (empty if unassigned)."""
        if node not in self.primary:
            return ()
        return (self.primary[node], *self.standbys.get(node, ()))


@attrs.frozen(order=False)
class Objective:
    """What the solver minimises, compared in this order (see spec/placement.md):
    `disruption` (instances moved off a previous assignment), total `price`, summed
    `rtt_ms` over rtt-bounded edges, then `providers` used (fewest for `pack`, most for
    `spread`)."""

    disruption: int
    price: float
    rtt_ms: float
    providers: int

    def key(self, strategy: Strategy) -> tuple[int, float, float, int]:
        count = self.providers if strategy == "pack" else -self.providers
        return (self.disruption, self.price, self.rtt_ms, count)


def _steps(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"SearchBudget.{attribute.name} must be a whole number >= 0, "
                         f"got {value!r}")


def _seconds(_: object, attribute: attrs.Attribute[float | None], value: float | None) -> None:
    # nan would never stop the search and a negative value reads as "no time at all":
    # both are mistakes better named here than found as a solve that behaves oddly
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or not math.isfinite(value) or value < 0):
        raise ValueError(f"SearchBudget.{attribute.name} must be None or a finite number "
                         f"of seconds >= 0, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"SearchBudget.{attribute.name} must be a finite number > 0, "
                         f"got {value!r}")


@attrs.frozen
class SearchBudget:
    """Bounds one solve. `max_nodes` counts tried assignments (deterministic); the
    optional `max_seconds` is read from `clock`, which tests replace with a fake.

    The search for a first placement is not stopped by the clock before it has tried
    `first_nodes` assignments: a machine too loaded to give the solver its seconds must
    not turn a placeable ensemble into an "unplaceable" one (the bench's instances need
    at most a few hundred assignments to a first placement). That grace ends once
    `first_ceiling` times `max_seconds` have passed: an assignment (or the root's
    propagation) costs up to nodes x providers checks, and a crafted market (10,000
    providers, a pigeonhole under a dozen wide edge-bound nodes) made 5,000 of them
    take 10 s at 0.5 s."""

    max_nodes: int = attrs.field(default=200_000, validator=_steps)
    max_seconds: float | None = attrs.field(default=None, validator=_seconds)
    first_nodes: int = attrs.field(default=5_000, validator=_steps)
    first_ceiling: float = attrs.field(default=10.0, validator=_positive)
    clock: Callable[[], float] = attrs.field(default=time.perf_counter, eq=False)


@attrs.frozen
class SearchStats:
    explored: int  # assignments tried
    solutions: int  # improving solutions found
    seconds: float
    first_solution_seconds: float | None
    first_solution_explored: int | None
    neighbourhoods: int = 0  # neighbourhoods the improvement phase searched


@attrs.frozen
class Placement:
    """A solution. `optimal` is False when the budget stopped the search after it found
    this one; `moved` names the nodes whose providers differ from `previous`.

    `lower_bound` is at most the price of every feasible placement (see spec/placement.md
    for what it relaxes), so `gap` says how much cheaper any placement could be at most,
    as a share of this one's price: "within 1.8 % of optimal" is `gap <= 0.018`."""

    assignment: Assignment
    objective: Objective
    strategy: Strategy
    optimal: bool
    stats: SearchStats
    moved: frozenset[str] = frozenset()
    lower_bound: float = 0.0

    @property
    def gap(self) -> float:
        """0 when proven optimal or the price meets the bound; else (price - bound) /
        price. With `previous`, an optimal placement may cost more than the cheapest
        one (moving less comes first), and then the gap overstates."""
        price = self.objective.price
        # bounds are lowered by a relative 1e-9 against rounding: within twice that of
        # the price, the bound is met
        if self.optimal or price <= 0 or price - self.lower_bound <= 2e-9 * price:
            return 0.0
        return (price - self.lower_bound) / price
