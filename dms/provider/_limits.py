"""How much of the machine its operator offers to deployments.

An operator lends part of a machine, not all of it: "at most 4 cpu and 8 GiB", or
"half the disk". `OnboardingLimits.apply` turns the machine's `Capacity` into the
offered one, which is all the reservation book and the bid decision ever see.
Rounding is always down, so the offer never exceeds what the operator allowed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

import attrs

from dms.workload import ExecutorKind

from ._capacity import Capacity


class InvalidLimit(ValueError):
    """An onboarding limit that means nothing (the message names the limit)."""


@attrs.frozen
class Share:
    """Part of one resource: `fraction` of what the machine has, and never more than
    `at_most` (cores for cpu, bytes for ram and disk, devices for gpus; None = no cap)."""

    fraction: float = 1.0
    at_most: int | float | None = None

    def check(self, name: str) -> None:
        if isinstance(self.fraction, bool) or not isinstance(self.fraction, int | float):
            raise InvalidLimit(f"{name}.fraction must be a number, got {self.fraction!r}")
        if not (math.isfinite(self.fraction) and 0 <= self.fraction <= 1):
            raise InvalidLimit(f"{name}.fraction must be between 0 and 1, got {self.fraction!r}")
        if self.at_most is None:
            return
        if isinstance(self.at_most, bool) or not isinstance(self.at_most, int | float):
            raise InvalidLimit(f"{name}.at_most must be a number or None, got {self.at_most!r}")
        if (isinstance(self.at_most, float) and not math.isfinite(self.at_most)) or self.at_most < 0:
            raise InvalidLimit(f"{name}.at_most must be a finite number >= 0, got {self.at_most!r}")

    def of(self, total: int, scale: int = 1) -> int:
        """The offered amount of `total` units; `scale` converts `at_most` into them."""
        offered = math.floor(Fraction(total) * Fraction(self.fraction))
        if self.at_most is not None:
            offered = min(offered, math.floor(Fraction(self.at_most) * scale))
        return offered


def _kinds(kinds: Iterable[ExecutorKind | str] | None) -> frozenset[ExecutorKind] | None:
    if kinds is None:
        return None
    try:
        return frozenset(ExecutorKind(kind) for kind in kinds)
    except ValueError as exc:
        names = ", ".join(kind.value for kind in ExecutorKind)
        raise InvalidLimit(f"executors: {exc}; known executors are {names}") from None


@attrs.frozen
class OnboardingLimits:
    """What the operator lends: a `Share` per resource and, optionally, only some of the
    executors the machine can run (None = all of them). GPUs are offered in the
    machine's order, so `gpus=Share(at_most=1)` lends the first card."""

    cpu: Share = Share()
    ram: Share = Share()
    disk: Share = Share()
    gpus: Share = Share()
    executors: frozenset[ExecutorKind] | None = attrs.field(default=None, converter=_kinds)

    def __attrs_post_init__(self) -> None:
        for name in ("cpu", "ram", "disk", "gpus"):
            getattr(self, name).check(name)

    def apply(self, machine: Capacity) -> Capacity:
        """The part of `machine` offered to deployments."""
        executors = machine.executors if self.executors is None else machine.executors & self.executors
        return attrs.evolve(
            machine,
            millicores=self.cpu.of(machine.millicores, scale=1000),
            ram=self.ram.of(machine.ram),
            disk=self.disk.of(machine.disk),
            gpus=machine.gpus[: self.gpus.of(len(machine.gpus))],
            executors=executors,
        )
