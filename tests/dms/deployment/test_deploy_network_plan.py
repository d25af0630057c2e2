"""The orchestrator's network decision (sans-IO): a network only when every chosen
provider offers one and every allocation is a process or a container; the plan avoids the subnets
in use there and a redeploy keeps every address, unless a new provider clashes."""

from __future__ import annotations

from ipaddress import IPv4Network

from dms.deployment._network import (
    NetworkOffer,
    network_record,
    network_summary,
    plan_network,
    recorded_order,
)
from dms.ensemble import load_ensemble
from dms.network import NetworkOrder

A, B, C = "did:key:z6MkA", "did:key:z6MkB", "did:key:z6MkC"
TEXT = """
version: V1
allocations:
  web: {type: service, executor: process, dns_name: www,
        resources: {cpu: 0.1, ram: 16Mi, disk: 1Mi}, execution: {command: sleep, args: ["9"]}}
  client: {type: task, executor: process,
           resources: {cpu: 0.1, ram: 16Mi, disk: 1Mi}, execution: {command: "true"}}
nodes:
  s: {allocations: [web]}
  c: {allocations: [client]}
"""
ENSEMBLE = load_ensemble(TEXT)
BOTH = {A: NetworkOffer(True), B: NetworkOffer(True), C: NetworkOffer(True)}


def test_every_chosen_provider_offering_the_network_gives_an_order_of_who_hosts_what() -> None:
    order = plan_network("dep", ENSEMBLE, {"s": A, "c": B}, BOTH)
    assert isinstance(order, NetworkOrder)
    assert dict(order.hosts) == {A: ("web",), B: ("client",)}
    assert dict(order.dns_names) == {"web": "www"}
    assert set(order.plan.as_dict()) == {"web", "client"}


def test_a_chosen_provider_without_the_network_means_none_and_says_which() -> None:
    planned = plan_network("dep", ENSEMBLE, {"s": A, "c": B},
                           {A: NetworkOffer(True), B: NetworkOffer(False)})
    assert planned == f"provider {B} offers no network"
    assert network_summary(network_record(planned)) == f"none (provider {B} offers no network)"


def test_a_docker_allocation_gets_the_network_like_a_process() -> None:
    docker = load_ensemble(TEXT.replace(
        "executor: process, dns_name", "executor: docker, dns_name").replace(
        "execution: {command: sleep, args: [\"9\"]}", "execution: {image: busybox}"))
    order = plan_network("dep", docker, {"s": A, "c": B}, BOTH)
    assert isinstance(order, NetworkOrder)
    assert dict(order.hosts) == {A: ("web",), B: ("client",)}


def test_a_firecracker_allocation_means_no_network_yet_and_says_which() -> None:
    vm = load_ensemble(TEXT.replace(
        "executor: process, dns_name", "executor: firecracker, dns_name").replace(
        "execution: {command: sleep, args: [\"9\"]}", "execution: {kernel_image: k, root_file_system: r}"))
    assert plan_network("dep", vm, {"s": A, "c": B}, BOTH) == \
        "allocation web runs on firecracker, which gets no network yet"


def test_the_plan_avoids_every_subnet_in_use_on_a_chosen_provider() -> None:
    free = plan_network("dep", ENSEMBLE, {"s": A, "c": B}, BOTH)
    assert isinstance(free, NetworkOrder)
    taken = {**BOTH, B: NetworkOffer(True, (free.plan.subnet,))}
    moved = plan_network("dep", ENSEMBLE, {"s": A, "c": B}, taken)
    assert isinstance(moved, NetworkOrder) and moved.plan.subnet != free.plan.subnet
    unchosen = {**BOTH, C: NetworkOffer(True, (free.plan.subnet,))}
    same = plan_network("dep", ENSEMBLE, {"s": A, "c": B}, unchosen)
    assert isinstance(same, NetworkOrder) and same.plan.subnet == free.plan.subnet


def test_a_redeploy_keeps_the_subnet_and_addresses_though_its_providers_report_them() -> None:
    first = plan_network("dep", ENSEMBLE, {"s": A, "c": B}, BOTH)
    assert isinstance(first, NetworkOrder)
    busy = {**BOTH, A: NetworkOffer(True, (first.plan.subnet,))}  # A hosts web: its own
    again = plan_network("dep", ENSEMBLE, {"s": A, "c": C}, busy, previous=first)
    assert isinstance(again, NetworkOrder)
    assert again.plan == first.plan and dict(again.hosts) == {A: ("web",), C: ("client",)}
    assert recorded_order(network_record(again)) == again


def test_a_redeploy_onto_a_provider_using_the_subnet_renumbers_the_whole_ensemble() -> None:
    """The same subnet on a provider that never hosted the ensemble is another
    ensemble's: the plan moves, and web, which stays on A, gets a new address too."""
    first = plan_network("dep", ENSEMBLE, {"s": A, "c": B}, BOTH)
    assert isinstance(first, NetworkOrder)
    busy = {A: NetworkOffer(True, (first.plan.subnet,)),
            C: NetworkOffer(True, (first.plan.subnet,))}
    again = plan_network("dep", ENSEMBLE, {"s": A, "c": C}, busy, previous=first)
    assert isinstance(again, NetworkOrder)
    assert not again.plan.subnet.overlaps(first.plan.subnet)
    base = again.plan.subnet.network_address
    assert again.plan.as_dict() == {"client": base + 2, "web": base + 3}
    assert dict(again.hosts) == {A: ("web",), C: ("client",)}
    assert dict(again.dns_names) == {"web": "www"}


def test_a_bid_s_subnets_are_bounded_and_malformed_ones_ignored() -> None:
    offer = NetworkOffer.from_bid(True, ["10.1.0.0/24", "nonsense", 7, "10.2.0.1/24",
                                         *(f"10.3.{n}.0/24" for n in range(300))])
    assert offer.subnets[0] == IPv4Network("10.1.0.0/24")
    assert IPv4Network("10.3.0.0/24") in offer.subnets and len(offer.subnets) <= 256
    assert NetworkOffer.from_bid("yes", []).offered is False  # only True offers it


def test_a_redeploy_keeps_the_joined_node_unless_it_now_hosts_part_of_the_ensemble() -> None:
    first = plan_network("dep", ENSEMBLE, {"s": A, "c": B}, BOTH)
    assert isinstance(first, NetworkOrder)
    joined = NetworkOrder(first.plan, first.hosts, first.dns_names, joined=C)
    kept = plan_network("dep", ENSEMBLE, {"s": A, "c": B}, BOTH, joined)
    assert isinstance(kept, NetworkOrder) and kept.joined == C
    moved = plan_network("dep", ENSEMBLE, {"s": A, "c": C}, BOTH, joined)
    assert isinstance(moved, NetworkOrder) and moved.joined is None
