"""An in-process network for tests: every link through the same secure handshake,
with simulated per-link latency, bandwidth and loss.

Time is trio's clock, so under `trio.testing.MockClock(autojump_threshold=0)` a run is
deterministic and takes no wall time. The model, per direction of a link:

- bandwidth: the sender's writer is busy ``len(sealed) / bandwidth`` seconds per frame
  (so a slow link fills its sender's bounded send buffer, as a real one would);
- latency: a frame arrives ``latency`` seconds after it finished sending;
- loss: each frame is dropped with probability ``loss`` *before* it is sealed, so the
  session stays valid and the loss looks like a message lost on the path; the layers
  above must cope (timeouts). Handshake messages are never lost. The decisions come
  from a `random.Random` seeded with the network seed, both peer ids and the number of
  links already opened between them, so they repeat from run to run;
- a bounded receive window (`window` frames in flight): a peer that stops reading
  stalls its sender's writer, which then fills the sender's send buffer;
- without a bandwidth limit a carrier is a `BufferedCarrier`, as a TCP connection is:
  a link hands it a frame in the sender's task (no writer task woken per frame), and
  frames queued together go over at once;
- partitions (`MemoryNetwork.partition`): the connections between peers on different
  sides break at once (what is in flight is lost), and dials across fail until `heal`.

Addresses look like ``memory://<name>``; listening on ``memory://`` picks a free name.
Each transport sits on a simulated *host* (by default its own, named by its peer id), the
source a listener counts half-open handshakes by; a test gives transports a host to
simulate many nodes behind one address, and `MemoryNetwork.open_carrier` gives it bare
connections from any host, as a hostile dialer would open them.
"""

from __future__ import annotations

import random
from collections import Counter, deque

import attrs
import nacl.signing
import trio

from dms.net._errors import BadAddress, ConnectFailed
from dms.net._link import (
    DEFAULT_LINK_SETTINGS,
    Carrier,
    CarrierClosed,
    Link,
    LinkHandler,
    LinkSettings,
    LoseFrame,
    OversizeMessage,
)
from dms.net._transport import SecureTransport

SCHEME = "memory://"
_BACKLOG = 64


def _check_probability(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a probability in [0, 1], got {value}")


@attrs.frozen
class LinkConditions:
    """How a simulated link behaves, the same in both directions."""

    latency: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    """Seconds from the end of sending a frame to its arrival."""
    bandwidth: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.gt(0.0))
    )
    """Bytes per second, or None for unlimited."""
    loss: float = attrs.field(default=0.0, validator=_check_probability)
    """Probability that a data frame is lost."""


_Arrival = tuple[float, bytes]


class _MemoryCarrier:
    """One end of a simulated connection."""

    def __init__(
        self,
        out: trio.MemorySendChannel[_Arrival],
        inbox: trio.MemoryReceiveChannel[_Arrival],
        conditions: LinkConditions,
        source: str,
    ) -> None:
        self.source = source
        """The simulated host of the other end."""
        self._out = out
        self._inbox = inbox
        self._conditions = conditions
        self._wire_free_at = 0.0
        self._pending: _Arrival | None = None
        self.closed = False

    async def send_message(self, data: bytes) -> None:
        now = trio.current_time()
        sent_at = now
        if self._conditions.bandwidth is not None:
            sent_at = max(now, self._wire_free_at) + len(data) / self._conditions.bandwidth
            self._wire_free_at = sent_at
            await trio.sleep_until(sent_at)
        try:
            await self._out.send((sent_at + self._conditions.latency, data))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise CarrierClosed from None

    async def receive_message(self, limit: int) -> bytes:
        # Keep the frame across a cancelled sleep so a cancelled receive loses nothing.
        if self._pending is None:
            try:
                try:  # a frame already here is taken without a task switch, as a
                    # socket carrier hands out what it has buffered
                    self._pending = self._inbox.receive_nowait()
                except trio.WouldBlock:
                    self._pending = await self._inbox.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                raise CarrierClosed from None
        if self._pending[0] > trio.current_time():  # no timer for a frame already due
            await trio.sleep_until(self._pending[0])
        data = self._pending[1]
        self._pending = None
        if len(data) > limit:  # in-process, the sender's bytes are no extra memory
            self.close()
            raise OversizeMessage(len(data), limit)
        return data

    def close(self) -> None:
        self.closed = True
        self._out.close()
        self._inbox.close()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


class _BufferedMemoryCarrier(_MemoryCarrier):
    """A carrier with no bandwidth limit: messages are queued and handed to the
    receive window without waiting while it has room (`BufferedCarrier`)."""

    def __init__(
        self,
        out: trio.MemorySendChannel[_Arrival],
        inbox: trio.MemoryReceiveChannel[_Arrival],
        conditions: LinkConditions,
        source: str,
    ) -> None:
        super().__init__(out, inbox, conditions, source)
        self._queued: deque[bytes] = deque()

    def queue(self, data: bytes) -> None:
        if self.closed:
            raise CarrierClosed
        self._queued.append(data)

    def write_nowait(self) -> bool:
        latency = self._conditions.latency
        now = trio.current_time()
        queued = self._queued
        try:
            while queued:
                self._out.send_nowait((now + latency, queued[0]))
                queued.popleft()
        except trio.WouldBlock:  # the receive window is full: `flush` waits for room
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise CarrierClosed from None
        return True

    async def flush(self) -> None:
        while self._queued:
            await self.send_message(self._queued[0])
            self._queued.popleft()
        await trio.lowlevel.checkpoint()


def carrier_pair(
    conditions: LinkConditions = LinkConditions(),
    window: int = 1024,
    hosts: tuple[str, str] = ("a", "b"),
) -> tuple[_MemoryCarrier, _MemoryCarrier]:
    """Two connected in-process carriers (no handshake) on simulated `hosts`: the
    building block of the network."""
    a_out, b_inbox = trio.open_memory_channel[_Arrival](window)
    b_out, a_inbox = trio.open_memory_channel[_Arrival](window)
    a_host, b_host = hosts
    kind = _MemoryCarrier if conditions.bandwidth is not None else _BufferedMemoryCarrier
    return (
        kind(a_out, a_inbox, conditions, source=b_host),
        kind(b_out, b_inbox, conditions, source=a_host),
    )


@attrs.frozen
class _Incoming:
    carrier: _MemoryCarrier
    lose_frame: LoseFrame | None


@attrs.frozen
class _Listener:
    peer_id: str
    host: str
    accept: trio.MemorySendChannel[_Incoming]


class MemoryNetwork:
    """The hub: which addresses are listening and how each pair of peers is linked."""

    def __init__(
        self, *, default: LinkConditions = LinkConditions(), seed: int = 0, window: int = 1024
    ) -> None:
        self.default = default
        self.seed = seed
        self.window = window
        self._listeners: dict[str, _Listener] = {}
        self._conditions: dict[frozenset[str], LinkConditions] = {}
        self._links_opened: Counter[tuple[str, str]] = Counter()
        self._names = 0
        self._sides: dict[str, int] = {}
        self._connections: list[tuple[frozenset[str], _MemoryCarrier, _MemoryCarrier]] = []

    def partition(self, *sides: set[str] | list[str]) -> None:
        """Split the network: a peer (did:key) on one side cannot reach a peer on
        another until `heal`; the connections between them break now. A peer on no
        side reaches every peer."""
        self._sides = {peer: number for number, side in enumerate(sides) for peer in side}
        for peers, one, other in self._connections:
            if self._split(*peers):
                one.close()
                other.close()

    def heal(self) -> None:
        """End the partition: dials succeed again (broken connections stay broken)."""
        self._sides = {}

    def _split(self, a: str, b: str) -> bool:
        side_a, side_b = self._sides.get(a), self._sides.get(b)
        return side_a is not None and side_b is not None and side_a != side_b

    def set_conditions(self, a: str, b: str, conditions: LinkConditions) -> None:
        """Conditions for links between peers `a` and `b` (did:keys), either direction."""
        self._conditions[frozenset((a, b))] = conditions

    def conditions_between(self, a: str, b: str) -> LinkConditions:
        return self._conditions.get(frozenset((a, b)), self.default)

    def transport(
        self,
        key: nacl.signing.SigningKey,
        settings: LinkSettings = DEFAULT_LINK_SETTINGS,
        *,
        host: str | None = None,
    ) -> MemoryTransport:
        """A transport for `key` on this network, on simulated `host` (default: its own)."""
        return MemoryTransport(self, key, settings, host=host)

    def open_carrier(self, address: str, *, host: str) -> Carrier:
        """A bare connection from `host` to the listener at `address`, before any
        handshake: what a hostile or broken dialer holds. For tests of listeners."""
        carrier, _ = self._open("", host, address)
        return carrier

    def _bind(self, address: str, listener: _Listener) -> str:
        if not address.startswith(SCHEME):
            raise BadAddress(address, f"a memory address starts with {SCHEME!r}")
        name = address[len(SCHEME) :]
        if not name:
            self._names += 1
            name = f"node-{self._names}"
            while SCHEME + name in self._listeners:
                self._names += 1
                name = f"node-{self._names}"
        bound = SCHEME + name
        if bound in self._listeners:
            raise BadAddress(bound, "address already in use")
        self._listeners[bound] = listener
        return bound

    def _unbind(self, address: str) -> None:
        self._listeners.pop(address, None)

    def _open(
        self, dialer: str, host: str, address: str
    ) -> tuple[_MemoryCarrier, LoseFrame | None]:
        """Connect peer `dialer` on `host` to a listener; its carrier and loss decision."""
        if not address.startswith(SCHEME):
            raise BadAddress(address, f"a memory address starts with {SCHEME!r}")
        listener = self._listeners.get(address)
        if listener is None:
            raise ConnectFailed(address, "nothing is listening there")
        if self._split(dialer, listener.peer_id):
            raise ConnectFailed(address, "unreachable: the network is partitioned")
        conditions = self.conditions_between(dialer, listener.peer_id)
        pair = (dialer, listener.peer_id)
        self._links_opened[pair] += 1
        count = self._links_opened[pair]
        dialer_end, listener_end = carrier_pair(conditions, self.window, (host, listener.host))
        if dialer:
            self._remember(frozenset((dialer, listener.peer_id)), dialer_end, listener_end)
        incoming = _Incoming(listener_end, self._loss(conditions, listener.peer_id, dialer, count))
        try:
            listener.accept.send_nowait(incoming)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            raise ConnectFailed(address, "listener is not accepting connections") from None
        return dialer_end, self._loss(conditions, dialer, listener.peer_id, count)

    def _remember(self, peers: frozenset[str], one: _MemoryCarrier, other: _MemoryCarrier) -> None:
        """Keep the connection to break on a partition (closed ones are swept out)."""
        if len(peers) < 2:
            return
        self._connections.append((peers, one, other))
        if len(self._connections) > 64 and len(self._connections) & (len(self._connections) - 1) == 0:
            self._connections = [c for c in self._connections if not (c[1].closed and c[2].closed)]

    def _loss(
        self, conditions: LinkConditions, sender: str, receiver: str, count: int
    ) -> LoseFrame | None:
        if conditions.loss == 0.0:
            return None
        rng = random.Random(f"{self.seed}|{sender}|{receiver}|{count}")
        probability = conditions.loss
        return lambda: rng.random() < probability


class MemoryTransport(SecureTransport):
    """The `Transport` of one node on a `MemoryNetwork`."""

    def __init__(
        self,
        network: MemoryNetwork,
        key: nacl.signing.SigningKey,
        settings: LinkSettings = DEFAULT_LINK_SETTINGS,
        *,
        host: str | None = None,
    ) -> None:
        super().__init__(key, settings)
        self.network = network
        self.host = host or self.peer_id
        """The simulated host this transport dials from: what listeners see as its source."""

    async def listen(
        self,
        address: str,
        handle_link: LinkHandler,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        accept_send, accept_receive = trio.open_memory_channel[_Incoming](_BACKLOG)
        bound = self.network._bind(address, _Listener(self.peer_id, self.host, accept_send))
        self._endpoint.listen_address = bound
        try:
            async with trio.open_nursery() as nursery:
                task_status.started(bound)
                async for incoming in accept_receive:
                    nursery.start_soon(
                        self._endpoint.serve, incoming.carrier, handle_link, incoming.lose_frame
                    )
        finally:
            self.network._unbind(bound)
            self._endpoint.listen_address = None
            accept_send.close()
            # Dialers still waiting in the backlog see their connection end at once.
            while True:
                try:
                    accept_receive.receive_nowait().carrier.close()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break

    def check_address(self, address: str) -> None:
        if not address.startswith(SCHEME):
            raise BadAddress(address, f"a memory address starts with {SCHEME!r}")

    async def connect(self, address: str, expect_peer: str | None = None) -> Link:
        nursery = self._link_nursery()
        carrier, lose_frame = self.network._open(self.peer_id, self.host, address)
        link = await self._endpoint.dial(carrier, address, expect_peer, lose_frame)
        started: Link = await nursery.start(self._endpoint.run_dialed, link)
        return started
