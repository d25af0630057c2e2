"""The behaviors every node offers, behind the same authorization as any other."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from dms.actor import RemoteError, structure_args
from dms.ensemble._requirements import Location
from dms.net import MemoryNetwork
from dms.node import INFO, PEERS, PING, RESOURCES, NodeInfo, NodeResources, open_node
from dms.node._behaviors import Amounts
from dms.node._offer import parse_offer
from dms.provider import Capacity, ProviderConfig
from dms.testing import grant, open_testbed
from dms.workload import ExecutorKind


async def test_ping_and_peers_answer_a_granted_caller(autojump_clock):
    async with open_testbed(3) as net:
        grant(net[0], net[1], "/dms/node")
        with trio.fail_after(10):
            pong = await net[1].root.invoke(net[0].root.handle, PING, {"echo": 7})
            table = await net[1].root.invoke(net[0].root.handle, PEERS)
        assert pong["did"] == net[0].did and pong["echo"] == 7
        peers = {row["peer"] for row in table["peers"]}
        assert {net[1].did, net[2].did} <= peers


async def test_node_behaviors_refuse_a_caller_without_a_grant(autojump_clock):
    async with open_testbed(2) as net:
        with trio.fail_after(10), pytest.raises(RemoteError) as refused:
            await net[1].root.invoke(net[0].root.handle, PEERS)
        assert refused.value.name == "InvalidClaim"


async def test_info_says_what_the_node_is_and_how_long_it_has_run(autojump_clock):
    async with open_testbed(2) as net:
        grant(net[0], net[1], "/dms/node/info")
        with trio.fail_after(10):
            first = await net[1].root.invoke(net[0].root.handle, INFO)
        await trio.sleep(30)
        with trio.fail_after(10):
            later = structure_args(await net[1].root.invoke(net[0].root.handle, INFO),
                                   NodeInfo)
        assert first["did"] == net[0].did and first["address"] == "memory://n0"
        assert later.roles == () and later.markets == () and later.deployments == 0
        assert later.peers == 1
        assert later.uptime >= first["uptime"] + 30


async def test_a_node_holding_a_market_grant_says_it_orchestrates(autojump_clock):
    async with open_testbed(2) as net:
        grant(net[0], net[1], "/dms/node/info")
        grant(net[0], net[0], "/dms/deployment")  # its own market
        with trio.fail_after(10):
            info = structure_args(await net[1].root.invoke(net[0].root.handle, INFO), NodeInfo)
        assert info.roles == ("orchestrator",) and info.markets == (net[0].did,)


async def test_a_grant_of_info_does_not_reach_resources(autojump_clock):
    async with open_testbed(2) as net:
        grant(net[0], net[1], "/dms/node/info")
        with trio.fail_after(10), pytest.raises(RemoteError) as refused:
            await net[1].root.invoke(net[0].root.handle, RESOURCES)
        assert refused.value.name == "InvalidClaim"


async def test_resources_of_a_node_that_provides_nothing(autojump_clock):
    async with open_testbed(2) as net:
        grant(net[0], net[1], "/dms/node/resources")
        with trio.fail_after(10):
            offer = await net[1].root.invoke(net[0].root.handle, RESOURCES)
        assert structure_args(offer, NodeResources) == NodeResources(provider=False)


async def test_resources_say_what_a_provider_offers_and_where_it_is(tmp_path: Path) -> None:
    berlin = Location(continent="EU", country="DE", city="Berlin")
    machine = Capacity(millicores=4000, ram=8 << 30, disk=100 << 30)
    network = MemoryNetwork()
    config = ProviderConfig(tmp_path / "work", (ExecutorKind.PROCESS,), capacity=machine,
                            limits=parse_offer("cpu=2,ram=50%"), price=1.5, location=berlin)
    async with open_node(listen="memory://provider", network=network,
                         provider=config) as provider, \
            open_node(network=network, bootstrap=["memory://provider"]) as client:
        client.add_proofs(provider.grant(client.did, "/dms/node/resources"))
        with trio.fail_after(10):
            await client.mesh.wait_connected()
            offer = structure_args(await client.root.invoke(provider.root.handle, RESOURCES),
                                   NodeResources)
        assert offer.offered == Amounts(millicores=2000, ram=4 << 30, disk=100 << 30, gpus=0)
        assert offer.free == offer.offered and offer.reserved == Amounts(0, 0, 0, 0)
        assert offer.executors == ("process",) and offer.price == 1.5
        assert offer.location == berlin
        # what its bids carry: the place ensembles' location constraints are matched with
        assert provider.provider is not None
        assert provider.provider.book.free(provider.clock()).location == berlin
