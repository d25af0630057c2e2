"""What one ensemble node asks of a provider, checked and in the provider's units.

Requests arrive from remote orchestrators, so before anything is compared or counted
every number is checked (finite, not negative, a real port) and cpu becomes whole
millicores, rounded up: a provider never holds less than was asked. A request that
fails is refused by name (`InvalidRequest`), never half-understood.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from dms.ensemble._requirements import Gpu, NodeRequirements, Resources

from ._capacity import MAX_PORT, millicores

MAX_NAME = 256
"""Longest node, deployment or owner name accepted: names end up in reservation ids."""


class InvalidRequest(ValueError):
    """A request or reservation whose values mean nothing (names the node and field)."""


def check_name(what: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > MAX_NAME:
        raise InvalidRequest(f"{what} must be at most {MAX_NAME} characters, got {len(value)}")
    return value


def _whole(node: str, what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"node {node!r}: {what} must be a whole number >= 0, got {value!r}")
    return value


def _cpu(node: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"node {node!r}: resources.cpu must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise InvalidRequest(f"node {node!r}: resources.cpu must be a finite number >= 0, got {value!r}")
    return millicores(value, round_up=True)


def _gpu(node: str, index: int, gpu: object) -> Gpu:
    where = f"resources.gpus[{index}]"
    if not isinstance(gpu, Gpu):
        raise InvalidRequest(f"node {node!r}: {where} must be a Gpu, got {type(gpu).__name__}")
    for field in ("vendor", "model"):
        if not isinstance(getattr(gpu, field), str):
            raise InvalidRequest(f"node {node!r}: {where}.{field} must be a string")
    _whole(node, f"{where}.memory", gpu.memory)
    return gpu


def _ports(node: str, ports: Sequence[int]) -> tuple[int, ...]:
    fixed: set[int] = set()
    for index, port in enumerate(ports):
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= MAX_PORT:
            raise InvalidRequest(
                f"node {node!r}: ports[{index}] must be a port number 1..{MAX_PORT} or 0 (any), got {port!r}")
        if port and port in fixed:
            raise InvalidRequest(f"node {node!r}: ports[{index}]: public port {port} is asked twice")
        fixed.add(port)
    return tuple(ports)


@attrs.frozen
class Ask:
    """One node's demand: `ports` are the public ports asked, 0 meaning any free one."""

    node: str
    millicores: int
    ram: int
    disk: int
    gpus: tuple[Gpu, ...] = ()
    ports: tuple[int, ...] = ()

    @classmethod
    def of(cls, node: str, resources: Resources, ports: Sequence[int] = ()) -> Ask:
        """The checked ask, or InvalidRequest naming the field."""
        check_name("node name", node)
        if not isinstance(resources, Resources):
            raise InvalidRequest(f"node {node!r}: resources must be Resources, got {type(resources).__name__}")
        return cls(
            node=node,
            millicores=_cpu(node, resources.cpu),
            ram=_whole(node, "resources.ram", resources.ram),
            disk=_whole(node, "resources.disk", resources.disk),
            gpus=tuple(_gpu(node, i, gpu) for i, gpu in enumerate(resources.gpus)),
            ports=_ports(node, ports),
        )

    @classmethod
    def of_node(cls, node: NodeRequirements) -> Ask:
        return cls.of(node.name, node.resources, tuple(p.public for p in node.ports))

    @property
    def fixed_ports(self) -> frozenset[int]:
        return frozenset(p for p in self.ports if p)

    @property
    def any_ports(self) -> int:
        return sum(1 for p in self.ports if not p)
