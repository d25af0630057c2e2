"""A small market for deployment tests: an organisation every node anchors, which grants
each node `/dms/deployment` (to ask for bids and to bid) and a user
`/dms/node/deployment`; providers offer this machine's process executor."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from dms.deployment import DeploymentSettings
from dms.net import MemoryNetwork
from dms.node import Node, open_node
from dms.provider import Capacity, ProviderConfig, millicores
from dms.workload import ExecutorKind
from ucan import SigningKey, delegate

FAST = DeploymentSettings(deadline=30.0, bid_round=0.5, poll_interval=0.2,
                          request_timeout=5.0, start_timeout=20.0)
GiB = 2**30


@attrs.define
class Market:
    org: SigningKey
    user: Node
    orchestrator: Node
    providers: list[Node]
    network: MemoryNetwork

    async def deploy(self, ensemble: str, **args: Any) -> str:
        reply = await self.user.root.invoke(self.orchestrator.root.handle,
                                            "/dms/node/deployment/new",
                                            {"ensemble": ensemble, **args})
        return str(reply["id"])

    async def status(self, deployment: str) -> dict[str, Any]:
        reply = await self.user.root.invoke(self.orchestrator.root.handle,
                                            "/dms/node/deployment/status", {"id": deployment})
        assert isinstance(reply, dict)
        return reply

    async def wait_phase(self, deployment: str, *phases: str, timeout: float = 30) -> dict[str, Any]:
        with trio.fail_after(timeout):
            while True:
                status = await self.status(deployment)
                if status["phase"] in phases:
                    return status
                await trio.sleep(0.1)

    async def shutdown(self, deployment: str) -> None:
        await self.user.root.invoke(self.orchestrator.root.handle,
                                    "/dms/node/deployment/shutdown", {"id": deployment})


def machine(cpu: float = 4, ram: int = 8 * GiB) -> Capacity:
    return Capacity(millicores=millicores(cpu, round_up=False), ram=ram, disk=100 * GiB)


@contextlib.asynccontextmanager
async def open_market(tmp_path: Path, providers: int = 3, *,
                      capacities: list[Capacity] | None = None,
                      prices: list[float] | None = None,
                      ungranted: frozenset[int] = frozenset(),
                      grant_orchestrator: bool = True,
                      settings: DeploymentSettings = FAST,
                      orchestrator_key: SigningKey | None = None,
                      orchestrator_state: Path | None = None,
                      ensemble_network: bool = False,
                      executors: tuple[ExecutorKind, ...] = (ExecutorKind.PROCESS,),
                      ) -> AsyncIterator[Market]:
    network = MemoryNetwork()
    org = SigningKey.generate()
    async with contextlib.AsyncExitStack() as stack:
        orchestrator = await stack.enter_async_context(open_node(
            orchestrator_key, listen="memory://orchestrator", network=network,
            anchors=[org.did], deployments=settings, state_dir=orchestrator_state))
        nodes = []
        for n in range(providers):
            capacity = capacities[n] if capacities else machine()
            config = ProviderConfig(tmp_path / f"provider{n}", executors,
                                    capacity=capacity, price=prices[n] if prices else 0.0,
                                    network=ensemble_network)
            node = await stack.enter_async_context(open_node(
                listen=f"memory://p{n}", network=network, anchors=[org.did],
                bootstrap=["memory://orchestrator"], provider=config))
            nodes.append(node)
        user = await stack.enter_async_context(open_node(
            network=network, bootstrap=["memory://orchestrator"], anchors=[org.did]))
        if grant_orchestrator:
            orchestrator.add_proofs(delegate(org, orchestrator.did, "/dms/deployment",
                                             expiration=None))
        for n, node in enumerate(nodes):
            if n not in ungranted:
                node.add_proofs(delegate(org, node.did, "/dms/deployment", expiration=None))
        user.add_proofs(delegate(org, user.did, "/dms/node/deployment", expiration=None))
        with trio.fail_after(10):
            await orchestrator.mesh.wait_connected(providers + 1)
            for node in nodes:
                await node.mesh.wait_connected(1)
        await trio.sleep(0.2)  # subscriptions settle
        yield Market(org, user, orchestrator, nodes, network)


@pytest.fixture
def anyio_backend() -> str:
    return "trio"
