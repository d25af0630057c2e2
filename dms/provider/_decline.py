"""Why a provider cannot host an ensemble node, as data and as words.

A decline travels to the orchestrator, which joins it with the solver's explanation so
a user reads "provider P, node db: ram: 2Gi free, 4Gi asked" instead of "no placement".
The fields are plain strings, ints and tuples so the wire converter encodes them with
no hooks; the words are derived from the fields on whichever side reads them, so they
cannot disagree with the numbers. Requirement names are the placement explanation's
constraint names, plus `pinned`.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from dms.ensemble._units import format_size

REQUIREMENTS = (
    "excluded",
    "pinned",
    "executor",
    "location",
    "ports",
    "cpu",
    "ram",
    "disk",
    "gpu",
)
"""Every requirement an `Unmet` may name, in the order a node is checked against them."""


def _known(unmet: Unmet, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in REQUIREMENTS:
        raise ValueError(f"requirement must be one of {', '.join(REQUIREMENTS)}, got {value!r}")


def _count(unmet: Unmet, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be a whole number >= 0, got {value!r}")


def _strings(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(values)


def _cores(value: int) -> str:
    return f"{value / 1000:g}"


@attrs.frozen
class Unmet:
    """One requirement of one ensemble node that this provider does not meet.

    Quantities (`cpu` in millicores, `ram`/`disk` in bytes, `gpu` in devices, `ports` in
    ports) are `needed` and `available`. What the node names and the provider lacks is
    in `asked` (executors, public ports, GPU kinds, accepted places, the pinned peer);
    what the provider has instead in `have` (its executors, its place); the node's
    reject entries that cover the provider in `rejected`.
    """

    node: str
    requirement: str = attrs.field(validator=_known)
    needed: int = attrs.field(default=0, validator=_count)
    available: int = attrs.field(default=0, validator=_count)
    asked: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    have: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    rejected: tuple[str, ...] = attrs.field(default=(), converter=_strings)

    @property
    def message(self) -> str:
        """The shortfall in words, e.g. `ram: 2Gi free, 4Gi asked`."""
        kind = self.requirement
        if kind == "excluded":
            return "excluded by exclude_peers"
        if kind == "pinned":
            return f"pinned to another peer ({', '.join(self.asked)})"
        if kind == "executor":
            have = ", ".join(self.have) or "none"
            return f"executor {', '.join(self.asked)} not available here (have: {have})"
        if kind == "location":
            return "location: " + "; ".join(self._location_parts())
        if kind == "ports":
            return "ports: " + "; ".join(self._port_parts())
        if kind == "cpu":
            return f"cpu: {_cores(self.available)} cores free, {_cores(self.needed)} asked"
        if kind in ("ram", "disk"):
            return f"{kind}: {format_size(self.available)} free, {format_size(self.needed)} asked"
        what = f" {self.asked[0]}" if len(self.asked) == 1 and self.asked[0] != "any" else ""
        text = f"gpu: {self.available} of {self.needed}{what} free"
        return text if len(self.asked) < 2 else f"{text} ({', '.join(self.asked)} asked)"

    def _location_parts(self) -> list[str]:
        parts = [f"{entry} rejected" for entry in self.rejected]
        if self.asked:
            here = ", ".join(self.have) or "unknown"
            parts.append(f"{here} not accepted (accepts {' or '.join(self.asked)})")
        return parts

    def _port_parts(self) -> list[str]:
        parts = []
        if self.asked:
            parts.append(f"{', '.join(self.asked)} not free here")
        if self.needed > self.available:
            parts.append(f"{self.needed} asked, {self.available} free")
        return parts

    def __str__(self) -> str:
        return f"node {self.node}: {self.message}"


def _unmets(unmet: Iterable[Unmet]) -> tuple[Unmet, ...]:
    return tuple(unmet)


@attrs.frozen
class Decline:
    """A provider's answer for the ensemble nodes it will not bid for: every unmet
    requirement of each, so one round trip tells the user everything."""

    peer: str
    unmet: tuple[Unmet, ...] = attrs.field(converter=_unmets)

    @property
    def nodes(self) -> frozenset[str]:
        return frozenset(u.node for u in self.unmet)

    def of(self, node: str) -> tuple[Unmet, ...]:
        """The unmet requirements of one node, in check order."""
        return tuple(u for u in self.unmet if u.node == node)

    def __str__(self) -> str:
        return f"provider {self.peer} declined: " + "; ".join(str(u) for u in self.unmet)
