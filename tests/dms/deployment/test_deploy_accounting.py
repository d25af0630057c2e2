"""A provider's free resources are exact under concurrency: deployments racing for the
same providers never oversubscribe one, and once they end free equals offered again."""

from __future__ import annotations

from pathlib import Path

import trio

from .conftest import machine, open_market

SMALL = """
version: V1
allocations:
  job:
    type: service
    executor: process
    resources: {cpu: 0.25, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["120"]}
nodes:
  n: {allocations: [job]}
"""


async def test_racing_deployments_fill_providers_exactly_and_leave_exact_accounting(
        tmp_path: Path) -> None:
    # 3 providers x 4 cores = 48 slots of a quarter core, for 48 deployments at once: they
    # all run only if no slot is lost or given twice (stale bids are asked again).
    async with open_market(tmp_path, providers=3, capacities=[machine(cpu=4)] * 3) as market:
        ids = []
        for _ in range(48):
            ids.append(await market.deploy(SMALL, deadline=60))
        phases: dict[str, str] = {}
        with trio.fail_after(90):
            while len(phases) < 48:
                for deployment in ids:
                    if deployment not in phases:
                        status = await market.status(deployment)
                        if status["phase"] in ("running", "failed"):
                            phases[deployment] = status["phase"]
                for node in market.providers:
                    book = node.provider.book
                    held = sum(r.millicores for r in book.reservations())
                    assert held <= book.offered.millicores
                await trio.sleep(0.2)
        running = [d for d, phase in phases.items() if phase == "running"]
        assert len(running) == 48, [s for s in phases.values() if s != "running"]
        for node in market.providers:
            assert node.provider.book.free(0).millicores == 0
        for deployment in running:
            await market.shutdown(deployment)
        with trio.fail_after(60):
            for deployment in running:
                await market.wait_phase(deployment, "completed", timeout=60)
        for node in market.providers:
            book = node.provider.book
            assert book.reservations() == ()
            assert book.free(0) == book.offered
