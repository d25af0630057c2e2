"""An orchestrator node killed outright (SIGKILL) and started again from its state dir
resumes supervising its running deployment, and can shut it down: nothing is lost on
the providers, nothing is left behind. (Killed before its deployment ran:
tests/reliability/test_orchestrator_killed.py.)"""

from __future__ import annotations

import signal
from pathlib import Path

import trio

from tests.reliability.faults import open_remote_market

from .test_deploy_end_to_end import SERVICE


async def test_a_killed_orchestrator_resumes_its_running_deployment_after_a_restart(
        tmp_path: Path) -> None:
    async with open_remote_market(tmp_path) as market:
        providers = market.providers
        with trio.fail_after(90):
            async with market.orchestrator() as process:
                await market.wait_connected()
                deployment = await market.deploy(SERVICE)
                while (await market.status(deployment))["phase"] != "running":
                    await trio.sleep(0.2)
                seen = await market.status(deployment)
                process.send_signal(signal.SIGKILL)  # no shutdown, no revert: a crash
                await trio.to_thread.run_sync(process.wait)
            hosted = sum(len(n.provider._hosted) for n in providers if n.provider)
            assert hosted >= 1  # the workloads run on without their orchestrator
            async with market.orchestrator():
                while True:
                    status = await market.status_once_back(deployment)
                    if any(e["kind"] == "resumed" for e in status["recent_events"]):
                        break
                    await trio.sleep(0.2)
                assert status["phase"] == "running"
                assert status["assignment"] == seen["assignment"]
                await market.user.root.invoke(market.handle, "/dms/node/deployment/shutdown",
                                              {"id": deployment})
                while (await market.status(deployment))["phase"] != "completed":
                    await trio.sleep(0.2)
            for node in providers:
                assert node.provider is not None
                assert node.provider.book.reservations() == ()
                assert node.provider._hosted == {}
