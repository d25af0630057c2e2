"""A node's view of the network: links to peers, unicast, pubsub, peer exchange.

`Mesh` runs on one transport. It listens, keeps its bootstrap peers connected (reconnect
with exponential backoff), tells every new peer the dialable peers it knows, dials the
ones it learns that way while it has fewer overlay neighbours than its target, and pings
its peers to measure round-trip times.

Policies (the contract the actor runtime relies on):

- **A bounded-degree overlay** (`dms.net._degree`). Each link has a role: an *overlay*
  neighbour (publications flow over it), a *leaf* (a peer with no listen address, such
  as a `dms` command: it gets publications) or *direct* (unicast and tunnel frames
  only). A node dials neighbours only while it has fewer than ``degree.target`` and
  holds ``degree.maximum`` at most; a newcomer past that gets a direct link and a
  `DirectOnly` frame naming known peers to join through instead, and its dial is
  closed. So the overlay stays connected (full nodes pass newcomers on) and no number
  of connection attempts grows a node's links past ``maximum + leaves + direct``. Once
  an exchange round (`_upkeep`) a node short of neighbours dials known peers, idle
  direct links are closed, and every ``degree.rotation_interval`` a node swaps one
  neighbour it dialed for a random known peer, which keeps the overlay mixing and
  joins the two sides of a healed partition.
- **Unicast to a peer that is not a neighbour goes over a direct link.** `send` to a
  peer with no link dials its known address and keeps the link *direct*: it does not
  count in either side's degree, carries no publications, and closes after
  ``degree.direct_idle`` seconds without a unicast or tunnel frame (the least recently
  used one is closed first when ``degree.direct`` of them are open). A link that
  exists already, whatever its role, carries the unicast.

- **One link per peer.** When two links to the same peer exist (both dialed at once),
  both sides keep the one dialed by the lower peer id; a second link in the same
  direction replaces the older one (its peer restarted).
- **Sending never waits for a peer.** `send` raises `LinkBusy` when that peer's bounded
  send buffer is full; `publish` skips such a peer and counts ``link.dropped_busy``.
  Publications relayed for others go out after this node's own frames and fill half a
  send buffer at most (``link.dropped_busy_relayed``): a relayed flood leaves the
  node's replies room and no wait.
- **Incoming is fair between link peers and bounded.**
  `incoming` (and `priority_incoming`) is an `Inbox`: a queue per link peer, bounded in
  items and bytes per peer and in all (`InboxLimits`), read in turns by the consumer's
  time each peer has used (the consumer charges it: `Inbox.charge`);
  when it is full a newcomer displaces the newest delivery of the peer holding the most,
  never a quieter peer's (`dms.net._inbox`). Drops are counted per reason:
  ``mesh.dropped_incoming_peer_full``, ``_full``, ``_displaced``, ``_closed``. A
  dropped publication is forgotten by the dedup ("seen" means processed), so a later
  copy gets in.
- **A link peer's own flood waits in its own connection.** After a unicast that fills
  its peer's share (or is dropped), that link is read no further until the consumer
  has taken one of the peer's deliveries (``mesh.reads_paused``): the node spends
  nothing on reading what it would drop. Publications never pause a link (a neighbour
  relaying a flood from afar must not be stalled for it: they are dropped past its
  share instead). Readers take one frame per turn, so one busy link cannot hold the
  event loop for a whole socket read.
- **Pubsub is Plumtree** (`dms.net._tree`; Leitão et al., "Epidemic Broadcast
  Trees", 2007). A publication goes whole to the *eager* overlay neighbours and leaves
  of its publisher's tree and is announced (IHAVE, batched every `lazy_interval`) to
  three of the *lazy* ones chosen at random (gossipsub's D_lazy; all of them on the
  priority topics), never to one that showed it has it; a duplicate prunes the link it came over to lazy (PRUNE), so each
  publisher's eager links become a spanning tree and a publication costs about one
  frame per node. A node that hears of an id and does not get it within a second asks
  an announcer (GRAFT), which sends it from its cache (`MessageCache`, bounded in bytes
  and time) and the link is eager again. New neighbours and, every exchange round, all
  neighbours are told the recent ids (anti-entropy), so what was lost or published
  during a partition arrives once it heals. A receiver that has not seen a
  `message_id` delivers it (when subscribed to the topic) and passes it on with
  ``hops_left - 1`` while that stays above 0. Topics a node does not subscribe to are
  passed on, not delivered. Message ids are remembered in a bounded, time-limited set
  (`SeenMessages`). The publisher itself receives its publication only with
  ``publish(..., loopback=True)``.
- **Tunnel frames skip the actors.** `send_tunnel` carries the ensemble network's
  packet frames over the same authenticated, encrypted links; the receiver hands each
  to `tunnel(link peer, payload)` (the network checks it against its membership) and
  never to the inbox. Without a link, `send_tunnel` raises and dials in the background
  (once at a time per peer): the packets' own TCP retransmits.
- **The original publisher is not known here.** A `Delivery` names the link peer it came
  through; the payload is a signed message the layer above verifies.

Counters (added to the transport's `Metrics`): ``mesh.delivered``, ``mesh.published``,
``mesh.forwarded``, ``mesh.duplicates``, ``mesh.hop_limit_reached``,
``mesh.dropped_incoming_<reason>`` (above), ``mesh.dropped_malformed``,
``mesh.dial_failures``, ``mesh.links_opened``, ``mesh.links_replaced``,
``mesh.tunnel_received``, ``mesh.tunnel_unhandled``, ``mesh.ihave_sent``,
``mesh.graft_sent``, ``mesh.graft_served``, ``mesh.graft_missed``, ``mesh.declined``,
``mesh.refused_leaf``, ``mesh.direct_evicted``, ``mesh.direct_idle_closed``,
``mesh.rotated``.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

import attrs
import nacl.signing
import trio

from dms.backoff import Backoff
from dms.net._backoff import DEFAULT_BACKOFF
from dms.net._cache import MessageCache
from dms.net._degree import DEFAULT_DEGREE, DegreeLimits, LinkRole
from dms.net._errors import (
    FrameTooLarge,
    LinkBusy,
    LinkClosed,
    MeshNotRunning,
    NetError,
    PeerUnreachable,
)
from dms.net._inbox import DEFAULT_INBOX, Inbox, InboxLimits
from dms.net._link import MAX_FRAME, Link
from dms.net._mesh_wire import (
    MAX_HOPS,
    MAX_IDS,
    DirectOnly,
    Graft,
    IHave,
    MalformedMeshFrame,
    MeshMessage,
    PeerEntry,
    PeerList,
    Ping,
    Pong,
    Prune,
    Publish,
    Tunnel,
    Unicast,
    decode,
    encode,
    with_hops_left,
)
from dms.net._metrics import Metrics
from dms.net._peers import PeerTable
from dms.net._seen import SeenMessages
from dms.net._transport import Transport
from dms.net._tree import BroadcastTree
from ucan.did import did_from_public_key

MAX_PAYLOAD = MAX_FRAME - 1
"""Largest unicast payload (a frame minus the message kind byte)."""


@attrs.frozen
class Delivery:
    """A payload that arrived for this node.

    `peer` is the link peer it came through (for a publication: the neighbour that
    forwarded it, not necessarily the publisher); `topic` is None for unicast.
    """

    peer: str
    topic: str | None
    payload: bytes

    @property
    def via(self) -> str:
        """The link peer the payload came through (same as `peer`)."""
        return self.peer


def content_id(topic: str, payload: bytes) -> bytes:
    """A publication's id: BLAKE2b-128 of the topic and the payload."""
    digest = hashlib.blake2b(topic.encode(), digest_size=16)
    digest.update(b"\x00")
    digest.update(payload)  # not joined to the topic first: no copy of the payload
    return digest.digest()


DELIVERY_OVERHEAD = 128
"""Bytes a delivery is counted for beyond its payload and topic (the objects holding
it): a flood of empty payloads is bounded in bytes too."""

FULL_FOR = 60.0
"""Seconds a peer that declined our overlay dial is not dialed for the overlay again."""

FULL_MEMORY = 1024
"""Most peers remembered as full."""

GREETING_PAUSE = 0.02
RETIRE_GRACE = 5.0
"""Seconds a link that lost to a duplicate (both ends dialed at once, or a unicast
dial raced another) is still read before it is closed: what its peer sent over it
before seeing that the other link won is delivered, not lost. Nothing is sent on it."""
MAX_RETIRING = 64
"""Links in that grace at once; past it a losing link is closed at once."""
"""Seconds a greeting waits for room when the new link's send buffer is full."""


class Mesh:
    """Links to peers over one transport; start it with ``await nursery.start(mesh.run)``."""

    def __init__(
        self,
        key: nacl.signing.SigningKey,
        transport: Transport,
        *,
        listen: str | None = None,
        bootstrap: Sequence[str] = (),
        hop_limit: int = 32,
        inbox: InboxLimits = DEFAULT_INBOX,
        exchange_interval: float = 10.0,
        max_peers: int = 64,
        exchange_dial_attempts: int = 5,
        backoff: Backoff = DEFAULT_BACKOFF,
        seen: SeenMessages | None = None,
        screen: Callable[[str, bytes, str], bool] | None = None,
        priority_topics: Iterable[str] = (),
        greeting: Callable[[str], Iterable[tuple[str, bytes]]] | None = None,
        degree: DegreeLimits = DEFAULT_DEGREE,
        lazy_interval: float = 0.25,
        cache: MessageCache | None = None,
    ) -> None:
        """`screen(topic, payload, peer)`, when given, is asked before a publication
        that `peer` relayed is delivered or forwarded: the layer above's cheap check (a
        valid signature, within that peer's budget) so that junk is not flooded on its
        behalf. Publications on `priority_topics`
        (revocations) arrive on `priority_incoming`, a queue of their own, so that a
        flood on other topics cannot crowd them out. `greeting(peer)`, when given, names
        the publications (topic, payload) a newly linked peer is sent at once: what it
        may have missed while it was away (the node's revocations). The peer dedups
        what it already processed."""
        self.peer_id = did_from_public_key(bytes(key.verify_key))
        self._origin = hashlib.blake2b(self.peer_id.encode(), digest_size=8).digest()
        self._screen = screen
        if transport.peer_id != self.peer_id:
            raise ValueError(
                f"transport speaks for {transport.peer_id}, but the mesh key is {self.peer_id}"
            )
        for address in ([] if listen is None else [listen]) + list(bootstrap):
            transport.check_address(address)  # fail here, not silently in a retry loop
        if not 1 <= hop_limit <= MAX_HOPS:
            raise ValueError(f"hop_limit must be 1..{MAX_HOPS}, got {hop_limit}")
        self.hop_limit = hop_limit
        self.listen_address: str | None = None
        """The bound address once `run` has started (None when not listening)."""
        self.peers = PeerTable()
        self.metrics: Metrics = transport.metrics
        self._transport = transport
        self._listen = listen
        self._bootstrap = list(bootstrap)
        self._exchange_interval = exchange_interval
        self._max_peers = max_peers
        self._exchange_dial_attempts = exchange_dial_attempts
        self._backoff = backoff
        self._seen = seen if seen is not None else SeenMessages()
        self._rng = random.Random()
        self._subscriptions: set[str] = set()
        self.incoming = Inbox[Delivery](inbox)
        """Deliveries for the layer above, fair between link peers; ends when `run` does."""
        self._priority_topics = frozenset(priority_topics)
        self.priority_incoming = Inbox[Delivery](inbox)
        """Deliveries on the priority topics, in an inbox of their own."""
        self._greeting = greeting
        self.tunnel: Callable[[str, bytes], None] | None = None
        """Takes each tunnel frame with the link peer it came from (None: dropped)."""
        self._tunnel_dials: set[str] = set()
        self._dialing: dict[str, trio.Event] = {}
        self._retiring = 0
        """Peers a unicast is dialing now: concurrent sends wait for that one dial."""
        self._links: dict[str, Link] = {}
        self._degree = degree
        self._tree = BroadcastTree(rng=self._rng)
        self._cache = cache if cache is not None else MessageCache()
        self._lazy_interval = lazy_interval
        self._overlay: set[str] = set()
        self._leaves: set[str] = set()
        self._direct: dict[str, float] = {}
        """Direct links' peers -> when a unicast or tunnel frame last used the link."""
        self._full: OrderedDict[str, float] = OrderedDict()
        """Peers that declined our overlay dial lately -> when (not redialed a while)."""
        self._last_rotation = 0.0
        self._declined: set[str] = set()
        """Bootstrap addresses whose link ended direct: redialed only when alone."""
        self._links_changed = trio.Event()
        self._maintained: set[str] = set()
        self._learned_addresses: set[str] = set()
        self._bootstrap_peers: dict[str, str] = {}
        self._dial_failures: dict[str, NetError] = {}
        self._pings: dict[str, tuple[bytes, float]] = {}
        self._nursery: trio.Nursery | None = None
        self._scope: trio.CancelScope | None = None
        self._started = False
        self._stopped = trio.Event()

    # -- lifecycle -----------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, dial the bootstrap peers, exchange peers and ping until cancelled.

        `task_status.started()` is called once listening (not once connected: see
        `wait_connected`). On exit every link is closed and `incoming` ends.
        """
        if self._started:
            raise RuntimeError("a Mesh runs once; create a new Mesh to run again")
        self._started = True
        try:
            with trio.CancelScope() as self._scope:
                async with self._transport, trio.open_nursery() as nursery:
                    self._nursery = nursery
                    if self._listen is not None:
                        self.listen_address = await nursery.start(
                            self._transport.listen, self._listen, self._serve_link
                        )
                    for address in self._bootstrap:
                        nursery.start_soon(self._keep_connected, address, None)
                    nursery.start_soon(self._exchange_forever)
                    nursery.start_soon(self._disseminate_forever)
                    task_status.started()
        finally:
            self._nursery = None
            self.incoming.close()
            self.priority_incoming.close()
            for peer in list(self._links):
                self.peers.note_disconnected(peer)
            self._links.clear()
            self._signal_links_changed()
            self._stopped.set()

    async def aclose(self) -> None:
        """Stop `run` (if it is running) and wait until it has cleaned up."""
        if self._scope is None:
            return
        self._scope.cancel()
        await self._stopped.wait()

    # -- what the layer above calls ------------------------------------------------

    def subscribe(self, topic: str) -> None:
        """Deliver publications on `topic` to `incoming` from now on."""
        self._subscriptions.add(topic)

    def unsubscribe(self, topic: str) -> None:
        self._subscriptions.discard(topic)

    def connected_peers(self) -> list[str]:
        """Every peer with a link, whatever the link's role."""
        return list(self._links)

    def overlay_peers(self) -> list[str]:
        """The overlay neighbours (the node's degree is their number)."""
        return list(self._overlay)

    def link_role(self, peer: str) -> LinkRole | None:
        """What the link to `peer` is for (None: no link)."""
        if peer in self._overlay:
            return LinkRole.OVERLAY
        if peer in self._leaves:
            return LinkRole.LEAF
        return LinkRole.DIRECT if peer in self._direct else None

    def dial_failure(self, address: str) -> NetError | None:
        """Why the last dial of `address` failed while it keeps failing (None once one
        succeeds): what a caller that stops waiting for a peer tells its user."""
        return self._dial_failures.get(address)

    async def wait_connected(self, count: int = 1) -> None:
        """Return once at least `count` peers are connected."""
        while len(self._links) < count:
            await self._links_changed.wait()

    async def send(self, peer: str, payload: bytes) -> None:
        """Send `payload` to `peer`, dialing it if its address is known.

        Sending to this node's own peer id delivers locally. Raises `PeerUnreachable`
        (no link and no way to open one, or the link closed), `LinkBusy` (its send
        buffer is full) or `FrameTooLarge`. Never waits on the peer itself; a dial waits
        at most the transport's handshake timeout.
        """
        if peer == self.peer_id:
            self._deliver(Delivery(self.peer_id, None, payload))
            await trio.lowlevel.checkpoint()
            return
        link = self._links.get(peer)
        if link is None or link.is_closed:
            link = await self._dial_known(peer)
        self._touch(peer)
        try:
            link.send_nowait(encode(Unicast(payload)))
        except LinkClosed as exc:
            raise PeerUnreachable(peer, exc.reason) from None
        await trio.lowlevel.checkpoint()

    def send_tunnel(self, peer: str, payload: bytes) -> None:
        """Queue a tunnel frame for `peer` without waiting: `LinkBusy` when its send
        buffer is full, `PeerUnreachable` when there is no link (a dial to its known
        address starts in the background, for the frames after), `FrameTooLarge`."""
        link = self._links.get(peer)
        if link is None or link.is_closed:
            if peer not in self._tunnel_dials and self._nursery is not None:
                self._tunnel_dials.add(peer)
                self._nursery.start_soon(self._dial_for_tunnel, peer)
            raise PeerUnreachable(peer, "no link yet")
        self._touch(peer)
        try:
            link.send_nowait(encode(Tunnel(payload)))
        except LinkClosed as exc:
            raise PeerUnreachable(peer, exc.reason) from None

    async def _dial_for_tunnel(self, peer: str) -> None:
        try:
            await self._dial_known(peer)
        except NetError:
            pass  # counted by the dial; the next frame tries again
        finally:
            self._tunnel_dials.discard(peer)

    def forget(self, topic: str, payload: bytes) -> None:
        """Let a delivered publication in again: the layer above dropped it unprocessed
        (over a budget), and "seen" means processed, so that a later copy of it (a
        republished revocation) is not mistaken for a duplicate."""
        self._seen.forget(content_id(topic, payload))

    async def publish(self, topic: str, payload: bytes, *, loopback: bool = False) -> int:
        """Send `payload` on `topic` to every eager neighbour and announce it to the
        lazy ones; the number of peers it went to whole.

        Peers dedup on the publication's id, which is derived from its content
        (`content_id`): a peer cannot burn the id of a message before it is sent, and
        republishing the same content is a no-op (returns 0). With `loopback=True` and a
        subscription to `topic`, this node delivers it to itself.
        """
        self._require_running()
        message_id = content_id(topic, payload)
        message = Publish(message_id, topic, self.hop_limit, payload, self._origin)
        frame = encode(message)
        if not self._seen.add(message_id, trio.current_time()):
            self.metrics["mesh.duplicates"] += 1
            await trio.lowlevel.checkpoint()
            return 0
        self.metrics["mesh.published"] += 1
        if loopback and topic in self._subscriptions:
            self._deliver(Delivery(self.peer_id, topic, payload))
        now = trio.current_time()
        self._tree.received(message_id, None, self._origin)
        if self.hop_limit > 1:
            self._cache.put(message, now)
        sent = self._push(message, frame, exclude=None)
        await trio.lowlevel.checkpoint()
        return sent

    # -- links ---------------------------------------------------------------------

    async def _serve_link(self, link: Link, *, for_overlay: bool = True) -> LinkRole | None:
        """Adopt a new link and read it until it closes (inbound handler, dial loops);
        the role it had when it closed (None: not adopted)."""
        if not self._adopt(link, for_overlay=for_overlay):
            if link.remote_peer in self._links:  # lost to the link we keep
                await self._retire(link)
            else:
                await link.aclose()
            return None
        return await self._read_adopted(link)

    async def _close_after_grace(self, link: Link) -> None:
        """Close a replaced link `RETIRE_GRACE` seconds on: its reader delivers what
        its peer sent over it meanwhile, and what was queued on it goes out."""
        await trio.sleep(RETIRE_GRACE)
        await link.aclose()

    async def _retire(self, link: Link) -> None:
        """Read a link that lost to a duplicate for `RETIRE_GRACE` seconds, delivering
        its unicasts (a request or a reply its peer sent before it saw the other link
        win), then close it."""
        if self._retiring >= MAX_RETIRING:
            await link.aclose()
            return
        self._retiring += 1
        try:
            with trio.move_on_after(RETIRE_GRACE):
                while True:
                    try:
                        frame = await link.receive()
                    except LinkClosed:
                        break
                    with contextlib.suppress(MalformedMeshFrame):
                        if isinstance(decode(frame), Unicast | Tunnel):
                            self._on_frame(link, frame)
                    await trio.lowlevel.checkpoint()
        finally:
            self._retiring -= 1
            await link.aclose()

    def _adopt(self, link: Link, *, for_overlay: bool) -> bool:
        """Make `link` the link to its peer, unless the one we have is preferred or
        the link's role is full (leaves). A link past the overlay's cap, or dialed
        only to send, is made direct and its peer told so (`DirectOnly`, with peers
        to join through instead)."""
        peer = link.remote_peer
        if peer == self.peer_id:
            return False
        existing = self._links.get(peer)
        if existing is not None and not existing.is_closed and not self._prefer(link, existing):
            return False
        self._drop_role(peer)
        degree = len(self._overlay)
        role = (self._degree.outbound_role(for_overlay, degree) if link.dialed
                else self._degree.inbound_role(link.remote_address is not None, degree,
                                               len(self._leaves)))
        if role is None:
            if link.dialed:  # an overlay dial that finds us at our target meanwhile
                self.metrics["mesh.dial_unneeded"] += 1
                self._mark_declined(peer)
            else:
                self.metrics["mesh.refused_leaf"] += 1
            return False
        self._links[peer] = link
        for inbox in (self.incoming, self.priority_incoming):
            inbox.arrive(peer)
        if existing is not None:
            self.metrics["mesh.links_replaced"] += 1
            self._require_running().start_soon(self._close_after_grace, existing)
        self.metrics["mesh.links_opened"] += 1
        self.peers.note_connected(peer, link.remote_address, trio.current_time())
        self._take_role(peer, role)
        self._signal_links_changed()
        if role is LinkRole.DIRECT:
            self._send_quietly(link, DirectOnly(self._known_entries(exclude=peer)))
        else:
            self._send_quietly(link, PeerList(self._exchange_entries(exclude=peer)))
            self._announce_cached(link, -math.inf, trio.current_time())
        self._ping(link)
        if self._greeting is not None:
            self._require_running().start_soon(self._greet, link, list(self._greeting(peer)))
        return True

    async def _greet(self, link: Link, publications: list[tuple[str, bytes]]) -> None:
        """Send a new neighbour `publications`, pacing on a full send buffer, until done
        or the link closes. They go to this link only, with a full hop budget so the
        neighbour passes on what is news to it."""
        for topic, payload in publications:
            message_id = content_id(topic, payload)
            self._seen.add(message_id, trio.current_time())
            frame = encode(Publish(message_id, topic, self.hop_limit, payload, self._origin))
            while True:
                try:
                    link.send_nowait(frame)
                    break
                except LinkBusy:
                    await trio.sleep(GREETING_PAUSE)
                except (LinkClosed, FrameTooLarge):
                    return
            self.metrics["mesh.greeting_sent"] += 1
            await trio.lowlevel.checkpoint()

    def _prefer(self, new: Link, existing: Link) -> bool:
        if new.dialed == existing.dialed:
            return True
        # Both sides must pick the same link: the one the lower peer id dialed.
        we_are_lower = self.peer_id < new.remote_peer
        return new.dialed == we_are_lower

    async def _read_adopted(self, link: Link) -> LinkRole | None:
        """Read `link` until it closes; the role it had then."""
        peer = link.remote_peer
        role = None
        try:
            while True:
                try:
                    frame = await link.receive()
                except LinkClosed:
                    break
                unicast = self._on_frame(link, frame)
                # One frame per turn: a carrier hands out what it buffered without
                # yielding, and one busy link must not hold the loop for a whole read.
                await trio.lowlevel.checkpoint()
                if unicast and self.incoming.blocked(peer):
                    # Its own traffic is past its share: read on once the consumer took
                    # some. Its frames wait in its connection meanwhile (it sees a slow
                    # reader), and the node spends nothing on what it would drop.
                    # Publications never pause a link: a neighbour relaying a flood
                    # from afar must not be stalled for it.
                    self.metrics["mesh.reads_paused"] += 1
                    await self.incoming.readable(peer)
        finally:
            if self._links.get(peer) is link:
                role = self.link_role(peer)
                self._drop_role(peer)
                del self._links[peer]
                for inbox in (self.incoming, self.priority_incoming):
                    inbox.depart(peer)  # its leftovers go first when room is short
                self._pings.pop(peer, None)
                self.peers.note_disconnected(peer)
                self._signal_links_changed()
            await link.aclose()
        return role

    async def _dial_known(self, peer: str) -> Link:
        """A link to `peer`, dialed once however many sends want it at the same time:
        each extra dial would replace the receiver's link with one this side then
        closes, and what was answered over it would be lost."""
        pending = self._dialing.get(peer)
        if pending is not None:
            await pending.wait()
            link = self._links.get(peer)
            if link is None or link.is_closed:
                raise PeerUnreachable(peer, "the dial under way failed")
            return link
        self._dialing[peer] = done = trio.Event()
        try:
            return await self._dial_once(peer)
        finally:
            del self._dialing[peer]
            done.set()

    async def _dial_once(self, peer: str) -> Link:
        nursery = self._require_running()
        info = self.peers.get(peer)
        if info is None or info.address is None:
            raise PeerUnreachable(peer, "not connected and no known address")
        try:
            link = await self._transport.connect(info.address, expect_peer=peer)
        except NetError as exc:
            self.metrics["mesh.dial_failures"] += 1
            raise PeerUnreachable(peer, f"dialing {info.address} failed: {exc}") from None
        if not self._adopt(link, for_overlay=False):
            nursery.start_soon(self._retire, link)
            existing = self._links.get(peer)
            if existing is None:
                raise PeerUnreachable(peer, "its link closed while dialing")
            return existing
        nursery.start_soon(self._read_adopted, link)
        return link

    async def _keep_connected(self, address: str, peer: str | None) -> None:
        """Keep a link to `address`. A bootstrap address is redialed whenever its link
        ends, except one that made our link direct (it is full): that one is redialed
        only once this node has no overlay neighbour left. A learned `peer` is dialed
        until it fails `exchange_dial_attempts` times in a row, and once linked not
        redialed: the degree upkeep (`_upkeep`) finds neighbours anew."""
        failures = 0
        try:
            while True:
                known = peer or self._bootstrap_peers.get(address)
                if known is not None and known in self._links:
                    await self._wait_disconnected(known)
                    continue
                if address in self._declined:
                    while self._overlay:
                        await self._links_changed.wait()
                    self._declined.discard(address)
                try:
                    link = await self._transport.connect(address, expect_peer=peer)
                except NetError as exc:  # the transport's one dial boundary: never fatal
                    failures += 1
                    self._dial_failures[address] = exc
                    self.metrics["mesh.dial_failures"] += 1
                    if peer is not None and failures >= self._exchange_dial_attempts:
                        return
                    await trio.sleep(self._backoff.delay(failures, self._rng))
                    continue
                if address not in self._declined:
                    failures = 0
                self._dial_failures.pop(address, None)
                if link.remote_peer == self.peer_id:
                    await link.aclose()  # our own address in the bootstrap list
                    return
                self._bootstrap_peers.setdefault(address, link.remote_peer)
                role = await self._serve_link(link)
                if peer is not None:
                    return
                if role is LinkRole.DIRECT:
                    self._declined.add(address)
                if address in self._declined:
                    failures += 1  # it is full: back off as from a failure
                # A peer that accepts and drops at once must not make us spin.
                await trio.sleep(self._backoff.delay(max(failures, 1), self._rng))
        finally:
            if peer is not None:
                self._maintained.discard(peer)
                self._learned_addresses.discard(address)

    async def _wait_disconnected(self, peer: str) -> None:
        while peer in self._links:
            await self._links_changed.wait()

    def _signal_links_changed(self) -> None:
        self._links_changed.set()
        self._links_changed = trio.Event()

    # -- frames --------------------------------------------------------------------

    def _on_frame(self, link: Link, frame: bytes) -> bool:
        """Act on one frame from `link`; True when it was a unicast for this node."""
        peer = link.remote_peer
        now = trio.current_time()
        self.peers.note_seen(peer, now)
        try:
            message = decode(frame)
        except MalformedMeshFrame:
            self.metrics["mesh.dropped_malformed"] += 1
            return False
        match message:
            case Unicast(payload):
                self._touch(peer)
                self._deliver(Delivery(peer, None, payload))
                return True
            case Tunnel(payload):
                self._touch(peer)
                if self.tunnel is None:
                    self.metrics["mesh.tunnel_unhandled"] += 1
                else:
                    self.metrics["mesh.tunnel_received"] += 1
                    self.tunnel(peer, payload)
            case Publish():
                self._on_publish(peer, message, frame, now)
            case Ping(nonce):
                self._send_quietly(link, Pong(nonce))
            case Pong(nonce):
                pending = self._pings.get(peer)
                if pending is not None and pending[0] == nonce:
                    del self._pings[peer]
                    self.peers.note_rtt(peer, (now - pending[1]) * 1000.0)
            case PeerList(entries):
                self._learn(entries, now)
            case IHave(message_ids):
                self._tree.announced(peer, message_ids, now, self._seen)
            case Graft(message_ids):
                self._on_graft(link, message_ids, now)
            case Prune(origin):
                self._tree.pruned(peer, origin)
            case DirectOnly(entries):
                self._on_direct_only(link, entries, now)
        return False

    def _on_publish(self, peer: str, message: Publish, frame: bytes, now: float) -> None:
        if message.message_id != content_id(message.topic, message.payload):
            self.metrics["mesh.dropped_bad_id"] += 1  # an id that is not its content's
            return
        if not self._seen.add(message.message_id, now):
            self.metrics["mesh.duplicates"] += 1
            self._tree.has(peer, message.message_id)
            link = self._links.get(peer)
            if link is not None and self._tree.duplicate(peer, message.origin):
                self._send_quietly(link, Prune(message.origin))  # a redundant path
            return
        if self._screen is not None and not self._screen(message.topic, message.payload, peer):
            self.metrics["mesh.dropped_screened"] += 1  # neither delivered nor forwarded
            self._tree.received(message.message_id, None, message.origin)
            return
        self._tree.received(message.message_id, peer, message.origin)
        if message.topic in self._subscriptions:
            self._deliver(Delivery(peer, message.topic, message.payload))
        hops_left = min(message.hops_left, self.hop_limit)  # a sender cannot widen ours
        if hops_left > 1:
            forward = Publish(message.message_id, message.topic, hops_left - 1,
                              message.payload, message.origin)
            self._cache.put(forward, now)
            self.metrics["mesh.forwarded"] += self._push(
                forward, with_hops_left(frame, hops_left - 1), exclude=peer)
        else:
            self.metrics["mesh.hop_limit_reached"] += 1

    def _push(self, message: Publish, frame: bytes, exclude: str | None) -> int:
        """Send `frame` (`message`) to every eager neighbour but `exclude`, and queue
        its id for the lazy ones. Relaying (`exclude` is the peer it came from) is sent
        as such: it fills a link's send buffer to its relay share at most, behind this
        node's own frames, so a flood relayed through this node leaves its own replies
        room and no wait."""
        sent = 0
        for peer in self._tree.eager(message.origin):
            link = self._links.get(peer)
            if peer == exclude or link is None:
                continue
            try:
                link.send_nowait(frame, relayed=exclude is not None)
            except (LinkBusy, LinkClosed):
                continue  # LinkBusy is counted by the link (link.dropped_busy[_relayed])
            sent += 1
        full = self._tree.announce(message.message_id, message.origin, exclude,
                                   everyone=message.topic in self._priority_topics)
        if full:
            self._flush_announcements(full)
        return sent

    def _flush_announcements(self, peers: list[str] | None = None) -> None:
        for peer, ids in self._tree.take_announcements(peers).items():
            link = self._links.get(peer)
            if link is not None:
                self.metrics["mesh.ihave_sent"] += 1
                self._send_quietly(link, IHave(ids))

    def _on_graft(self, link: Link, message_ids: tuple[bytes, ...], now: float) -> None:
        """Send what the peer asks for that is still cached; it is eager from now on."""
        for message_id in message_ids:
            cached = self._cache.get(message_id, now)
            if cached is None:
                self.metrics["mesh.graft_missed"] += 1
                continue
            self._tree.grafted(link.remote_peer, cached.origin)
            try:
                link.send_nowait(encode(cached), relayed=True)
            except (LinkBusy, LinkClosed):
                return
            self.metrics["mesh.graft_served"] += 1

    def _announce_cached(self, link: Link, since: float, now: float) -> None:
        """Anti-entropy: tell a neighbour every publication cached since `since` (the
        newest `MAX_IDS`), so that what it missed while away, while the network was
        split or in a lossy stretch is grafted back; it ignores what it has. Every
        exchange round announces the whole cache: each round is another chance for a
        repair that lost its IHAVE, GRAFT or answer, for as long as the cache keeps
        the publication (2 minutes)."""
        ids = self._cache.recent(since, now, MAX_IDS)
        if ids:
            self.metrics["mesh.ihave_sent"] += 1
            self._send_quietly(link, IHave(ids))

    async def _disseminate_forever(self) -> None:
        """Every `lazy_interval`: send the queued announcements (batched: one IHAVE
        per lazy neighbour for all that came in meanwhile) and the GRAFTs that are due."""
        while True:
            await trio.sleep(self._lazy_interval)
            self._flush_announcements()
            for peer, ids in self._tree.due(trio.current_time()).items():
                link = self._links.get(peer)
                if link is None:
                    continue
                for start in range(0, len(ids), MAX_IDS):
                    self.metrics["mesh.graft_sent"] += 1
                    self._send_quietly(link, Graft(tuple(ids[start : start + MAX_IDS])))

    def _deliver(self, delivery: Delivery) -> None:
        """Hand a delivery to the layer above, in its link peer's share of the inbox.
        What that drops (the delivery, or the newest of a heavier peer's) is counted by
        reason, and a dropped publication is not "seen": a later copy may get in."""
        inbox = (self.priority_incoming if delivery.topic in self._priority_topics
                 else self.incoming)
        size = len(delivery.payload) + len(delivery.topic or "") + DELIVERY_OVERHEAD
        dropped = inbox.put(delivery.peer, delivery, size)
        for lost, reason in dropped:
            self.metrics[f"mesh.dropped_incoming_{reason}"] += 1
            if lost.topic is not None:
                self._seen.forget(content_id(lost.topic, lost.payload))
        if not dropped or dropped[0][0] is not delivery:
            self.metrics["mesh.delivered"] += 1

    # -- link roles ----------------------------------------------------------------

    def _take_role(self, peer: str, role: LinkRole) -> None:
        match role:
            case LinkRole.OVERLAY:
                self._overlay.add(peer)
                self._tree.add(peer)
            case LinkRole.LEAF:
                self._leaves.add(peer)
                self._tree.add(peer)
            case LinkRole.DIRECT:
                self._direct[peer] = trio.current_time()
                while len(self._direct) > self._degree.direct:
                    idlest = min((p for p in self._direct if p != peer),
                                 key=self._direct.__getitem__)
                    self._close_link(idlest, "mesh.direct_evicted")

    def _drop_role(self, peer: str) -> None:
        self._tree.remove(peer)
        self._overlay.discard(peer)
        self._leaves.discard(peer)
        self._direct.pop(peer, None)

    def _touch(self, peer: str) -> None:
        """A unicast or tunnel frame used the link to `peer`: a direct one stays."""
        if peer in self._direct:
            self._direct[peer] = trio.current_time()

    def _close_link(self, peer: str, counter: str) -> None:
        """Close the link to `peer` now (its reader cleans up after it)."""
        self._drop_role(peer)
        link = self._links.get(peer)
        if link is not None:
            self.metrics[counter] += 1
            self._require_running().start_soon(link.aclose)

    def _send_quietly(self, link: Link, message: MeshMessage) -> None:
        """Control traffic (pong, peer lists) is best effort: a busy link skips it."""
        with contextlib.suppress(LinkBusy, LinkClosed):
            link.send_nowait(encode(message))

    # -- peer exchange and pings ---------------------------------------------------

    def _exchange_entries(self, exclude: str) -> tuple[PeerEntry, ...]:
        """Dialable linked peers, overlay neighbours first, in a fresh random order:
        newcomers told of peers by a full node spread over them, not all to the same."""
        overlay: list[PeerEntry] = []
        others: list[PeerEntry] = []
        for peer in self._links:
            info = self.peers.get(peer)
            if peer != exclude and info is not None and info.address:
                (overlay if peer in self._overlay else others).append(PeerEntry(peer, info.address))
        self._rng.shuffle(overlay)
        self._rng.shuffle(others)
        return tuple((overlay + others)[: self._max_peers])

    def _known_entries(self, exclude: str) -> tuple[PeerEntry, ...]:
        """A random sample of every dialable peer this node knows (but those full
        lately): what a full node tells a newcomer. Its own neighbours are likely full
        too; a peer anywhere in the overlay likely has room (most have `target`)."""
        known = [peer for peer, info in self.peers.items()
                 if info.address and peer != exclude and peer not in self._full]
        chosen = self._rng.sample(known, min(len(known), self._max_peers))
        return tuple(PeerEntry(peer, self.peers[peer].address or "") for peer in chosen)

    def _learn(self, entries: tuple[PeerEntry, ...], now: float) -> None:
        for entry in entries[: self._max_peers]:
            if entry.peer == self.peer_id or not entry.peer.startswith("did:key:"):
                continue
            if not entry.address:
                continue
            self.peers.note_address(entry.peer, entry.address, now)
            # Dial what we learn only while short of neighbours, and one peer per
            # address: a neighbour's list cannot turn this node into a dial storm.
            if self._dial_room() > 0:
                self._dial_learned(entry.peer, self.peers[entry.peer].address or entry.address)

    def _dial_room(self) -> int:
        """How many more overlay neighbours to dial for (pending dials count)."""
        pending = sum(1 for peer in self._maintained if peer not in self._links)
        return min(self._degree.target, self._max_peers) - len(self._overlay) - pending

    def _dial_learned(self, peer: str, address: str) -> None:
        nursery = self._nursery
        if (nursery is None or peer in self._links or peer in self._maintained
                or address in self._learned_addresses or peer in self._full):
            return
        self._maintained.add(peer)
        self._learned_addresses.add(address)
        nursery.start_soon(self._keep_connected, address, peer)

    def _on_direct_only(self, link: Link, entries: tuple[PeerEntry, ...], now: float) -> None:
        """The peer keeps this link for unicast only. One we dialed to join the
        overlay is closed (the peer is full: remembered a while, not redialed); either
        way its entries are peers to try instead."""
        peer = link.remote_peer
        if self.link_role(peer) is LinkRole.OVERLAY:
            if link.dialed:
                self._note_full(peer, now)
                self._mark_declined(peer)
                self._close_link(peer, "mesh.declined")
            else:
                self._drop_role(peer)
                self._take_role(peer, LinkRole.DIRECT)
            self._signal_links_changed()
        self._learn(entries, now)

    def _mark_declined(self, peer: str) -> None:
        """`peer`'s bootstrap addresses are redialed only once this node is alone."""
        for address, bootstrap_peer in self._bootstrap_peers.items():
            if bootstrap_peer == peer:
                self._declined.add(address)

    def _note_full(self, peer: str, now: float) -> None:
        self._full[peer] = now
        self._full.move_to_end(peer)
        while len(self._full) > FULL_MEMORY:
            self._full.popitem(last=False)

    def _upkeep(self, now: float) -> None:
        """Once per exchange round: close idle direct links, forget old "full" marks,
        dial known peers while short of neighbours, and now and then swap a dialed
        neighbour for a random known peer (so that the overlay keeps mixing, and two
        sides of a healed partition find each other again)."""
        for peer, used in list(self._direct.items()):
            if now - used >= self._degree.direct_idle:
                self._close_link(peer, "mesh.direct_idle_closed")
        while self._full and next(iter(self._full.values())) <= now - FULL_FOR:
            self._full.popitem(last=False)
        candidates = [peer for peer, info in self.peers.items()
                      if not info.connected and info.address and peer != self.peer_id
                      and peer not in self._maintained and peer not in self._full]
        room = self._dial_room()
        rotate = (room <= 0 and candidates
                  and now - self._last_rotation >= self._degree.rotation_interval)
        if rotate:
            dialed = [peer for peer in self._maintained if peer in self._overlay]
            if dialed:
                self._last_rotation = now
                self._close_link(self._rng.choice(dialed), "mesh.rotated")
                room = 1
        for peer in self._rng.sample(candidates, min(max(room, 0), len(candidates))):
            address = self.peers[peer].address
            assert address is not None
            self._dial_learned(peer, address)

    def _ping(self, link: Link) -> None:
        nonce = os.urandom(8)
        self._pings[link.remote_peer] = (nonce, trio.current_time())
        self._send_quietly(link, Ping(nonce))

    async def _exchange_forever(self) -> None:
        while True:
            await trio.sleep(self._exchange_interval)
            now = trio.current_time()
            for peer, link in list(self._links.items()):
                if peer in self._direct:  # again: a lost DIRECT leaves the other side
                    # taking the link for an overlay one, waiting on it for publications
                    self._send_quietly(link, DirectOnly(self._known_entries(exclude=peer)))
                else:
                    self._send_quietly(link, PeerList(self._exchange_entries(exclude=peer)))
                self._ping(link)
                if peer in self._tree:
                    self._announce_cached(link, -math.inf, now)
            self._upkeep(now)

    def _require_running(self) -> trio.Nursery:
        if self._nursery is None:
            raise MeshNotRunning(
                f"mesh {self.peer_id} is not running; start it with `await nursery.start(mesh.run)`"
            )
        return self._nursery
