"""An orchestrator node killed outright (SIGKILL) and started again from its state dir
resumes supervising its running deployment, and can shut it down: nothing is lost on
the providers, nothing is left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio

from dms.actor import Handle
from dms.node import Node, open_node
from dms.provider import ProviderConfig
from dms.workload import ExecutorKind
from ucan import SigningKey, delegate

from .conftest import machine
from .test_deploy_end_to_end import SERVICE

HERE = Path(__file__).parent


@contextlib.asynccontextmanager
async def orchestrator(seed: bytes, state: Path, org: str, grant: Path, listen: str,
                       bootstrap: str) -> AsyncIterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "orchestrator_process.py"), seed.hex(), str(state), org,
         str(grant), listen, bootstrap], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert process.stdout is not None
        address = await trio.to_thread.run_sync(process.stdout.readline)
        assert address.startswith("ws://"), address
        yield process, address.strip()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


async def test_a_killed_orchestrator_resumes_its_running_deployment_after_a_restart(
        tmp_path: Path) -> None:
    org = SigningKey.generate()
    seed = os.urandom(32)
    node_did = SigningKey.from_seed(seed).did
    grant = tmp_path / "grant.ucan"
    grant.write_bytes(delegate(org, node_did, "/dms/deployment", expiration=None).envelope)
    state = tmp_path / "orchestrator"
    async with contextlib.AsyncExitStack() as stack:
        providers = []
        for n in range(2):
            config = ProviderConfig(tmp_path / f"p{n}", (ExecutorKind.PROCESS,),
                                    capacity=machine())
            node = await stack.enter_async_context(open_node(
                listen="ws://127.0.0.1:0", anchors=[org.did], provider=config))
            node.add_proofs(delegate(org, node.did, "/dms/deployment", expiration=None))
            providers.append(node)
        listen = f"ws://127.0.0.1:{_free_port()}"
        user = await stack.enter_async_context(open_node(
            anchors=[org.did], bootstrap=[listen]))
        user.add_proofs(delegate(org, user.did, "/dms/node/deployment", expiration=None))
        root = _root_of(node_did)
        bootstrap = providers[0].address
        assert bootstrap is not None
        with trio.fail_after(90):
            async with orchestrator(seed, state, org.did, grant, listen, bootstrap) as (
                    process, _):
                await user.mesh.wait_connected(1)
                while len(providers[0].mesh.connected_peers()) < 2:
                    await trio.sleep(0.1)
                await trio.sleep(0.5)
                reply = await user.root.invoke(root, "/dms/node/deployment/new",
                                               {"ensemble": SERVICE})
                deployment = reply["id"]
                while (await _status(user, root, deployment))["phase"] != "running":
                    await trio.sleep(0.2)
                seen = await _status(user, root, deployment)
                process.send_signal(signal.SIGKILL)  # no shutdown, no revert: a crash
                await trio.to_thread.run_sync(process.wait)
            hosted = sum(len(n.provider._hosted) for n in providers if n.provider)
            assert hosted >= 1  # the workloads run on without their orchestrator
            async with orchestrator(seed, state, org.did, grant, listen, bootstrap):
                while True:
                    try:
                        status = await _status(user, root, deployment)
                    except Exception:  # noqa: BLE001 - the user's link is coming back
                        await trio.sleep(0.3)
                        continue
                    if any(e["kind"] == "resumed" for e in status["recent_events"]):
                        break
                    await trio.sleep(0.2)
                assert status["phase"] == "running"
                assert status["assignment"] == seen["assignment"]
                await user.root.invoke(root, "/dms/node/deployment/shutdown",
                                       {"id": deployment})
                while (await _status(user, root, deployment))["phase"] != "completed":
                    await trio.sleep(0.2)
            for node in providers:
                assert node.provider is not None
                assert node.provider.book.reservations() == ()
                assert node.provider._hosted == {}


def _root_of(did: str) -> Handle:
    return Handle(did, did, did, "root")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _status(user: Node, root: Handle, deployment: str) -> dict[str, Any]:
    reply = await user.root.invoke(root, "/dms/node/deployment/status", {"id": deployment})
    assert isinstance(reply, dict)
    return reply
