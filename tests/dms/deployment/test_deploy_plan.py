"""`/dms/node/deployment/plan`: bids and a solve, nothing committed. The placement it
would make (providers, prices), or for an unplaceable ensemble the explanation and who
declined what; every provider holds after a plan exactly what it held before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from dms.actor import RemoteError

from .conftest import GiB, Market, machine, open_market
from .test_deploy_end_to_end import SERVICE

PLAN = "/dms/node/deployment/plan"
TOO_BIG = SERVICE.replace("ram: 32Mi", "ram: 64Gi")
NO_EXECUTOR = SERVICE.replace("executor: process", "executor: docker").replace(
    "execution: {command: sleep, args: [\"300\"]}", "execution: {image: alpine}")


async def plan(market: Market, ensemble: str, **args: Any) -> dict[str, Any]:
    reply = await market.user.root.invoke(market.orchestrator.root.handle, PLAN,
                                          {"ensemble": ensemble, **args}, timeout=30)
    assert isinstance(reply, dict)
    return reply


def free(market: Market) -> list[Any]:
    return [(node.provider.book.free(0), node.provider.book.reservations())
            for node in market.providers]


async def test_a_plan_gives_the_placement_with_prices_and_leaves_nothing(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=2, prices=[3.0, 1.0],
                           capacities=[machine(), machine()]) as market:
        before = free(market)
        reply = await plan(market, SERVICE)
        assert reply["placeable"], reply["text"]
        cheap = market.providers[1].peer_id
        assert {n["node"]: n["provider"] for n in reply["nodes"]} == {"a": cheap, "b": cheap}
        assert [n["price"] for n in reply["nodes"]] == [1.0, 1.0]
        assert reply["total_price"] == 2.0
        assert sorted(reply["bidders"]) == sorted(p.peer_id for p in market.providers)
        assert free(market) == before  # no reservation, no allocation
        assert all(not node.provider._hosted for node in market.providers)
        status = await market.user.root.invoke(market.orchestrator.root.handle,
                                               "/dms/node/deployment/list", None)
        assert status == {"deployments": []}  # a plan is no deployment


async def test_an_unplaceable_plan_explains_and_names_each_decline(tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=2) as market:
        before = free(market)
        began = trio.current_time()
        reply = await plan(market, TOO_BIG, timeout=30)
        assert trio.current_time() - began < 5  # one round: what is free now
        assert not reply["placeable"] and reply["nodes"] == []
        assert reply["explanation"]["reason"] == "node_without_candidates"
        assert "no suitable providers for a, b" in reply["text"]
        declined = {(d["provider"], d["node"]) for d in reply["declines"]}
        assert declined == {(p.peer_id, n) for p in market.providers for n in ("a", "b")}
        assert all(any(r.startswith("ram:") for r in d["reasons"]) for d in reply["declines"])
        assert free(market) == before


async def test_a_plan_no_provider_can_ever_take_answers_after_one_round(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market:
        began = trio.current_time()
        reply = await plan(market, NO_EXECUTOR, timeout=30)
        assert trio.current_time() - began < 5  # not the 30 s it was given
        assert not reply["placeable"]
        assert any("executor docker not available here" in r
                   for d in reply["declines"] for r in d["reasons"])


async def test_an_invalid_ensemble_is_refused_before_any_broadcast(tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1) as market:
        with pytest.raises(RemoteError) as refused:
            await plan(market, "version: V1\nallocations: {}\nnodes: {}\n")
        assert refused.value.name == "InvalidEnsemble"
        assert market.providers[0].provider.counters["bids"] == 0
        assert market.providers[0].provider.counters["declines"] == 0


async def test_plans_are_bounded_per_user(tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=1,
                           capacities=[machine(ram=1 * GiB)]) as market:
        failures: list[str] = []

        async def one() -> None:
            try:
                await plan(market, TOO_BIG)
            except RemoteError as error:
                failures.append(error.name)

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(one)
        assert failures == ["Busy"]  # two at once per user; the third is told


async def test_a_plan_across_providers_gives_their_measured_round_trip(
        tmp_path: Path) -> None:
    one_node_each = [machine(cpu=0.15), machine(cpu=0.15)]
    async with open_market(tmp_path, providers=2, capacities=one_node_each) as market:
        with trio.fail_after(15):
            while not (reply := await plan(market, SERVICE))["links"]:
                await trio.sleep(0.8)  # the providers measure each other once linked
        chosen = {n["provider"] for n in reply["nodes"]}
        assert chosen == {p.peer_id for p in market.providers}  # one node on each
        (link,) = reply["links"]
        assert {link["a"], link["b"]} == chosen and link["rtt_ms"] > 0
