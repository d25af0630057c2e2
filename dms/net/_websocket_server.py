"""The listener's end of a websocket carrier, on wsproto, reading no more than it is asked.

trio-websocket (the dialing side's library) fixes a connection's largest message when
the connection opens, and its reader task reads ahead of the consumer. A listener built
on it must accept the post-handshake frame size (4 MiB) from every stranger, and could
not tighten the limit for the handshake alone without racing the reader: the dialer's
first frame may be read before the handshake's last message is consumed.

Here the consumer is the reader. `receive_message(limit)` reads the socket only while it
is asked for a message, in pieces of about the limit at most, and gives up past `limit`
(close code 1009, `OversizeMessage`): the handshake's messages are read with the
handshake's bound, the link's frames with the frame bound, and bytes of the next message
wait in the socket until they are asked for. The HTTP upgrade (at most h11's 16 KiB of
headers) is answered by the first `receive_message`, so it falls inside the handshake's
slot and deadline. No extension is negotiated (no compression, so no inflation bombs).
"""

from __future__ import annotations

import trio
import wsproto.utilities
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Request,
    TextMessage,
)

from dms.net._link import CarrierClosed, OversizeMessage
from dms.net._socket_io import SendBuffer

_RECEIVE_CHUNK = 64 * 1024
_HEADER_ROOM = 1024  # frame headers and control frames read with a message's bytes
_DRAIN_LIMIT = 64 * 1024
_LAST_WORD_TIMEOUT = 0.5  # a close frame to a remote that does not read is not owed
_MESSAGE_TOO_BIG = 1009
_MAY_CLOSE = (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING)


class WebsocketServerCarrier:
    """One accepted TCP connection, as a carrier: websocket upgrade, then messages.

    One task receives and any task sends, as `Link` uses carriers; a `BufferedCarrier`,
    so a link writes its frames without waking its writer when the socket is free. A
    message over the limit, a protocol error or a close from the remote closes the
    connection.
    """

    def __init__(self, stream: trio.SocketStream, source: str) -> None:
        self.source = source
        """The remote's IP address (an IPv6 /64), see `dms.net._websocket.source_of`."""
        self._stream = stream
        self._ws = WSConnection(ConnectionType.SERVER)
        self._outgoing = SendBuffer(stream)  # every frame, control ones too, in order
        self._message = bytearray()  # one buffer: a message in 1-byte fragments costs no more
        self._receiving = False
        self._closed = False

    async def send_message(self, data: bytes) -> None:
        await self._send(BytesMessage(data=data))

    def queue(self, data: bytes) -> None:
        if self._closed:
            raise CarrierClosed
        self._queue(BytesMessage(data=data))

    def write_nowait(self) -> bool:
        if self._closed:
            raise CarrierClosed
        return self._outgoing.write_nowait()

    async def flush(self) -> None:
        await self._outgoing.flush()

    async def receive_message(self, limit: int) -> bytes:
        if self._closed:
            raise CarrierClosed
        self._receiving = True
        try:
            while True:
                for event in self._ws.events():
                    message = await self._handle(event, limit)
                    if message is not None:
                        return message
                # Room for what is left of this message, not for what may follow it.
                await self._feed(min(_RECEIVE_CHUNK, limit - len(self._message) + _HEADER_ROOM))
        finally:
            self._receiving = False

    async def aclose(self) -> None:
        """Say goodbye (close frame), read what the remote still sends until it answers
        (closing a socket with unread bytes would reset it and lose what we sent last),
        then close. Idempotent; the socket is closed even when cancelled."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            if self._ws.state is ConnectionState.OPEN:
                await self._send(CloseConnection(code=1000))
                if not self._receiving:  # else that task reads the answer
                    await self._drain()
        except CarrierClosed:
            pass
        finally:
            await self._stream.aclose()

    async def _handle(self, event: Event, limit: int) -> bytes | None:
        """Act on one event; the message it completes, if any."""
        if isinstance(event, Request):
            await self._send(AcceptConnection())
        elif isinstance(event, (BytesMessage, TextMessage)):
            data = event.data.encode() if isinstance(event.data, str) else event.data
            received = len(self._message) + len(data)
            if received > limit:
                self._message = bytearray()
                await self._abort(CloseConnection(code=_MESSAGE_TOO_BIG))
                raise OversizeMessage(received, limit)
            self._message += data
            if event.message_finished:
                message = bytes(self._message)
                self._message = bytearray()
                return message
        elif isinstance(event, Ping):
            await self._send(event.response())
        elif isinstance(event, CloseConnection):
            # The remote's close (answered), or wsproto's verdict on a bad frame (sent).
            answer = event.response() if self._ws.state in _MAY_CLOSE else None
            await self._abort(answer)
            raise CarrierClosed
        return None

    async def _feed(self, size: int) -> None:
        """Read up to `size` bytes into wsproto; `CarrierClosed` at the end or on garbage."""
        try:
            data = await self._stream.receive_some(size)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await self._abort(None)
            raise CarrierClosed from None
        if not data:
            await self._abort(None)
            raise CarrierClosed
        try:
            self._ws.receive_data(data)
        except wsproto.utilities.ProtocolError as exc:
            hint = exc.event_hint if isinstance(exc, wsproto.utilities.RemoteProtocolError) else None
            await self._abort(hint)
            raise CarrierClosed from None

    async def _drain(self) -> None:
        """Read and drop until the remote answers our close (the caller bounds the time)."""
        dropped = 0
        while dropped < _DRAIN_LIMIT and self._ws.state is ConnectionState.LOCAL_CLOSING:
            try:
                data = await self._stream.receive_some(_RECEIVE_CHUNK)
                if not data:
                    return
                self._ws.receive_data(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            except wsproto.utilities.ProtocolError:
                return
            dropped += len(data)
            for _ in self._ws.events():
                pass

    async def _send(self, event: Event) -> None:
        self._queue(event)
        await self._outgoing.flush()

    def _queue(self, event: Event) -> None:
        try:
            self._outgoing.add(self._ws.send(event))
        except wsproto.utilities.LocalProtocolError:  # not in this state: closing
            raise CarrierClosed from None

    async def _abort(self, last_word: Event | None) -> None:
        """Close at once, after `last_word` if the socket takes it."""
        self._closed = True
        try:
            if last_word is not None and not self._outgoing.flushing:
                with trio.move_on_after(_LAST_WORD_TIMEOUT):
                    await self._send(last_word)
        except CarrierClosed:
            pass
        finally:
            await self._stream.aclose()
