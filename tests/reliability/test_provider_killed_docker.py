"""The docker executor under a provider killed while its container runs (the node's
tasks cancelled, the container left running as a SIGKILL leaves it): the deployment is
redeployed on the other docker provider, the killed provider removes its container
when it comes back, and once the deployment is shut down no container labelled for
either provider remains. Needs a docker engine and the test image (`make engines`)."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import trio

from dms.workload import ExecutorKind
from tests.dms.deployment.conftest import FAST, open_market

from .faults import Victim, containers_of, wait_clean

IMAGE = "dms-test/busybox:latest"
IN_DOCKER = f"""
version: V1
allocations:
  job:
    type: service
    executor: docker
    resources: {{cpu: 1, ram: 32Mi, disk: 16Mi}}
    execution: {{image: {IMAGE}, cmd: ["sleep", "120"]}}
nodes:
  n: {{allocations: [job], failure_recovery: redeploy}}
"""
SETTINGS = attrs.evolve(FAST, request_timeout=2.0, lease=3.0, heartbeat=1.5, lost_after=2.0,
                        minimum_candidates=2)


@pytest.fixture
def engine() -> None:
    from tests.dms.executor.test_executor_docker import engine_or_skip

    engine_or_skip()


@pytest.mark.usefixtures("engine")
async def test_a_provider_killed_under_a_running_container_leaves_no_container_anywhere(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=0, settings=SETTINGS) as market, \
            trio.open_nursery() as nursery:
        docker = (ExecutorKind.DOCKER,)
        victim = Victim(market, tmp_path / "victim", executors=docker)
        survivor = Victim(market, tmp_path / "survivor", name="survivor", price=5.0,
                          executors=docker)
        await victim.start(nursery)
        await survivor.start(nursery)
        with trio.fail_after(10):
            await market.orchestrator.mesh.wait_connected(3)
        await trio.sleep(0.2)
        deployment = await market.deploy(IN_DOCKER)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        assert status["assignment"] == {"n": victim.did}
        left = containers_of(victim.did)
        assert len(left) == 1
        await victim.kill()
        assert containers_of(victim.did) == left  # it outlived its provider

        with trio.fail_after(30):
            while status["assignment"]["n"] == victim.did:
                await trio.sleep(0.2)
                status = await market.status(deployment)
        assert status["phase"] == "running", status["failure"]
        assert status["assignment"] == {"n": survivor.did}
        assert len(containers_of(survivor.did)) == 1

        node = await victim.start(nursery, keep_workloads=False)
        with trio.fail_after(20):
            while containers_of(victim.did):
                await trio.sleep(0.2)
        await wait_clean(node, victim.work)

        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")
        assert survivor.node is not None
        await wait_clean(survivor.node, survivor.work)
        with trio.fail_after(20):
            while containers_of(survivor.did):
                await trio.sleep(0.2)
        nursery.cancel_scope.cancel()
