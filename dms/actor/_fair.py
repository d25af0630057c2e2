"""An actor's work queue, fair between senders (sans-IO).

An actor runs at most `slots` behaviors at once. Without fairness one caller whose
requests are slow (or many) takes every slot and fills the queue, and everybody else
is told `Busy`. Here each sender may hold at most `sender_slots` of the slots and
`sender_queue` items (and `sender_bytes`) of the queue, and queued work starts round
robin between senders, so another caller's request waits behind at most one of the
hog's per turn.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Generic, TypeVar

import attrs

T = TypeVar("T")


@attrs.frozen
class FairShare:
    """How an actor shares its slots and queue between senders."""

    slots: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    queue: int = attrs.field(default=1024, validator=attrs.validators.ge(0))
    queue_bytes: int = 32 * 1024 * 1024
    sender_slots: int | None = None
    """Default: half the slots (at least one)."""
    sender_queue: int | None = None
    """Default: an eighth of the queue (at least one)."""
    sender_bytes: int | None = None
    """Default: a quarter of `queue_bytes`."""

    @property
    def per_sender_slots(self) -> int:
        return self.sender_slots if self.sender_slots is not None else max(1, self.slots // 2)

    @property
    def per_sender_queue(self) -> int:
        return self.sender_queue if self.sender_queue is not None else max(1, self.queue // 8)

    @property
    def per_sender_bytes(self) -> int:
        return self.sender_bytes if self.sender_bytes is not None else self.queue_bytes // 4


DEFAULT_SHARE = FairShare()


class FairQueue(Generic[T]):
    """Work from many senders: `offer` it, take what may start with `ready`, and say
    `done` when it ends. Holds no clock and starts nothing itself."""

    def __init__(self, share: FairShare = DEFAULT_SHARE) -> None:
        self.share = share
        self._waiting: dict[str, deque[tuple[T, int]]] = {}
        self._turns: deque[str] = deque()  # senders with waiting work, next turn first
        self._running: Counter[str] = Counter()
        self._sender_bytes: Counter[str] = Counter()
        self.running = 0
        self.queued = 0
        self.queued_bytes = 0

    def offer(self, sender: str, item: T, size: int = 0) -> bool:
        """Queue `item`; False (nothing queued) when it is over the queue's or the
        sender's share of it."""
        share = self.share
        waiting = self._waiting.get(sender)
        if (self.queued >= share.queue or self.queued_bytes + size > share.queue_bytes
                or (waiting is not None and len(waiting) >= share.per_sender_queue)
                or self._sender_bytes[sender] + size > share.per_sender_bytes):
            return False
        if waiting is None:
            waiting = self._waiting[sender] = deque()
            self._turns.append(sender)
        waiting.append((item, size))
        self.queued += 1
        self.queued_bytes += size
        self._sender_bytes[sender] += size
        return True

    def start(self, sender: str, size: int = 0) -> bool:
        """Count an item of `sender` (`size` bytes) as running at once, never queued,
        when nothing waits and the actor and the sender are below their share of the
        slots (what `offer` then `ready` would do, without the queue); False: `offer`
        it. An item `offer` would refuse for its size is not started either."""
        share = self.share
        if (self._turns or self.running >= share.slots
                or self._running[sender] >= share.per_sender_slots
                or size > share.queue_bytes or size > share.per_sender_bytes):
            return False
        self._running[sender] += 1
        self.running += 1
        return True

    def ready(self) -> list[tuple[str, T]]:
        """The queued items that may start now, each counted as running, round robin
        between senders below their share of the slots."""
        started: list[tuple[str, T]] = []
        skipped = 0  # senders in a row that are at their share of the slots
        while self._turns and self.running < self.share.slots and skipped < len(self._turns):
            sender = self._turns.popleft()
            if self._running[sender] >= self.share.per_sender_slots:
                self._turns.append(sender)
                skipped += 1
                continue
            skipped = 0
            waiting = self._waiting[sender]
            item, size = waiting.popleft()
            self.queued -= 1
            self.queued_bytes -= size
            self._sender_bytes[sender] -= size
            if not self._sender_bytes[sender]:
                del self._sender_bytes[sender]
            if waiting:
                self._turns.append(sender)
            else:
                del self._waiting[sender]
            self._running[sender] += 1
            self.running += 1
            started.append((sender, item))
        return started

    def done(self, sender: str) -> None:
        """An item of `sender` that `ready` gave out has ended."""
        self._running[sender] -= 1
        if self._running[sender] <= 0:
            del self._running[sender]
        self.running -= 1

    def clear(self) -> None:
        """Drop everything still waiting (the actor stops)."""
        self._waiting.clear()
        self._turns.clear()
        self._sender_bytes.clear()
        self.queued = 0
        self.queued_bytes = 0
