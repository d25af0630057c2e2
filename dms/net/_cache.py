"""The publications a node can send again on a GRAFT (sans-IO, time passed in)."""

from __future__ import annotations

from collections import OrderedDict

import attrs

from dms.net._mesh_wire import Publish

CACHED_OVERHEAD = 128
"""Bytes a cached publication is counted for beyond its payload, topic and id."""


@attrs.frozen
class Cached:
    publish: Publish
    """As this node forwards it (its `hops_left` already counted down)."""
    at: float


class MessageCache:
    """Recent publications by id, bounded in bytes (`max_bytes`) and time (`ttl`):
    past either, the oldest go first. A publication older than `ttl` cannot be
    repaired by GRAFT any more; the layer above republishes what must get through
    (revocations, in every new neighbour's greeting)."""

    def __init__(self, max_bytes: int = 16 * 1024 * 1024, ttl: float = 120.0) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.bytes = 0
        self._entries: OrderedDict[bytes, Cached] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._entries

    def put(self, publish: Publish, now: float) -> None:
        self.expire(now)
        if publish.message_id in self._entries:
            return
        size = _size(publish)
        if size > self.max_bytes:
            return
        self._entries[publish.message_id] = Cached(publish, now)
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._pop_oldest()

    def get(self, message_id: bytes, now: float) -> Publish | None:
        self.expire(now)
        cached = self._entries.get(message_id)
        return None if cached is None else cached.publish

    def recent(self, since: float, now: float, limit: int) -> tuple[bytes, ...]:
        """Ids cached at or after `since`, the newest `limit` of them, oldest first."""
        self.expire(now)
        ids: list[bytes] = []
        for message_id in reversed(self._entries):
            if len(ids) >= limit or self._entries[message_id].at < since:
                break
            ids.append(message_id)
        return tuple(reversed(ids))

    def expire(self, now: float) -> None:
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if oldest.at > now - self.ttl:
                break
            self._pop_oldest()

    def _pop_oldest(self) -> None:
        _, cached = self._entries.popitem(last=False)
        self.bytes -= _size(cached.publish)


def _size(publish: Publish) -> int:
    return (len(publish.payload) + len(publish.topic) + len(publish.message_id)
            + CACHED_OVERHEAD)
