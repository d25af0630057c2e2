"""Placement constraints through the whole flow: edge round-trip times measured by the
providers themselves, locations, pinned peers, GPUs a provider does not have."""

from __future__ import annotations

from pathlib import Path

import attrs

from dms.ensemble._requirements import Location

from .conftest import machine, open_market

TWO = """
version: V1
allocations:
  front:
    type: service
    executor: process
    resources: {cpu: 1, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["120"]}
  back:
    type: service
    executor: process
    resources: {cpu: 1, ram: 16Mi, disk: 1Mi}
    execution: {command: sleep, args: ["120"]}
nodes:
  f: {allocations: [front]}
  b: {allocations: [back]}
"""


async def test_an_edge_constraint_is_met_with_the_round_trip_times_providers_measured(
        tmp_path: Path) -> None:
    edged = TWO + "edge_constraints:\n  - edges: [f, b]\n    rtt: 200ms\n"
    # One core each: the two nodes must sit on two providers, whose link was measured.
    async with open_market(tmp_path, providers=2, capacities=[machine(cpu=1)] * 2) as market:
        for node in market.providers:
            assert node.measured_rtts()  # they pinged each other (and the orchestrator)
        deployment = await market.deploy(edged)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        assert len(set(status["assignment"].values())) == 2
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")


async def test_location_rules_pick_the_provider_in_the_accepted_place(tmp_path: Path) -> None:
    placed = TWO.replace("  f: {allocations: [front]}\n  b: {allocations: [back]}\n",
                         "  f:\n    allocations: [front, back]\n"
                         "    location: {accept: [{continent: EU, country: DE}]}\n")
    capacities = [attrs.evolve(machine(), location=Location(continent="EU", country=country))
                  for country in ("FR", "DE", "PT")]
    async with open_market(tmp_path, providers=3, capacities=capacities) as market:
        deployment = await market.deploy(placed)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        assert status["assignment"] == {"f": market.providers[1].did}
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")


async def test_a_gpu_nobody_has_fails_naming_the_gpu_and_every_provider(tmp_path: Path) -> None:
    gpu = TWO.replace("resources: {cpu: 1, ram: 16Mi, disk: 1Mi}\n    execution: {command: sleep, "
                      "args: [\"120\"]}\n  back",
                      "resources: {cpu: 1, ram: 16Mi, disk: 1Mi, gpus: [{vendor: nvidia}]}\n"
                      "    execution: {command: sleep, args: [\"120\"]}\n  back", 1)
    async with open_market(tmp_path, providers=2) as market:
        deployment = await market.deploy(gpu, deadline=2)
        status = await market.wait_phase(deployment, "failed")
        assert "gpu" in status["failure"]
        for node in market.providers:
            assert node.did in status["failure"]


async def test_a_pinned_node_lands_on_its_peer_and_an_excluded_peer_gets_nothing(
        tmp_path: Path) -> None:
    async with open_market(tmp_path, providers=3) as market:
        first, second, third = (node.did for node in market.providers)
        pinned = TWO.replace("  f: {allocations: [front]}",
                             f"  f: {{allocations: [front], peer: '{third}'}}")
        pinned += f"exclude_peers: ['{first}']\n"
        deployment = await market.deploy(pinned)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        assert status["assignment"]["f"] == third
        assert first not in status["assignment"].values()
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")


async def test_an_edge_asking_for_bandwidth_is_met_with_a_transfer_the_providers_timed(
        tmp_path: Path) -> None:
    edged = TWO + "edge_constraints:\n  - edges: [f, b]\n    bw: 1Mbps\n"
    async with open_market(tmp_path, providers=2, capacities=[machine(cpu=1)] * 2) as market:
        deployment = await market.deploy(edged)
        status = await market.wait_phase(deployment, "running", "failed")
        assert status["phase"] == "running", status["failure"]
        assert len(set(status["assignment"].values())) == 2
        events = await market.user.root.invoke(market.orchestrator.root.handle,
                                               "/dms/node/deployment/events",
                                               {"id": deployment})
        measured = [e for e in events["events"] if e["kind"] == "bandwidth_measured"]
        assert measured and measured[-1]["payload"]["pairs"] >= 1, measured
        await market.shutdown(deployment)
        await market.wait_phase(deployment, "completed")


async def test_an_edge_asking_for_more_bandwidth_than_measured_fails_saying_so(
        tmp_path: Path) -> None:
    edged = TWO + "edge_constraints:\n  - edges: [f, b]\n    bw: 100000Gbps\n"
    async with open_market(tmp_path, providers=2, capacities=[machine(cpu=1)] * 2) as market:
        deployment = await market.deploy(edged, deadline=3)
        status = await market.wait_phase(deployment, "failed")
        assert "bandwidth" in status["failure"] or "bw" in status["failure"]
