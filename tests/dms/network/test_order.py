"""The network part of an allocate message: every allocation hosted once, each
provider finds its own part and everyone else's addresses, a strict wire form."""

from __future__ import annotations

import pytest

from dms.network import InvalidPlan, NetworkOrder, order_from_wire, order_to_wire, plan_addresses

PLAN = plan_addresses("dep", ["web", "db", "cache"], {})
HOSTS = (("p1", ("web",)), ("p2", ("cache", "db")))


def test_each_provider_finds_its_allocations_and_the_others_addresses() -> None:
    order = NetworkOrder(PLAN, HOSTS, (("web", "www"),))
    assert order.hosted_by("p2") == ("cache", "db")
    assert order.hosted_by("p9") == ()
    assert order.others("p1") == {"p2": [PLAN.address_of("cache"), PLAN.address_of("db")]}
    assert order.others("p2") == {"p1": [PLAN.address_of("web")]}


def test_the_wire_form_reads_back_as_the_same_order() -> None:
    order = NetworkOrder(PLAN, HOSTS, (("web", "www"),))
    assert order_from_wire(order_to_wire(order)) == order


@pytest.mark.parametrize(("hosts", "field", "says"), [
    ((("p1", ("web",)), ("p2", ("db",))), "hosts", "no provider hosts 'cache'"),
    ((("p1", ("web", "db")), ("p2", ("db", "cache"))), "hosts.p2", "already hosted by p1"),
    ((("p1", ("web", "db", "cache", "ghost")),), "hosts.p1", "'ghost' has no address"),
    ((("", ("web", "db", "cache")),), "hosts", "must not be empty"),
])
def test_an_allocation_hosted_twice_never_or_unknown_is_refused_by_field(
        hosts: tuple[tuple[str, tuple[str, ...]], ...], field: str, says: str) -> None:
    with pytest.raises(InvalidPlan) as caught:
        NetworkOrder(PLAN, hosts)
    assert caught.value.field == field and says in caught.value.problem


def test_a_wrong_wire_order_names_the_path() -> None:
    good = order_to_wire(NetworkOrder(PLAN, HOSTS))
    cases = [
        ({**good, "hosts": {"p1": ["web", "db", "cache", "x"]}}, "network.hosts.p1"),
        ({**good, "plan": {**good["plan"], "subnet": "10.0.0.1/24"}}, "network.plan.subnet"),
        ({**good, "hosts": {"p1": "web"}}, "network.hosts['p1']"),
        ({**good, "dns_names": {"ghost": "g"}}, "network.dns_names.ghost"),
        ({"plan": good["plan"]}, "network.hosts"),
        ([], "network"),
    ]
    for data, field in cases:
        with pytest.raises(InvalidPlan) as caught:
            order_from_wire(data)
        assert caught.value.field == field, (data, caught.value)


def test_a_joined_node_is_granted_the_gateway_by_every_provider_and_reads_back() -> None:
    order = NetworkOrder(PLAN, HOSTS, joined="me")
    assert order.others("p1") == {"p2": [PLAN.address_of("cache"), PLAN.address_of("db")],
                                  "me": [PLAN.gateway]}
    assert order.others("me") == {"p1": [PLAN.address_of("web")],
                                  "p2": [PLAN.address_of("cache"), PLAN.address_of("db")]}
    assert order_to_wire(order)["joined"] == "me"
    assert order_from_wire(order_to_wire(order)) == order
    assert "joined" not in order_to_wire(NetworkOrder(PLAN, HOSTS))


@pytest.mark.parametrize("joined", ["", "p1"])
def test_a_joined_node_that_is_empty_or_hosts_part_of_the_ensemble_is_refused(
        joined: str) -> None:
    with pytest.raises(InvalidPlan) as caught:
        NetworkOrder(PLAN, HOSTS, joined=joined)
    assert caught.value.field == "joined"
    wire = {**order_to_wire(NetworkOrder(PLAN, HOSTS)), "joined": joined}
    with pytest.raises(InvalidPlan) as caught:
        order_from_wire(wire)
    assert caught.value.field == "network.joined"
