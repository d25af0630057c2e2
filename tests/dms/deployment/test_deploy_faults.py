"""Faults during a deployment: a provider that commits and then drops off the network,
a workload that cannot start, cancellation at every phase; nothing is left behind."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from dms.actor import Message, behavior
from dms.executor import ProcessExecutor
from dms.node import Node
from dms.provider import ProviderService, wire
from dms.workload import ExecutorKind
from ucan import delegate

from .conftest import FAST, Market, machine, open_market
from .test_deploy_end_to_end import SERVICE, processes_running

ONE = """
version: V1
allocations:
  job:
    type: service
    executor: process
    resources: {cpu: 1, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["120"]}
nodes:
  n: {allocations: [job]}
"""


class DropsOffAtAllocate(ProviderService):
    """Bids and commits like any provider, then its node leaves the network."""

    node: Node

    @behavior(wire.ALLOCATE, args=wire.AllocateOrder)
    async def allocate(self, message: Message[wire.AllocateOrder]) -> Any:
        await self.node.mesh.aclose()
        await trio.sleep_forever()


@contextlib.asynccontextmanager
async def faulty_provider(market: Market, node: Node, work: Path, cpu: float) -> Any:
    async with ProcessExecutor(work) as executor:
        service = DropsOffAtAllocate(node.peer_id, attrs.evolve(
            machine(cpu=cpu), executors=frozenset([ExecutorKind.PROCESS])),
            {ExecutorKind.PROCESS: executor}, node.clock)
        service.node = node
        node.add_proofs(delegate(market.org, node.did, "/dms/deployment", expiration=None))
        actor = await node.root.spawn("provider", commands=["/dms/deployment"],
                                      main=service.sweep)
        actor.register(service)
        yield service


async def test_a_provider_that_commits_then_drops_off_is_reverted_and_replaced(
        tmp_path: Path) -> None:
    # The faulty provider bids cheaper, so the first placement (which waits for both
    # bids) picks it; the retry must land on the other one.
    settings = attrs.evolve(FAST, request_timeout=2.0, lease=3.0, minimum_candidates=2)
    async with open_market(tmp_path, providers=1, capacities=[machine(cpu=1)],
                           prices=[5.0], settings=settings) as market:
        from dms.node import open_node

        async with open_node(listen="memory://faulty", network=market.network,
                             anchors=[market.org.did],
                             bootstrap=["memory://orchestrator"]) as node, \
                faulty_provider(market, node, tmp_path / "faulty", cpu=8) as faulty:
            await market.orchestrator.mesh.wait_connected(3)
            await trio.sleep(0.2)
            deployment = await market.deploy(ONE.replace("cpu: 1,", "cpu: 0.5,"))
            status = await market.wait_phase(deployment, "running", "failed", timeout=30)
            assert status["phase"] == "running", status["failure"]
            assert status["assignment"] == {"n": market.providers[0].did}
            events = await market.user.root.invoke(
                market.orchestrator.root.handle, "/dms/node/deployment/events",
                {"id": deployment})
            kinds = [e["kind"] for e in events["events"]]
            assert "provider_failed" in kinds
            # The faulty provider's reservation goes with its lease, even unreachable.
            with trio.fail_after(10):
                while faulty.book.reservations():
                    await trio.sleep(0.2)
            await market.shutdown(deployment)
            await market.wait_phase(deployment, "completed")


async def test_a_workload_that_cannot_start_fails_the_deployment_and_reverts_it(
        tmp_path: Path) -> None:
    broken = ONE.replace('command: sleep, args: ["120"]',
                         'command: /no/such/program, args: []')
    async with open_market(tmp_path, providers=2) as market:
        deployment = await market.deploy(broken)
        status = await market.wait_phase(deployment, "failed", "completed")
        assert status["phase"] == "failed"
        assert "job" in status["failure"] and "start_failed:" in status["failure"]
        assert "/no/such/program" in status["failure"]  # the executor's own words
        for node in market.providers:
            assert node.provider.book.reservations() == ()
        assert processes_running(market) == 0


@pytest.mark.parametrize("phase", ["bidding", "committing", "allocating", "running"])
async def test_shutting_down_in_any_phase_leaves_nothing_on_any_provider(
        tmp_path: Path, phase: str) -> None:
    async with open_market(tmp_path) as market:
        deployment = await market.deploy(SERVICE)
        with trio.fail_after(30):
            while True:
                status = await market.status(deployment)
                seen = [e["payload"].get("phase") for e in status["recent_events"]
                        if e["kind"] == "phase"]
                if phase in seen or status["phase"] in ("running", "failed"):
                    break
                await trio.sleep(0)
        await market.shutdown(deployment)
        final = await market.wait_phase(deployment, "completed", "failed")
        assert final["phase"] in ("completed", "failed")
        with trio.fail_after(10):
            while any(n.provider.book.reservations() for n in market.providers) \
                    or processes_running(market):
                await trio.sleep(0.1)


async def test_a_node_whose_provider_is_lost_is_redeployed_while_the_rest_runs_on(
        tmp_path: Path) -> None:
    moving = """
version: V1
allocations:
  stay:
    type: service
    executor: process
    resources: {cpu: 1, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["120"]}
  move:
    type: service
    executor: process
    resources: {cpu: 1, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["120"]}
nodes:
  s: {allocations: [stay]}
  m: {allocations: [move], failure_recovery: redeploy}
"""
    settings = attrs.evolve(FAST, heartbeat=2.0, lost_after=3.0, request_timeout=1.0)
    async with open_market(tmp_path, providers=3, capacities=[machine(cpu=1)] * 3,
                           settings=settings) as market:
        deployment = await market.deploy(moving)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        by_did = {node.did: node for node in market.providers}
        lost = by_did[status["assignment"]["m"]]
        kept = status["assignment"]["s"]
        await lost.mesh.aclose()  # its node drops off the network
        with trio.fail_after(30):
            while True:
                status = await market.status(deployment)
                if status["assignment"]["m"] not in (lost.did,):
                    break
                await trio.sleep(0.2)
        assert status["assignment"]["s"] == kept  # nothing else moved
        assert status["phase"] == "running"
        # The lost provider stopped what it ran once nobody asked after it.
        with trio.fail_after(10):
            while lost.provider._hosted:
                await trio.sleep(0.2)
        new = by_did[status["assignment"]["m"]]
        with trio.fail_after(10):
            while not new.provider._hosted:
                await trio.sleep(0.1)
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")
        for node in market.providers:
            if node is not lost:
                assert node.provider.book.reservations() == ()
