"""Why a placement could not be found: structured for `--json`, readable as text.

An `Explanation` has one `NodeReport` per ensemble node (how many bids there were and
how many each node-level constraint eliminated, attributing every rejected bid to the
first constraint it fails) and, when every node has enough candidates on its own, the
smallest set of cross-node constraints found that cannot be met together. The JSON
shape is documented in spec/placement.md and produced with cattrs, so `from_json`
reads back exactly what `to_json` wrote.
"""

from __future__ import annotations

import enum
import functools
from typing import Any

import attrs
import cattrs

from dms.ensemble._requirements import Resources


class Reason(enum.Enum):
    NODE_WITHOUT_CANDIDATES = "node_without_candidates"
    CONFLICTING_CONSTRAINTS = "conflicting_constraints"
    BUDGET_EXHAUSTED = "budget_exhausted"


# Node-level constraints in the order a bid is checked against them; a bid is counted
# under the first one it fails, so the counts of a node add up to its rejected bids.
NODE_CONSTRAINTS = (
    "not_bid",
    "excluded",
    "executor",
    "location",
    "ports",
    "cpu",
    "ram",
    "disk",
    "gpu",
)

_PHRASES = {
    "not_bid": "did not bid for it",
    "excluded": "excluded",
    "executor": "lacking an executor",
    "location": "rejected by location",
    "ports": "without the public ports",
    "cpu": "short of cpu",
    "ram": "short of memory",
    "disk": "short of disk",
    "gpu": "short of gpus",
}


def format_bytes(size: float) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.0f} B"


def format_bandwidth(bits: float) -> str:
    for unit, scale in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.3g} {unit}"
    return f"{bits:.0f} bit/s"


def format_ms(ms: float) -> str:
    return f"{ms:.3g} ms"


def format_resources(resources: Resources) -> str:
    return (
        f"cpu {resources.cpu:g}, ram {format_bytes(resources.ram)}, "
        f"disk {format_bytes(resources.disk)}, {len(resources.gpus)} gpus"
    )


@attrs.frozen
class Elimination:
    constraint: str  # one of NODE_CONSTRAINTS
    count: int
    detail: str  # what the node asks for, e.g. "need 8 GiB"

    @property
    def phrase(self) -> str:
        text = _PHRASES[self.constraint]
        return f"{text} ({self.detail})" if self.detail else text

    def __str__(self) -> str:
        return f"{self.count} {self.phrase}"


@attrs.frozen
class NodeReport:
    """How the bids fared against one ensemble node's own constraints.

    `eliminated` lists the constraints that rejected bids, largest count first.
    `candidates` counts bids that pass all of them; the node needs `replicas` distinct
    ones (primary + standbys). A pinned node's primary can only use `pinned`, and
    `pin_problem` says why that peer is not a candidate (None when it is)."""

    node: str
    replicas: int
    bids: int
    candidates: int
    eliminated: tuple[Elimination, ...] = ()
    pinned: str | None = None
    pin_problem: str | None = None

    @property
    def placeable(self) -> bool:
        return self.candidates >= self.replicas and self.pin_problem is None

    def __str__(self) -> str:
        text = f"node {self.node}: {self.bids} bids"
        if self.eliminated:
            text += "; " + ", ".join(str(e) for e in self.eliminated)
        text += f"; {self.candidates} candidates"
        if self.replicas > 1 and self.candidates < self.replicas:
            text += f", needs {self.replicas} distinct providers (1 primary + "
            text += f"{_standbys(self.replicas - 1)})"
        if self.pin_problem is not None:
            text += f"; pinned to {self.pinned}, which {self.pin_problem}"
        return text


def _bounds(max_rtt_ms: float | None, min_bandwidth: float | None) -> str:
    parts = []
    if max_rtt_ms is not None:
        parts.append(f"rtt<={format_ms(max_rtt_ms)}")
    if min_bandwidth is not None:
        parts.append(f"bandwidth>={format_bandwidth(min_bandwidth)}")
    return " ".join(parts)


@attrs.frozen
class EdgeConflict:
    """An edge constraint between the primaries of `source` and `target`.

    Pairs are (source candidate, target candidate); a provider that is a candidate of
    both counts as a pair at rtt 0 with unlimited bandwidth (`shared` of them).
    `measured_pairs` excludes those; the best values are over measured pairs. `edge` is
    the edge's index in the ensemble requirements' edges."""

    edge: int
    source: str
    target: str
    max_rtt_ms: float | None
    min_bandwidth: float | None
    source_candidates: int
    target_candidates: int
    shared: int
    measured_pairs: int
    satisfying_pairs: int
    best_rtt_ms: float | None
    best_bandwidth: float | None

    def __str__(self) -> str:
        head = f"edge {self.source}-{self.target} {_bounds(self.max_rtt_ms, self.min_bandwidth)}"
        among = (
            f"among {self.source}'s {self.source_candidates} and "
            f"{self.target}'s {self.target_candidates} candidates"
        )
        measured_ok = self.satisfying_pairs - self.shared
        if measured_ok:
            text = f"{head}: {measured_ok} measured provider pairs {among} meet it"
            return text + (
                f", as does sharing one of {self.shared} common providers" if self.shared else ""
            )
        if not self.measured_pairs:
            text = f"{head}: no provider pair {among} has a measurement"
        else:
            wants, best = [], []
            if self.max_rtt_ms is not None:
                wants.append(f"a measured RTT of at most {format_ms(self.max_rtt_ms)}")
                best.append(
                    "none has a measured RTT"
                    if self.best_rtt_ms is None
                    else f"best is {format_ms(self.best_rtt_ms)}"
                )
            if self.min_bandwidth is not None:
                wants.append(
                    f"a measured bandwidth of at least {format_bandwidth(self.min_bandwidth)}"
                )
                best.append(
                    "none has a measured bandwidth"
                    if self.best_bandwidth is None
                    else f"best is {format_bandwidth(self.best_bandwidth)}"
                )
            text = f"{head}: no provider pair {among} has {' and '.join(wants)}; {'; '.join(best)}"
        if self.shared:
            text += f"; only sharing one of {self.shared} common providers would meet it"
        return text


@attrs.frozen
class SeparationConflict:
    """A node's primary and standbys must sit on distinct providers."""

    node: str
    replicas: int
    candidates: int

    def __str__(self) -> str:
        return (
            f"node {self.node} needs {self.replicas} distinct providers (1 primary + "
            f"{_standbys(self.replicas - 1)}) among its {self.candidates} candidates"
        )


@attrs.frozen
class CapacityConflict:
    """The nodes placed on one provider must fit its free resources and ports together.
    `nodes` are the ensemble nodes that have this provider as a candidate and `need` is
    what all of them would take together."""

    peer: str
    free: Resources
    nodes: tuple[str, ...]
    need: Resources

    def __str__(self) -> str:
        return (
            f"provider {self.peer} (free {format_resources(self.free)}) is a candidate for "
            f"{', '.join(self.nodes)}, which together need {format_resources(self.need)}"
        )


Conflict = EdgeConflict | SeparationConflict | CapacityConflict

_KINDS: dict[type, str] = {
    EdgeConflict: "edge",
    SeparationConflict: "separation",
    CapacityConflict: "capacity",
}


@attrs.frozen
class Explanation:
    """Why `solve` found no placement (see `Reason`). `conflicts` is 1-minimal (drop any
    one and the rest can be met) when `core_minimal`; it is only computed when every
    node has enough candidates of its own."""

    reason: Reason
    nodes: tuple[NodeReport, ...]
    conflicts: tuple[Conflict, ...] = ()
    core_minimal: bool = True
    explored: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (see spec/placement.md for its shape)."""
        data: dict[str, Any] = _converter().unstructure(self)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Explanation:
        return _converter().structure(data, cls)

    def __str__(self) -> str:
        if self.reason is Reason.NODE_WITHOUT_CANDIDATES:
            stuck = [n.node for n in self.nodes if not n.placeable]
            head = f"cannot place the ensemble: no suitable providers for {', '.join(stuck)}"
        elif self.reason is Reason.CONFLICTING_CONSTRAINTS:
            count = len(self.conflicts)
            head = (
                "cannot place the ensemble: this constraint cannot be met"
                if count == 1
                else f"cannot place the ensemble: these {count} constraints cannot be met together"
            )
            if not self.core_minimal:
                head += " (search budget ran out before the set could be narrowed further)"
        else:
            head = (
                f"cannot place the ensemble: the search budget ran out after {self.explored} "
                f"assignments ({self.seconds:.3g} s) before any placement was found"
            )
        lines = [head]
        lines += [f"  {conflict}" for conflict in self.conflicts]
        lines.append("nodes:")
        lines += [f"  {report}" for report in self.nodes]
        return "\n".join(lines)


class Unplaceable(Exception):
    """No placement was found; `explanation` says why (str() gives the text)."""

    def __init__(self, explanation: Explanation) -> None:
        super().__init__(str(explanation))
        self.explanation = explanation


@functools.cache
def _converter() -> cattrs.Converter:
    """The JSON converter, made on first use: configuring it (and importing the strategy)
    is most of this module's import time, and every node imports the solver while few
    ever write an explanation as JSON."""
    from cattrs.strategies import configure_tagged_union

    converter = cattrs.Converter()
    configure_tagged_union(Conflict, converter, tag_generator=_KINDS.__getitem__,
                           tag_name="kind")
    return converter


def _standbys(count: int) -> str:
    return f"{count} standby" if count == 1 else f"{count} standbys"
