"""The replay cache: every accepted message CID is remembered until it expires."""

from __future__ import annotations

import heapq
import os
from typing import Protocol, TextIO

from ucan import CID, MalformedToken


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


class ReplayLog(ReplayCache):
    """A replay cache that is also written to a file, line by line, and read back when
    the node starts again: a message accepted before a restart stays refused after it
    for as long as it lives. The file is rewritten with the live ids only on start and
    whenever it holds twice as many lines as there are live ids."""

    def __init__(self, path: str | os.PathLike[str], now: float) -> None:
        super().__init__()
        self._path = os.fspath(path)
        try:
            with open(self._path, encoding="ascii", errors="replace") as old:
                for line in old:
                    text, _, until = line.strip().partition(" ")
                    try:
                        cid, expiry = CID(bytes.fromhex(text)), float(until)
                    except (ValueError, MalformedToken):
                        continue  # a torn last line, after a crash
                    if expiry >= now:
                        super().remember(cid, expiry, now)
        except FileNotFoundError:
            pass
        self._file = self._rewrite()

    def remember(self, cid: CID, until: float, now: float) -> None:
        super().remember(cid, until, now)
        self._file.write(f"{cid.raw.hex()} {until!r}\n")
        self._lines += 1
        if self._lines > 2 * len(self) + 1024:
            self._file.close()
            self._file = self._rewrite()

    def _rewrite(self) -> TextIO:
        temporary = self._path + ".tmp"
        with open(temporary, "w", encoding="ascii") as new:
            for cid, until in self._expiry.items():
                new.write(f"{cid.raw.hex()} {until!r}\n")
        os.replace(temporary, self._path)
        self._lines = len(self._expiry)
        return open(self._path, "a", encoding="ascii", buffering=1)  # a line per write

    def close(self) -> None:
        self._file.close()
