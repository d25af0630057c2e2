"""What an ensemble asks of the providers that will run it.

These types are the contract between the ensemble spec (which derives them from a
YAML file) and the orchestrator (which puts them into bid requests and hands them to
the placement solver). They are plain frozen data so both sides stay free of I/O.
Sizes are bytes, cpu is cores (float), bandwidth is bits per second, rtt is ms.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Gpu:
    vendor: str = ""
    model: str = ""
    memory: int = 0  # bytes; 0 = any


@attrs.frozen
class Resources:
    cpu: float = 0.0
    ram: int = 0
    disk: int = 0
    gpus: tuple[Gpu, ...] = ()

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            cpu=self.cpu + other.cpu,
            ram=self.ram + other.ram,
            disk=self.disk + other.disk,
            gpus=self.gpus + other.gpus,
        )

    def fits_in(self, capacity: Resources) -> bool:
        """True when these resources fit into `capacity` (gpus counted, not matched)."""
        return (
            self.cpu <= capacity.cpu + 1e-9
            and self.ram <= capacity.ram
            and self.disk <= capacity.disk
            and len(self.gpus) <= len(capacity.gpus)
        )


@attrs.frozen
class Location:
    """A place. As a provider's location every field may be set; as an accept/reject
    entry only the fields given are compared (case-insensitively)."""

    continent: str | None = None
    country: str | None = None
    city: str | None = None
    asn: int | None = None
    isp: str | None = None

    def covers(self, place: Location) -> bool:
        """True when every field set on this entry equals the same field of `place`."""
        for field in ("continent", "country", "city", "isp"):
            want = getattr(self, field)
            if want is not None:
                have = getattr(place, field)
                if have is None or str(have).casefold() != str(want).casefold():
                    return False
        return self.asn is None or self.asn == place.asn


@attrs.frozen
class LocationConstraint:
    """A provider is admitted when some `accept` entry covers it (if there are any) and
    no `reject` entry does: "accept US, reject Ashburn" means the US except Ashburn."""

    accept: tuple[Location, ...] = ()
    reject: tuple[Location, ...] = ()

    def admits(self, place: Location) -> bool:
        if self.accept and not any(entry.covers(place) for entry in self.accept):
            return False
        return not any(entry.covers(place) for entry in self.reject)


@attrs.frozen
class PortRequirement:
    public: int  # 0 = any free port chosen by the provider
    private: int
    allocation: str


@attrs.frozen
class NodeRequirements:
    """Everything one ensemble node needs from the single provider that hosts it."""

    name: str
    resources: Resources
    executors: frozenset[str]
    ports: tuple[PortRequirement, ...] = ()
    location: LocationConstraint = LocationConstraint()
    peer: str | None = None  # pinned provider peer id (did:key of the provider node)
    redundancy: int = 0  # number of standbys that must live on other providers


@attrs.frozen
class EdgeRequirement:
    """Between the providers of `source` and `target`: rtt at most max_rtt_ms and
    bandwidth at least min_bandwidth bits/s (None = unconstrained)."""

    source: str
    target: str
    max_rtt_ms: float | None = None
    min_bandwidth: int | None = None


@attrs.frozen
class EnsembleRequirements:
    nodes: tuple[NodeRequirements, ...]
    edges: tuple[EdgeRequirement, ...] = ()
    exclude_peers: frozenset[str] = frozenset()
