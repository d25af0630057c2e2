"""`subnet.join`: the deployment's orchestrator node joins its ensemble network (a
namespace of its own at the gateway address), reads the web service by
`web.internal` from inside it, and leaving removes it and the providers' grant."""

from __future__ import annotations

import sys
from ipaddress import IPv4Network
from pathlib import Path

import pytest
import trio

from dms.actor import RemoteError
from dms.network import (
    NamespaceError,
    NetworkOrder,
    joined_prefix,
    namespace_names,
)
from tests.capabilities import needs_network
from tests.dms.deployment.conftest import Market, machine, open_market
from tests.dms.deployment.test_deploy_hostile import intruder

ENSEMBLE = f"""
version: V1
allocations:
  web:
    type: service
    executor: process
    dns_name: www
    resources: {{cpu: 0.6, ram: 64Mi, disk: 16Mi}}
    execution:
      command: sh
      args: ["-c", "echo hello to whoever joined > index.html && exec {sys.executable} -m http.server 8765 --bind 0.0.0.0"]
    healthcheck: {{type: http, endpoint: "http://127.0.0.1:8765/", interval: 0.3s, timeout: 1s, retries: 3}}
  idle:
    type: service
    executor: process
    resources: {{cpu: 0.6, ram: 64Mi, disk: 16Mi}}
    execution: {{command: sleep, args: ["600"]}}
nodes:
  a: {{allocations: [web]}}
  b: {{allocations: [idle]}}
"""


async def invoke(market: Market, path: str, deployment: str) -> dict[str, str]:
    reply = await market.user.root.invoke(market.orchestrator.root.handle, path,
                                          {"id": deployment})
    assert isinstance(reply, dict)
    return reply


def provider_orders_joined(market: Market) -> set[str | None]:
    return {hosted.order.joined for node in market.providers
            if node.provider is not None and node.provider.networks is not None
            for hosted in node.provider.networks._networks.values()}


@needs_network
async def test_the_orchestrator_node_joins_the_network_curls_web_internal_and_leaves(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=2, capacities=[machine(cpu=1)] * 2,
                           ensemble_network=True) as market:
        deployment = await market.deploy(ENSEMBLE)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        async with intruder(market, command="/dms/node/deployment") as other_user:
            with pytest.raises(RemoteError, match="no deployment .* of yours"):
                await other_user.root.invoke(market.orchestrator.root.handle,
                                             "/dms/node/deployment/join", {"id": deployment})
        assert provider_orders_joined(market) == {None}  # only its owner may join
        joined = await invoke(market, "/dms/node/deployment/join", deployment)
        assert joined["subnet"] == status["network"]
        assert joined["address"] == str(IPv4Network(status["network"]).network_address + 1)
        assert joined["namespace"].startswith(joined_prefix(market.orchestrator.peer_id))
        assert joined["namespace"] in namespace_names()
        assert provider_orders_joined(market) == {market.orchestrator.peer_id}
        again = await invoke(market, "/dms/node/deployment/join", deployment)
        assert again == joined  # joining twice is the same namespace
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
        www = await trio.run_process(
            ["ip", "netns", "exec", joined["namespace"], "curl", "-sS", "-m", "3",
             "http://www.internal:8765/"], capture_stdout=True, check=False)
        assert www.stdout.decode().strip() == "hello to whoever joined"
        assert (await invoke(market, "/dms/node/deployment/leave", deployment)) == {"left": True}
        assert joined["namespace"] not in namespace_names()
        assert provider_orders_joined(market) == {None}
        events = await market.user.root.invoke(market.orchestrator.root.handle,
                                               "/dms/node/deployment/events",
                                               {"id": deployment, "after": 0})
        kinds = [e["kind"] for e in events["events"]]
        assert kinds.index("network_joined") < kinds.index("network_left")
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed", "failed")


@needs_network
async def test_joining_a_deployment_without_a_network_is_refused_naming_why(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=2, capacities=[machine(cpu=1)] * 2,
                           ensemble_network=False) as market:
        deployment = await market.deploy(ENSEMBLE)
        await market.wait_phase(deployment, "running", "failed")
        with pytest.raises(RemoteError, match="has no ensemble network: provider .* offers "
                                              "no network"):
            await invoke(market, "/dms/node/deployment/join", deployment)
        assert not [n for n in namespace_names()
                    if n.startswith(joined_prefix(market.orchestrator.peer_id))]
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed", "failed")


@needs_network
async def test_a_join_this_node_cannot_make_leaves_no_provider_granting_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with open_market(tmp_path, providers=2, capacities=[machine(cpu=1)] * 2,
                           ensemble_network=True) as market:
        deployment = await market.deploy(ENSEMBLE)
        await market.wait_phase(deployment, "running", "failed")
        joined = market.orchestrator.deployments.joined
        assert joined is not None

        async def refuse(deployment: str, order: NetworkOrder) -> str:
            raise NamespaceError("join", "this node needs /dev/net/tun")

        monkeypatch.setattr(joined, "join", refuse)
        with pytest.raises(RemoteError, match="needs /dev/net/tun"):
            await invoke(market, "/dms/node/deployment/join", deployment)
        assert provider_orders_joined(market) == {None}  # granted, then taken back
        status = await market.status(deployment)
        assert status["phase"] == "running"
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed", "failed")
