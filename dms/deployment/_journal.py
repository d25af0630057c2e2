"""A deployment's record and event stream, as its orchestrator node keeps them: in
memory for `status` and `events`, and in the node's SQLite store when it has one, so
that a restarted node can list its deployments."""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from typing import Any

import attrs
import trio

from dms.store import MAX_PAGE, DeploymentRecord, EventRecord, NodeDatabase, NodeStore

EVENTS_KEPT = 10_000
"""Events a deployment keeps in memory (the store has its own retention)..."""
EVENT_BYTES_KEPT = 1 << 20
"""...and about how many bytes of them (the oldest go first)."""


class DeploymentJournal:
    def __init__(self, record: DeploymentRecord, store: NodeStore | None,
                 clock: Callable[[], float], *, last_event: int = 0) -> None:
        self.record = record
        self.store = store
        self.clock = clock
        self.events: collections.deque[EventRecord] = collections.deque()
        self._bytes = 0
        self._last = last_event
        self._changed = trio.Event()

    @classmethod
    async def create(cls, record: DeploymentRecord, store: NodeStore | None,
                     clock: Callable[[], float]) -> DeploymentJournal:
        if store is not None:
            await store.call(NodeDatabase.create_deployment, record)
        return cls(record, store, clock)

    @property
    def last_event(self) -> int:
        return self._last

    async def event(self, kind: str, /, **payload: Any) -> EventRecord:
        """Append an event (`kind`, JSON `payload`) and wake every reader."""
        at = self.clock()
        if self.store is not None:
            event = await self.store.call(NodeDatabase.append_event, self.record.id, kind,
                                          payload, at=at)
        else:
            event = EventRecord(deployment_id=self.record.id, seq=self._last + 1, kind=kind,
                                at=at, payload=payload)
        self._last = event.seq
        self.events.append(event)
        self._bytes += _size(event)
        while len(self.events) > EVENTS_KEPT or (self._bytes > EVENT_BYTES_KEPT
                                                 and len(self.events) > 1):
            self._bytes -= _size(self.events.popleft())
        self._changed.set()
        self._changed = trio.Event()
        return event

    async def update(self, **changes: Any) -> DeploymentRecord:
        """Change the record (phase, assignment, allocations, failure)."""
        now = self.clock()
        if self.store is not None:
            self.record = await self.store.call(
                NodeDatabase.update_deployment, self.record.id,
                lambda record: attrs.evolve(record, **changes), at=now)
        else:
            self.record = attrs.evolve(self.record, updated_at=now, **changes)
        return self.record

    def events_after(self, after: int, limit: int = 100) -> list[EventRecord]:
        return [e for e in self.events if e.seq > after][:limit]

    async def read_after(self, after: int, limit: int = 100) -> list[EventRecord]:
        """Events after `after`: from memory, or from the store for what memory does not
        hold (a deployment from before a restart, or events it no longer keeps)."""
        first = self.events[0].seq if self.events else self._last + 1
        if after + 1 >= first or self.store is None:
            return self.events_after(after, limit)
        return list(await self.store.call(NodeDatabase.events_since, self.record.id, after,
                                          min(limit, MAX_PAGE)))

    async def wait_after(self, after: int, timeout: float = math.inf) -> list[EventRecord]:
        """Events after `after`, waiting up to `timeout` for the first one."""
        with trio.move_on_after(timeout):
            while self._last <= after:
                await self._changed.wait()
        return self.events_after(after)


def _size(event: EventRecord) -> int:
    """About what an event costs to keep: its kind and the text of its payload."""
    return 64 + len(event.kind) + sum(len(key) + len(str(value))
                                      for key, value in event.payload.items())
