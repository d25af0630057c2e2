"""A provider killed at each phase of a deployment before it runs (every task of its
node cancelled at once, its processes left running as after a SIGKILL): the deployment ends running on
another provider, nothing is left on the survivors, and the killed provider clears what
it left behind when it comes back (its restart reconciliation). With the ensemble
network on every provider too: no namespace, TUN link or resolver file is left either
(a SIGKILL with the network: test_provider_killed_network.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
import trio

from dms.net import LinkConditions
from tests.capabilities import needs_network
from tests.dms.deployment.conftest import FAST, Market, machine, open_market

from .faults import Victim, network_leftovers, wait_clean

MOVABLE = """
version: V1
allocations:
  job:
    type: service
    executor: process
    resources: {cpu: 1, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["120"]}
nodes:
  n: {allocations: [job], failure_recovery: redeploy}
"""

# Short leases and heartbeats, so that what the dead provider held expires in seconds.
SETTINGS = attrs.evolve(FAST, request_timeout=1.0, lease=2.0, heartbeat=1.5, lost_after=2.0,
                        minimum_candidates=3)


def committed(victim: Victim, status: dict[str, object]) -> bool:
    service = victim.node.provider if victim.node else None
    return service is not None and bool(service.book.reservations()) and not service._hosted


def _allocated(victim: Victim, status: dict[str, object]) -> bool:
    service = victim.node.provider if victim.node else None
    if service is None:
        return False
    return any(role.supervisor.execution is None
               for hosted in service._hosted.values()
               for _, role in hosted.allocations.values())


def _bidding(victim: Victim, status: dict[str, object]) -> bool:
    return status["phase"] == "bidding"


PHASES: dict[str, Callable[[Victim, dict[str, object]], bool]] = {
    "bids": _bidding, "commit": committed, "allocate": _allocated}
"""While running is killed harder: test_provider_sigkill.py (a process, SIGKILL) and
test_provider_killed_docker.py (a container outliving its provider)."""


async def _kill_when(market: Market, victim: Victim, deployment: str, phase: str) -> None:
    reached = PHASES[phase]
    with trio.fail_after(20):
        while not reached(victim, await market.status(deployment)):
            await trio.sleep(0.01)
    await victim.kill()


@pytest.mark.parametrize("network", [False, pytest.param(True, marks=needs_network)],
                         ids=["plain", "network"])
@pytest.mark.parametrize("phase", list(PHASES))
async def test_a_provider_killed_in_any_phase_leaves_the_deployment_elsewhere_and_nothing_behind(
        tmp_path: Path, phase: str, network: bool) -> None:
    async with open_market(tmp_path, providers=2, prices=[5.0, 5.0],
                           capacities=[machine(cpu=2)] * 2, settings=SETTINGS,
                           ensemble_network=network) as market, \
            trio.open_nursery() as nursery:
        victim = Victim(market, tmp_path / "victim", network=network)
        # A slow link to the cheapest provider makes each of its phases last long
        # enough to be killed in.
        market.network.set_conditions(market.orchestrator.did, victim.did,
                                      LinkConditions(latency=0.1))
        await victim.start(nursery)
        with trio.fail_after(10):
            await market.orchestrator.mesh.wait_connected(4)
        await trio.sleep(0.2)
        deployment = await market.deploy(MOVABLE)
        await _kill_when(market, victim, deployment, phase)

        status = await market.wait_phase(deployment, "running", "failed", timeout=30)
        with trio.fail_after(30):
            while status["phase"] == "running" and status["assignment"]["n"] == victim.did:
                await trio.sleep(0.2)
                status = await market.status(deployment)
        assert status["phase"] == "running", status["failure"]
        assert status["network"].startswith("10.") is network, status["network"]
        survivors = {node.did: node for node in market.providers}
        assert status["assignment"]["n"] in survivors
        host = survivors[status["assignment"]["n"]]
        assert len(host.provider.book.reservations()) == 1

        node = await victim.start(nursery, keep_workloads=False)
        await wait_clean(node, victim.work, timeout=15)
        assert not any(network_leftovers(victim.did).values()), network_leftovers(victim.did)

        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")
        for n, survivor in enumerate(market.providers):
            await wait_clean(survivor, tmp_path / f"provider{n}")
            assert not any(network_leftovers(survivor.did).values()), \
                network_leftovers(survivor.did)
            networks = survivor.provider.networks
            assert networks is None or networks.hosting() == 0  # no records served
        nursery.cancel_scope.cancel()
