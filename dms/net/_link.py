"""One authenticated, encrypted, ordered connection to one proven peer.

A `Link` sits on a *carrier*: anything that moves whole byte messages in order (an
in-process pipe, a websocket). Both transports build links the same way, through
`SecureEndpoint`: run the handshake over the carrier, then seal every frame with the
session keys. Transports only supply carriers and own the tasks.

Sending never blocks on the peer: `send` puts the frame in a per-link buffer, bounded
in frames and in bytes, that a writer task drains (the node's own frames before those
it relays for others, `dms.net._outbox`); when the buffer is full `send` raises
`LinkBusy` (the frame is not sent, `link.dropped_busy` is counted) and the caller
decides to drop or retry.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import attrs
import nacl.signing
import trio

from dms.net._errors import (
    FrameTooLarge,
    HandshakeFailed,
    HandshakeTimeout,
    LinkBusy,
    LinkClosed,
    PeerMismatch,
)
from dms.net._handshake import InitiatorHandshake, ResponderHandshake, SessionKeys
from dms.net._handshake_slots import EvictionReason, HandshakeSlots
from dms.net._metrics import Metrics
from dms.net._outbox import Flush, Outbox
from dms.net._session import FRAME_OVERHEAD, FrameRejected, SecureSession

MAX_FRAME = 4 * 1024 * 1024
"""Largest payload one frame may carry (bytes); larger sends raise `FrameTooLarge`."""

MAX_CARRIER_MESSAGE = MAX_FRAME + FRAME_OVERHEAD
_COALESCE_BYTES = 256 * 1024  # frames sealed into one carrier write, about
"""Largest message a carrier must move: a maximal payload once sealed."""


class CarrierClosed(Exception):
    """The carrier under a link ended (either side closed it, or it broke)."""


class OversizeMessage(CarrierClosed):
    """The remote sent a message over the reader's limit; the carrier is done.

    Raised by the layer that reads the bytes, which gives up after at most the limit
    (plus one read): a stranger cannot make a carrier buffer a large message.
    """

    def __init__(self, received: int, limit: int) -> None:
        super().__init__(f"a message of at least {received} bytes, over the limit of {limit}")
        self.received = received
        self.limit = limit


class Carrier(Protocol):
    """Moves whole byte messages, in order, reliably, to one other endpoint."""

    @property
    def source(self) -> str:
        """Where the other end connects from, the unit a listener counts half-open
        handshakes by: an IP address (an IPv6 /64) or a memory transport's host."""
        ...

    async def send_message(self, data: bytes) -> None:
        """Send one message; `CarrierClosed` when the carrier is closed."""
        ...

    async def receive_message(self, limit: int) -> bytes:
        """The next message, at most `limit` bytes; `CarrierClosed` at the end.

        A longer message is `OversizeMessage`, and the carrier is of no further use (its
        caller closes it); a carrier that reads from a socket gives up having buffered
        no more than about `limit` bytes of it. Must be cancel-safe.
        """
        ...

    async def aclose(self) -> None:
        """Close both directions; idempotent."""
        ...


@runtime_checkable
class BufferedCarrier(Carrier, Protocol):
    """A carrier with a send buffer of its own (TCP): messages queued together go out in
    one write, and a message can be handed to the socket without a task switch.

    A `Link` over one writes a frame from `send_nowait` itself when nothing is queued
    and its writer is idle (no wake-up of the writer, no checkpoint: the common case of
    a request or a reply on a quiet link), and otherwise lets its writer seal every
    frame waiting and flush them at once.
    """

    def queue(self, data: bytes) -> None:
        """Add one message to the send buffer; `CarrierClosed` when closed."""
        ...

    def write_nowait(self) -> bool:
        """Give the socket what of the buffer it takes without waiting; True when
        nothing is left (else `flush` sends the rest). `CarrierClosed` when closed."""
        ...

    async def flush(self) -> None:
        """Send the whole buffer; `CarrierClosed` when the carrier is closed."""
        ...


LoseFrame = Callable[[], bool]
"""A simulated-loss decision made per outgoing frame (memory transport only)."""

LinkHandler = Callable[["Link"], Awaitable[None]]
"""Runs for each accepted link; the link is closed when it returns."""


@attrs.frozen
class LinkSettings:
    """Limits every link of a transport shares."""

    handshake_timeout: float = 10.0
    send_buffer: int = attrs.field(default=256, validator=attrs.validators.ge(1))
    send_buffer_bytes: int = attrs.field(default=8 * 1024 * 1024,
                                         validator=attrs.validators.ge(1))
    """Bytes of frames waiting to be sent, per link: 256 frames of the largest size
    would be a gigabyte for one slow peer."""
    relay_share: float = attrs.field(
        default=0.5, validator=[attrs.validators.gt(0.0), attrs.validators.le(1.0)])
    """The share of the send buffer (frames and bytes) that frames relayed for others
    may fill; the node's own frames go out first (see `dms.net._outbox`)."""
    max_frame: int = attrs.field(
        default=MAX_FRAME, validator=[attrs.validators.ge(1), attrs.validators.le(MAX_FRAME)]
    )
    close_timeout: float = 2.0
    pending_handshakes: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    """Handshakes a listener runs at once; a newcomer past it evicts the oldest attempt
    of the source holding the most (see `dms.net._handshake_slots`)."""
    handshakes_per_source: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    """Handshakes one source (IP address, IPv6 /64) may run at once; its newcomer past
    it evicts its own oldest, never another source's."""
    accept_timeout: float = 5.0
    """How long an inbound connection may take to prove itself (a dms node needs
    milliseconds): half-open sockets hold a slot for no longer than this."""

    def __attrs_post_init__(self) -> None:
        if self.send_buffer_bytes < self.max_frame:
            raise ValueError(
                f"send_buffer_bytes ({self.send_buffer_bytes}) must hold a largest frame "
                f"(max_frame {self.max_frame}), or such frames could never be sent")


DEFAULT_LINK_SETTINGS = LinkSettings()
MAX_HANDSHAKE_MESSAGE = 4096
"""Largest carrier message before the handshake completes. The real ones are smaller:
HELLO 67 bytes plus an address of at most 1024 and a suite offer of at most 529 (1620),
REPLY 1684, FINISH 65."""

_EVICTED_COUNTER = {
    EvictionReason.SAME_SOURCE: "link.handshakes_evicted_per_source",
    EvictionReason.TABLE_FULL: "link.handshakes_evicted",
}


_LOGGED: set[tuple[str, str]] = set()
log = logging.getLogger("dms.net")


def _log_once(exc: Exception) -> None:
    """Log an unexpected error from remote input once per (type, place): a peer that
    repeats it must not fill the log."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
    key = (type(exc).__name__, where)
    if key not in _LOGGED and len(_LOGGED) < 1024:
        _LOGGED.add(key)
        log.error("remote input met a bug (link closed, counted): %s", exc, exc_info=exc)


class Link:
    """An open secure link. Use one task to `receive`; any task may `send`.

    The link closes when either side closes it, when the carrier breaks, or when a
    received frame fails authentication (replayed, reordered, tampered, oversize);
    after that `send` and `receive` raise `LinkClosed` with the reason.
    """

    def __init__(
        self,
        carrier: Carrier,
        keys: SessionKeys,
        *,
        dialed: bool,
        settings: LinkSettings,
        metrics: Metrics,
        lose_frame: LoseFrame | None = None,
    ) -> None:
        self.remote_peer: str = keys.remote_peer
        """The did:key the remote proved in the handshake."""
        self.remote_address: str | None = keys.remote_address
        """The listen address the remote announced (dialable), or None."""
        self.dialed = dialed
        """True on the side that opened the connection."""
        self.suite: str = keys.suite
        """The session cipher the handshake chose (`aegis256` or `xsalsa20poly1305`)."""
        self._carrier = carrier
        self._session = SecureSession(keys)
        self._settings = settings
        self._metrics = metrics
        self._lose_frame = lose_frame
        self._outbox = Outbox(settings.send_buffer, settings.send_buffer_bytes,
                              settings.relay_share)
        self._buffered = (carrier if isinstance(carrier, BufferedCarrier) and lose_frame is None
                          else None)
        self._writer_busy = False  # sealing, sending or flushing: frames must queue behind
        self._writer_done = trio.Event()
        self._closed = trio.Event()
        self._close_reason: str | None = None

    def __repr__(self) -> str:
        state = f"closed: {self._close_reason}" if self._close_reason else "open"
        return f"<Link to {self.remote_peer} ({state})>"

    @property
    def is_closed(self) -> bool:
        """True once the link started closing; frames can no longer be sent."""
        return self._close_reason is not None

    def send_nowait(self, frame: bytes, *, relayed: bool = False) -> None:
        """Queue `frame`; `LinkBusy` when the send buffer is full (in frames or in
        bytes), `LinkClosed` if closed. A `relayed` frame (a publication passed on for
        others) may fill only `relay_share` of the buffer, and waits behind this
        node's own frames."""
        if self._close_reason is not None:
            raise LinkClosed(self.remote_peer, self._close_reason)
        if len(frame) > self._settings.max_frame:
            raise FrameTooLarge(self.remote_peer, len(frame), self._settings.max_frame)
        if self._buffered is not None and not self._writer_busy and not len(self._outbox):
            self._write_now(self._buffered, frame)
            return
        if not self._outbox.put(frame, relayed=relayed):
            self._metrics["link.dropped_busy_relayed" if relayed else "link.dropped_busy"] += 1
            raise LinkBusy(self.remote_peer, len(self._outbox), self._outbox.bytes)

    def _write_now(self, carrier: BufferedCarrier, frame: bytes) -> None:
        """Seal and write `frame` here, in the sender's task; what the socket does not
        take now the writer flushes (frames sent meanwhile queue behind it)."""
        try:
            self._seal_into(carrier, frame)
            if not carrier.write_nowait():
                self._writer_busy = True
                self._outbox.request_flush()
        except CarrierClosed:
            self._begin_close("carrier closed while sending")
            return
        self._metrics["link.frames_direct"] += 1

    def _seal_into(self, carrier: BufferedCarrier, frame: bytes) -> None:
        if self._lose_frame is not None and self._lose_frame():
            self._metrics["link.dropped_loss"] += 1  # lost before sealing, as unbuffered
            return
        sealed = self._session.seal(frame)
        carrier.queue(sealed)
        self._metrics["link.frames_out"] += 1
        self._metrics["link.bytes_out"] += len(sealed)

    async def send(self, frame: bytes) -> None:
        """Queue `frame` without waiting for the peer (see `send_nowait`)."""
        self.send_nowait(frame)
        await trio.lowlevel.checkpoint()

    async def receive(self) -> bytes:
        """The next frame from the peer; `LinkClosed` at the end or on a rejected frame."""
        if self._close_reason is not None:
            raise LinkClosed(self.remote_peer, self._close_reason)
        try:
            # This suite's overhead, not the largest (`FRAME_OVERHEAD`): under XSalsa20
            # (24 bytes) that would let a peer's payload run 16 bytes past max_frame.
            data = await self._carrier.receive_message(self._settings.max_frame + self._session.overhead)
        except OversizeMessage as exc:
            self._metrics["link.rejected_oversize"] += 1
            reason = f"rejected an oversize frame ({exc})"
            await self._close(reason)
            raise LinkClosed(self.remote_peer, reason) from None
        except CarrierClosed:
            await self._close("closed by the remote side")
            raise LinkClosed(self.remote_peer, "closed by the remote side") from None
        try:
            payload = self._session.open(data)
        except FrameRejected as exc:
            self._metrics[f"link.rejected_{exc.reason}"] += 1
            reason = f"rejected a {exc.reason} frame ({exc})"
            await self._close(reason)
            raise LinkClosed(self.remote_peer, reason) from None
        self._metrics["link.frames_in"] += 1
        self._metrics["link.bytes_in"] += len(data)
        return payload

    async def aclose(self) -> None:
        """Send what is buffered (up to the close timeout), then close. Idempotent."""
        await self._close("closed locally")

    async def wait_closed(self) -> None:
        """Return once the link is fully closed."""
        await self._closed.wait()

    async def run_writer(self) -> None:
        """Drain the send buffer into the carrier; the transport runs this in its nursery."""
        try:
            while (item := await self._outbox.take()) is not None:
                self._writer_busy = True
                if self._buffered is not None:
                    await self._write_waiting(self._buffered, item)
                elif isinstance(item, bytes):
                    if self._lose_frame is not None and self._lose_frame():
                        self._metrics["link.dropped_loss"] += 1
                        continue
                    sealed = self._session.seal(item)
                    await self._carrier.send_message(sealed)
                    self._metrics["link.frames_out"] += 1
                    self._metrics["link.bytes_out"] += len(sealed)
                self._writer_busy = False
        except CarrierClosed:
            self._begin_close("carrier closed while sending")
        finally:
            self._writer_done.set()

    async def _write_waiting(self, carrier: BufferedCarrier, item: bytes | Flush) -> None:
        """`item` and every frame waiting behind it (up to `_COALESCE_BYTES`), sealed
        one by one and sent in one write."""
        if isinstance(item, bytes):
            self._seal_into(carrier, item)
            queued, batched = len(item), 1
            while queued < _COALESCE_BYTES and (more := self._outbox.take_nowait()) is not None:
                self._seal_into(carrier, more)
                queued += len(more)
                batched += 1
            if batched > 1:
                self._metrics["link.frames_coalesced"] += batched
        await carrier.flush()

    def _begin_close(self, reason: str) -> None:
        if self._close_reason is None:
            self._close_reason = reason
            self._outbox.close()

    async def _close(self, reason: str) -> None:
        self._begin_close(reason)
        try:
            with trio.move_on_after(self._settings.close_timeout):
                await self._writer_done.wait()
        finally:
            # Runs even when cancelled: carriers close their resources before checkpointing.
            try:
                with trio.move_on_after(self._settings.close_timeout):
                    await self._carrier.aclose()
            finally:
                self._closed.set()


class SecureEndpoint:
    """What both transports share: the node key, link settings, metrics, and the
    handshake-then-link procedure for each side of a new carrier."""

    def __init__(
        self, key: nacl.signing.SigningKey, settings: LinkSettings, metrics: Metrics
    ) -> None:
        self.key = key
        self.settings = settings
        self.metrics = metrics
        self.listen_address: str | None = None
        """Announced in every handshake once the transport listens."""
        self._half_open = HandshakeSlots[trio.CancelScope](
            settings.pending_handshakes, settings.handshakes_per_source
        )

    async def dial(
        self,
        carrier: Carrier,
        address: str,
        expect_peer: str | None,
        lose_frame: LoseFrame | None = None,
    ) -> Link:
        """Run the initiator handshake; the carrier is closed if it fails.

        Raises `HandshakeTimeout`, `PeerMismatch` or `HandshakeFailed`. The caller must
        run the returned link's `run_writer`.
        """
        machine = InitiatorHandshake(
            self.key, self.listen_address, expect_peer=expect_peer, dialed_address=address
        )
        try:
            with trio.move_on_after(self.settings.handshake_timeout) as scope:
                await carrier.send_message(machine.start())
                reply = await carrier.receive_message(MAX_HANDSHAKE_MESSAGE)
                finish, keys = machine.receive_reply(reply)
                await carrier.send_message(finish)
            if scope.cancelled_caught:
                raise HandshakeTimeout(address, self.settings.handshake_timeout)
        except OversizeMessage as exc:
            self.metrics["link.handshakes_oversize"] += 1
            await self._handshake_failed(carrier)
            raise HandshakeFailed(
                f"{address} answered the handshake wrongly, it may not be a dms node: {exc}"
            ) from None
        except CarrierClosed:
            await self._handshake_failed(carrier)
            raise HandshakeFailed(f"{address} closed the connection during the handshake") from None
        except (HandshakeTimeout, PeerMismatch):
            await self._handshake_failed(carrier)
            raise  # they name the address already
        except HandshakeFailed as exc:  # what the machine says, e.g. a malformed REPLY
            await self._handshake_failed(carrier)
            raise HandshakeFailed(
                f"{address} answered the handshake wrongly, it may not be a dms node: {exc}"
            ) from None
        except Exception as exc:  # remote input may not end the node: a failed dial
            self.metrics["link.handshake_errors"] += 1
            _log_once(exc)
            await self._handshake_failed(carrier)
            raise HandshakeFailed(
                f"{address} broke the handshake ({type(exc).__name__}): it may not be a dms node"
            ) from None
        except BaseException:
            await self._handshake_failed(carrier)
            raise
        return self._handshake_succeeded(carrier, keys, dialed=True, lose_frame=lose_frame)

    async def accept(self, carrier: Carrier, lose_frame: LoseFrame | None = None) -> Link | None:
        """Run the responder handshake; None (carrier closed, failure counted) if it fails.

        Before a peer has proven anything it gets little: one of a bounded number of
        slots (a newcomer evicts an older attempt, of its own source first: a flood of
        half-open sockets cannot lock others out), messages of at most
        `MAX_HANDSHAKE_MESSAGE` bytes, and `accept_timeout` seconds.
        """
        scope = trio.CancelScope(deadline=trio.current_time() + self.settings.accept_timeout)
        eviction = self._half_open.admit(carrier.source, scope)
        if eviction is not None:
            eviction.attempt.cancel()
            self.metrics[_EVICTED_COUNTER[eviction.reason]] += 1
        machine = ResponderHandshake(self.key, self.listen_address)
        keys: SessionKeys | None = None
        try:
            with scope:
                hello = await carrier.receive_message(MAX_HANDSHAKE_MESSAGE)
                await carrier.send_message(machine.receive_hello(hello))
                keys = machine.receive_finish(await carrier.receive_message(MAX_HANDSHAKE_MESSAGE))
        except OversizeMessage:
            self.metrics["link.handshakes_oversize"] += 1
        except (CarrierClosed, HandshakeFailed):
            pass
        except Exception as exc:  # remote input may not end the node: a failed handshake
            self.metrics["link.handshake_errors"] += 1
            _log_once(exc)
        finally:
            self._half_open.release(scope)
        if keys is None:
            await self._handshake_failed(carrier)
            return None
        return self._handshake_succeeded(carrier, keys, dialed=False, lose_frame=lose_frame)

    async def serve(
        self, carrier: Carrier, handle_link: LinkHandler, lose_frame: LoseFrame | None = None
    ) -> None:
        """Accept a carrier and run `handle_link` on the link; close it when that returns.

        A handler ending with `LinkClosed` is the normal end of a link. Any other
        exception (a bug met by remote input) closes this link only: it is counted
        (`link.handler_errors`) and logged once per kind, and the listener goes on.
        """
        link = await self.accept(carrier, lose_frame)
        if link is None:
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link.run_writer)
            try:
                await handle_link(link)
            except LinkClosed:
                pass
            except Exception as exc:
                self.metrics["link.handler_errors"] += 1
                _log_once(exc)
            finally:
                await link.aclose()

    async def run_dialed(
        self, link: Link, *, task_status: trio.TaskStatus[Link] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Own a dialed link: run its writer until it closes; close it when cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link.run_writer)
            task_status.started(link)
            try:
                await link.wait_closed()
            finally:
                await link.aclose()

    def _handshake_succeeded(
        self, carrier: Carrier, keys: SessionKeys, *, dialed: bool, lose_frame: LoseFrame | None
    ) -> Link:
        self.metrics["link.handshakes_ok"] += 1
        return Link(
            carrier,
            keys,
            dialed=dialed,
            settings=self.settings,
            metrics=self.metrics,
            lose_frame=lose_frame,
        )

    async def _handshake_failed(self, carrier: Carrier) -> None:
        self.metrics["link.handshakes_failed"] += 1
        with trio.move_on_after(self.settings.close_timeout):
            await carrier.aclose()
