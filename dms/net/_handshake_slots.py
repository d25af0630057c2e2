"""The table of half-open handshakes a listener holds, as a sans-IO policy.

Before a dialer proves its node key it costs the listener a slot, and the slots are few
(`LinkSettings.pending_handshakes`). The table decides who loses a slot when a newcomer
arrives, so that one source (one attacker host) cannot take the slots of others:

- a source already holding `per_source` half-open attempts evicts *its own* oldest one.
  Evicting rather than refusing keeps a source's newest attempt, the one most likely
  alive: a host whose earlier attempts died (a crashed node, a NAT shared with a noisy
  neighbour) still gets through, and an attacker only churns its own slots;
- a full table evicts the oldest attempt of the source holding the most slots (ties: the
  source whose oldest attempt is oldest), so a flood from few sources is paid for by
  those sources, and only a table full of single-slot sources loses its globally oldest.

The newcomer is always admitted. Attempts are any hashable values (the listener uses
each handshake's cancel scope); the table never looks inside them.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

import attrs

Attempt = TypeVar("Attempt", bound=Hashable)


class EvictionReason(enum.Enum):
    """Why a half-open attempt lost its slot to a newcomer."""

    SAME_SOURCE = "its source reached the per-source limit"
    TABLE_FULL = "the table was full"


@attrs.frozen
class Eviction(Generic[Attempt]):
    """An attempt the listener must now end, and why."""

    attempt: Attempt
    source: str
    reason: EvictionReason


class HandshakeSlots(Generic[Attempt]):
    """At most `capacity` half-open attempts, at most `per_source` of them per source."""

    def __init__(self, capacity: int, per_source: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if per_source < 1:
            raise ValueError(f"per_source must be >= 1, got {per_source}")
        self.capacity = capacity
        self.per_source = per_source
        self._by_source: dict[str, dict[Attempt, int]] = {}  # each source's attempts, oldest first
        self._source_of: dict[Attempt, str] = {}
        self._arrivals = itertools.count()

    def __len__(self) -> int:
        return len(self._source_of)

    def __contains__(self, attempt: object) -> bool:
        return attempt in self._source_of

    def held_by(self, source: str) -> int:
        """How many half-open attempts `source` holds."""
        return len(self._by_source.get(source, ()))

    def admit(self, source: str, attempt: Attempt) -> Eviction[Attempt] | None:
        """Give `attempt` from `source` a slot; the attempt it took the slot from, if any."""
        if attempt in self._source_of:
            raise ValueError(f"{attempt!r} already holds a slot")
        eviction: Eviction[Attempt] | None = None
        if self.held_by(source) >= self.per_source:
            eviction = self._evict_oldest_of(source, EvictionReason.SAME_SOURCE)
        elif len(self) >= self.capacity:
            eviction = self._evict_oldest_of(self._largest_source(), EvictionReason.TABLE_FULL)
        self._by_source.setdefault(source, {})[attempt] = next(self._arrivals)
        self._source_of[attempt] = source
        return eviction

    def release(self, attempt: Attempt) -> None:
        """Free `attempt`'s slot (its handshake ended); nothing if it holds none."""
        source = self._source_of.pop(attempt, None)
        if source is None:
            return
        held = self._by_source[source]
        del held[attempt]
        if not held:
            del self._by_source[source]

    def _largest_source(self) -> str:
        def weight(source: str) -> tuple[int, int]:
            held = self._by_source[source]
            return len(held), -next(iter(held.values()))

        return max(self._by_source, key=weight)

    def _evict_oldest_of(self, source: str, reason: EvictionReason) -> Eviction[Attempt]:
        oldest = next(iter(self._by_source[source]))
        self.release(oldest)
        return Eviction(oldest, source, reason)
