"""The publish dedup set: bounded in size and in time (sans-IO, time passed in)."""

from __future__ import annotations

from collections import OrderedDict


class SeenMessages:
    """Message ids seen in the last `ttl` seconds, at most `capacity` of them.

    An id evicted early (capacity) or expired could be delivered again if it is still
    circulating; the hop limit bounds how long that can be.
    """

    def __init__(self, capacity: int = 65536, ttl: float = 300.0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.ttl = ttl
        self._expiry: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._expiry

    def add(self, message_id: bytes, now: float) -> bool:
        """Record `message_id`; True if it was not already seen."""
        self._expire(now)
        if message_id in self._expiry:
            return False
        # Same ttl for all, so insertion order is expiry order.
        self._expiry[message_id] = now + self.ttl
        if len(self._expiry) > self.capacity:
            self._expiry.popitem(last=False)
        return True

    def forget(self, message_id: bytes) -> None:
        """Not seen after all: it was dropped before it was processed, so a copy that
        comes again (a republished revocation) must get through."""
        self._expiry.pop(message_id, None)

    def _expire(self, now: float) -> None:
        while self._expiry:
            oldest, expiry = next(iter(self._expiry.items()))
            if expiry > now:
                break
            del self._expiry[oldest]
