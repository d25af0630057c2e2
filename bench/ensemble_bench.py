"""Load + validate a large ensemble: 1,000 allocations on 200 nodes with 500 edges.

Prints the time of `load_ensemble` (bounded YAML read, structuring, every semantic
rule) and, as in-run baselines, plain `yaml.load` with the same libyaml-backed safe
loader and with PyYAML's pure-Python SafeLoader. Also times `derive_requirements`.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

import yaml

from dms.ensemble import derive_requirements, load_ensemble

ALLOCATIONS, NODES, EDGES = 1000, 200, 500


def big_ensemble(seed: int = 7) -> str:
    rng = random.Random(seed)
    lines = ["version: V1", "resources:", "  small: {cpu: 500m, ram: 512Mi, disk: 1Gi}", "allocations:"]
    for index in range(ALLOCATIONS):
        node_first = index % (ALLOCATIONS // NODES) == 0
        lines += [
            f"  alloc-{index}:",
            "    executor: docker",
            f"    type: {'service' if index % 3 else 'task'}",
            "    resources: small" if index % 2 else "    resources: {cpu: 1, ram: 1Gi, disk: 2Gi}",
            "    execution:",
            f"      image: registry.example/app-{index % 17}:1.{index % 9}",
            "      cmd: [serve, --port, '8080']",
            f"      environment: [ID={index}, MODE=bench]",
            "    healthcheck: {type: http, endpoint: 'http://localhost:8080/health', interval: 10s}",
        ]
        if not node_first:
            lines.append(f"    depends_on: [alloc-{index - 1}]")
    lines.append("nodes:")
    per_node = ALLOCATIONS // NODES
    for node in range(NODES):
        members = ", ".join(f"alloc-{node * per_node + i}" for i in range(per_node))
        lines += [
            f"  node-{node}:",
            f"    allocations: [{members}]",
            f"    ports: [{{private: 8080, public: {2000 + node}, allocation: alloc-{node * per_node}}}]",
            "    location: {accept: [{continent: EU, country: DE}, {continent: North America}]}",
        ]
    lines.append("edge_constraints:")
    for _ in range(EDGES):
        a, b = rng.sample(range(NODES), 2)
        lines.append(f"  - {{edges: [node-{a}, node-{b}], rtt: {rng.randint(5, 200)}ms, bw: 100Mbps}}")
    return "\n".join(lines) + "\n"


def best_of(runs: int, work: Callable[[], object]) -> tuple[float, float]:
    """(best, median) seconds over `runs` runs."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def main() -> None:
    text = big_ensemble()
    ensemble = load_ensemble(text, file="bench.yaml")
    assert len(ensemble.allocations) == ALLOCATIONS and len(ensemble.edge_constraints) == EDGES
    print(f"ensemble: {ALLOCATIONS} allocations, {NODES} nodes, {EDGES} edges, {len(text) / 1024:.0f} KiB")
    c_loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    rows = [
        ("load_ensemble (read+structure+validate)", best_of(7, lambda: load_ensemble(text, file="bench.yaml"))),
        ("baseline yaml.load CSafeLoader", best_of(7, lambda: yaml.load(text, Loader=c_loader))),
        ("baseline yaml.load SafeLoader (pure Python)", best_of(3, lambda: yaml.load(text, Loader=yaml.SafeLoader))),
        ("derive_requirements", best_of(7, lambda: derive_requirements(ensemble))),
    ]
    load_best = rows[0][1][0]
    for name, (best, median) in rows:
        print(f"{name:45s} best {best * 1000:7.1f} ms  median {median * 1000:7.1f} ms  ratio to load {best / load_best:5.2f}")


if __name__ == "__main__":
    main()
