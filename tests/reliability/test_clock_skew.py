"""Clock skew between nodes: within the admission window (60 s) a deployment runs on a
provider whose clock is off either way; beyond it, the refusal the asking node gets
says that clocks disagree, whichever of the two is ahead (see spec/security.md, "Fault
model")."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio

from dms.actor import ActorError
from dms.node import Node, open_node
from dms.provider import ProviderConfig, wire
from dms.workload import ExecutorKind
from tests.dms.deployment.conftest import FAST, Market, machine, open_market
from ucan import delegate

from .test_provider_killed import MOVABLE

BEYOND = 300.0  # seconds: five times the 60 s window, well inside the 600 s max ttl


@contextlib.asynccontextmanager
async def skewed_market(tmp_path: Path, skew: float,
                        deadline: float = 30) -> AsyncIterator[tuple[Market, Node]]:
    """A market whose only provider's clock is `skew` seconds off the others'."""
    async with open_market(tmp_path, providers=0,
                           settings=attrs.evolve(FAST, deadline=deadline)) as market, \
            open_node(listen="memory://skewed", network=market.network,
                      anchors=[market.org.did], bootstrap=["memory://orchestrator"],
                      clock=lambda: time.time() + skew,
                      provider=ProviderConfig(tmp_path / "skewed", (ExecutorKind.PROCESS,),
                                              capacity=machine())) as node:
        node.add_proofs(delegate(market.org, node.did, "/dms/deployment", expiration=None))
        with trio.fail_after(10):
            await market.orchestrator.mesh.wait_connected(2)
        await trio.sleep(0.2)
        yield market, node


@pytest.mark.parametrize("skew", [45.0, -45.0])
async def test_a_provider_whose_clock_is_off_within_the_window_runs_deployments(
        tmp_path: Path, skew: float) -> None:
    async with skewed_market(tmp_path, skew) as (market, node):
        deployment = await market.deploy(MOVABLE)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        assert status["assignment"] == {"n": node.did}
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")


@pytest.mark.parametrize("skew", [BEYOND, -BEYOND])
async def test_a_request_to_a_node_whose_clock_is_off_beyond_the_window_is_refused_naming_the_clock(
        tmp_path: Path, skew: float) -> None:
    async with skewed_market(tmp_path, skew) as (market, node):
        with pytest.raises(ActorError) as refused:
            await market.orchestrator.root.invoke(
                node.root.handle, wire.ALLOCATIONS, {"deployment": "any"},
                subject=market.org.did, timeout=1)
        assert "clock" in str(refused.value), str(refused.value)
        if skew < 0:  # behind: it refused a request from its future, and did not run it
            assert node.metrics()["refused.TooEarly"] == 1
            assert refused.value.name == "ClockSkew"  # its refusal, expired by ours


# The provider's screen drops the bid requests without a word ('0 bids; 0 candidates'):
# a failure nobody bid on now names the causes, the clock among them.
async def test_a_deployment_on_a_provider_whose_clock_is_off_beyond_the_window_says_so(
        tmp_path: Path) -> None:
    async with skewed_market(tmp_path, BEYOND, deadline=2) as (market, node):
        deployment = await market.deploy(MOVABLE)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "failed"
        assert node.metrics().get("net.mesh.dropped_screened", 0) > 0  # it was dropped
        assert "clock" in status["failure"], status["failure"]
