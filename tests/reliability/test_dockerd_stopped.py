"""The docker engine stopped under a running container, and started again: the
provider's node runs on (no task of it ends, no restart loop), the allocation is not
reported failed nor torn down while the engine cannot be asked (its container runs on:
the engine is live-restore, as a host's dockerd restart leaves containers), and once
the engine answers again the same container is the allocation's: still running, not
started anew, shut down with the deployment. Meanwhile the allocation's health reads
`unobservable: docker engine not answering ...` in the deployment's status. The engine is a private dockerd of the
test's own (`faults.PrivateDockerd`): stopping the machine's shared one would break
the other tests that use it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from dms.deployment._orchestrator import FAILURE_EVENTS
from dms.workload import ExecutorKind
from tests.dms.deployment.conftest import FAST, Market, open_market

from .faults import PrivateDockerd, Victim, dockerd_installed, wait_clean

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
  n: {{allocations: [job]}}
"""
SETTINGS = attrs.evolve(FAST, heartbeat=30.0, lost_after=40.0)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateDockerd]:
    if not dockerd_installed():
        pytest.skip("docker engine (dockerd) not installed (run `make engines`)")
    from tests.dms.executor.test_executor_docker import engine_or_skip

    engine_or_skip()  # the shared engine has the test image, to copy
    root = Path(tempfile.mkdtemp(prefix="dmsd-", dir="/tmp"))  # a short socket path
    private = PrivateDockerd(root, IMAGE)
    try:
        private.start()
        private.load_image()
        monkeypatch.setenv("DOCKER_HOST", private.host)
        yield private
    finally:
        private.remove_everything()
        shutil.rmtree(root, ignore_errors=True)


async def _job(market: Market, deployment: str) -> dict[str, Any]:
    [job] = (await market.status(deployment))["allocations"]
    assert isinstance(job, dict)
    return job


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_stopped_docker_engine_leaves_the_allocation_running_and_readopted(
        tmp_path: Path, engine: PrivateDockerd) -> None:
    async with open_market(tmp_path, providers=0, settings=SETTINGS) as market, \
            trio.open_nursery() as nursery:
        victim = Victim(market, tmp_path / "victim", executors=(ExecutorKind.DOCKER,))
        node = await victim.start(nursery)
        with trio.fail_after(10):
            await market.orchestrator.mesh.wait_connected(2)
        await trio.sleep(0.2)
        deployment = await market.deploy(IN_DOCKER)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        [container] = engine.containers(f"dms.node={victim.did}")
        pid = engine.pid_of(container)

        await trio.to_thread.run_sync(engine.stop)
        # Reported unobservable (the orchestrator polls every 0.2 s), never failed.
        with trio.fail_after(20):
            while not (await _job(market, deployment))["health"]:
                await trio.sleep(0.2)
        job = await _job(market, deployment)
        assert job["health"].startswith("unobservable: docker engine not answering"), job
        assert job["state"] == "running" and job["restarts"] == 0, job
        await trio.sleep(3)  # more polls, and the watch retrying, meet no engine
        assert victim.node is node  # the node did not end
        assert _alive(pid)
        status = await market.status(deployment)
        assert status["phase"] == "running", status
        assert not [e for e in status["recent_events"] if e["kind"] == "allocation"
                    and e["payload"]["event"] in FAILURE_EVENTS], status["recent_events"]
        assert node.provider is not None and node.provider._hosted

        await trio.to_thread.run_sync(engine.start)
        with trio.fail_after(20):  # watched again: the same container is the allocation
            while (await _job(market, deployment))["health"]:
                await trio.sleep(0.2)
        assert engine.containers(f"dms.node={victim.did}") == [container]
        assert engine.pid_of(container) == pid  # the same process: not started anew
        job = await _job(market, deployment)
        assert job["state"] == "running" and job["restarts"] == 0, job

        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")
        await wait_clean(node, victim.work)
        with trio.fail_after(20):
            while engine.containers(f"dms.node={victim.did}"):
                await trio.sleep(0.2)
        nursery.cancel_scope.cancel()
