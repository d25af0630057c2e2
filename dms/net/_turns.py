"""Whose turn it is: link peers with deliveries waiting, served by the node's time.

Round robin gives each waiting peer one delivery per round. But deliveries cost the
node very different amounts: a stranger's request under a fresh key (a DID to parse,
two signatures, a refusal to sign) costs several times a known client's (its chain
cached), a heavy policy a hundred times. With turns, a few strangers' links took most
of the node's time and a client waited behind them. Here each peer has a virtual time,
the node time its deliveries have cost (`charge`, plus `item_cost` per delivery); the
peer that has used the least goes next, ties in arrival order (so, uncharged, this is
round robin). A peer that starts waiting starts at the current virtual time: being idle
earns no credit. Its debt outlives a short idle spell (the last `memory` peers are
remembered), so a peer cannot shed what its deliveries cost by pausing between them.

Sans-IO: times are passed in by the consumer that measured them.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict


class FairTurns:
    """The waiting peers, the one that has used the least time first."""

    def __init__(self, item_cost: float = 1e-4, max_charge: float = 0.1,
                 memory: int = 4096) -> None:
        self.item_cost = item_cost
        self.max_charge = max_charge
        """The most one delivery is charged: a consumer that was cancelled or waited
        long (its time then was mostly other tasks') cannot ruin a peer's turns."""
        self.memory = memory
        self._heap: list[tuple[float, int, str]] = []  # (virtual time, entry, peer)
        self._entry: dict[str, int] = {}  # waiting peer -> its live heap entry
        self._vtime: dict[str, float] = {}  # waiting peer -> its virtual time
        self._idle: OrderedDict[str, float] = OrderedDict()  # recent peers' debt
        self._seq = itertools.count()
        self.clock = 0.0
        """The virtual time of the last turn given."""

    def __len__(self) -> int:
        return len(self._entry)

    def __contains__(self, peer: object) -> bool:
        return peer in self._entry

    def append(self, peer: str) -> None:
        """`peer` has something waiting (it is not waiting already)."""
        vtime = self._vtime.get(peer)
        if vtime is None:
            vtime = max(self._idle.pop(peer, self.clock), self.clock)
        self._vtime[peer] = vtime
        self._push(peer, vtime)

    def popleft(self) -> str:
        """The waiting peer that has used the least; it is charged one delivery and is no
        longer waiting (`append` it again if more is). IndexError when none waits."""
        while True:
            vtime, entry, peer = heapq.heappop(self._heap)
            if self._entry.get(peer) == entry:
                break
        del self._entry[peer]
        self.clock = max(self.clock, vtime)
        self._vtime[peer] = vtime + self.item_cost
        return peer

    def charge(self, peer: str, seconds: float) -> None:
        """What a delivery of `peer`'s cost, beyond `item_cost` (capped)."""
        cost = min(max(seconds, 0.0), self.max_charge)
        if peer in self._vtime:
            self._vtime[peer] += cost
            if peer in self._entry:
                self._push(peer, self._vtime[peer])
        elif peer in self._idle:
            self._idle[peer] += cost

    def rest(self, peer: str) -> None:
        """`peer` has nothing waiting any more: remember its virtual time for a while."""
        self._entry.pop(peer, None)
        vtime = self._vtime.pop(peer, None)
        if vtime is not None:
            self._idle.pop(peer, None)
            self._idle[peer] = vtime
            while len(self._idle) > self.memory:
                self._idle.popitem(last=False)

    def _push(self, peer: str, vtime: float) -> None:
        entry = next(self._seq)
        self._entry[peer] = entry
        heapq.heappush(self._heap, (vtime, entry, peer))
        if len(self._heap) > 2 * len(self._entry) + 64:
            self._heap = [(self._vtime[p], e, p) for p, e in self._entry.items()]
            heapq.heapify(self._heap)
