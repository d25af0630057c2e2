"""The publications a node can send again on a GRAFT (sans-IO, time passed in)."""

from __future__ import annotations

from collections import OrderedDict

import attrs

from dms.net._mesh_wire import Publish

TOPIC_BYTES = 4 * 1024 * 1024
"""The default bound on one topic's cached publications: a quarter of the default
total, so a flood on one topic leaves room for three others' repairs."""

REPAIR_TTL = 120.0
"""The default seconds a publication can be repaired by GRAFT."""

CACHED_OVERHEAD = 128
"""Bytes a cached publication is counted for beyond its payload, topic and id."""


@attrs.frozen
class Cached:
    publish: Publish
    """As this node forwards it (its `hops_left` already counted down)."""
    at: float


class MessageCache:
    """Recent publications by id, bounded in bytes (`max_bytes`), in bytes per topic
    (`max_topic_bytes`) and in time (`ttl`): past any of them, the oldest (of the
    topic) go first. The topic bound keeps one busy topic from evicting every other
    topic's publications before a GRAFT can ask for them. A publication older than
    `ttl` cannot be repaired by GRAFT any more; the layer above republishes what must
    get through (revocations, in every new neighbour's greeting)."""

    def __init__(self, max_bytes: int = 16 * 1024 * 1024, ttl: float = REPAIR_TTL,
                 max_topic_bytes: int | None = None) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        if max_topic_bytes is None:
            max_topic_bytes = min(TOPIC_BYTES, max_bytes)
        if not 1 <= max_topic_bytes <= max_bytes:
            raise ValueError(f"max_topic_bytes must be 1..max_bytes ({max_bytes}), "
                             f"got {max_topic_bytes}")
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl}")
        self.max_bytes = max_bytes
        self.max_topic_bytes = max_topic_bytes
        self.ttl = ttl
        self.bytes = 0
        self._entries: OrderedDict[bytes, Cached] = OrderedDict()
        self._topics: dict[str, OrderedDict[bytes, None]] = {}
        """Each topic's cached ids, oldest first."""
        self._topic_bytes: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._entries

    def topic_bytes(self, topic: str) -> int:
        """The bytes `topic`'s cached publications are counted for."""
        return self._topic_bytes.get(topic, 0)

    def put(self, publish: Publish, now: float) -> None:
        self.expire(now)
        if publish.message_id in self._entries:
            return
        size = _size(publish)
        if size > self.max_topic_bytes:
            return
        self._entries[publish.message_id] = Cached(publish, now)
        self._topics.setdefault(publish.topic, OrderedDict())[publish.message_id] = None
        self._topic_bytes[publish.topic] = self.topic_bytes(publish.topic) + size
        self.bytes += size
        while self._topic_bytes[publish.topic] > self.max_topic_bytes:
            self._drop(next(iter(self._topics[publish.topic])))
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

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
            message_id, oldest = next(iter(self._entries.items()))
            if oldest.at > now - self.ttl:
                break
            self._drop(message_id)

    def _drop(self, message_id: bytes) -> None:
        publish = self._entries.pop(message_id).publish
        size = _size(publish)
        self.bytes -= size
        ids = self._topics[publish.topic]
        del ids[message_id]
        if ids:
            self._topic_bytes[publish.topic] -= size
        else:  # a topic seen once is not remembered for ever
            del self._topics[publish.topic]
            del self._topic_bytes[publish.topic]


def _size(publish: Publish) -> int:
    return (len(publish.payload) + len(publish.topic) + len(publish.message_id)
            + CACHED_OVERHEAD)
