"""Plumtree's state for one node (sans-IO, time passed in): which neighbours get
publications eagerly and which lazily, per publisher, announcements waiting to go out,
and the publications announced to us that we still miss.

Leitão, Pereira and Rodrigues, "Epidemic Broadcast Trees" (SRDS 2007): every neighbour
starts *eager* (it gets the whole publication). A duplicate shows a redundant path:
the receiver moves its sender to *lazy* and tells it so (PRUNE); lazy neighbours get
only the ids (IHAVE), batched. The eager links that are left form a spanning tree. A
node that hears of an id it has not received waits `graft_timeout` for the tree to
bring it, then asks an announcer for it (GRAFT), which also makes that link eager
again (the announcer's side on the GRAFT, ours when the publication arrives over it):
the tree repairs itself around a lost frame or a departed neighbour, and the lazy links
are its backup paths.

One tree per publisher (its `origin`), as riak_core's broadcast keeps one per root: a
single tree shared by all publishers is pruned by every publisher's duplicates, and
concurrent publications from several nodes cut it in two places of the same cycle, so
that every later publication needs a repair. A tree per origin is pruned only by its
own publications. Origins are unauthenticated (the layer above verifies the payload's
signer): a peer that lies about one shapes only the trees it is on the path of, as any
PRUNE it sends could.

Bounded: at most `max_origins` trees (the least recently used one is forgotten, and its
publisher's next publication goes to every neighbour again and prunes anew), at most
`max_missing` ids waiting for repair (more announcements are ignored until some arrive
or give up), of which one neighbour's announcements may have made `max_missing_per_peer`
(a neighbour announcing ids that never come cannot crowd out the others' repairs), each
with at most `max_announcers` peers to ask, and at most `MAX_IDS`
announcements waiting per neighbour (the caller flushes a full batch).

Announcements go to `lazy_fanout` lazy neighbours per publication (gossipsub's D_lazy;
Vyzovitis et al., "GossipSub", 2020), not to every one, chosen in an order of the
neighbours shuffled afresh each batching interval, so that the publications of one
interval share the same few IHAVE frames: at low
rates each announcement is a frame of its own, and they would outnumber the tree's
frames several times over. A node that missed a publication still hears of it from
most of its neighbours that have it (each tells it with probability fanout / lazy
links), and the whole cache is announced to every neighbour each exchange round
(anti-entropy). The layer above's priority topics (revocations) are announced to
every lazy neighbour.

An id waiting to be announced to a neighbour is dropped from its batch when that
neighbour shows it has it (its own IHAVE of it, or the publication itself coming over
its link): in a well-connected overlay most neighbours get a publication before this
node's batch goes out, so this saves most announcements and their processing, and
loses nothing (a peer that announced an id has it cached, to serve or pass on).
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from collections.abc import Container

import attrs

from dms.net._mesh_wire import MAX_IDS


@attrs.define
class _Missing:
    announcers: deque[str]
    deadline: float
    first: str
    """The neighbour whose announcement made it missing (its share is charged)."""


class BroadcastTree:
    """Neighbours, the lazy ones per origin, pending announcements and missing ids."""

    def __init__(
        self,
        *,
        graft_timeout: float = 1.0,
        retry_timeout: float = 0.5,
        max_missing: int = 4096,
        max_announcers: int = 4,
        max_origins: int = 1024,
        max_missing_per_peer: int = 512,
        lazy_fanout: int = 3,
        rng: random.Random | None = None,
    ) -> None:
        self.graft_timeout = graft_timeout
        """Seconds an announced id may take to arrive by the tree before a GRAFT."""
        self.retry_timeout = retry_timeout
        """Seconds a GRAFT may take before the next announcer is asked."""
        self.max_missing = max_missing
        self.max_announcers = max_announcers
        self.max_origins = max_origins
        self.max_missing_per_peer = max_missing_per_peer
        if lazy_fanout < 1:
            raise ValueError(f"lazy_fanout must be at least 1, got {lazy_fanout}")
        self.lazy_fanout = lazy_fanout
        """Lazy neighbours a publication is announced to (gossipsub's D_lazy), chosen
        afresh at random for each; `announce(..., everyone=True)` tells them all."""
        self._rng = rng or random.Random()
        self._order: list[str] = []
        """The neighbours in the order announcements prefer them, shuffled at each
        periodic flush: every publication of one batching interval goes to the first
        `lazy_fanout` of its lazy neighbours in the same order, so their ids share a
        few IHAVE frames instead of each choosing its own."""
        self._charged: dict[str, int] = {}
        self.neighbours: set[str] = set()
        self._lazy: OrderedDict[bytes, set[str]] = OrderedDict()
        self._pending: dict[str, dict[bytes, None]] = {}
        """Ids to announce, per lazy neighbour, in order (a dict: one it turns out to
        have is taken out of its batch at no cost)."""
        self._missing: OrderedDict[bytes, _Missing] = OrderedDict()

    def __contains__(self, peer: object) -> bool:
        return peer in self.neighbours

    @property
    def missing(self) -> int:
        """How many announced ids are waiting to arrive."""
        return len(self._missing)

    def eager(self, origin: bytes) -> set[str]:
        """The neighbours that get `origin`'s publications whole."""
        return self.neighbours - self._lazy.get(origin, set())

    def lazy(self, origin: bytes) -> set[str]:
        """The neighbours that get only announcements of `origin`'s publications."""
        return set(self._lazy.get(origin, set()))

    def add(self, peer: str) -> None:
        """A new neighbour: eager on every tree until a duplicate from it says otherwise."""
        if peer not in self.neighbours:
            self._order.insert(self._rng.randrange(len(self._order) + 1), peer)
        self.neighbours.add(peer)
        for lazy in self._lazy.values():
            lazy.discard(peer)

    def remove(self, peer: str) -> None:
        if peer in self.neighbours:
            self._order.remove(peer)
        self.neighbours.discard(peer)
        for lazy in self._lazy.values():
            lazy.discard(peer)
        self._pending.pop(peer, None)
        for missing in self._missing.values():
            if peer in missing.announcers:
                missing.announcers.remove(peer)

    def received(self, message_id: bytes, sender: str | None, origin: bytes) -> None:
        """A publication new to us arrived (from `sender`, None: our own): it is no
        longer missing, and the link it came over is on `origin`'s tree."""
        missing = self._missing.pop(message_id, None)
        if missing is not None:
            self._discharge(missing)
        if sender is not None:
            self._make_eager(sender, origin)

    def duplicate(self, sender: str, origin: bytes) -> bool:
        """A publication we had came again over `sender`'s link: prune that link from
        `origin`'s tree. True when the sender is a neighbour (tell it: PRUNE), even one
        already lazy here: the duplicate shows that it still pushes to us, so our last
        PRUNE was lost."""
        if sender not in self.neighbours:
            return False
        self._tree(origin).add(sender)
        return True

    def pruned(self, peer: str, origin: bytes) -> None:
        """The peer asked for announcements only of `origin`'s publications."""
        if peer in self.neighbours:
            self._tree(origin).add(peer)

    def grafted(self, peer: str, origin: bytes) -> None:
        """The peer asked for one of `origin`'s publications: eager on its tree again."""
        self._make_eager(peer, origin)

    def announce(self, message_id: bytes, origin: bytes, exclude: str | None, *,
                 everyone: bool = False) -> list[str]:
        """Queue an IHAVE of `message_id` for `lazy_fanout` of the neighbours lazy on
        `origin`'s tree (all of them with `everyone`), never `exclude`; the neighbours
        whose batch is full (flush them now)."""
        lazy = self._lazy.get(origin)
        if not lazy:
            return []
        chosen = [peer for peer in self._order if peer in lazy and peer != exclude]
        if not everyone:
            del chosen[self.lazy_fanout:]
        full = []
        for peer in chosen:
            batch = self._pending.get(peer)
            if batch is None:
                batch = self._pending[peer] = {}
            batch[message_id] = None
            if len(batch) >= MAX_IDS:
                full.append(peer)
        return full

    def take_announcements(self, peers: list[str] | None = None) -> dict[str, tuple[bytes, ...]]:
        """The queued IHAVE ids, per neighbour (all, or just `peers`), now sent. Taking
        them all (the periodic flush) starts another interval: the neighbours are
        preferred in a fresh random order from now on."""
        if peers is None:
            self._rng.shuffle(self._order)
        chosen = list(self._pending) if peers is None else peers
        taken = {peer: tuple(self._pending.pop(peer)) for peer in chosen if peer in self._pending}
        return {peer: ids for peer, ids in taken.items() if ids}

    def has(self, peer: str, message_id: bytes) -> None:
        """`peer` showed it has `message_id` (it sent it to us): it is not told of it."""
        batch = self._pending.get(peer)
        if batch is not None:
            batch.pop(message_id, None)

    def announced(self, peer: str, message_ids: tuple[bytes, ...], now: float,
                  have: Container[bytes] = frozenset()) -> None:
        """`peer` has these ids: it is not told of them (gossip it told us would be
        news to nobody), and those we lack (not in `have`) are now missing."""
        if peer not in self.neighbours:
            return
        batch = self._pending.get(peer)
        for message_id in message_ids:
            if message_id in have:
                if batch:
                    batch.pop(message_id, None)
                continue
            missing = self._missing.get(message_id)
            if missing is None:
                if (len(self._missing) >= self.max_missing
                        or self._charged.get(peer, 0) >= self.max_missing_per_peer):
                    continue
                missing = _Missing(deque(), now + self.graft_timeout, peer)
                self._missing[message_id] = missing
                self._charged[peer] = self._charged.get(peer, 0) + 1
            if peer not in missing.announcers and len(missing.announcers) < self.max_announcers:
                missing.announcers.append(peer)

    def due(self, now: float) -> dict[str, list[bytes]]:
        """The GRAFTs to send now, per neighbour: each id missing past its deadline
        is asked of its next announcer; an id with no announcer left gives up (a
        later announcement starts over)."""
        grafts: dict[str, list[bytes]] = {}
        for message_id, missing in list(self._missing.items()):
            if missing.deadline > now:
                continue
            if not missing.announcers:
                del self._missing[message_id]
                self._discharge(missing)
                continue
            grafts.setdefault(missing.announcers.popleft(), []).append(message_id)
            missing.deadline = now + self.retry_timeout
        return grafts

    def _discharge(self, missing: _Missing) -> None:
        left = self._charged.get(missing.first, 0) - 1
        if left > 0:
            self._charged[missing.first] = left
        else:
            self._charged.pop(missing.first, None)

    def _tree(self, origin: bytes) -> set[str]:
        lazy = self._lazy.get(origin)
        if lazy is None:
            lazy = self._lazy[origin] = set()
            while len(self._lazy) > self.max_origins:
                self._lazy.popitem(last=False)
        else:
            self._lazy.move_to_end(origin)
        return lazy

    def _make_eager(self, peer: str, origin: bytes) -> None:
        lazy = self._lazy.get(origin)
        if lazy is not None:
            lazy.discard(peer)
