"""`/dms/node/deployment/logs`: an allocation's output, read by its deployment's owner
through the orchestrator, from a position on without repeats, bounded, and a clear
refusal for what is not there."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from dms.actor import RemoteError
from dms.node import open_node
from ucan import delegate

from .conftest import FAST, Market, open_market

LOGS = "/dms/node/deployment/logs"
TALKER = """
version: V1
allocations:
  talker:
    type: service
    executor: process
    resources: {cpu: 0.1, ram: 32Mi, disk: 16Mi}
    execution:
      command: sh
      args: ["-c", "echo hello; echo oops >&2; i=0; while true; do i=$((i+1)); echo line $i; sleep 0.05; done"]
nodes:
  n: {allocations: [talker]}
"""


async def logs(market: Market, deployment: str, allocation: str = "talker",
               **query: Any) -> dict[str, Any]:
    reply = await market.user.root.invoke(
        market.orchestrator.root.handle, LOGS,
        {"id": deployment, "allocation": allocation, "query": query})
    assert isinstance(reply, dict)
    return reply


async def running(market: Market) -> str:
    deployment = await market.deploy(TALKER)
    status = await market.wait_phase(deployment, "running", "failed")
    assert status["phase"] == "running", status["failure"]
    return deployment


async def test_the_owner_reads_both_streams_of_a_running_allocation(tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market:
        deployment = await running(market)
        await trio.sleep(0.3)
        reply = await logs(market, deployment)
        assert reply["stdout"]["text"].startswith("hello\nline 1\n")
        assert reply["stderr"]["text"] == "oops\n"
        only_err = await logs(market, deployment, stdout=False)
        assert only_err["stdout"] is None and only_err["stderr"]["text"] == "oops\n"
        tail = await logs(market, deployment, tail=2, stderr=False)
        assert len(tail["stdout"]["text"].splitlines()) == 2


async def test_following_from_each_next_position_repeats_and_misses_no_line(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market:
        deployment = await running(market)
        reply = await logs(market, deployment, tail=0, stderr=False)
        text = reply["stdout"]["text"]
        assert text == ""  # a tail of 0 lines: only the position
        position = reply["stdout"]["next"]
        for _ in range(5):
            await trio.sleep(0.2)
            reply = await logs(market, deployment, stderr=False, stdout_after=position)
            assert not reply["stdout"]["restarted"] and reply["stdout"]["skipped"] == 0
            text += reply["stdout"]["text"]
            position = reply["stdout"]["next"]
        numbers = [int(n) for n in re.findall(r"^line (\d+)$", text, re.MULTILINE)]
        assert len(numbers) >= 5
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


async def test_a_tail_past_the_cap_is_refused_naming_the_field(tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market:
        deployment = await running(market)
        with pytest.raises(RemoteError, match=r"query.tail: 10001 .* 0 to 10000") as refused:
            await logs(market, deployment, tail=10_001)
        assert refused.value.name == "InvalidArgs"


async def test_an_ended_deployment_has_no_logs_to_read(tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market:
        deployment = await running(market)
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed", "failed")
        with pytest.raises(RemoteError, match="has ended .completed.") as ended:
            await logs(market, deployment)
        assert ended.value.name == "DeploymentEnded"


async def test_an_unknown_allocation_or_deployment_is_named(tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market:
        deployment = await running(market)
        with pytest.raises(RemoteError, match="no allocation 'nope' .*it has: talker") as no:
            await logs(market, deployment, "nope")
        assert no.value.name == "UnknownAllocation"
        with pytest.raises(RemoteError, match="no deployment 0000 of yours") as none:
            await logs(market, "0000")
        assert none.value.name == "UnknownDeployment"


async def test_another_user_cannot_read_the_logs(tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market, open_node(
            network=market.network, bootstrap=["memory://orchestrator"],
            anchors=[market.org.did]) as stranger:
        stranger.add_proofs(delegate(market.org, stranger.did, "/dms/node/deployment",
                                     expiration=None))
        deployment = await running(market)
        with trio.fail_after(5):
            await stranger.mesh.wait_connected(1)
        with pytest.raises(RemoteError) as refused:
            await stranger.root.invoke(market.orchestrator.root.handle, LOGS,
                                       {"id": deployment, "allocation": "talker"})
        assert refused.value.name == "UnknownDeployment"


async def test_an_allocation_whose_provider_is_gone_says_so(tmp_path: Path) -> None:
    settings = attrs.evolve(FAST, request_timeout=1.0)
    async with open_market(tmp_path, providers=1, settings=settings) as market:
        deployment = await running(market)
        await market.providers[0].mesh.aclose()
        with trio.fail_after(5), pytest.raises(RemoteError, match="provider .* is gone") \
                as gone:
            await logs(market, deployment)
        assert gone.value.name == "ProviderGone"


RESTARTING = """
version: V1
allocations:
  talker:
    type: service
    executor: process
    resources: {cpu: 0.1, ram: 16Mi, disk: 1Mi}
    execution: {command: sh, args: ["-c", "echo run; sleep 0.5; exit 3"]}
    failure_recovery: one_for_one
nodes:
  n: {allocations: [talker]}
"""


async def test_a_position_from_before_a_restart_is_answered_as_restarted(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market:
        deployment = await market.deploy(RESTARTING)
        await market.wait_phase(deployment, "running")
        with trio.fail_after(10):
            while (first := await logs(market, deployment, stderr=False))["stdout"][
                    "text"] != "run\n":
                await trio.sleep(0.05)  # this run has printed: its position is past 0
        restarts = (await market.status(deployment))["allocations"][0]["restarts"]
        with trio.fail_after(20):
            while True:  # a later run has printed
                status = await market.status(deployment)
                if status["allocations"][0]["restarts"] > restarts \
                        and status["allocations"][0]["state"] == "running":
                    break
                await trio.sleep(0.1)
        await trio.sleep(0.2)
        again = await logs(market, deployment, stderr=False,
                           stdout_after=first["stdout"]["next"])
        assert again["stdout"]["restarted"]
        assert again["stdout"]["text"] == "run\n"  # the new run's, from its start
        assert again["stdout"]["next"]["run"] != first["stdout"]["next"]["run"]
