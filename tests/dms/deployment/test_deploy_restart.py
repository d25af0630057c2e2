"""An orchestrator node keeps its deployments in SQLite: after a restart it lists them
with their events, and one that was cut off mid-way is recorded as failed, saying why."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from dms.deployment import DeploymentService
from dms.node import open_node
from dms.store import DeploymentPhase, DeploymentRecord, NodeDatabase, NodeStore
from ucan import SigningKey

from .conftest import open_market
from .test_deploy_end_to_end import SERVICE

USER = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"


async def test_a_deployment_cut_off_by_a_restart_is_listed_as_failed_with_its_events(
        tmp_path: Path) -> None:
    store = NodeStore.open(tmp_path)
    with contextlib.closing(store):
        record = DeploymentRecord(id="0b7e3c8e-2a57-4f57-9a3c-2b1f2c9d6a11", owner=USER,
                                  ensemble=SERVICE, created_at=time.time(),
                                  updated_at=time.time(), phase=DeploymentPhase.RUNNING)
        await store.call(NodeDatabase.create_deployment, record)
        await store.call(NodeDatabase.append_event, record.id, "phase", {"phase": "running"},
                         at=time.time())
        service = DeploymentService(lambda: [], store, time.time)
        await service.recover()
        known = service.deployments[record.id]
        assert known.journal.record.phase is DeploymentPhase.FAILED
        assert "restarted while it was running" in known.journal.record.failure
        events = await known.journal.read_after(0)
        assert [e.payload.get("phase") for e in events] == ["running", "failed"]
        stored = await store.call(NodeDatabase.get_deployment, record.id)
        assert stored.phase is DeploymentPhase.FAILED


async def test_a_restarted_orchestrator_node_lists_what_it_deployed_with_its_events(
        tmp_path: Path) -> None:
    key = SigningKey.generate()
    state = tmp_path / "orchestrator"
    async with open_market(tmp_path, providers=1, orchestrator_key=key,
                           orchestrator_state=state) as market:
        deployment = await market.deploy(SERVICE)
        await market.wait_phase(deployment, "running")
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")
        before = market.orchestrator.deployments
        assert before is not None
        seen = [e.kind for e in await before.deployments[deployment].journal.read_after(0)]
    async with open_node(key, state_dir=state) as node:
        service = node.deployments
        assert service is not None
        known = service.deployments[deployment]
        assert known.journal.record.phase is DeploymentPhase.COMPLETED
        assert [e.kind for e in await known.journal.read_after(0, limit=1000)] == seen


async def test_finished_deployments_leave_memory_but_stay_readable_from_the_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dms.deployment import _service

    from .test_deploy_supervision import TASK

    monkeypatch.setattr(_service, "FINISHED_KEPT", 1)
    async with open_market(tmp_path, providers=1,
                           orchestrator_state=tmp_path / "orchestrator") as market:
        first = await market.deploy(TASK)
        await market.wait_phase(first, "completed")
        second = await market.deploy(TASK)
        await market.wait_phase(second, "completed")
        third = await market.deploy(TASK)
        service = market.orchestrator.deployments
        assert service is not None and first not in service.deployments
        status = await market.status(first)  # from the store
        assert status["phase"] == "completed"
        await market.wait_phase(third, "completed")
