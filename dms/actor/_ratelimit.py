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
        key = (sender, command)
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            return False
        self._store(key, tokens - 1.0, now)
        return True

    def available(self, sender: str, command: str, now: float) -> float:
        return self._tokens((sender, command), now)

    def charge(self, sender: str, command: str, now: float, cost: float) -> None:
        """Take `cost` tokens (what some work turned out to cost), down to below zero:
        a sender that overspent waits until its bucket refills."""
        key = (sender, command)
        self._store(key, self._tokens(key, now) - cost, now)

    def _tokens(self, key: tuple[str, str], now: float) -> float:
        limit = self.limit
        bucket = self._buckets.get(key)
        if bucket is None:
            return limit.burst
        tokens, last = bucket
        return min(limit.burst, tokens + (now - last) * limit.rate)

    def _store(self, key: tuple[str, str], tokens: float, now: float) -> None:
        buckets = self._buckets
        buckets.pop(key, None)  # re-inserted last: the dict is in recency order
        buckets[key] = (tokens, now)
        if len(buckets) > self._max_keys:
            del buckets[next(iter(buckets))]  # forget the least recent sender
        self._forget_full(now)

    def _forget_full(self, now: float) -> None:
        """Forget the least recent buckets that have refilled: a full bucket is what a
        sender without one gets, so forgetting it changes no decision, and a sender
        (an actor, a peer) that went away leaves nothing behind."""
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets))
            if self._tokens(oldest, now) < self.limit.burst:
                return
            del buckets[oldest]
