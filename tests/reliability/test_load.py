"""Load: small ensembles asked for all at once on in-memory providers. Every one ends
running or failed with a reason, no provider is ever oversubscribed, and once they are
shut down each provider's free resources equal what it offers, to the millicore and
byte. (bench/deploy_bench.py part 2 is the 50-on-10 figure over loopback websockets.)"""

from __future__ import annotations

import time
from pathlib import Path

import trio

from tests.dms.deployment.conftest import open_market

from .faults import processes_in

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
DEPLOYMENTS, PROVIDERS = 20, 5


async def test_concurrent_deployments_all_end_with_a_phase_and_leave_exact_accounting(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=PROVIDERS) as market:
        ids: list[str] = []
        began = time.perf_counter()

        async def deploy() -> None:
            ids.append(await market.deploy(SMALL, deadline=40))

        async with trio.open_nursery() as nursery:
            for _ in range(DEPLOYMENTS):
                nursery.start_soon(deploy)
        final: dict[str, dict[str, object]] = {}
        with trio.fail_after(45):
            while len(final) < DEPLOYMENTS:
                for deployment in ids:
                    if deployment not in final:
                        status = await market.status(deployment)
                        if status["phase"] in ("running", "failed"):
                            final[deployment] = status
                for node in market.providers:
                    book = node.provider.book
                    held = sum(r.millicores for r in book.reservations())
                    assert held <= book.offered.millicores
                await trio.sleep(0.1)
        took = time.perf_counter() - began
        failed = {d: s["failure"] for d, s in final.items() if s["phase"] == "failed"}
        assert all(failed.values()), failed  # a failure always says why
        # 5 providers of 4 cores hold 80 quarter-core jobs: nothing had to fail.
        assert not failed, failed
        print(f"{DEPLOYMENTS} deployments on {PROVIDERS} providers: "
              f"{DEPLOYMENTS / took:.1f} deployments/s")
        held = sum(len(n.provider.book.reservations()) for n in market.providers)
        assert held == DEPLOYMENTS
        async with trio.open_nursery() as nursery:
            for deployment in ids:
                nursery.start_soon(market.shutdown, deployment)
        for deployment in ids:
            await market.wait_phase(deployment, "completed")
        for n, node in enumerate(market.providers):
            book = node.provider.book
            assert book.reservations() == ()
            assert book.free(time.time()) == book.offered
            assert not node.provider._hosted
            with trio.fail_after(5):
                while processes_in(tmp_path / f"provider{n}"):
                    await trio.sleep(0.05)
