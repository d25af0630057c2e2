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
        key = (sender, command)
        tokens, last = self._buckets.get(key, (self.limit.burst, now))
        tokens = min(self.limit.burst, tokens + (now - last) * self.limit.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets.pop(key, None)  # re-inserted last: the dict is in recency order
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self._max_keys:
            del self._buckets[next(iter(self._buckets))]  # forget the least recent sender
        return True
