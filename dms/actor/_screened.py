"""Publications screened but not yet admitted: the screen's decode and signature check,
kept for admission so a delivered publication costs one of each.

Keyed by the payload bytes themselves (a dict compares them on a hit), so only exactly
the bytes that were screened find an entry: one altered byte misses and is decoded and
checked afresh. What is shared is a pure function of those bytes (the decoded envelope,
its invocation signature valid); everything that depends on the moment or on state
(time bounds, audience, chain, revocation, replay, rate limits) admission still does.

Bounded in entries, in bytes and in age, oldest first out; an entry is taken once. A
miss costs nothing but the work it would have saved.
"""

from __future__ import annotations

from collections import OrderedDict

from dms.actor._wire import Envelope

ENTRY_OVERHEAD = 1024
"""Bytes an entry is counted for beyond its payload (the decoded objects it holds)."""


class ScreenedPublications:
    def __init__(self, *, max_entries: int = 1024, max_bytes: int = 8 << 20,
                 max_age: float = 10.0) -> None:
        if max_entries < 1 or max_bytes < 1 or max_age <= 0:
            raise ValueError("ScreenedPublications: max_entries, max_bytes and max_age "
                             "must be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._entries: OrderedDict[bytes, tuple[Envelope, float]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes the entries are counted for."""
        return self._bytes

    def put(self, payload: bytes, envelope: Envelope, now: float) -> None:
        """Keep `envelope`, decoded from exactly `payload`, whose invocation signature
        was checked. One too large for the whole budget is not kept."""
        cost = len(payload) + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return
        self._discard(payload)
        self._expire(now)
        while self._entries and (len(self._entries) >= self.max_entries
                                 or self._bytes + cost > self.max_bytes):
            self._discard(next(iter(self._entries)))
        self._entries[payload] = (envelope, now)
        self._bytes += cost

    def take(self, payload: bytes, now: float) -> Envelope | None:
        """The envelope screened from exactly these bytes, removed; None when there is
        none (never screened, evicted, or older than `max_age`)."""
        entry = self._entries.pop(payload, None)
        if entry is None:
            return None
        self._bytes -= len(payload) + ENTRY_OVERHEAD
        envelope, when = entry
        if not 0 <= now - when <= self.max_age:
            return None
        return envelope

    def _expire(self, now: float) -> None:
        while self._entries:
            oldest = next(iter(self._entries))
            if 0 <= now - self._entries[oldest][1] <= self.max_age:
                return
            self._discard(oldest)

    def _discard(self, payload: bytes) -> None:
        if self._entries.pop(payload, None) is not None:
            self._bytes -= len(payload) + ENTRY_OVERHEAD
