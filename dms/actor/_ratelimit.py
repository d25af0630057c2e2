"""Token buckets per (sender, behavior): a flood from one sender cannot starve others."""

from __future__ import annotations

import attrs


@attrs.frozen
class RateLimit:
    rate: float = 1000.0  # messages per second per (sender, behavior)
    burst: float = 2000.0


class RateLimiter:
    def __init__(self, limit: RateLimit, max_keys: int = 100_000) -> None:
        self.limit = limit
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._max_keys = max_keys

    def allow(self, sender: str, command: str, now: float) -> bool:
        """Take one token from the bucket; False (nothing taken) when it has none."""
        if self.available(sender, command, now) < 1.0:
            return False
        self.charge(sender, command, now, 1.0)
        return True

    def available(self, sender: str, command: str, now: float) -> float:
        tokens, last = self._buckets.get((sender, command), (self.limit.burst, now))
        return min(self.limit.burst, tokens + (now - last) * self.limit.rate)

    def charge(self, sender: str, command: str, now: float, cost: float) -> None:
        """Take `cost` tokens (what some work turned out to cost), down to below zero:
        a sender that overspent waits until its bucket refills."""
        key = (sender, command)
        tokens = self.available(sender, command, now)
        self._buckets.pop(key, None)  # re-inserted last: the dict is in recency order
        self._buckets[key] = (tokens - cost, now)
        if len(self._buckets) > self._max_keys:
            del self._buckets[next(iter(self._buckets))]  # forget the least recent sender
        self._forget_full(now)

    def _forget_full(self, now: float) -> None:
        """Forget the least recent buckets that have refilled: a full bucket is what a
        sender without one gets, so forgetting it changes no decision, and a sender
        (an actor, a peer) that went away leaves nothing behind."""
        while self._buckets:
            oldest = next(iter(self._buckets))
            if self.available(*oldest, now) < self.limit.burst:
                return
            del self._buckets[oldest]
