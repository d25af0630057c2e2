"""The network package's failures, each naming the field, name or object involved."""

from __future__ import annotations


class NetworkError(Exception):
    """Base of every failure of the ensemble network."""


class NoFreeSubnet(NetworkError):
    """Every subnet of the size the ensemble needs overlaps one in use."""

    def __init__(self, ensemble: str, prefix: int) -> None:
        super().__init__(f"ensemble {ensemble!r}: no /{prefix} in 10.0.0.0/8 is free on every "
                         "chosen provider; release a subnet or choose other providers")
        self.ensemble = ensemble
        self.prefix = prefix


class TooManyAllocations(NetworkError):
    """More allocations than the largest subnet a plan may take (or than its kept subnet)."""

    def __init__(self, ensemble: str, count: int, room: int, subnet: str) -> None:
        super().__init__(f"ensemble {ensemble!r}: {count} allocations do not fit in {subnet} "
                         f"({room} addresses)")
        self.ensemble = ensemble
        self.count = count
        self.room = room


class InvalidPlan(NetworkError):
    """A plan (from the wire or built by hand) that breaks a rule; `field` is its path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class InvalidFrame(NetworkError):
    """Bytes between two pumps that are not a well-formed frame; `field` names the part."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"frame {field}: {problem}")
        self.field = field
        self.problem = problem


class NamespaceError(NetworkError):
    """A kernel object (namespace, interface) could not be made, entered or removed."""

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(f"{what}: {problem}")
        self.what = what
        self.problem = problem
