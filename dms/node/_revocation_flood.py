"""The revocations a node still has to publish, bounded (sans-IO).

A node revokes its grants to every child actor that stops for good and floods those
revocations. Children can be made to stop from afar (a deployment that ends), so the
queue between the actor system and the publishing task is bounded in count and in
bytes: past either bound a revocation is not queued (counted in ``dropped``), and
`overflowed` says so until the publisher has caught up. The revocation itself is not
lost: it is applied and kept before it is queued, and the queue remembers the first one
it refused (`resume_from`, one key however many follow): once it drains, the publisher
republishes every kept revocation from that one on, in the order they were kept
(`dms.node.Node`), so a burst of any size reaches the node's peers. Nothing here blocks: the actor system puts from synchronous
code, and a full queue must not stop the child from stopping.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

DEFAULT_MAX_COUNT = 1024
DEFAULT_MAX_BYTES = 4 * 1024 * 1024


class RevocationFlood:
    """Encoded revocations in the order they were revoked, at most `max_count` of them
    and `max_bytes` in all."""

    def __init__(self, *, max_count: int = DEFAULT_MAX_COUNT,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_count < 1 or max_bytes < 1:
            raise ValueError(f"RevocationFlood: max_count and max_bytes must be at least 1, "
                             f"got {max_count} and {max_bytes}")
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.bytes = 0
        self.dropped = 0
        """Revocations refused since the queue was made (over a bound)."""
        self.resume_from: Hashable | None = None
        """The key of the first revocation refused since `take_overflow` last reset it."""
        self._queue: deque[bytes] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, data: bytes, key: Hashable = None) -> bool:
        """Queue one encoded revocation; False (not queued, counted, and `key`, the
        revocation's id, remembered if it is the first refused) when it would take the
        queue past either bound."""
        if len(self._queue) >= self.max_count or self.bytes + len(data) > self.max_bytes:
            self.dropped += 1
            if self.resume_from is None:
                self.resume_from = key if key is not None else b""
            return False
        self._queue.append(data)
        self.bytes += len(data)
        return True

    def take(self) -> bytes | None:
        """The oldest queued revocation, removed; None when the queue is empty."""
        if not self._queue:
            return None
        data = self._queue.popleft()
        self.bytes -= len(data)
        return data

    def take_overflow(self) -> Hashable | None:
        """The key of the first revocation refused since the last call (None: none was;
        it resets): the publisher then republishes the kept ones from it on."""
        first, self.resume_from = self.resume_from, None
        return first
