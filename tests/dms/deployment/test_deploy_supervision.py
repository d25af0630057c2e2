"""What happens to allocations reaches the user: a task's exit code and log tail, a
service restarted by its policy, through the deployment's event stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from .conftest import Market, open_market

TASK = """
version: V1
allocations:
  job:
    type: task
    executor: process
    resources: {cpu: 0.1, ram: 16Mi, disk: 1Mi}
    execution: {command: sh, args: ["-c", "echo all done; exit 0"]}
nodes:
  n: {allocations: [job]}
"""

FLAKY = """
version: V1
allocations:
  svc:
    type: service
    executor: process
    resources: {cpu: 0.1, ram: 16Mi, disk: 1Mi}
    execution: {command: sh, args: ["-c", "sleep 0.3; echo oops >&2; exit 3"]}
    failure_recovery: one_for_one
nodes:
  n: {allocations: [svc]}
"""


async def events_of(market: Market, deployment: str) -> list[dict[str, Any]]:
    reply = await market.user.root.invoke(market.orchestrator.root.handle,
                                          "/dms/node/deployment/events",
                                          {"id": deployment, "after": 0})
    return list(reply["events"])


async def test_a_task_runs_to_completion_and_reports_its_exit_code_and_output(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market:
        deployment = await market.deploy(TASK)
        status = await market.wait_phase(deployment, "completed", "failed")
        assert status["phase"] == "completed", status["failure"]
        done = [e["payload"] for e in await events_of(market, deployment)
                if e["kind"] == "allocation" and e["payload"]["event"] == "completed"]
        assert done and done[0]["exit_code"] == 0 and "all done" in done[0]["logs_tail"]
        assert market.providers[0].provider.book.reservations() == ()


async def test_a_service_that_exits_is_restarted_by_its_policy_and_the_user_sees_it(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market:
        deployment = await market.deploy(FLAKY)
        await market.wait_phase(deployment, "running")
        with trio.fail_after(20):
            while True:
                kinds = [e["payload"]["event"] for e in await events_of(market, deployment)
                         if e["kind"] == "allocation"]
                if kinds.count("restarting") >= 2:
                    break
                await trio.sleep(0.2)
        exits = [e["payload"] for e in await events_of(market, deployment)
                 if e["kind"] == "allocation" and e["payload"]["event"] == "exited"]
        assert exits[0]["exit_code"] == 3 and "oops" in exits[0]["logs_tail"]
        status = await market.status(deployment)
        assert status["allocations"][0]["restarts"] >= 1
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")


SERVICE_AND_TASK = """
version: V1
allocations:
  svc:
    type: service
    executor: process
    resources: {cpu: 1, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["120"]}
  job:
    type: task
    executor: process
    resources: {cpu: 2, ram: 16Mi, disk: 1Mi}
    execution: {command: sh, args: ["-c", "echo all done; exit 0"]}
nodes:
  s: {allocations: [svc]}
  t: {allocations: [job]}
"""


async def test_a_completed_tasks_node_gives_back_what_it_held_while_the_rest_runs_on(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market:
        provider = market.providers[0].provider
        assert provider is not None
        offered = provider.book.offered.millicores
        deployment = await market.deploy(SERVICE_AND_TASK)
        await market.wait_phase(deployment, "running")
        with trio.fail_after(20):
            while [r.node for r in provider.book.reservations()] != ["s"]:
                await trio.sleep(0.05)
        assert provider.book.free(provider.clock()).millicores == offered - 1000
        await trio.sleep(1.0)  # polled on: the completed task is reported, not lost
        status = await market.status(deployment)
        assert status["phase"] == "running"
        assert {a["name"]: a["state"] for a in status["allocations"]}["job"] == "completed"
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")
        assert provider.book.reservations() == ()
