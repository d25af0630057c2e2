"""dms.testing itself: the reference model, the grant helpers, the testbed and the portal
that drives trio from hypothesis's synchronous rules."""

from __future__ import annotations

import time

import pytest
import trio

from dms.testing import (
    EPOCH,
    GrantGraph,
    MockClockMissing,
    NotTheAudience,
    Testbed,
    TrioPortal,
    UnsupportedPolicy,
    attenuate,
    covers,
    grant,
    network,
    open_testbed,
    policy_holds,
    revoke_everywhere,
)
from ucan import SigningKey, delegate

__all__ = ["network"]  # the fixture, imported for pytest

A, B, C, D = (SigningKey.from_seed(bytes([n]) * 32) for n in (0xA, 0xB, 0xC, 0xD))
NOW = 1_700_000_000


# -- the reference model ------------------------------------------------------------------


def test_covers_whole_segments_only():
    assert covers("/", "/shop/order")
    assert covers("/shop", "/shop/order")
    assert covers("/shop/order", "/shop/order")
    assert not covers("/shop", "/shopping")
    assert not covers("/shop/order", "/shop")


def test_policy_statements_are_evaluated_plainly():
    assert policy_holds([], {})
    assert policy_holds([["<=", ".amount", 100]], {"amount": 100})
    assert not policy_holds([["<=", ".amount", 100]], {"amount": 101})
    assert not policy_holds([["<=", ".amount", 100]], {})  # a missing field fails
    assert not policy_holds([["<", ".amount", 1]], {"amount": True})  # bools are not numbers
    assert policy_holds([["or", [["==", ".a.b", 1], ["==", ".c", 2]]]], {"a": {"b": 1}})
    assert policy_holds([["not", ["==", ".c", 2]]], {"c": 3})
    assert policy_holds([["or", []]], {})
    with pytest.raises(UnsupportedPolicy):
        policy_holds([["like", ".name", "*x"]], {"name": "x"})


def test_the_model_follows_a_chain_from_the_subject_to_the_invoker():
    graph = GrantGraph()
    graph.add(delegate(A, B.did, "/shop", expiration=NOW + 60))
    graph.add(delegate(B, C.did, "/shop/order", subject=A.did, expiration=NOW + 60))
    assert graph.chain(C.did, A.did, "/shop/order", {}, NOW) is not None
    assert graph.chain(C.did, A.did, "/shop/refund", {}, NOW) is None
    assert graph.chain(C.did, A.did, "/shop/order", {}, NOW + 61) is None
    assert graph.chain(A.did, A.did, "/anything", {}, NOW) == []
    assert graph.chain(C.did, B.did, "/shop/order", {}, NOW) is None  # B is not the subject


def test_the_model_honours_revocation_by_issuers_at_or_above_only():
    graph = GrantGraph()
    top = graph.add(delegate(A, B.did, "/shop", expiration=None))
    below = graph.add(delegate(B, C.did, "/shop", subject=A.did, expiration=None))
    graph.revoke(D.did, below.cid)  # a stranger: no effect
    assert graph.chain(C.did, A.did, "/shop", {}, NOW) is not None
    graph.revoke(A.did, below.cid)  # the root, above it: counts
    assert graph.chain(C.did, A.did, "/shop", {}, NOW) is None
    assert graph.chain(B.did, A.did, "/shop", {}, NOW) == [top]


def test_the_model_needs_the_root_about_the_subject_but_takes_powerlines_below():
    graph = GrantGraph()
    graph.add(delegate(A, B.did, "/shop", expiration=None))
    graph.add(delegate(B, C.did, "/shop", subject=None, expiration=None))
    assert graph.chain(C.did, A.did, "/shop", {}, NOW) is not None
    alone = GrantGraph()
    alone.add(delegate(A, C.did, "/shop", subject=None, expiration=None))
    assert alone.chain(C.did, A.did, "/shop", {}, NOW) is None


def test_the_model_respects_not_before():
    graph = GrantGraph()
    graph.add(delegate(A, B.did, "/shop", expiration=None, not_before=NOW + 30))
    assert graph.chain(B.did, A.did, "/shop", {}, NOW + 29) is None
    assert graph.chain(B.did, A.did, "/shop", {}, NOW + 30) is not None


# -- the testbed and the helpers ----------------------------------------------------------


@pytest.mark.parametrize("network", [5], indirect=True)
async def test_the_network_fixture_takes_a_size_and_connects_everyone(network, autojump_clock):
    assert len(network) == 5
    for node in network:
        assert node.mesh is not None
        assert len(node.mesh.connected_peers()) == 4
    assert network.now() == EPOCH + trio.current_time()
    assert network.name(network[3].did) == "n3"


async def test_advancing_time_ages_grants(network, autojump_clock):
    shop, customer = network[0], network[1]
    delegation = grant(shop, customer, "/shop", lifetime=60)
    assert delegation.exp == EPOCH + 60
    await network.advance(61)
    assert network.now() == EPOCH + 61
    assert customer.trust.find_chain(customer.did, "/shop", shop.did,
                                     now=int(network.now())) is None


async def test_only_the_audience_can_attenuate(network, autojump_clock):
    shop, customer, other = network
    delegation = grant(shop, customer, "/shop")
    with pytest.raises(NotTheAudience, match=customer.did):
        attenuate(other, delegation, shop)


async def test_attenuation_hands_the_chain_to_the_new_audience(network, autojump_clock):
    shop, customer, friend = network
    parent = grant(shop, customer, "/shop")
    child = attenuate(customer, parent, friend, "/shop/order", lifetime=10)
    assert child.exp == int(EPOCH + 10)
    chain = friend.trust.find_chain(friend.did, "/shop/order", shop.did, now=int(network.now()))
    assert chain == [parent, child]


async def test_revoke_returns_once_every_node_applied_it(network, autojump_clock):
    shop, customer, other = network
    delegation = grant(shop, customer, "/shop")
    await revoke_everywhere(shop, delegation, reach=network.nodes)
    for node in network:
        assert shop.did in node.trust.revocations.revokers(delegation.cid)


async def test_advance_needs_a_mock_clock():
    async with open_testbed(1) as testbed:
        with pytest.raises(MockClockMissing):
            await testbed.advance(1)


# -- the portal -----------------------------------------------------------------------------


def test_the_portal_keeps_nodes_alive_between_steps_and_time_still():
    portal: TrioPortal[Testbed] = TrioPortal(lambda: open_testbed(2))
    testbed = portal.open()
    try:
        async def now(net: Testbed) -> float:
            return net.now()

        first = portal.step(now)
        time.sleep(0.05)  # the test thread thinks; virtual time must not move meanwhile
        assert portal.step(now) == first

        async def fail(net: Testbed) -> None:
            raise KeyError("inside the run")

        with pytest.raises(KeyError, match="inside the run"):
            portal.step(fail)

        async def wait(net: Testbed) -> float:
            await net.advance(3600)
            return net.now()

        assert portal.step(wait) == first + 3600
        assert testbed[0].mesh is not None and testbed[0].mesh.connected_peers()
    finally:
        portal.close()
