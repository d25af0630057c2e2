"""A provider whose state directory fills up while its allocation runs (the directory
is a 2 MiB tmpfs of the test's own, filled to the last byte, unmounted however the
test ends). The node runs on: no task of it ends, no restart loop. A request it cannot
record as accepted (its replay log is on that disk) is refused `StateUnavailable`,
naming the file and the cause, rather than run unrecorded (a restart could run it
twice), unless its behavior is declared replay-harmless: the orchestrator's status
polls are, so they are answered (their ids kept in memory only), the heartbeat they
carry keeps the deployment alive however long the disk stays full, and the
orchestrator never suspects the provider. Once space is freed it answers every request
again; restarted, nothing it had committed is lost: it re-adopts that process."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import trio

from dms.actor import RemoteError
from dms.node import Node, open_node
from tests.dms.deployment.conftest import FAST, Market, open_market
from ucan import delegate

from .faults import Victim, processes_in

JOB = """
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


@contextlib.contextmanager
def small_disk(where: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` for the block (root only)."""
    where.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill(disk: Path) -> Path:
    """Write zeros into `disk` until it has no byte left; the file that holds them."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (65536, 512):  # then the last partial block
            with contextlib.suppress(OSError):
                while True:
                    os.write(descriptor, b"\0" * chunk)
    finally:
        os.close(descriptor)
    assert shutil.disk_usage(disk).free < 4096
    return filler


SHORT_HEARTBEAT = attrs.evolve(FAST, heartbeat=2.0, lost_after=3.0)
"""Past the heartbeat in seconds. The other test keeps FAST's 30 s and frees the disk
well within it (its waits below add up to under 30 s)."""


async def _fill_under_running(market: Market, victim: Victim, nursery: trio.Nursery,
                              disk: Path) -> tuple[str, list[int], Path]:
    """A deployment running on `victim`, then its state disk filled: (the deployment,
    its processes, the file that fills the disk)."""
    await victim.start(nursery)
    with trio.fail_after(10):
        await market.orchestrator.mesh.wait_connected(2)
    await trio.sleep(0.2)
    deployment = await market.deploy(JOB)
    status = await market.wait_phase(deployment, "running", "failed")
    assert status["phase"] == "running", status["failure"]
    running = processes_in(victim.work)
    assert len(running) == 1
    return deployment, running, fill(disk)


async def _ask_root(market: Market, node: Node, *, until: str) -> tuple[Counter[str], str]:
    """Ask `node`'s root for the status of no deployment (a request that is not
    replay-harmless) until it is refused `until`: every refusal's name counted, and
    the last one's message."""
    answers: Counter[str] = Counter()
    message = ""
    async with open_node(network=market.network, bootstrap=["memory://victim"],
                         anchors=[market.org.did]) as asker:
        asker.add_proofs(delegate(market.org, asker.did, "/dms/node/deployment",
                                  expiration=None))
        await asker.mesh.wait_connected(1)
        with trio.fail_after(10):
            while not answers[until]:
                try:
                    await asker.root.invoke(node.root.handle, "/dms/node/deployment/status",
                                            {"id": "none-such"}, timeout=5)
                except RemoteError as error:
                    answers[error.name] += 1
                    message = error.message
    return answers, message


async def _refused_for_want_of_space(market: Market, node: Node) -> str:
    """The message of the `StateUnavailable` refusal of a request that is not
    replay-harmless: the replay log's last page has room for a few lines (answered
    `UnknownDeployment`), then refusals."""
    answers, message = await _ask_root(market, node, until="StateUnavailable")
    assert set(answers) <= {"UnknownDeployment", "StateUnavailable"}, answers
    return message


async def _still_running(market: Market, deployment: str, victim: Victim,
                         running: list[int]) -> None:
    """The deployment runs on `victim`'s same process, its orchestrator never having
    suspected the provider; the provider let no heartbeat lapse."""
    status = await market.status(deployment)
    assert status["phase"] == "running", status
    assert not [e for e in status["recent_events"] if e["kind"] == "provider_suspected"]
    assert processes_in(victim.work) == running
    assert victim.node is not None and victim.node.provider is not None
    assert victim.node.provider.counters["heartbeats_lapsed"] == 0
    assert victim.node.system.metrics()["accepted.unrecorded"] > 0


async def test_a_state_disk_filling_up_under_a_running_allocation_keeps_it_running(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=0, settings=FAST) as market, \
            trio.open_nursery() as nursery:
        victim = Victim(market, tmp_path / "victim")
        with small_disk(victim.root / "state") as disk:
            deployment, running, filler = await _fill_under_running(market, victim,
                                                                    nursery, disk)
            node = victim.node
            assert node is not None and node.provider is not None
            committed = node.provider.book.reservations()

            message = await _refused_for_want_of_space(market, node)
            assert f"{disk}/replays" in message and "No space left on device" in message

            # The orchestrator's status polls are replay-harmless: taken, unrecorded.
            await trio.sleep(1)  # several polls
            await _still_running(market, deployment, victim, running)

            filler.unlink()
            answers, _ = await _ask_root(market, node, until="UnknownDeployment")
            assert answers == Counter(UnknownDeployment=1)  # recorded again, then run

            # When its orchestrator last asked is written every second: once that is on
            # disk again, a restart does not find the heartbeat lapsed.
            await trio.sleep(2.5)
            await victim.kill()  # as by SIGKILL: its process runs on
            node = await victim.start(nursery)
            assert node.provider is not None
            assert node.provider.book.reservations() == committed
            await trio.sleep(1)
            assert processes_in(victim.work) == running  # re-adopted, not restarted
            status = await market.status(deployment)
            assert status["phase"] == "running", status
            await market.shutdown(deployment)
            await market.wait_phase(deployment, "completed")
            await victim.kill()
        nursery.cancel_scope.cancel()
    assert not os.path.ismount(disk)


async def test_a_state_disk_full_past_the_heartbeat_keeps_the_allocation_running(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=0, settings=SHORT_HEARTBEAT) as market, \
            trio.open_nursery() as nursery:
        victim = Victim(market, tmp_path / "victim")
        with small_disk(victim.root / "state") as disk:
            deployment, running, _ = await _fill_under_running(market, victim, nursery, disk)
            try:
                assert victim.node is not None
                message = await _refused_for_want_of_space(market, victim.node)
                assert "No space left on device" in message
                await trio.sleep(SHORT_HEARTBEAT.heartbeat + 2)  # past it, still full
                await _still_running(market, deployment, victim, running)
            finally:
                await victim.kill()
                nursery.cancel_scope.cancel()
