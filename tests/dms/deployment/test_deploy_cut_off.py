"""A deployment cut off by its orchestrator node's restart before it ran: the record
names every provider asked to commit (written before the commit is sent), and the node
coming back reverts there from the same lasting orchestrator actor, under the same
chain as a normal revert, before it reports the deployment failed.

The node's crash is played in-process: the deployment hangs once committed, its undo is
made to do nothing (a killed process reverts nothing) and the orchestrator actor is
stopped; the record is put back in the phase it had, and `recover` runs as at start."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from dms.deployment import DeploymentService
from dms.deployment._orchestrator import Orchestrator
from dms.store import DeploymentPhase, NodeDatabase

from .conftest import FAST, Market, open_market
from .test_deploy_end_to_end import SERVICE

SETTINGS = attrs.evolve(FAST, lease=30.0)  # only a revert frees them within the test
UNREACHABLE = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"


def _service(market: Market) -> DeploymentService:
    service = market.orchestrator.deployments
    assert service is not None
    return service


def _held(market: Market) -> list[Any]:
    return [r for node in market.providers if node.provider is not None
            for r in node.provider.book.reservations()]


async def _crash_once_committed(market: Market, monkeypatch: pytest.MonkeyPatch,
                                ) -> tuple[str, set[str]]:
    """Deploy; once every commit is in, stop its orchestrator as a crash would (nothing
    reverted), put the record back as the crash left it (allocating) and recover. The
    id, and the providers that held its reservations."""
    committed = trio.Event()

    async def hang(self: Orchestrator, *args: Any) -> None:
        committed.set()
        await trio.sleep_forever()

    async def revert_nothing(self: Orchestrator, *args: Any) -> None:
        pass

    monkeypatch.setattr(Orchestrator, "_allocate", hang)
    monkeypatch.setattr(Orchestrator, "_take_down", revert_nothing)  # bound as undone
    deployment = await market.deploy(SERVICE)
    with trio.fail_after(20):
        await committed.wait()
    running = _service(market).deployments[deployment]
    assert running.actor is not None
    await running.actor.stop()
    monkeypatch.undo()
    holders = {node.did for node in market.providers if node.provider is not None
               and node.provider.book.reservations()}
    assert holders, "the crash reverted nothing: the providers hold its commits"
    await _restart_in(market, deployment, DeploymentPhase.ALLOCATING)
    return deployment, holders


async def _restart_in(market: Market, deployment: str, phase: DeploymentPhase,
                      **changes: Any) -> None:
    """Put the stored record back in `phase` and recover, as a node starting does."""
    service = _service(market)
    assert service.store is not None
    await service.store.call(NodeDatabase.update_deployment, deployment,
                             lambda record: attrs.evolve(record, phase=phase, failure="",
                                                         **changes), at=time.time())
    del service.deployments[deployment]
    await service.recover()


async def test_the_commit_set_is_recorded_before_committing_with_each_provider_actor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded: list[dict[str, str]] = []
    commit_one = Orchestrator._commit_one

    async def commit_one_noting(self: Orchestrator, *args: Any) -> None:
        recorded.append(dict(self.journal.record.commits))  # as the commit goes out
        await commit_one(self, *args)

    monkeypatch.setattr(Orchestrator, "_commit_one", commit_one_noting)
    async with open_market(tmp_path, providers=2, settings=SETTINGS,
                           orchestrator_state=tmp_path / "orchestrator") as market:
        deployment = await market.deploy(SERVICE)
        status = await market.wait_phase(deployment, "running")
        record = _service(market).deployments[deployment].journal.record
        actors = {node.did: node.provider.actor.id for node in market.providers
                  if node.provider is not None}
        assert record.commits == {peer: actors[peer] for peer in
                                  set(status["assignment"].values())}
        assert recorded and all(seen == record.commits for seen in recorded)
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")


async def test_a_restart_mid_commit_reverts_on_every_provider_then_reports_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with open_market(tmp_path, providers=2, settings=SETTINGS,
                           orchestrator_state=tmp_path / "orchestrator") as market:
        deployment, holders = await _crash_once_committed(market, monkeypatch)
        status = await market.wait_phase(deployment, "failed", timeout=10)
        assert status["failure"] == (
            "its orchestrator's node restarted while it was allocating; it reverted the "
            "deployment on every provider asked to commit")
        assert _held(market) == []  # a 30 s lease: only the revert freed them
        for node in market.providers:
            assert node.provider is not None
            assert node.provider.counters["leases_expired"] == 0
            assert node.provider.counters["taken_down"] == (node.did in holders)
        events = await _service(market).deployments[deployment].journal.read_after(0, 1000)
        reverted = {e.payload["provider"] for e in events if e.kind == "reverted"}
        assert reverted == set(_service(market).deployments[deployment]
                               .journal.record.commits)

        # Restarted again before it was recorded failed: the providers, holding nothing
        # of it now, answer that they released nothing, and it is reported the same.
        await _restart_in(market, deployment, DeploymentPhase.ALLOCATING)
        again = await market.wait_phase(deployment, "failed", timeout=10)
        assert again["failure"] == status["failure"]
        for node in market.providers:
            assert node.provider is not None
            assert node.provider.counters["taken_down"] == (node.did in holders)
        events = await _service(market).deployments[deployment].journal.read_after(0, 1000)
        assert [e.payload["detail"] for e in events if e.kind == "reverted"][-len(
            reverted):] == ["released 0"] * len(reverted)


async def test_a_provider_that_never_answers_the_revert_is_named_and_left_to_its_lease(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with open_market(tmp_path, providers=2, settings=SETTINGS,
                           orchestrator_state=tmp_path / "orchestrator") as market:
        deployment, _ = await _crash_once_committed(market, monkeypatch)
        await market.wait_phase(deployment, "failed", timeout=10)
        service = _service(market)
        commits = service.deployments[deployment].journal.record.commits
        service.settings = attrs.evolve(service.settings, lease=1.0)  # how long it tries
        await _restart_in(market, deployment, DeploymentPhase.COMMITTING,
                          commits={**commits, UNREACHABLE: UNREACHABLE})
        status = await market.wait_phase(deployment, "failed", timeout=10)
        assert status["failure"] == (
            f"its orchestrator's node restarted while it was committing; it reverted the "
            f"deployment on {len(commits)} of {len(commits) + 1} providers asked to "
            f"commit; the others ({UNREACHABLE}) release what they hold when their leases "
            f"run out")
        events = await service.deployments[deployment].journal.read_after(0, 1000)
        assert [e.payload["provider"] for e in events
                if e.kind == "take_down_unconfirmed"] == [UNREACHABLE]
