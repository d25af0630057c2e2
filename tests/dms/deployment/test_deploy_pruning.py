"""An orchestrator node keeps a bounded history: the newest `ended_kept` ended
deployments, pruned as others end and when it starts; a pruned one's status says so."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import attrs
import pytest
import trio

from dms.actor import RemoteError
from dms.deployment import DeploymentService, DeploymentSettings
from dms.store import DeploymentPhase, DeploymentRecord, NodeDatabase, NodeStore

from .conftest import FAST, open_market
from .test_deploy_end_to_end import SERVICE
from .test_deploy_hostile import UNPLACEABLE
from .test_deploy_restart import USER


async def test_ended_deployments_past_the_history_are_pruned_and_their_status_says_so(
        tmp_path: Path) -> None:
    state = tmp_path / "orchestrator"
    async with open_market(tmp_path, providers=1, orchestrator_state=state,
                           settings=attrs.evolve(FAST, ended_kept=2)) as market:
        live = await market.deploy(SERVICE)  # running: never pruned, however old
        await market.wait_phase(live, "running")
        made = []
        for _ in range(4):
            made.append(await market.deploy(UNPLACEABLE))
            await market.shutdown(made[-1])
            await market.wait_phase(made[-1], "failed", "completed")
        store = NodeStore.open(state)
        with contextlib.closing(store), trio.fail_after(10):
            while True:  # pruned as the last one's orchestrator ends, just after its phase
                kept = {r.id for r in await store.call(NodeDatabase.list_deployments)}
                if len(kept) <= 3:
                    break
                await trio.sleep(0.05)
        assert kept == {*made[-2:], live}
        for gone in made[:2]:
            with pytest.raises(RemoteError) as refused:
                await market.status(gone)
            assert refused.value.name == "UnknownDeployment"
            assert "ended before the newest 2 ended ones" in refused.value.message
            assert "ended before the newest" in refused.value.message
        assert (await market.status(made[-1]))["phase"] in ("failed", "completed")
        await market.shutdown(live)
        await market.wait_phase(live, "completed")


async def test_a_node_prunes_its_history_when_it_starts(tmp_path: Path) -> None:
    store = NodeStore.open(tmp_path)
    with contextlib.closing(store):
        ended = [DeploymentRecord(id=str(uuid.uuid4()), owner=USER, ensemble="version: V1\n",
                                  created_at=1_000.0, updated_at=2_000.0 + n,
                                  phase=DeploymentPhase.COMPLETED) for n in range(5)]
        for record in ended:
            await store.call(NodeDatabase.create_deployment, record)
        service = DeploymentService(lambda: [], store, lambda: 3_000.0,
                                    DeploymentSettings(ended_kept=3))
        await service.recover()
        left = await store.call(NodeDatabase.list_deployments)
        assert {r.id for r in left} == {r.id for r in ended[2:]}
        assert set(service.deployments) == {r.id for r in ended[2:]}


def test_the_history_setting_is_a_positive_count() -> None:
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="DeploymentSettings.ended_kept"):
            DeploymentSettings(ended_kept=bad)  # type: ignore[arg-type]


async def test_an_ended_deployments_allocation_controls_are_no_longer_held(
        tmp_path: Path) -> None:
    state = tmp_path / "orchestrator"
    async with open_market(tmp_path, providers=1, orchestrator_state=state) as market:
        node = market.orchestrator
        deployment = await market.deploy(SERVICE)
        await market.wait_phase(deployment, "running")
        assert node.deployments is not None
        actor = node.deployments.deployments[deployment].actor
        assert actor is not None

        def held() -> list[str]:
            return [str(d.cid) for d in node.trust.provided.values()
                    if d.aud == actor.id and d.iss != node.did]

        controls = held()
        assert controls  # the allocation's delegation to its orchestrator
        assert all((state / "tokens" / f"{cid}.ucan").is_file() for cid in controls)
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")
        with trio.fail_after(10):
            while held():  # dropped as its orchestrator ends, just after the phase
                await trio.sleep(0.05)
        assert not any((state / "tokens" / f"{cid}.ucan").exists() for cid in controls)


def test_the_solver_budget_setting_is_finite_positive_seconds() -> None:
    # the solve's SearchBudget would refuse it only when the first deployment is solved
    for bad in (0, -1.0, float("nan"), float("inf"), "0.5", True):
        with pytest.raises(ValueError, match="DeploymentSettings.solve_seconds"):
            DeploymentSettings(solve_seconds=bad)  # type: ignore[arg-type]
    assert DeploymentSettings(solve_seconds=2).solve_seconds == 2
