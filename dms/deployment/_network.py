"""Whether a deployment gets the ensemble network, and its order (sans-IO).

The network is opt-in per provider: a deployment gets one when every chosen provider
offers it in its bid and every allocation runs on the process or docker executor
(firecracker microVMs get none yet); otherwise none, with the reason `status` shows. The plan avoids the
subnets the chosen providers report in use, and a redeploy keeps the previous plan's
subnet and addresses, unless a newly chosen provider uses an overlapping subnet: then
the ensemble is renumbered, and the providers that stayed follow the new order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import IPv4Network
from typing import Any

import attrs

from dms.ensemble._spec import Ensemble
from dms.network import (
    NetworkError,
    NetworkOrder,
    order_from_wire,
    order_to_wire,
    plan_addresses,
)
from dms.workload import ExecutorKind

NETWORKED = frozenset({ExecutorKind.PROCESS, ExecutorKind.DOCKER})
"""Executors whose workloads get the ensemble network: a process in a namespace made
for it, a container in its own (firecracker microVMs need a tap device: not yet)."""

MAX_REPORTED_SUBNETS = 256
"""Subnets in use the orchestrator takes from one bid at most."""


@attrs.frozen
class NetworkOffer:
    """What a provider's newest bid said of the ensemble network."""

    offered: bool
    subnets: tuple[IPv4Network, ...] = ()

    @classmethod
    def from_bid(cls, offered: object, subnets: Iterable[object]) -> NetworkOffer:
        """From a bid's fields, keeping only well-formed subnets (at most
        MAX_REPORTED_SUBNETS): a wrong one is the provider's loss, not a failure."""
        kept = []
        for text in list(subnets)[:MAX_REPORTED_SUBNETS]:
            try:
                kept.append(IPv4Network(text))
            except (TypeError, ValueError):
                continue
        return cls(offered is True, tuple(kept))


def plan_network(deployment: str, ensemble: Ensemble, assignment: Mapping[str, str],
                 offers: Mapping[str, NetworkOffer], previous: NetworkOrder | None = None,
                 ) -> NetworkOrder | str:
    """The deployment's network order for `assignment` (ensemble node -> provider), or
    why it gets none."""
    for name in sorted(ensemble.allocations):
        executor = ensemble.allocations[name].executor
        if executor not in NETWORKED:
            return f"allocation {name} runs on {executor.value}, which gets no network yet"
    for provider in sorted(set(assignment.values())):
        offer = offers.get(provider)
        if offer is None or not offer.offered:
            return f"provider {provider} offers no network"
    hosts: dict[str, list[str]] = {}
    for node, provider in assignment.items():
        hosts.setdefault(provider, []).extend(ensemble.nodes[node].allocations)
    # A provider that hosted the ensemble reports its subnet as in use: its own, not a
    # clash. On any other provider the same subnet is another ensemble's.
    own = {} if previous is None else {peer: previous.plan.subnet for peer, _ in previous.hosts}
    in_use = {provider: [subnet for subnet in offers[provider].subnets
                         if subnet != own.get(provider)]
              for provider in hosts}
    allocations = sorted(a for names in hosts.values() for a in names)
    try:
        plan = plan_addresses(deployment, allocations, in_use,
                              previous=None if previous is None else previous.plan)
        # a node that joined stays joined, unless it now hosts part of the ensemble
        joined = None if previous is None or previous.joined in hosts else previous.joined
        return NetworkOrder(
            plan, tuple(sorted((p, tuple(sorted(names))) for p, names in hosts.items())),
            tuple(sorted((name, dns) for name in allocations
                         if (dns := ensemble.allocations[name].dns_name))), joined)
    except NetworkError as error:
        return str(error)


def network_record(planned: NetworkOrder | str) -> dict[str, Any]:
    """What the deployment record keeps: the order's wire form, or the reason for none."""
    if isinstance(planned, str):
        return {"none": planned[:1000]}
    return {"order": order_to_wire(planned)}


def recorded_order(record: Mapping[str, Any]) -> NetworkOrder | None:
    """The order a deployment record keeps (None: it has no network, or the record
    predates it or is damaged: a redeploy then plans afresh)."""
    try:
        return order_from_wire(record["order"]) if "order" in record else None
    except NetworkError:
        return None


def network_summary(record: Mapping[str, Any]) -> str:
    """One line for `status`: the subnet, or `none (reason)`."""
    order = recorded_order(record)
    if order is not None:
        return str(order.plan.subnet)
    reason = record.get("none")
    return f"none ({reason})" if isinstance(reason, str) else "none"
