"""The replay cache: every accepted message CID is remembered until it expires."""

from __future__ import annotations

import contextlib
import heapq
import os
from typing import Protocol

from ucan import CID, MalformedToken, UcanError


class ReplayNotKept(UcanError):
    """A message's id could not be written where it must survive a restart (the disk is
    full, say): the message is refused, since a node that ran it unrecorded could run
    it again after a restart."""

    name = "StateUnavailable"


class ReplayMemory(Protocol):
    """Where admission remembers accepted message ids. The in-memory `ReplayCache` is
    the default; a node that must survive restarts gives one backed by its store, whose
    `remember` raises ReplayNotKept (remembering nothing) when it cannot keep the id."""

    def seen(self, cid: CID) -> bool: ...

    def remember(self, cid: CID, until: float, now: float) -> None: ...

    def remember_in_memory(self, cid: CID, until: float, now: float) -> None:
        """Remember the id until `until` in this process only (a restart forgets it):
        for a message whose second run, after a restart, does nothing its first did
        not (see `Admission.declare_replay_harmless`), when `remember` cannot keep it."""


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

    def remember_in_memory(self, cid: CID, until: float, now: float) -> None:
        ReplayCache.remember(self, cid, until, now)  # not a subclass's durable one

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
    whenever it holds twice as many lines as there are live ids. An id whose line
    cannot be written (the disk is full) is not remembered: `remember` raises
    ReplayNotKept and admission refuses the message."""

    def __init__(self, path: str | os.PathLike[str], now: float) -> None:
        super().__init__()
        self._path = os.fspath(path)
        self._lines = 0
        self._torn = False
        """Whether a torn line could not be cut off: the next line starts on a new one."""
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
        """Append the id, then remember it; ReplayNotKept (nothing remembered, the file
        as it was) when the line cannot be written whole."""
        line = f"{cid.raw.hex()} {until!r}\n".encode("ascii")
        if self._torn:  # the junk before stays a line of its own, read back as junk
            line = b"\n" + line
        end = os.lseek(self._file, 0, os.SEEK_END)
        try:
            written = 0
            while written < len(line):  # after a short write, the next one says why
                written += os.write(self._file, line[written:])
        except OSError as error:
            # A torn line would join the next one into a line read back as junk: that
            # id would be forgotten by a restart. Cut it off (shrinking needs no space).
            try:
                os.ftruncate(self._file, end)
            except OSError:
                self._torn = True
            raise ReplayNotKept(f"cannot record accepted message {cid} in {self._path}: "
                                f"{error.strerror or error}; refused, so that a restart "
                                f"cannot run it twice") from None
        self._torn = False
        super().remember(cid, until, now)
        self._lines += 1
        if self._lines > 2 * len(self) + 1024:
            try:
                compacted = self._rewrite()
            except OSError:  # no room for the compacted copy: keep appending to this one
                self._lines = len(self)
                return
            os.close(self._file)
            self._file = compacted

    def _rewrite(self) -> int:
        temporary = self._path + ".tmp"
        try:
            with open(temporary, "w", encoding="ascii") as new:
                for cid, until in self._expiry.items():
                    new.write(f"{cid.raw.hex()} {until!r}\n")
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        os.replace(temporary, self._path)
        self._lines = len(self._expiry)
        return os.open(self._path, os.O_WRONLY | os.O_APPEND)  # a whole line per write

    def close(self) -> None:
        os.close(self._file)
