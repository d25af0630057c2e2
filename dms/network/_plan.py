"""The address plan: which subnet of 10.0.0.0/8 an ensemble takes, and which address
each of its allocations holds. Pure: the same inputs give the same plan, on any node.

The subnet is the smallest one that holds every allocation (never smaller than a /24,
never larger than a /16), the first free one in a probe order that starts at a place
derived from the ensemble id (sha256, so every node agrees) and walks upwards, jumping
over subnets in use on any chosen provider. Addresses are handed out in name order from
the subnet's third address: the first host address is the ensemble's gateway, kept for
the provider side (a resolver or a joining node), never an allocation's. A redeploy
passes the previous plan: the subnet and every surviving allocation's address are kept,
new allocations take the lowest free addresses. When the kept subnet overlaps one in use
on a provider the redeploy chose, the ensemble is renumbered instead: a free subnet (at
least as large as the kept one) found as for a first plan, and every address handed out
again in name order, so the providers that stayed can follow one new plan.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network

import attrs

from dms.network._errors import InvalidPlan, NoFreeSubnet, TooManyAllocations

PRIVATE_SPACE = IPv4Network("10.0.0.0/8")
DEFAULT_PREFIX = 24
LARGEST_PREFIX = 16  # the largest subnet one ensemble may take: 65533 allocations
MAX_NAME = 253


def room(subnet: IPv4Network) -> int:
    """How many allocations `subnet` holds: all but network, broadcast and gateway."""
    return max(0, subnet.num_addresses - 3)


def prefix_for(count: int) -> int:
    """The longest prefix (smallest subnet, at most a /24) with room for `count`."""
    prefix = DEFAULT_PREFIX
    while (1 << (32 - prefix)) - 3 < count:
        prefix -= 1
    return prefix


@attrs.frozen
class AddressPlan:
    """One ensemble's subnet and its allocations' addresses, sorted by name.

    Construction checks every rule (subnet inside 10/8 and no larger than a /16, each
    address inside it and neither network, broadcast nor gateway, no address twice) and
    raises `InvalidPlan` naming the field, so a plan that exists is a valid one.
    """

    ensemble: str
    subnet: IPv4Network
    addresses: tuple[tuple[str, IPv4Address], ...] = ()

    def __attrs_post_init__(self) -> None:
        if not self.ensemble:
            raise InvalidPlan("ensemble", "must not be empty")
        if not self.subnet.subnet_of(PRIVATE_SPACE):
            raise InvalidPlan("subnet", f"{self.subnet} is not inside {PRIVATE_SPACE}")
        if not LARGEST_PREFIX <= self.subnet.prefixlen <= 30:
            raise InvalidPlan("subnet", f"/{self.subnet.prefixlen} is not between "
                              f"/{LARGEST_PREFIX} and /30")
        names = [name for name, _ in self.addresses]
        if names != sorted(set(names)):
            raise InvalidPlan("addresses", "names must be unique and sorted")
        taken: dict[IPv4Address, str] = {}
        reserved = {self.subnet.network_address, self.subnet.broadcast_address, self.gateway}
        for name, address in self.addresses:
            if not name or len(name) > MAX_NAME:
                raise InvalidPlan("addresses", f"name {name!r} must have 1 to {MAX_NAME} characters")
            if address not in self.subnet:
                raise InvalidPlan(f"addresses.{name}", f"{address} is not in {self.subnet}")
            if address in reserved:
                raise InvalidPlan(f"addresses.{name}",
                                  f"{address} is the subnet's network, broadcast or gateway address")
            if address in taken:
                raise InvalidPlan(f"addresses.{name}", f"{address} is also {taken[address]}'s")
            taken[address] = name

    @property
    def gateway(self) -> IPv4Address:
        return self.subnet.network_address + 1

    def address_of(self, allocation: str) -> IPv4Address:
        """The allocation's address; KeyError naming it when it has none."""
        for name, address in self.addresses:
            if name == allocation:
                return address
        raise KeyError(allocation)

    def as_dict(self) -> dict[str, IPv4Address]:
        return dict(self.addresses)


def plan_addresses(
    ensemble: str,
    allocations: Iterable[str],
    in_use: Mapping[str, Iterable[IPv4Network]],
    previous: AddressPlan | None = None,
) -> AddressPlan:
    """The plan for `allocations` of `ensemble`, avoiding every subnet in `in_use`
    (provider -> subnets of *other* ensembles on it: the ensemble's own subnet is the
    caller's to leave out).

    With `previous` (a redeploy), its subnet and surviving addresses are kept unless the
    subnet overlaps one in `in_use`; then the ensemble is renumbered: a new subnet, at
    least as large, and every address handed out again in name order.

    Raises `NoFreeSubnet` when every subnet of the size needed is taken,
    `TooManyAllocations` when they do not fit the largest subnet (or the kept one),
    `InvalidPlan` for a duplicate allocation name or a previous plan of another ensemble.
    """
    names = list(allocations)
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InvalidPlan("allocations", f"{', '.join(map(repr, twice))} named more than once")
    names.sort()
    if previous is not None and previous.ensemble != ensemble:
        raise InvalidPlan("previous.ensemble",
                          f"the plan of {previous.ensemble!r}, not of {ensemble!r}")
    if previous is None or _collides(previous.subnet, in_use):
        prefix = prefix_for(len(names))
        if previous is not None:
            prefix = min(prefix, previous.subnet.prefixlen)
        if prefix < LARGEST_PREFIX:
            raise TooManyAllocations(ensemble, len(names), room(IPv4Network(f"10.0.0.0/{LARGEST_PREFIX}")),
                                     f"a /{LARGEST_PREFIX}")
        subnet = free_subnet(ensemble, prefix, in_use)
        kept: dict[str, IPv4Address] = {}
    else:
        subnet = previous.subnet
        if len(names) > room(subnet):
            raise TooManyAllocations(ensemble, len(names), room(subnet), str(subnet))
        wanted = set(names)
        kept = {name: address for name, address in previous.addresses if name in wanted}
    return AddressPlan(ensemble, subnet, _assign(subnet, names, kept))


def _collides(subnet: IPv4Network, in_use: Mapping[str, Iterable[IPv4Network]]) -> bool:
    """Whether `subnet` overlaps any subnet in use on any provider."""
    return any(subnet.overlaps(other) for nets in in_use.values() for other in nets)


def _assign(subnet: IPv4Network, names: list[str], kept: dict[str, IPv4Address],
            ) -> tuple[tuple[str, IPv4Address], ...]:
    used = set(kept.values())
    candidate = subnet.network_address + 2
    assigned = dict(kept)
    for name in names:
        if name in assigned:
            continue
        while candidate in used:
            candidate += 1
        assigned[name] = candidate
        used.add(candidate)
    return tuple(sorted(assigned.items()))


def probe_start(ensemble: str, prefix: int) -> int:
    """Where the search for `ensemble`'s /prefix begins: an index among the
    2**(prefix-8) subnets of that size in 10/8, the same on every node."""
    digest = hashlib.sha256(ensemble.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % (1 << (prefix - PRIVATE_SPACE.prefixlen))


def free_subnet(ensemble: str, prefix: int, in_use: Mapping[str, Iterable[IPv4Network]],
                ) -> IPv4Network:
    """The first /prefix from `probe_start` upwards (wrapping) that overlaps nothing in
    use. Jumps past each taken range, so the cost grows with the ranges, not the space."""
    starts, ends = _taken_ranges(net for nets in in_use.values() for net in nets)
    size = 1 << (32 - prefix)
    count = 1 << (prefix - PRIVATE_SPACE.prefixlen)
    index = probe_start(ensemble, prefix)
    travelled = 0
    while travelled < count:
        low = index * size
        high = low + size - 1
        at = bisect.bisect_left(ends, low)  # the first taken range ending at or after `low`
        if at == len(ends) or starts[at] > high:
            base = int(PRIVATE_SPACE.network_address) + low
            return IPv4Network((base, prefix))
        following = -(-(ends[at] + 1) // size)
        step = following - index if following < count else count - index
        travelled += step
        index = (index + step) % count
    raise NoFreeSubnet(ensemble, prefix)


def _taken_ranges(nets: Iterable[IPv4Network]) -> tuple[list[int], list[int]]:
    """In-use subnets as merged, sorted [start, end] offsets into 10/8 (what lies
    outside 10/8 cannot collide and is dropped)."""
    space_low = int(PRIVATE_SPACE.network_address)
    space_high = int(PRIVATE_SPACE.broadcast_address)
    ranges = sorted(
        (max(int(net.network_address), space_low) - space_low,
         min(int(net.broadcast_address), space_high) - space_low)
        for net in nets if net.overlaps(PRIVATE_SPACE))
    starts: list[int] = []
    ends: list[int] = []
    for start, end in ranges:
        if ends and start <= ends[-1] + 1:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


@attrs.frozen
class NetworkOrder:
    """What an allocate message carries for the private network: the plan, which
    provider (link peer id) hosts which allocations, and the allocations' dns_names.
    Every provider of the ensemble gets the same order and finds its own part in it.

    Checked on construction (`InvalidPlan` naming the field): every allocation of the
    plan is hosted exactly once, nothing is hosted that the plan lacks.
    """

    plan: AddressPlan
    hosts: tuple[tuple[str, tuple[str, ...]], ...]
    dns_names: tuple[tuple[str, str], ...] = ()
    joined: str | None = None
    """The node (link peer id) that joined the network for debugging (`subnet.join`):
    it holds the plan's gateway address, never an allocation's."""

    def __attrs_post_init__(self) -> None:
        if self.joined is not None and (not self.joined or self.joined in dict(self.hosts)):
            raise InvalidPlan("joined", "must be a node id that hosts none of the ensemble")
        planned = set(self.plan.as_dict())
        seen: dict[str, str] = {}
        for peer, allocations in self.hosts:
            if not peer:
                raise InvalidPlan("hosts", "a provider id must not be empty")
            for allocation in allocations:
                if allocation not in planned:
                    raise InvalidPlan(f"hosts.{peer}", f"{allocation!r} has no address in the plan")
                if allocation in seen:
                    raise InvalidPlan(f"hosts.{peer}",
                                      f"{allocation!r} is already hosted by {seen[allocation]}")
                seen[allocation] = peer
        if set(seen) != planned:
            missing = sorted(planned - set(seen))
            raise InvalidPlan("hosts", f"no provider hosts {', '.join(map(repr, missing))}")
        for allocation, _ in self.dns_names:
            if allocation not in planned:
                raise InvalidPlan(f"dns_names.{allocation}", "no such allocation in the plan")

    def hosted_by(self, peer: str) -> tuple[str, ...]:
        """The allocations `peer` hosts (none when it hosts nothing)."""
        return dict(self.hosts).get(peer, ())

    def others(self, peer: str) -> dict[str, list[IPv4Address]]:
        """Every other provider -> the addresses it hosts (and the joined node -> the
        gateway): what `peer`'s pump grants."""
        addresses = self.plan.as_dict()
        granted = {other: [addresses[a] for a in allocations]
                   for other, allocations in self.hosts if other != peer and allocations}
        if self.joined is not None and self.joined != peer:
            granted[self.joined] = [self.plan.gateway]
        return granted
