"""A deployment that is not placeable: why is said once (not every round), and one that
no provider can ever take fails at once with the providers' reasons instead of waiting
out its deadline."""

from __future__ import annotations

from pathlib import Path

import attrs
import trio

from ucan import SigningKey

from .conftest import FAST, machine, open_market
from .test_deploy_end_to_end import SERVICE
from .test_deploy_hostile import SlowToBid, provider_on
from .test_deploy_plan import NO_EXECUTOR, TOO_BIG


async def events(market: object, deployment: str) -> list[dict[str, object]]:
    reply = await market.user.root.invoke(  # type: ignore[attr-defined]
        market.orchestrator.root.handle,  # type: ignore[attr-defined]
        "/dms/node/deployment/events", {"id": deployment})
    return list(reply["events"])


async def test_a_deployment_no_provider_can_ever_take_fails_at_once_saying_why(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=2) as market:
        began = trio.current_time()
        deployment = await market.deploy(NO_EXECUTOR, deadline=60)
        status = await market.wait_phase(deployment, "failed", "running", timeout=10)
        assert trio.current_time() - began < 5  # one round, not the 60 s deadline
        assert status["phase"] == "failed"
        assert "no provider that answered can ever host a, b" in status["failure"]
        assert "executor docker not available here (have: process)" in status["failure"]


async def test_a_deployment_waiting_for_room_says_why_once(tmp_path: Path) -> None:
    settings = attrs.evolve(FAST, bid_round=0.2)
    async with open_market(tmp_path, providers=1, settings=settings) as market:
        deployment = await market.deploy(TOO_BIG, deadline=2)
        status = await market.wait_phase(deployment, "failed", "running", timeout=10)
        assert status["phase"] == "failed" and "ram:" in status["failure"]
        seen = await events(market, deployment)
        rounds = [e for e in seen if e["kind"] == "phase" and e["payload"]["phase"] == "bidding"]
        unplaceable = [e for e in seen if e["kind"] == "unplaceable"]
        assert len(rounds) >= 3  # asked again and again: room may come free
        assert len(unplaceable) == 1  # the same answer each time, said once
        assert "declines:" in str(unplaceable[0]["payload"]["explanation"])


async def test_a_placeable_deployment_is_not_failed_early(tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market:
        deployment = await market.deploy(SERVICE)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]


async def test_a_node_pinned_to_a_peer_yet_to_answer_is_waited_for(tmp_path: Path) -> None:
    absent = SigningKey.generate().did  # every provider that answers declines: pinned
    pinned = SERVICE.replace("  a: {allocations: [db]}", f"  a: {{allocations: [db], "
                                                         f"peer: '{absent}'}}")
    async with open_market(tmp_path, providers=1) as market:
        began = trio.current_time()
        deployment = await market.deploy(pinned, deadline=2)
        status = await market.wait_phase(deployment, "failed", "running", timeout=10)
        assert trio.current_time() - began >= 2  # its deadline, not one round
        assert "not running within 2 s" in status["failure"]
        assert "can ever host" not in status["failure"]


SPLIT = """
version: V1
allocations:
  a: {executor: process, resources: {cpu: 0.6, ram: 16Mi, disk: 1Mi}, execution: {command: sleep, args: ["60"]}}
  b: {executor: process, resources: {cpu: 0.6, ram: 16Mi, disk: 1Mi}, execution: {command: sleep, args: ["60"]}}
nodes:
  x: {allocations: [a]}
  y: {allocations: [b]}
"""


async def test_what_the_first_answers_of_a_round_cannot_place_is_not_reported(
        tmp_path: Path) -> None:
    # Every node had a candidate after the first bid, which could not hold both: the
    # user saw "not placeable yet" just before it was placed on the second bid.
    async with open_market(tmp_path, providers=1, capacities=[machine(cpu=1)]) as market, \
            provider_on(market, tmp_path, "late", SlowToBid):
        deployment = await market.deploy(SPLIT)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        assert [e for e in await events(market, deployment) if e["kind"] == "unplaceable"] == []
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")
