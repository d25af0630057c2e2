"""What a provider has to give: the machine's facts, or what is left of them.

One `Capacity` type describes the machine as measured, what the operator offers of it
(`OnboardingLimits.apply`) and what is free after reservations
(`ReservationBook.free`), so the bid decision reads one shape whatever it is given.
cpu is counted in integer millicores and sizes in bytes, so that adding and
subtracting reservations is exact: a float core count drifts after many additions.
GPUs are devices with an id, because two identical cards must be told apart to know
which one an allocation holds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from fractions import Fraction

import attrs

from dms.ensemble._requirements import Gpu, Location, Resources
from dms.workload import ExecutorKind


class InvalidCapacity(ValueError):
    """A capacity that cannot be accounted against (the message names the field)."""


MAX_PORT = 65535
_PORTS = frozenset(range(1, MAX_PORT + 1))


def millicores(cores: float, *, round_up: bool) -> int:
    """`cores` as whole millicores: asks round up (never hold less than asked), offers
    round down (never promise more than there is). The float is first rounded to a
    microcore, so `0.3` cores is 300m and not 301m."""
    micro = Fraction(round(Fraction(cores) * 1_000_000), 1000)
    return math.ceil(micro) if round_up else math.floor(micro)


def highest_ports(ports: AbstractSet[int], count: int, avoid: AbstractSet[int],
                  descending: Iterable[int]) -> tuple[int, ...]:
    """Up to `count` of `ports`, not in `avoid`, in `descending` order: where "any port"
    asks are served, from the top of the range, away from the low, well-known ports
    that asks name by number. Costs what it skips, at most the length of `descending`."""
    found: list[int] = []
    if count > 0:
        for port in descending:
            if port in ports and port not in avoid:
                found.append(port)
                if len(found) == count:
                    break
    return tuple(found)


@attrs.frozen
class GpuDevice:
    """One GPU card: `id` is how the machine names it (an index, a PCI bus id or a
    UUID), `gpu` what it is, compared against an ensemble's `Gpu` asks."""

    id: str
    gpu: Gpu = Gpu()

    def __attrs_post_init__(self) -> None:
        if not self.id:
            raise InvalidCapacity("gpus: a device id must not be empty")
        if self.gpu.memory < 0:
            raise InvalidCapacity(f"gpus[{self.id}].memory must be >= 0, got {self.gpu.memory}")


def _is_port(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_PORT


def _devices(devices: Iterable[GpuDevice]) -> tuple[GpuDevice, ...]:
    return tuple(devices)


def _ports(ports: Iterable[int]) -> frozenset[int]:
    return frozenset(ports)


def _executors(kinds: Iterable[ExecutorKind | str]) -> frozenset[ExecutorKind]:
    try:
        return frozenset(ExecutorKind(kind) for kind in kinds)
    except ValueError as exc:
        names = ", ".join(kind.value for kind in ExecutorKind)
        raise InvalidCapacity(f"executors: {exc}; known executors are {names}") from None


def _non_negative(capacity: Capacity, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidCapacity(f"{attribute.name} must be a whole number >= 0, got {value!r}")


@attrs.frozen
class Capacity:
    """Resources a provider has (or has left), the executors it can really run (found
    by whoever opened them; nothing is probed here), where it is, and the public ports
    it can open."""

    millicores: int = attrs.field(default=0, validator=_non_negative)
    ram: int = attrs.field(default=0, validator=_non_negative)  # bytes
    disk: int = attrs.field(default=0, validator=_non_negative)  # bytes
    gpus: tuple[GpuDevice, ...] = attrs.field(default=(), converter=_devices)
    executors: frozenset[ExecutorKind] = attrs.field(default=frozenset(), converter=_executors)
    location: Location = Location()
    public_ports: frozenset[int] = attrs.field(default=frozenset(), converter=_ports)

    def __attrs_post_init__(self) -> None:
        ids = [device.id for device in self.gpus]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise InvalidCapacity(f"gpus: device id {twice[0]!r} appears more than once")
        ports = self.public_ports
        # whole-set operations run in C: a free capacity is rebuilt after every change
        if ports and (set(map(type, ports)) != {int} or not ports <= _PORTS):
            bad = next(p for p in ports if not _is_port(p))
            raise InvalidCapacity(f"public_ports: {bad!r} is not a port number 1..{MAX_PORT}")

    @property
    def executor_names(self) -> frozenset[str]:
        """The executors as the ensemble and the solver spell them."""
        return frozenset(kind.value for kind in self.executors)

    def less(self, millicores: int, ram: int, disk: int, gpus: AbstractSet[str],
             ports: AbstractSet[int]) -> Capacity:
        """What remains when the given amounts, GPU ids and ports are held (never below
        zero). Built without running the checks again: what remains of a checked
        capacity passes them, and the book rebuilds its free capacity after every
        change, where re-checking 30,000 ports would cost milliseconds each time."""
        remaining = object.__new__(Capacity)
        for name, value in (
            ("millicores", max(0, self.millicores - millicores)),
            ("ram", max(0, self.ram - ram)),
            ("disk", max(0, self.disk - disk)),
            ("gpus", tuple(d for d in self.gpus if d.id not in gpus)),
            ("executors", self.executors),
            ("location", self.location),
            ("public_ports", self.public_ports - ports),
        ):
            object.__setattr__(remaining, name, value)
        return remaining

    def top_ports(self, count: int, avoid: AbstractSet[int] = frozenset()) -> tuple[int, ...]:
        """Up to `count` public ports from the top of the range, skipping `avoid`."""
        if count <= 0 or not self.public_ports:
            return ()
        return highest_ports(self.public_ports, count, avoid, range(max(self.public_ports), 0, -1))

    def as_resources(self) -> Resources:
        """The solver's view: cores as a float, GPUs as what they are (it counts them)."""
        return Resources(
            cpu=self.millicores / 1000,
            ram=self.ram,
            disk=self.disk,
            gpus=tuple(device.gpu for device in self.gpus),
        )
