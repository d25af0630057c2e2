"""What each node asks of its provider, derived from the examples."""

from __future__ import annotations

import pathlib

from dms.ensemble import derive_requirements, load_ensemble, load_ensemble_file
from dms.ensemble._requirements import (
    EdgeRequirement,
    Gpu,
    Location,
    PortRequirement,
    Resources,
)

EXAMPLES = pathlib.Path(__file__).parents[3] / "examples" / "ensembles"
GiB = 1024**3


def test_node_resources_are_the_sum_of_its_allocations() -> None:
    [node] = derive_requirements(load_ensemble_file(EXAMPLES / "web-db.yaml")).nodes
    assert node.name == "app"
    assert node.resources == Resources(cpu=1.5, ram=GiB + GiB // 2, disk=11 * GiB)
    assert node.executors == frozenset({"docker"})
    assert node.ports == (PortRequirement(public=8080, private=80, allocation="web"),)


def test_templates_pins_locations_and_edges_are_carried_over() -> None:
    requirements = derive_requirements(load_ensemble_file(EXAMPLES / "multi-region.yaml"))
    nodes = {node.name: node for node in requirements.nodes}
    assert nodes["control"].peer == "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    assert nodes["eu"].resources.gpus == (Gpu(vendor="nvidia", model="A100", memory=40 * GiB),)
    assert nodes["eu"].location.admits(Location(continent="EU", country="DE", city="Munich"))
    assert not nodes["eu"].location.admits(Location(continent="EU", country="IT"))
    assert nodes["us"].location.reject == (Location(continent="NA", country="US", city="Ashburn"),)
    assert nodes["us"].location.admits(Location(continent="NA", country="US", city="Denver"))
    assert requirements.edges == (
        EdgeRequirement("control", "eu", max_rtt_ms=50.0, min_bandwidth=10**8),
        EdgeRequirement("control", "us", max_rtt_ms=120.0, min_bandwidth=10**8),
        EdgeRequirement("us", "control", max_rtt_ms=120.0, min_bandwidth=10**8),
    )
    assert requirements.exclude_peers == {"did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH"}


def test_mixed_executors_and_redundancy() -> None:
    [node] = derive_requirements(load_ensemble_file(EXAMPLES / "firecracker.yaml")).nodes
    assert node.executors == frozenset({"firecracker", "process"})
    assert node.resources.disk == 4 * GiB  # the process allocation asks for no disk
    [primary] = derive_requirements(load_ensemble_file(EXAMPLES / "redundant.yaml")).nodes
    assert primary.redundancy == 1


def test_zero_rtt_and_bandwidth_mean_unconstrained() -> None:
    text = """
allocations:
  a: {executor: docker, resources: {cpu: 1, ram: 1}, execution: {image: x}}
  b: {executor: docker, resources: {cpu: 1, ram: 1}, execution: {image: x}}
nodes: {n1: {allocations: [a]}, n2: {allocations: [b]}}
edge_constraints: [{edges: [n1, n2], rtt: 0, bw: 0}]
"""
    [edge] = derive_requirements(load_ensemble(text)).edges
    assert edge == EdgeRequirement("n1", "n2", max_rtt_ms=None, min_bandwidth=None)


def test_continent_names_become_codes() -> None:
    text = """
allocations: {a: {executor: docker, resources: {cpu: 1, ram: 1}, execution: {image: x}}}
nodes: {n1: {allocations: [a], location: {accept: [{continent: south america, country: br}]}}}
"""
    [node] = derive_requirements(load_ensemble(text)).nodes
    assert node.location.accept == (Location(continent="SA", country="BR"),)
