"""A partition between the orchestrator and a provider (every frame between them lost,
see `faults.Partition`): during commit, healed before or after the lease expires, the
deployment runs on exactly one provider and the cut-off one frees what it held; while
running, a cut shorter than `lost_after` makes the provider suspect, and nothing
healthy is torn down or moved (positive evidence only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from dms.net import LinkConditions
from tests.dms.deployment.conftest import FAST, Market, open_market

from .faults import Partition, Victim, processes_in, wait_clean
from .test_provider_killed import MOVABLE, committed

SLOW = LinkConditions(latency=0.1)


async def events(market: Market, deployment: str) -> list[str]:
    reply = await market.user.root.invoke(market.orchestrator.root.handle,
                                          "/dms/node/deployment/events",
                                          {"id": deployment, "after": 0})
    return [e["kind"] for e in reply["events"]]


def hosts(market: Market, victim: Victim) -> int:
    """Deployments hosted on every provider of the market, the victim included."""
    nodes = [*market.providers, victim.node]
    return sum(len(n.provider._hosted) for n in nodes if n is not None and n.provider)


async def _open_with_victim(market: Market, victim: Victim, nursery: trio.Nursery) -> Partition:
    market.network.set_conditions(market.orchestrator.did, victim.did, SLOW)
    node = await victim.start(nursery, keep_workloads=False)
    with trio.fail_after(10):
        await market.orchestrator.mesh.wait_connected(len(market.providers) + 2)
    await trio.sleep(0.2)
    return Partition(market.network, market.orchestrator, node, SLOW)


@pytest.mark.parametrize("heal", ["before_lease", "after_lease"])
async def test_a_partition_during_commit_leaves_one_running_copy_and_frees_the_lease(
        tmp_path: Path, heal: str) -> None:
    # Long enough a lease to heal inside it, or a short one to outlast.
    lease = 3.0 if heal == "before_lease" else 1.5
    settings = attrs.evolve(FAST, request_timeout=1.0, lease=lease, heartbeat=3.0,
                            lost_after=4.0, minimum_candidates=2)
    async with open_market(tmp_path, providers=1, prices=[5.0], settings=settings) as market, \
            trio.open_nursery() as nursery:
        victim = Victim(market, tmp_path / "victim")
        partition = await _open_with_victim(market, victim, nursery)
        deployment = await market.deploy(MOVABLE)
        with trio.fail_after(20):
            while not committed(victim, await market.status(deployment)):
                await trio.sleep(0.01)
        partition.cut()
        assert victim.node is not None and victim.node.provider is not None
        book = victim.node.provider.book
        if heal == "before_lease":
            await trio.sleep(settings.request_timeout + 0.5)  # the orchestrator gave up
            assert book.reservations()  # the lease still holds
        else:
            with trio.fail_after(settings.lease + 3):  # it expires with nobody to ask
                while book.reservations():
                    await trio.sleep(0.1)
        partition.heal()
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        assert status["assignment"] == {"n": market.providers[0].did}
        await wait_clean(victim.node, victim.work)
        assert hosts(market, victim) == 1
        assert len(market.providers[0].provider.book.reservations()) == 1
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")
        await wait_clean(market.providers[0], tmp_path / "provider0")
        nursery.cancel_scope.cancel()


async def test_a_provider_cut_off_shorter_than_lost_after_is_suspect_and_keeps_its_workload(
        tmp_path: Path) -> None:
    settings = attrs.evolve(FAST, request_timeout=0.5, poll_interval=0.2, heartbeat=4.0,
                            lost_after=5.0, minimum_candidates=2)
    async with open_market(tmp_path, providers=1, prices=[5.0], settings=settings) as market, \
            trio.open_nursery() as nursery:
        victim = Victim(market, tmp_path / "victim")
        partition = await _open_with_victim(market, victim, nursery)
        deployment = await market.deploy(MOVABLE)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["assignment"] == {"n": victim.did}, status
        running = processes_in(victim.work)
        assert len(running) == 1
        partition.cut()
        with trio.fail_after(5):
            while "provider_suspected" not in await events(market, deployment):
                await trio.sleep(0.1)
        await trio.sleep(1.5)  # still cut, past several polls, short of lost_after
        partition.heal()
        with trio.fail_after(10):
            while "provider_answers_again" not in await events(market, deployment):
                await trio.sleep(0.1)
        kinds: list[Any] = await events(market, deployment)
        assert "provider_lost" not in kinds and "redeployed" not in kinds, kinds
        status = await market.status(deployment)
        assert status["phase"] == "running"
        assert status["assignment"] == {"n": victim.did}
        assert processes_in(victim.work) == running  # the same process, never restarted
        assert hosts(market, victim) == 1
        assert market.providers[0].provider.book.reservations() == ()
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")
        assert victim.node is not None
        await wait_clean(victim.node, victim.work)
        nursery.cancel_scope.cancel()
