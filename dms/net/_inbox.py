"""The mesh's incoming queue, fair between link peers.

One shared first-in-first-out queue let a flooding link peer fill it, and everyone
else's deliveries were dropped with the flood. Here each link peer has a queue of its
own, bounded in items and in bytes (its share of the whole); the consumer takes from
them in turns (`dms.net._turns`: the peer that has used the least of the consumer's
time goes next, which is round robin while nobody is charged), so another peer's
delivery waits behind at most one of the flooder's; and when the whole is full, a
newcomer displaces the newest item of the peer holding the most, if that peer holds
more than the newcomer's would with it, so a quieter peer's item is never displaced.
A flood only ever pushes out its own kind.
Deliveries of a peer whose link is gone (`depart`) go first: a flood that rotates
identities leaves their leftovers behind, and each would take a turn of its own.

"Holding" is measured against the per-peer share in both units at once (a peer's load
is the larger of its items over `peer_items` and its bytes over `peer_bytes`), so that
a few huge deliveries weigh as much as many small ones.

Reading what will be dropped costs as much as reading what will not: a peer whose
share is full (in items), or whose last delivery was dropped, is *blocked*, and the
mesh does not read its link until the consumer has taken one of its deliveries (or,
holding none, until the inbox has room). Its frames then wait in its own connection,
and the flood costs the node what it consumes, not what it is sent.

`FairInbox` is the sans-IO core (no clock, no trio); `Inbox` is its trio shell, the
receive side the mesh's consumer reads: `receive`, `receive_nowait` and `async for`,
ending (after what is queued) once the mesh closes it.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import math
from collections import deque
from typing import Generic, TypeVar

import attrs
import trio

from dms.net._turns import FairTurns

T = TypeVar("T")


@attrs.frozen
class InboxLimits:
    """How much an inbox holds, in all and per link peer."""

    items: int = attrs.field(default=1024, validator=attrs.validators.ge(1))
    total_bytes: int = attrs.field(default=32 * 1024 * 1024, validator=attrs.validators.ge(1))
    peer_items: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(1)))
    """Default: a quarter of `items` (at least one)."""
    peer_bytes: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(1)))
    """Default: a quarter of `total_bytes` (8 MiB: a largest frame fits)."""

    @property
    def per_peer_items(self) -> int:
        return self.peer_items if self.peer_items is not None else max(1, self.items // 4)

    @property
    def per_peer_bytes(self) -> int:
        return (self.peer_bytes if self.peer_bytes is not None
                else max(1, self.total_bytes // 4))


DEFAULT_INBOX = InboxLimits()


class DropReason(enum.StrEnum):
    """Why a delivery was dropped at the inbox (the mesh counts each reason)."""

    PEER_FULL = "peer_full"
    """Its link peer already held its share (in items or bytes)."""
    FULL = "full"
    """The inbox was full and no peer held more than its link peer would with it."""
    DISPLACED = "displaced"
    """Queued, then pushed out by a quieter peer's newcomer."""
    CLOSED = "closed"
    """The inbox was closed: the mesh stopped, nobody will read it."""


class FairInbox(Generic[T]):
    """Items from many link peers: `offer` them, `take` them in turns. Sans-IO."""

    def __init__(self, limits: InboxLimits = DEFAULT_INBOX) -> None:
        self.limits = limits
        self._queues: dict[str, deque[tuple[T, int]]] = {}
        self._bytes: dict[str, int] = {}
        self._turns = FairTurns()  # each peer in `_queues`, whose turn is next
        self._heaviest: list[tuple[float, int, str]] = []  # (-load, seq, peer), lazy
        self._tracking = False  # whether `_heaviest` is kept (only near full: see _account)
        self._seq = itertools.count()
        self._departed: set[str] = set()  # holding deliveries, link gone: displaced first
        self._blocked: set[str] = set()  # not to be read until one of theirs is taken
        self._starved: set[str] = set()  # blocked and holding none: until there is room
        self._released: list[str] = []
        self.items = 0
        self.bytes = 0

    def __len__(self) -> int:
        return self.items

    def held_by(self, peer: str) -> tuple[int, int]:
        """Items and bytes `peer` has queued."""
        queue = self._queues.get(peer)
        return (len(queue) if queue else 0), self._bytes.get(peer, 0)

    def offer(self, peer: str, item: T, size: int) -> list[tuple[T, DropReason]]:
        """Queue `item` (`size` bytes) from `peer`; what was dropped: the newcomer
        itself, with why, or the items it displaced (empty: nothing was)."""
        limits = self.limits
        held_items, held_bytes = self.held_by(peer)
        if (held_items + 1 > limits.per_peer_items
                or held_bytes + size > limits.per_peer_bytes):
            self._block(peer)
            return [(item, DropReason.PEER_FULL)]
        displaced: list[tuple[str, T, int]] = []
        if self.items + 1 > limits.items or self.bytes + size > limits.total_bytes:
            if not self._tracking:  # full: who holds the most matters from now on
                self._tracking = True
                self._rebuild_heaviest()
            mine = self._load(peer, held_items + 1, held_bytes + size)
            while self.items + 1 > limits.items or self.bytes + size > limits.total_bytes:
                heaviest = self._heaviest_peer()
                if heaviest is None or self._load(heaviest, *self.held_by(heaviest)) <= mine:
                    for owner, lost, lost_size in reversed(displaced):  # no room after all
                        self._push(owner, lost, lost_size)
                    self._block(peer)
                    return [(item, DropReason.FULL)]
                lost, lost_size = self._pop_newest(heaviest)
                displaced.append((heaviest, lost, lost_size))
        self._push(peer, item, size)
        if held_items + 1 >= limits.per_peer_items:
            self._block(peer)  # its next would be dropped: do not read it yet
        for owner, _, _ in displaced:
            if owner in self._blocked and not self.held_by(owner)[0]:
                self._starved.add(owner)
        return [(lost, DropReason.DISPLACED) for _, lost, _ in displaced]

    def depart(self, peer: str) -> None:
        """`peer`'s link is gone: its deliveries are the first displaced when the inbox
        is full (they still count and are taken in turn until then)."""
        self._blocked.discard(peer)
        self._starved.discard(peer)
        if self.held_by(peer)[0]:
            self._departed.add(peer)
            if self._tracking:
                heapq.heappush(self._heaviest, (-math.inf, next(self._seq), peer))

    def arrive(self, peer: str) -> None:
        """`peer` has a link again: its deliveries weigh as any other's."""
        if peer in self._departed:
            self._departed.discard(peer)
            count, held = self.held_by(peer)
            if self._tracking:
                heapq.heappush(self._heaviest,
                               (-self._load(peer, count, held), next(self._seq), peer))
        if self.held_by(peer)[0] >= self.limits.per_peer_items:
            self._block(peer)  # at its share still: its new link is not read yet

    def blocked(self, peer: str) -> bool:
        """Whether `peer`'s link should not be read now (see the module doc)."""
        return peer in self._blocked

    def released(self) -> list[str]:
        """The peers unblocked since the last call."""
        released, self._released = self._released, []
        return released

    def release_all(self) -> None:
        """Unblock every peer (nobody will take from the inbox any more)."""
        self._released.extend(self._blocked)
        self._blocked.clear()
        self._starved.clear()

    def charge(self, peer: str, seconds: float) -> None:
        """What handling one of `peer`'s deliveries cost the consumer: its turns come
        the less often (see `dms.net._turns`)."""
        self._turns.charge(peer, seconds)

    def take(self) -> tuple[str, T] | None:
        """The next item: of the waiting peer that has used the least (None when
        empty)."""
        while self._turns:
            peer = self._turns.popleft()
            queue = self._queues[peer]
            if not queue:  # emptied by displacement while it waited for its turn
                self._forget(peer)
                continue
            item, size = queue.popleft()
            self._account(peer, -1, -size)
            if queue:
                self._turns.append(peer)
            else:
                self._forget(peer)
            if peer in self._blocked:
                self._release(peer)
            if self._starved and self.items < self.limits.items \
                    and self.bytes < self.limits.total_bytes:
                for starved in list(self._starved):
                    self._release(starved)
            return peer, item
        return None

    def _block(self, peer: str) -> None:
        if self.held_by(peer)[0]:
            self._blocked.add(peer)
        elif self.items >= self.limits.items or self.bytes >= self.limits.total_bytes:
            self._blocked.add(peer)
            self._starved.add(peer)
        # Else it holds nothing and there is room (its delivery alone was too big): no
        # take would come to release it, and its next may well fit.

    def _release(self, peer: str) -> None:
        self._blocked.discard(peer)
        self._starved.discard(peer)
        self._released.append(peer)

    # -- accounting -----------------------------------------------------------------

    def _load(self, peer: str, items: int, size: int) -> float:
        if peer in self._departed:
            return math.inf
        return max(items / self.limits.per_peer_items, size / self.limits.per_peer_bytes)

    def _push(self, peer: str, item: T, size: int) -> None:
        queue = self._queues.get(peer)
        if queue is None:
            queue = self._queues[peer] = deque()
            self._turns.append(peer)
        queue.append((item, size))
        self._account(peer, 1, size)

    def _pop_newest(self, peer: str) -> tuple[T, int]:
        item, size = self._queues[peer].pop()  # stays in `_turns` until its turn comes
        self._account(peer, -1, -size)
        return item, size

    def _forget(self, peer: str) -> None:
        del self._queues[peer]
        self._bytes.pop(peer, None)
        self._departed.discard(peer)
        self._turns.rest(peer)

    def _account(self, peer: str, items: int, size: int) -> None:
        self.items += items
        self.bytes += size
        held = self._bytes.get(peer, 0) + size
        self._bytes[peer] = held
        if not self._tracking:
            return
        # Who holds the most is looked for only when the inbox is full, so the heap is
        # kept only from then until the inbox is down to half (then dropped): a node
        # not under a flood pays nothing for it per delivery.
        limits = self.limits
        if self.items <= limits.items // 2 and self.bytes <= limits.total_bytes // 2:
            self._tracking = False
            self._heaviest.clear()
            return
        count = len(self._queues[peer])
        if count:
            heapq.heappush(self._heaviest,
                           (-self._load(peer, count, held), next(self._seq), peer))
        if len(self._heaviest) > 2 * len(self._queues) + 64:
            self._rebuild_heaviest()

    def _heaviest_peer(self) -> str | None:
        """The peer holding the most. Entries are pushed on every change and checked
        against the peer's holdings when they come up (stale ones are discarded)."""
        while self._heaviest:
            negative_load, _, peer = self._heaviest[0]
            count, held = self.held_by(peer)
            if count and -negative_load == self._load(peer, count, held):
                return peer
            heapq.heappop(self._heaviest)
        return None

    def _rebuild_heaviest(self) -> None:
        self._heaviest = [(-self._load(peer, len(queue), self._bytes.get(peer, 0)),
                           next(self._seq), peer)
                          for peer, queue in self._queues.items() if queue]
        heapq.heapify(self._heaviest)


class Inbox(Generic[T]):
    """The trio side of a `FairInbox`: the mesh `put`s, one consumer receives.

    `receive` waits for an item; once the inbox is closed, what is queued is still
    received and then `trio.EndOfChannel` is raised (`async for` ends).
    """

    def __init__(self, limits: InboxLimits = DEFAULT_INBOX) -> None:
        self._fair = FairInbox[T](limits)
        self._waiting = trio.lowlevel.ParkingLot()
        self._unblocked: dict[str, trio.Event] = {}
        self._closed = False

    @property
    def limits(self) -> InboxLimits:
        return self._fair.limits

    def __len__(self) -> int:
        return len(self._fair)

    @property
    def bytes(self) -> int:
        """Bytes queued (as sized by the caller of `put`)."""
        return self._fair.bytes

    def held_by(self, peer: str) -> tuple[int, int]:
        """Items and bytes `peer` has queued."""
        return self._fair.held_by(peer)

    def charge(self, peer: str, seconds: float) -> None:
        """What handling one of `peer`'s deliveries cost: the consumer says so, and the
        peer's turns come the less often (see `dms.net._turns`)."""
        self._fair.charge(peer, seconds)

    def put(self, peer: str, item: T, size: int) -> list[tuple[T, DropReason]]:
        """Queue `item` from link peer `peer` without waiting; what was dropped (see
        `FairInbox.offer`)."""
        if self._closed:
            return [(item, DropReason.CLOSED)]
        dropped = self._fair.offer(peer, item, size)
        if not dropped or dropped[0][1] is DropReason.DISPLACED:
            self._waiting.unpark()
        return dropped

    def depart(self, peer: str) -> None:
        """`peer`'s link is gone (see `FairInbox.depart`)."""
        self._fair.depart(peer)

    def arrive(self, peer: str) -> None:
        """`peer` has a link again."""
        self._fair.arrive(peer)

    def blocked(self, peer: str) -> bool:
        """Whether `peer`'s link should not be read now (see `readable`)."""
        return not self._closed and self._fair.blocked(peer)

    async def readable(self, peer: str) -> None:
        """Return once `peer`'s link may be read again: at once unless its share is full
        or its last delivery was dropped, else once the consumer took one of its
        deliveries (or the inbox closed). Not a checkpoint when it returns at once."""
        if self._closed or not self._fair.blocked(peer):
            return
        event = self._unblocked.get(peer)
        if event is None:
            event = self._unblocked[peer] = trio.Event()
        await event.wait()

    def close(self) -> None:
        """No more puts; the consumer receives what is queued, then the end. Readers
        waiting for room go on (and their deliveries are dropped as closed)."""
        self._closed = True
        self._waiting.unpark_all()
        self._fair.release_all()
        self._wake_released()

    def receive_nowait(self) -> T:
        """The next item; `trio.WouldBlock` when none is queued, `trio.EndOfChannel`
        once closed and drained."""
        taken = self._fair.take()
        if taken is not None:
            self._wake_released()
            return taken[1]
        if self._closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> T:
        """The next item, waiting for one; `trio.EndOfChannel` once closed and drained.
        One checkpoint: the wait for an item when there was none, else a yield."""
        await trio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while True:
            try:
                item = self.receive_nowait()
            except trio.WouldBlock:
                await self._waiting.park()
                waited = True
                continue
            if not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return item

    def _wake_released(self) -> None:
        for peer in self._fair.released():
            event = self._unblocked.pop(peer, None)
            if event is not None:
                event.set()

    def __aiter__(self) -> Inbox[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
