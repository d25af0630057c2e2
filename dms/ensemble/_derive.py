"""What each ensemble node asks of the provider that hosts it.

`derive_requirements` turns a loaded, validated `Ensemble` into the solver's and the
orchestrator's `EnsembleRequirements`: per node the summed resources of its
allocations, the executors they need, their ports, the location constraint, pinned
peer and redundancy; per edge constraint the rtt/bandwidth bounds. Pure: no I/O.
"""

from __future__ import annotations

from dms.ensemble import _spec as spec
from dms.ensemble._requirements import (
    EdgeRequirement,
    EnsembleRequirements,
    Gpu,
    Location,
    LocationConstraint,
    NodeRequirements,
    PortRequirement,
    Resources,
)
from dms.ensemble._validate import continent_code


def allocation_resources(ensemble: spec.Ensemble, allocation: str) -> Resources:
    """One allocation's resources in requirement units (template names resolved)."""
    resources = ensemble.resources_of(allocation)
    return Resources(
        cpu=float(resources.cpu.cores),
        ram=int(resources.ram.size),
        disk=int(resources.disk.size) if resources.disk is not None else 0,
        gpus=tuple(
            Gpu(vendor=gpu.vendor or "", model=gpu.model or "", memory=int(gpu.memory or 0))
            for gpu in resources.gpus
        ),
    )


def _location(place: spec.Place) -> Location:
    # continents are compared as two-letter codes (EU), whichever spelling the file used
    continent = place.continent
    if continent is not None:
        continent = continent_code(continent) or continent
    return Location(
        continent=continent,
        country=place.country.upper() if place.country else None,
        city=place.city,
        asn=place.asn,
        isp=place.isp,
    )


def _location_constraint(location: spec.LocationSpec | None) -> LocationConstraint:
    if location is None:
        return LocationConstraint()
    return LocationConstraint(
        accept=tuple(_location(p) for p in location.accept),
        reject=tuple(_location(p) for p in location.reject),
    )


def node_requirements(ensemble: spec.Ensemble, name: str) -> NodeRequirements:
    node = ensemble.nodes[name]
    total = Resources()
    for allocation in node.allocations:
        total = total + allocation_resources(ensemble, allocation)
    return NodeRequirements(
        name=name,
        resources=total,
        executors=frozenset(ensemble.allocations[a].executor.value for a in node.allocations),
        ports=tuple(PortRequirement(p.public, p.private, p.allocation) for p in node.ports),
        location=_location_constraint(node.location),
        peer=node.peer,
        redundancy=node.redundancy,
    )


def edge_requirements(edge: spec.EdgeConstraint) -> tuple[EdgeRequirement, ...]:
    """An rtt or bw of 0 means unconstrained (NuNet's convention) and becomes None; a
    symmetric constraint also holds from target to source."""
    source, target = edge.edges
    rtt = float(edge.rtt) if edge.rtt else None
    bandwidth = int(edge.bw) if edge.bw else None
    forward = EdgeRequirement(source, target, max_rtt_ms=rtt, min_bandwidth=bandwidth)
    if not edge.symmetric:
        return (forward,)
    return forward, EdgeRequirement(target, source, max_rtt_ms=rtt, min_bandwidth=bandwidth)


def derive_requirements(ensemble: spec.Ensemble) -> EnsembleRequirements:
    """Requirements for every node (in file order) and every edge constraint."""
    return EnsembleRequirements(
        nodes=tuple(node_requirements(ensemble, name) for name in ensemble.nodes),
        edges=tuple(req for edge in ensemble.edge_constraints for req in edge_requirements(edge)),
        exclude_peers=frozenset(ensemble.exclude_peers),
    )
