"""An orchestrator node SIGKILLed mid-deployment, once both providers hold its commits
(reservations under a lease) and before it allocated anything (`orchestrator_process.py
hang-before-allocate` stops it exactly there). Never coming back: the providers' leases
run out and each offers exactly what it did before, with nothing running. Started
again from its state directory: its orchestrator actor (the same lasting id) reverts the
commits on both providers at once, long before a 30 s lease would have run out, then
reports the deployment failed saying why, and the providers take the next deployment in
full."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import trio

from dms.node import Node

from .faults import RemoteMarket, open_remote_market, processes_in

# Three of a provider's four cores per node: one node on each of the two providers.
TWO_NODES = """
version: V1
allocations:
  a:
    type: service
    executor: process
    resources: {cpu: 3, ram: 32Mi, disk: 16Mi}
    execution: {command: sleep, args: ["300"]}
  b:
    type: service
    executor: process
    resources: {cpu: 3, ram: 32Mi, disk: 16Mi}
    execution: {command: sleep, args: ["300"]}
nodes:
  na: {allocations: [a]}
  nb: {allocations: [b]}
"""
LEASE = 3.0
LONG_LEASE = 30.0
"""The default lease: a restarted orchestrator frees its providers well within it."""
FREED_WITHIN = 10.0
HANG = "hang-before-allocate"


async def _kill_mid_commit(market: RemoteMarket, process: subprocess.Popen[str]) -> str:
    """Deploy, wait until every commit is in, SIGKILL the orchestrator: the id."""
    await market.wait_connected()
    deployment = await market.deploy(TWO_NODES)
    assert await market.read_line(process) == "committed"
    held = []
    for node in market.providers:
        assert node.provider is not None
        held += node.provider.book.reservations()
        assert not node.provider._hosted
    assert sorted(r.node for r in held) == ["na", "nb"], held  # one on each provider
    process.send_signal(signal.SIGKILL)  # no revert, no goodbye
    await trio.to_thread.run_sync(process.wait)
    return deployment


async def _wait_released(market: RemoteMarket, within: float = LEASE + 15) -> None:
    with trio.fail_after(within):
        while any(node.provider and node.provider.book.reservations()
                  for node in market.providers):
            await trio.sleep(0.1)


def _offers_everything(node: Node, work: Path, *, by: str = "leases_expired") -> None:
    service = node.provider
    assert service is not None
    assert service.book.reservations() == ()
    assert service.book.free(time.time()) == service.book.offered
    assert service._hosted == {}
    assert processes_in(work) == []
    assert service.counters[by] == 1  # released by what the test says, not by luck
    others = {"leases_expired", "taken_down"} - {by}
    assert all(service.counters[other] == 0 for other in others), service.counters


async def test_an_orchestrator_killed_mid_commit_that_never_returns_leaves_only_expired_leases(
        tmp_path: Path) -> None:
    async with open_remote_market(tmp_path) as market:
        with trio.fail_after(60):
            async with market.orchestrator(str(LEASE), HANG) as process:
                await _kill_mid_commit(market, process)
            await _wait_released(market)
        for n, node in enumerate(market.providers):
            _offers_everything(node, tmp_path / f"p{n}")


async def test_an_orchestrator_killed_mid_commit_and_restarted_reports_it_failed_and_owns_nothing(
        tmp_path: Path) -> None:
    async with open_remote_market(tmp_path) as market:
        with trio.fail_after(90):
            async with market.orchestrator(str(LONG_LEASE), HANG) as process:
                deployment = await _kill_mid_commit(market, process)
            async with market.orchestrator(str(LONG_LEASE)):
                # Both reservations are held until the restarted node reverts them: well
                # within the lease, which alone would have held them for 30 s.
                await _wait_released(market, within=FREED_WITHIN)
                for n, node in enumerate(market.providers):
                    _offers_everything(node, tmp_path / f"p{n}", by="taken_down")
                while (status := await market.status_once_back(deployment))["phase"] \
                        != "failed":
                    await trio.sleep(0.1)
                assert "restarted while it was allocating" in status["failure"], status
                assert "reverted the deployment on every provider" in status["failure"]

                again = await market.deploy(TWO_NODES)  # every core it offered is back
                while (status := await market.status(again))["phase"] not in (
                        "running", "failed"):
                    await trio.sleep(0.2)
                assert status["phase"] == "running", status["failure"]
                await market.user.root.invoke(market.handle, "/dms/node/deployment/shutdown",
                                              {"id": again})
                while (await market.status(again))["phase"] != "completed":
                    await trio.sleep(0.2)
                assert (await market.status(deployment))["phase"] == "failed"
        for node in market.providers:
            assert node.provider is not None
            assert node.provider.book.reservations() == ()
            assert node.provider._hosted == {}
