"""A provider restarted under a running deployment re-adopts its workloads, and the
orchestrator finds the new allocation actors through the provider node's root: the
deployment goes on running, and shuts down leaving nothing."""

from __future__ import annotations

from pathlib import Path

import attrs
import trio

from dms.node import open_node
from dms.provider import ProviderConfig
from dms.workload import ExecutorKind
from ucan import SigningKey, delegate

from .conftest import FAST, machine, open_market
from .test_deploy_faults import ONE


async def test_a_running_deployment_survives_its_provider_restarting(tmp_path: Path) -> None:
    key = SigningKey.generate()
    config = ProviderConfig(tmp_path / "work", (ExecutorKind.PROCESS,), capacity=machine(),
                            keep_workloads=True)
    settings = attrs.evolve(FAST, request_timeout=2.0)
    async with open_market(tmp_path, providers=0, settings=settings) as market:
        provider = open_node(key, listen="memory://restarting", network=market.network,
                             anchors=[market.org.did], bootstrap=["memory://orchestrator"],
                             state_dir=tmp_path / "state", provider=config)
        async with provider as node:
            node.add_proofs(delegate(market.org, node.did, "/dms/deployment",
                                     expiration=None))
            await market.orchestrator.mesh.wait_connected(2)
            await trio.sleep(0.2)
            deployment = await market.deploy(ONE)
            status = await market.wait_phase(deployment, "running", "failed")
            assert status["phase"] == "running", status["failure"]
            assert node.provider is not None
            (hosted,) = node.provider._hosted.values()
            (_, role), = hosted.allocations.values()
            assert role.supervisor.execution is not None
            pid = role.supervisor.execution.status().ident
        async with open_node(key, listen="memory://restarting", network=market.network,
                             anchors=[market.org.did], bootstrap=["memory://orchestrator"],
                             state_dir=tmp_path / "state",
                             provider=attrs.evolve(config, keep_workloads=False)) as node:
            with trio.fail_after(20):
                while True:
                    reply = await market.user.root.invoke(
                        market.orchestrator.root.handle, "/dms/node/deployment/events",
                        {"id": deployment, "after": 0})
                    if any(e["kind"] == "allocations_found_again" for e in reply["events"]):
                        break
                    await trio.sleep(0.2)
            assert node.provider is not None
            (hosted,) = node.provider._hosted.values()
            (_, role), = hosted.allocations.values()
            assert role.supervisor.execution is not None
            assert role.supervisor.execution.status().ident == pid  # the same process
            status = await market.status(deployment)
            assert status["phase"] == "running"
            await market.shutdown(deployment)
            await market.wait_phase(deployment, "completed")
            assert node.provider.book.reservations() == ()
            assert node.provider._hosted == {}
