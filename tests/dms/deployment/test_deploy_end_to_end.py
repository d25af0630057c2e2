"""Deploying an ensemble end to end on an in-memory network with real process workloads:
bids, placement, commit, allocate, start in dependency order, events, shutdown."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from dms.actor import RemoteError

from .conftest import open_market

SERVICE = """
version: V1
allocations:
  db:
    type: service
    executor: process
    resources: {cpu: 0.1, ram: 32Mi, disk: 16Mi}
    execution: {command: sleep, args: ["300"]}
  web:
    type: service
    executor: process
    resources: {cpu: 0.1, ram: 32Mi, disk: 16Mi}
    execution: {command: sleep, args: ["300"]}
    depends_on: [db]
nodes:
  a: {allocations: [db]}
  b: {allocations: [web]}
"""


def processes_running(market: object) -> int:
    total = 0
    for node in market.providers:  # type: ignore[attr-defined]
        service = node.provider
        total += sum(len(h.allocations) for h in service._hosted.values())
    return total


async def test_an_ensemble_deploys_runs_and_shuts_down_leaving_nothing(tmp_path: Path) -> None:
    async with open_market(tmp_path) as market:
        deployment = await market.deploy(SERVICE)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        assert set(status["assignment"]) == {"a", "b"}
        assert {a["state"] for a in status["allocations"]} <= {"running", "healthy"}
        held = [r for node in market.providers for r in node.provider.book.reservations()]
        assert len(held) == 2

        await market.shutdown(deployment)
        status = await market.wait_phase(deployment, "completed", "failed")
        assert status["phase"] == "completed", status["failure"]
        for node in market.providers:
            assert node.provider.book.reservations() == ()
            assert node.provider.book.free(0) == node.provider.book.offered
        assert processes_running(market) == 0


async def test_dependents_start_after_what_they_depend_on_across_providers(
        tmp_path: Path) -> None:
    async with open_market(tmp_path) as market:
        deployment = await market.deploy(SERVICE)
        await market.wait_phase(deployment, "running")
        reply = await market.user.root.invoke(
            market.orchestrator.root.handle, "/dms/node/deployment/events",
            {"id": deployment, "after": 0})
        running = [e["payload"]["allocation"] for e in reply["events"]
                   if e["kind"] == "allocation" and e["payload"]["event"] == "running"]
        assert running.index("db") < running.index("web")
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")


async def test_an_unplaceable_ensemble_fails_at_its_deadline_with_the_declines(
        tmp_path: Path) -> None:
    too_big = SERVICE.replace("ram: 32Mi", "ram: 64Gi")
    async with open_market(tmp_path, providers=2) as market:
        deployment = await market.deploy(too_big, deadline=2)
        status = await market.wait_phase(deployment, "failed")
        assert "ram" in status["failure"] and "64Gi asked" in status["failure"]
        assert "not running within 2 s" in status["failure"]


async def test_an_invalid_ensemble_is_refused_with_every_problem_and_creates_nothing(
        tmp_path: Path) -> None:
    broken = SERVICE.replace("executor: process", "executor: procss").replace(
        "depends_on: [db]", "depends_on: [dbx]")
    async with open_market(tmp_path, providers=1) as market:
        with pytest.raises(RemoteError) as caught:
            await market.deploy(broken)
        assert caught.value.name == "InvalidEnsemble"
        assert "procss" in caught.value.message and "dbx" in caught.value.message
        listed = await market.user.root.invoke(market.orchestrator.root.handle,
                                               "/dms/node/deployment/list")
        assert listed["deployments"] == []


async def test_a_node_without_deployment_authority_says_so(tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1, grant_orchestrator=False) as market:
        with pytest.raises(RemoteError) as caught:
            await market.deploy(SERVICE)
        assert caught.value.name == "NoDeploymentAuthority"


async def test_a_user_without_the_grant_is_refused_by_name(tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market:
        stranger = market.providers[0]  # holds /dms/deployment, not /dms/node/deployment
        with pytest.raises(RemoteError) as caught:
            await stranger.root.invoke(market.orchestrator.root.handle,
                                       "/dms/node/deployment/new", {"ensemble": SERVICE})
        assert caught.value.name in {"InvalidClaim", "UnavailableProof", "InvalidSubject"}


async def test_cancelling_during_bidding_leaves_nothing_anywhere(tmp_path: Path) -> None:
    async with open_market(tmp_path) as market:
        deployment = await market.deploy(SERVICE)
        await trio.sleep(0.05)
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "failed", "completed")
        await trio.sleep(0.5)
        for node in market.providers:
            assert node.provider.book.reservations() == ()
        assert processes_running(market) == 0


async def test_a_provider_without_the_grant_to_bid_is_not_placed_on(tmp_path: Path) -> None:
    # The ungranted provider is cheaper: it would win if its bid were taken.
    async with open_market(tmp_path, providers=2, prices=[0.0, 5.0],
                           ungranted=frozenset({0})) as market:
        deployment = await market.deploy(SERVICE)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        assert set(status["assignment"].values()) == {market.providers[1].did}
        refused = market.orchestrator.metrics()
        assert any(k.startswith("refused.") for k in refused), refused
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")
