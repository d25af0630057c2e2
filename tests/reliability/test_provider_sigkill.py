"""A provider node in its own process, SIGKILLed while its workload runs (no finally
block, no store write, the workload orphaned): the deployment is redeployed on the
other provider once the killed one has been silent for `lost_after`; started again
from its state and work directories, the killed provider stops the orphan and
releases its reservation (its orchestrator stopped asking within the heartbeat)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import trio

from dms.node import open_node
from dms.provider import ProviderConfig
from dms.store import ReservationState
from dms.store._database import DATABASE_FILE, NodeDatabase
from dms.workload import ExecutorKind
from tests.dms.deployment.conftest import FAST, machine
from ucan import SigningKey, delegate

from .faults import processes_in, status_of
from .test_provider_killed import MOVABLE

HERE = Path(__file__).parent
SETTINGS = attrs.evolve(FAST, request_timeout=1.0, heartbeat=1.5, lost_after=2.0,
                        minimum_candidates=2)


@contextlib.asynccontextmanager
async def provider_process(seed: bytes, root: Path, org: str, grant: Path,
                           bootstrap: str, *flags: str) -> AsyncIterator[subprocess.Popen[str]]:
    """`provider_process.py` with its state and work under `root`, price 0, `flags`
    after (`network`); yields once it listens, killed on leaving if it still runs."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "provider_process.py"), seed.hex(), str(root / "state"),
         str(root / "work"), org, str(grant), bootstrap, "0", *flags],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert process.stdout is not None
        address = await trio.to_thread.run_sync(process.stdout.readline)
        assert address.startswith("ws://"), address
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


async def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    await trio.to_thread.run_sync(process.wait)


async def test_a_provider_sigkilled_while_running_is_replaced_and_clears_its_orphans_on_restart(
        tmp_path: Path) -> None:
    org = SigningKey.generate()
    seed = os.urandom(32)
    victim_did = SigningKey.from_seed(seed).did
    grant = tmp_path / "grant.ucan"
    grant.write_bytes(delegate(org, victim_did, "/dms/deployment", expiration=None).envelope)
    victim = tmp_path / "victim"
    async with contextlib.AsyncExitStack() as stack:
        orchestrator = await stack.enter_async_context(open_node(
            listen="ws://127.0.0.1:0", anchors=[org.did], deployments=SETTINGS))
        orchestrator.add_proofs(delegate(org, orchestrator.did, "/dms/deployment",
                                         expiration=None))
        assert orchestrator.address is not None
        survivor = await stack.enter_async_context(open_node(
            listen="ws://127.0.0.1:0", anchors=[org.did], bootstrap=[orchestrator.address],
            provider=ProviderConfig(tmp_path / "survivor", (ExecutorKind.PROCESS,),
                                    capacity=machine(), price=5.0)))
        survivor.add_proofs(delegate(org, survivor.did, "/dms/deployment", expiration=None))
        user = await stack.enter_async_context(open_node(
            anchors=[org.did], bootstrap=[orchestrator.address]))
        user.add_proofs(delegate(org, user.did, "/dms/node/deployment", expiration=None))
        root = orchestrator.root.handle
        with trio.fail_after(40):
            async with provider_process(seed, victim, org.did, grant,
                                        orchestrator.address) as process:
                await orchestrator.mesh.wait_connected(3)
                await trio.sleep(0.3)
                reply = await user.root.invoke(root, "/dms/node/deployment/new",
                                               {"ensemble": MOVABLE})
                deployment = reply["id"]
                while (status := await status_of(user, root, deployment))["phase"] != "running":
                    await trio.sleep(0.1)
                assert status["assignment"] == {"n": victim_did}
                orphans = processes_in(victim / "work")
                assert orphans
                await kill(process)
            assert processes_in(victim / "work") == orphans  # SIGKILL left them running
            while status["assignment"]["n"] == victim_did:
                await trio.sleep(0.2)
                status = await status_of(user, root, deployment)
            assert status["phase"] == "running"
            assert status["assignment"] == {"n": survivor.did}
            async with provider_process(seed, victim, org.did, grant,
                                        orchestrator.address) as process:
                while processes_in(victim / "work"):
                    await trio.sleep(0.1)
                await trio.sleep(0.5)  # what it decided is written before it is killed
                await kill(process)
            with NodeDatabase.open(victim / "state" / DATABASE_FILE) as database:
                held = database.list_reservations(
                    states=[ReservationState.RESERVED, ReservationState.ALLOCATED])
                assert held == ()
                assert database.list_hosted_deployments() == ()
            await user.root.invoke(root, "/dms/node/deployment/shutdown", {"id": deployment})
            while (await status_of(user, root, deployment))["phase"] != "completed":
                await trio.sleep(0.2)
            assert survivor.provider is not None
            assert survivor.provider.book.reservations() == ()
            while processes_in(tmp_path / "survivor"):
                await trio.sleep(0.1)
