"""The measured links as the search reads them: one row per provider, indexed by
provider number and built on first use, and the same rows in rtt order so the partners
an edge admits are a prefix found by bisection.

Rows are built lazily because a search reads only the rows of providers left in the
domains of edge ends (about a third of a 10,000-provider market), and converting all
of them up front was most of the time to compile a problem.

The search asks, tens of thousands of times per solve, whether some provider in a
domain may pair with provider p over an edge. Walking p's row in Python for that was
most of the time to a first solution. Sorted by rtt, the partners within an edge's
rtt bound are the first k entries (k by `bisect`), and the membership test over them
runs in C (`filter`/`isdisjoint`). Links below a bandwidth floor are filtered once per
provider and floor, so an edge's floor costs nothing per check.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from operator import itemgetter

from ._model import Measurements

# A provider's links as the search reads them: missing rtt is infinite, missing
# bandwidth is -1, so a bound on an unmeasured quantity is never met; a NaN or
# negative rtt and a NaN bandwidth (a peer's report may be anything) count as missing.
Row = Mapping[int, tuple[float, float]]

_rtt = itemgetter(0)


class Rows:
    """Provider p's row is `rows[p]`: its measured neighbours among the bidders, by
    provider number. Each is built once, on first use; the same inputs give the same
    rows whichever are asked for first."""

    __slots__ = ("_index", "_measurements", "_peers", "_rows")

    def __init__(self, peers: Sequence[str], measurements: Measurements) -> None:
        self._peers = peers
        self._index = {peer: i for i, peer in enumerate(peers)}
        self._measurements = measurements
        self._rows: list[Row | None] = [None] * len(peers)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, p: int) -> Row:
        row = self._rows[p]
        if row is None:
            index, inf = self._index, math.inf
            row = self._rows[p] = {
                j: (
                    # a NaN or negative rtt is no measurement: as a number it sorted
                    # anywhere in a ranked row (bisect then admitted it under any bound)
                    # and made the summed rtt NaN or -inf
                    inf if link.rtt_ms is None or not link.rtt_ms >= 0 else link.rtt_ms,
                    -1.0 if link.bandwidth is None or link.bandwidth != link.bandwidth
                    else link.bandwidth,
                )
                for other, link in self._measurements.neighbours(self._peers[p]).items()
                if (j := index.get(other)) is not None
            }
        return row


class RankedLinks:
    """Built lazily, one provider at a time: a search touches only the providers left
    in the domains of edge ends, and a 10,000-provider market sorted up front would
    cost more than the search. Bounded by providers x distinct bandwidth floors."""

    __slots__ = ("_links", "_ranked")

    def __init__(self, links: Rows | Sequence[Row]) -> None:
        self._links = links
        # (provider, bandwidth floor) -> (rtts ascending, partners in the same order)
        self._ranked: dict[tuple[int, float], tuple[list[float], list[int]]] = {}

    def within(self, p: int, rtt_limit: float, bandwidth_floor: float) -> list[int]:
        """The providers p may pair with at rtt <= `rtt_limit` and bandwidth >=
        `bandwidth_floor` (p itself not included), nearest first."""
        ranked = self._ranked.get((p, bandwidth_floor))
        if ranked is None:
            ranked = self._rank(p, bandwidth_floor)
        rtts, partners = ranked
        return partners[: bisect_right(rtts, rtt_limit)]

    def _rank(self, p: int, floor: float) -> tuple[list[float], list[int]]:
        row = self._links[p]
        base = self._ranked.get((p, -math.inf))
        if base is None:
            # sorted and split by C-level calls: this runs once per provider touched
            order = sorted(row, key=row.__getitem__)
            base = self._ranked[(p, -math.inf)] = (
                list(map(_rtt, map(row.__getitem__, order))),
                order,
            )
        if floor == -math.inf:
            return base
        kept = [q for q in base[1] if row[q][1] >= floor]
        ranked = self._ranked[(p, floor)] = ([row[q][0] for q in kept], kept)
        return ranked
