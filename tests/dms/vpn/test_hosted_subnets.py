"""A provider's ensemble networks never share a subnet: an order whose subnet overlaps
another ensemble's here is refused, naming both, and changes nothing."""

from __future__ import annotations

import uuid

import pytest
import trio

from dms.network import (
    AddressPlan,
    NetworkOrder,
    missing_capability,
    namespace_names,
    plan_addresses,
)
from dms.provider import SubnetClash
from dms.provider._network import hosted_networks

needs_network = pytest.mark.skipif(missing_capability() is not None,
                                   reason=f"the ensemble network {missing_capability()}")


def _order(ensemble: str, subnet_of: NetworkOrder | None = None) -> NetworkOrder:
    plan = plan_addresses(ensemble, ["a"], {})
    if subnet_of is not None:  # the other ensemble's subnet, as a stale order might hold
        subnet = subnet_of.plan.subnet
        plan = AddressPlan(ensemble, subnet, (("a", subnet[7]),))
    return NetworkOrder(plan, (("P", ("a",)),))


@needs_network
async def test_an_order_on_the_subnet_of_another_hosted_ensemble_is_refused_naming_both() -> None:
    peer = f"did:key:test-{uuid.uuid4().hex[:8]}"
    first = _order(f"first-{uuid.uuid4().hex[:6]}")
    second = _order(f"second-{uuid.uuid4().hex[:6]}", subnet_of=first)
    with trio.fail_after(30):
        async with hosted_networks(peer, lambda peer, frame: None) as networks:
            await networks.join("d1", first)
            with pytest.raises(SubnetClash, match=rf"network.plan.subnet: {second.plan.subnet} "
                                                  rf"overlaps {first.plan.subnet}.*d1"):
                await networks.join("d2", second)
            assert networks.hosting() == 1  # nothing of d2 was made
            assert networks.subnets_in_use() == [first.plan.subnet]
            third = _order(f"third-{uuid.uuid4().hex[:6]}")  # elsewhere: fine
            if not third.plan.subnet.overlaps(first.plan.subnet):
                await networks.join("d3", third)
                assert networks.hosting() == 2
            # the ensemble's own subnet again (a redeploy) is no clash with itself
            await networks.join("d1", first)
            await networks.join("d1", first)
    assert not [n for n in namespace_names() if n.startswith(networks.prefix)]
