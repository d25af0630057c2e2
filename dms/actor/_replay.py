"""The replay cache: every accepted message CID is remembered until it expires."""

from __future__ import annotations

import heapq
from typing import Protocol

from ucan import CID


class ReplayMemory(Protocol):
    """Where admission remembers accepted message ids. The in-memory `ReplayCache` is
    the default; a node that must survive restarts gives one backed by its store."""

    def seen(self, cid: CID) -> bool: ...

    def remember(self, cid: CID, until: float, now: float) -> None: ...


class ReplayCache:
    """Remembers CIDs until their expiry (plus skew). Bounded: messages may not live
    longer than the node's maximum TTL, so the cache holds at most a window's worth."""

    def __init__(self) -> None:
        self._expiry: dict[CID, float] = {}
        self._heap: list[tuple[float, bytes]] = []

    def seen(self, cid: CID) -> bool:
        return cid in self._expiry

    def remember(self, cid: CID, until: float, now: float) -> None:
        self._prune(now)
        self._expiry[cid] = until
        heapq.heappush(self._heap, (until, cid.raw))

    def _prune(self, now: float) -> None:
        while self._heap and self._heap[0][0] < now:
            _, raw = heapq.heappop(self._heap)
            cid = CID(raw)
            if self._expiry.get(cid, now + 1) < now:
                del self._expiry[cid]

    def __len__(self) -> int:
        return len(self._expiry)
