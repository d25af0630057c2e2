"""A node joined to an ensemble's network (`dms join`) follows its renumbering: the
namespace's TUN moves to the new subnet's gateway, its routes, grants and names with
it; an order it cannot follow makes it leave, saying so, with nothing left behind."""

from __future__ import annotations

import uuid
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import attrs
import pytest
import trio

from dms.deployment._network import network_record, recorded_order
from dms.network import (
    NamespaceError,
    NetworkOrder,
    joined_networks,
    missing_capability,
    namespace_names,
    plan_addresses,
)
from dms.network._netns import run_ip
from tests.dms.deployment.conftest import machine, open_market
from tests.dms.deployment.test_deploy_hostile import service_of
from tests.dms.vpn.test_join import ENSEMBLE, invoke, provider_orders_joined

needs_network = pytest.mark.skipif(missing_capability() is not None,
                                   reason=f"the ensemble network {missing_capability()}")


def tun_of(namespace: str) -> tuple[list[str], list[str]]:
    """(addresses, routes) of the namespace's dms0."""
    addresses = run_ip("-4", "-o", "addr", "show", "dev", "dms0", namespace=namespace)
    routes = run_ip("-4", "route", "show", "dev", "dms0", namespace=namespace)
    return ([line.split()[3] for line in addresses.splitlines()],
            [line.split()[0] for line in routes.splitlines()])


@needs_network
async def test_a_joined_namespace_follows_a_renumbered_order_and_leaves_on_one_it_cannot(
        ) -> None:
    me, ensemble = f"did:key:joiner-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    first = plan_addresses(ensemble, ["web"], {})
    order = NetworkOrder(first, (("P", ("web",)),), (("web", "www"),), joined=me)
    moved = plan_addresses(ensemble, ["web"], {"p": [first.subnet]}, previous=first)
    renumbered = attrs.evolve(order, plan=moved)
    assert not moved.subnet.overlaps(first.subnet)
    with trio.fail_after(30):
        async with joined_networks(me, lambda peer, frame: None) as joined:
            namespace = await joined.join("d", order)
            assert tun_of(namespace) == ([f"{first.gateway}/24"], [str(first.subnet)])
            assert await joined.follow("d", renumbered)
            assert await joined.join("d", renumbered) == namespace  # the same, followed
            assert tun_of(namespace) == ([f"{moved.gateway}/24"], [str(moved.subnet)])
            network = joined._joined["d"].network
            assert network.plan == moved
            assert network.resolver.records.names["www"] == moved.address_of("web")
            assert network.pump.router.members() == {"joined": moved.gateway}
            assert network.pump.membership._peers == {
                "P": frozenset([moved.address_of("web").packed])}
            assert not await joined.follow("other", renumbered)  # never joined: nothing
            with pytest.raises(NamespaceError, match="deployment d: left its network: this "
                                                     "node could not follow its new order"):
                await joined.follow("d", attrs.evolve(renumbered, joined=None))
            assert joined.namespace_of("d") is None
            assert namespace not in namespace_names()


@needs_network
async def test_the_orchestrator_node_follows_its_deployment_renumbered_and_reads_web_again(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=2, capacities=[machine(cpu=1)] * 2,
                           ensemble_network=True) as market:
        deployment = await market.deploy(ENSEMBLE)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        joined = await invoke(market, "/dms/node/deployment/join", deployment)
        running = service_of(market.orchestrator).deployments[deployment]
        orchestrator, actor = running.orchestrator, running.actor
        assert orchestrator is not None and actor is not None
        old = IPv4Network(status["network"])
        current = recorded_order(orchestrator.journal.record.network)
        assert current is not None
        # What a redeploy onto a provider using the subnet sends: the ensemble renumbered.
        moved = plan_addresses(current.plan.ensemble, current.plan.as_dict(),
                               {"p": [old]}, previous=current.plan)
        record = network_record(attrs.evolve(current, plan=moved))
        await orchestrator.journal.update(network=record)
        orchestrator._network_order = record["order"]
        await orchestrator._update_networks(actor, {peer for peer, _ in current.hosts})
        assert tun_of(joined["namespace"])[0] == [f"{moved.gateway}/{moved.subnet.prefixlen}"]
        with trio.fail_after(20):
            while True:
                done = await trio.run_process(
                    ["ip", "netns", "exec", joined["namespace"], "curl", "-sS", "-m", "3",
                     "http://web.internal:8765/"], capture_stdout=True, capture_stderr=True,
                    check=False)
                if done.returncode == 0:
                    break
                await trio.sleep(0.3)
        assert done.stdout.decode().strip() == "hello to whoever joined"
        web = await trio.run_process(
            ["ip", "netns", "exec", joined["namespace"], "getent", "hosts", "web.internal"],
            capture_stdout=True)
        assert IPv4Address(web.stdout.split()[0].decode()) == moved.address_of("web")
        assert provider_orders_joined(market) == {market.orchestrator.peer_id}
        assert (await invoke(market, "/dms/node/deployment/leave", deployment)) == {"left": True}
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed", "failed")
