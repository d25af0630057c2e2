"""The address plan: subnets that collide with nothing in use, one address each,
the same plan from the same inputs, addresses kept across a redeploy."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dms.network import (
    PRIVATE_SPACE,
    AddressPlan,
    InvalidPlan,
    NoFreeSubnet,
    TooManyAllocations,
    free_subnet,
    plan_addresses,
    plan_from_wire,
    plan_to_wire,
    prefix_for,
    room,
)
from dms.network._plan import probe_start

names = st.lists(st.text("abcdefghij-0123456789", min_size=1, max_size=8), unique=True,
                 max_size=40)
in_use_nets = st.builds(
    lambda address, prefix: IPv4Network((address, prefix), strict=False),
    st.integers(int(PRIVATE_SPACE.network_address) - 2**20,
                int(PRIVATE_SPACE.broadcast_address) + 2**20),
    st.integers(8, 30))
in_use = st.dictionaries(st.sampled_from(["p1", "p2", "p3"]), st.lists(in_use_nets, max_size=12),
                         max_size=3)


def check_plan(plan: AddressPlan, allocations: list[str],
               used: dict[str, list[IPv4Network]]) -> None:
    assert plan.subnet.subnet_of(PRIVATE_SPACE)
    assert not any(plan.subnet.overlaps(net) for nets in used.values() for net in nets)
    assigned = plan.as_dict()
    assert sorted(assigned) == sorted(allocations)
    assert len(set(assigned.values())) == len(assigned)
    for address in assigned.values():
        assert address in plan.subnet
        assert address not in (plan.subnet.network_address, plan.subnet.broadcast_address,
                               plan.gateway)


def first_free_by_brute_force(ensemble: str, prefix: int,
                              used: dict[str, list[IPv4Network]]) -> IPv4Network | None:
    """The rule, spelled out independently: mark every block of the size that any
    in-use net touches, then walk from the ensemble's start index, wrapping."""
    size = 1 << (32 - prefix)
    count = 1 << (prefix - 8)
    blocked = bytearray(count)
    base = int(PRIVATE_SPACE.network_address)
    for nets in used.values():
        for net in nets:
            low = max(int(net.network_address), base) - base
            high = min(int(net.broadcast_address), base + 2**24 - 1) - base
            if low <= high:
                blocked[low // size: high // size + 1] = b"\x01" * (high // size - low // size + 1)
    start = probe_start(ensemble, prefix)
    for step in range(count):
        index = (start + step) % count
        if not blocked[index]:
            return IPv4Network((base + index * size, prefix))
    return None


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=20), names, in_use)
def test_a_plan_takes_the_first_free_subnet_from_its_start_and_gives_each_allocation_its_own_address(
        ensemble: str, allocations: list[str], used: dict[str, list[IPv4Network]]) -> None:
    expected = first_free_by_brute_force(ensemble, prefix_for(len(allocations)), used)
    if expected is None:
        with pytest.raises(NoFreeSubnet):
            plan_addresses(ensemble, allocations, used)
        return
    plan = plan_addresses(ensemble, allocations, used)
    assert plan.subnet == expected
    check_plan(plan, allocations, used)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=20), names, in_use, st.randoms(use_true_random=False))
def test_the_same_inputs_in_any_order_give_the_same_plan(
        ensemble: str, allocations: list[str], used: dict[str, list[IPv4Network]],
        random: object) -> None:
    shuffled_names = list(allocations)
    random.shuffle(shuffled_names)  # type: ignore[attr-defined]
    shuffled_used = {p: list(reversed(nets)) for p, nets in reversed(list(used.items()))}
    try:
        first = plan_addresses(ensemble, allocations, used)
    except NoFreeSubnet:
        return
    assert plan_addresses(ensemble, shuffled_names, shuffled_used) == first


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=20), names, names, in_use)
def test_a_redeploy_keeps_the_subnet_and_every_surviving_allocations_address(
        ensemble: str, before: list[str], after: list[str],
        used: dict[str, list[IPv4Network]]) -> None:
    first = plan_addresses(ensemble, before, {})
    others = {p: [n for n in nets if not n.overlaps(first.subnet)] for p, nets in used.items()}
    second = plan_addresses(ensemble, after, others, previous=first)
    assert second.subnet == first.subnet
    check_plan(second, after, others)
    for name in set(before) & set(after):
        assert second.address_of(name) == first.address_of(name)


def test_ensembles_start_their_search_at_different_places() -> None:
    starts = {probe_start(f"deployment-{n}", 24) for n in range(200)}
    assert len(starts) > 190


def test_the_subnet_grows_past_a_24_only_when_the_allocations_need_it() -> None:
    for count in range(0, 2100):
        prefix = prefix_for(count)
        assert room(IPv4Network(f"10.0.0.0/{prefix}")) >= count
        assert prefix == 24 or room(IPv4Network(f"10.0.0.0/{prefix + 1}")) < count
    assert prefix_for(253) == 24 and prefix_for(254) == 23


def test_the_only_free_subnet_left_is_found_wherever_the_search_starts() -> None:
    free = IPv4Network("10.77.3.0/24")
    taken = [n for n in PRIVATE_SPACE.address_exclude(free)]
    for n in range(50):
        assert free_subnet(f"e{n}", 24, {"p": taken}) == free
    with pytest.raises(NoFreeSubnet, match="no /23"):
        free_subnet("e", 23, {"p": taken})


def test_subnets_in_use_on_different_providers_are_all_avoided() -> None:
    start = IPv4Network((int(PRIVATE_SPACE.network_address) + probe_start("dep", 24) * 256, 24))
    plan = plan_addresses("dep", ["a"], {})
    assert plan.subnet == start
    moved = plan_addresses("dep", ["a"], {"p1": [start], "p2": [start.supernet(4)]})
    assert not moved.subnet.overlaps(start.supernet(4))


def test_a_subnet_covering_all_of_10_8_leaves_nothing() -> None:
    with pytest.raises(NoFreeSubnet):
        plan_addresses("dep", ["a"], {"p": [IPv4Network("0.0.0.0/0")]})


def test_subnets_outside_10_8_do_not_matter() -> None:
    plan = plan_addresses("dep", ["a"], {"p": [IPv4Network("192.168.0.0/16"),
                                               IPv4Network("11.0.0.0/8")]})
    assert plan.subnet == plan_addresses("dep", ["a"], {}).subnet


def test_more_allocations_than_a_16_holds_are_refused() -> None:
    with pytest.raises(TooManyAllocations, match="65534 allocations"):
        plan_addresses("dep", [f"a{n}" for n in range(65534)], {})


def test_a_redeploy_onto_a_provider_using_an_overlapping_subnet_renumbers_the_ensemble(
        ) -> None:
    first = plan_addresses("dep", ["a", "b", "c"], {})
    clash = {"p9": [first.subnet.supernet(2)]}
    second = plan_addresses("dep", ["c", "b", "a", "d"], clash, previous=first)
    assert not second.subnet.overlaps(first.subnet.supernet(2))
    assert second.subnet.prefixlen == 24
    assert second.subnet == free_subnet("dep", 24, clash)  # as a first plan would search
    base = second.subnet.network_address
    assert second.as_dict() == {"a": base + 2, "b": base + 3, "c": base + 4, "d": base + 5}


def test_a_renumbered_ensemble_keeps_the_size_of_its_subnet_or_grows() -> None:
    first = plan_addresses("dep", [f"a{n}" for n in range(300)], {})
    assert first.subnet.prefixlen == 23
    second = plan_addresses("dep", ["a1"], {"p": [first.subnet]}, previous=first)
    assert second.subnet.prefixlen == 23
    assert second.as_dict() == {"a1": second.subnet.network_address + 2}


def test_every_clash_with_a_kept_subnet_renumbers_it_off_the_clash_exhaustively() -> None:
    """Each size of in-use subnet around the kept one, from a /30 inside it to 10/8."""
    first = plan_addresses("dep", ["web", "db"], {})
    for prefix in range(8, 31):
        other = IPv4Network((first.subnet.network_address, prefix), strict=False)
        if prefix == 8:
            with pytest.raises(NoFreeSubnet):
                plan_addresses("dep", ["web", "db"], {"p": [other]}, previous=first)
            continue
        second = plan_addresses("dep", ["web", "db"], {"p": [other]}, previous=first)
        assert not second.subnet.overlaps(other), prefix
        assert not second.subnet.overlaps(first.subnet), prefix
        base = second.subnet.network_address
        assert second.as_dict() == {"db": base + 2, "web": base + 3}, prefix


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=20), names, names, in_use, st.randoms(use_true_random=False))
def test_a_redeploy_whose_kept_subnet_clashes_is_renumbered_in_name_order_deterministically(
        ensemble: str, before: list[str], after: list[str],
        used: dict[str, list[IPv4Network]], random: object) -> None:
    first = plan_addresses(ensemble, before, {})
    clashing = {**used, "p-new": [*used.get("p-new", []), first.subnet]}
    try:
        second = plan_addresses(ensemble, after, clashing, previous=first)
    except NoFreeSubnet:
        assert first_free_by_brute_force(
            ensemble, min(prefix_for(len(after)), first.subnet.prefixlen), clashing) is None
        return
    check_plan(second, after, clashing)
    assert not second.subnet.overlaps(first.subnet)
    assert second.subnet.prefixlen <= first.subnet.prefixlen
    addresses = [address for _, address in second.addresses]  # sorted by name
    assert addresses == [second.subnet.network_address + 2 + n for n in range(len(after))]
    shuffled = list(after)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert plan_addresses(ensemble, shuffled, clashing, previous=first) == second


def test_a_redeploy_that_outgrows_its_subnet_is_refused_not_renumbered() -> None:
    first = plan_addresses("dep", ["a"], {})
    with pytest.raises(TooManyAllocations, match=str(first.subnet)):
        plan_addresses("dep", [f"a{n}" for n in range(254)], {}, previous=first)


def test_new_allocations_in_a_redeploy_take_the_lowest_free_addresses() -> None:
    first = plan_addresses("dep", ["a", "b", "c"], {})
    second = plan_addresses("dep", ["c", "d"], {}, previous=first)
    base = first.subnet.network_address
    assert second.as_dict() == {"c": base + 4, "d": base + 2}


def test_a_duplicate_allocation_name_is_refused_by_name() -> None:
    with pytest.raises(InvalidPlan, match="'web' named more than once"):
        plan_addresses("dep", ["web", "db", "web"], {})


def test_a_previous_plan_of_another_ensemble_is_refused() -> None:
    with pytest.raises(InvalidPlan, match="previous.ensemble"):
        plan_addresses("dep", ["a"], {}, previous=plan_addresses("other", ["a"], {}))


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=20), names, in_use)
def test_the_wire_form_reads_back_as_the_same_plan(
        ensemble: str, allocations: list[str], used: dict[str, list[IPv4Network]]) -> None:
    try:
        plan = plan_addresses(ensemble, allocations, used)
    except NoFreeSubnet:
        return
    assert plan_from_wire(plan_to_wire(plan)) == plan


GOOD = {"ensemble": "dep", "subnet": "10.1.2.0/24", "addresses": {"web": "10.1.2.2"}}


@pytest.mark.parametrize(("change", "field", "says"), [
    ({"subnet": "10.1.2.1/24"}, "plan.subnet", "host bits set"),
    ({"subnet": "192.168.0.0/24"}, "plan.subnet", "not inside 10.0.0.0/8"),
    ({"subnet": "10.0.0.0/8"}, "plan.subnet", "not between /16 and /30"),
    ({"subnet": 5}, "plan.subnet", "expected a string"),
    ({"addresses": {"web": "10.1.3.2"}}, "plan.addresses.web", "not in 10.1.2.0/24"),
    ({"addresses": {"web": "10.1.2.1"}}, "plan.addresses.web", "gateway"),
    ({"addresses": {"web": "10.1.2.255"}}, "plan.addresses.web", "broadcast"),
    ({"addresses": {"a": "10.1.2.2", "b": "10.1.2.2"}}, "plan.addresses.b", "also a's"),
    ({"addresses": {"web": "ten"}}, "plan.addresses['web']", "not an IPv4 address"),
    ({"addresses": {"": "10.1.2.2"}}, "plan.addresses", "1 to 253 characters"),
    ({"ensemble": ""}, "plan.ensemble", "must not be empty"),
    ({"ensemble": None}, "plan.ensemble", "expected a string"),
    ({"extra": 1}, "plan", "extra fields"),
])
def test_a_wrong_wire_plan_is_refused_naming_the_field(
        change: dict[str, object], field: str, says: str) -> None:
    with pytest.raises(InvalidPlan) as caught:
        plan_from_wire({**GOOD, **change})
    assert caught.value.field == field
    assert says in caught.value.problem


def test_a_wire_plan_missing_a_field_names_it() -> None:
    with pytest.raises(InvalidPlan) as caught:
        plan_from_wire({"ensemble": "dep", "subnet": "10.1.2.0/24"})
    assert caught.value.field == "plan.addresses"
    with pytest.raises(InvalidPlan, match="expected a mapping"):
        plan_from_wire([1])


def test_a_plan_is_frozen_and_its_addresses_are_looked_up_by_name() -> None:
    plan = plan_addresses("dep", ["web"], {})
    assert plan.address_of("web") == plan.subnet.network_address + 2
    with pytest.raises(KeyError):
        plan.address_of("db")
    with pytest.raises(AttributeError):
        plan.subnet = IPv4Network("10.0.0.0/24")  # type: ignore[misc]
    assert isinstance(plan.gateway, IPv4Address)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=20),
       st.lists(st.tuples(st.integers(-3000, 3000), st.integers(18, 30)), max_size=30),
       st.integers(0, 600))
def test_subnets_taken_around_the_start_are_jumped_over_exactly(
        ensemble: str, around: list[tuple[int, int]], count: int) -> None:
    prefix = prefix_for(count)
    base = int(PRIVATE_SPACE.network_address)
    start = base + probe_start(ensemble, prefix) * (1 << (32 - prefix))
    used = {"p": [IPv4Network(((start + offset * 97) % 2**32, length), strict=False)
                  for offset, length in around]}
    expected = first_free_by_brute_force(ensemble, prefix, used)
    assert expected is not None
    plan = plan_addresses(ensemble, [f"a{n}" for n in range(count)], used)
    assert plan.subnet == expected
