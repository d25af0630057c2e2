"""Socket I/O for carriers that take fewer task switches than `trio.SocketStream`'s:
`SendBuffer`, a socket's outgoing bytes kept in order whoever sends them (what a
`BufferedCarrier` writes through), and `read_some`, a read that is one checkpoint only
when it has to wait (the carrier adds a yield for a message that was already there).

Bytes are added whole (a framed message, a websocket frame), so two messages never
interleave. `write_nowait` gives the socket what it takes without waiting, from any
task, as long as no `flush` is under way; `flush` sends everything, one task at a time
(what is added meanwhile goes out in the same flush, after what was there).
"""

from __future__ import annotations

import os

import trio

from dms.net._link import CarrierClosed


class SendBuffer:
    """The outgoing bytes of one `trio.SocketStream`."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._unsent = bytearray()
        self._lock = trio.Lock()

    def __len__(self) -> int:
        return len(self._unsent)

    def add(self, data: bytes) -> None:
        self._unsent += data

    def write_nowait(self) -> bool:
        """Write what the socket takes now; True when nothing is left to flush."""
        if self._lock.locked():  # a flush is under way and takes these bytes too
            return False
        fd = self._stream.socket.fileno()
        if fd < 0:  # closed: the number may be another file's by now
            raise CarrierClosed
        try:
            sent = os.write(fd, self._unsent)  # trio's sockets are non-blocking
        except BlockingIOError:
            return False
        except OSError:  # reset, broken pipe: the connection is gone
            raise CarrierClosed from None
        del self._unsent[:sent]
        return not self._unsent

    @property
    def flushing(self) -> bool:
        """A flush is under way (another task must not wait on this socket too)."""
        return self._lock.locked()

    async def flush(self) -> None:
        """Send every byte; `CarrierClosed` if the connection is gone."""
        async with self._lock:
            while self._unsent:
                chunk = bytes(self._unsent)
                self._unsent.clear()
                try:
                    await self._stream.send_all(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    raise CarrierClosed from None



async def read_some(stream: trio.SocketStream, size: int) -> tuple[bytes, bool]:
    """(up to `size` bytes, whether it waited for them): b"" at the end of the stream,
    `CarrierClosed` when the connection is gone or closed meanwhile. A checkpoint only
    when the socket had nothing yet."""
    waited = False
    while True:
        fd = stream.socket.fileno()
        if fd < 0:  # closed: the number may be another file's by now
            raise CarrierClosed
        try:
            return os.read(fd, size), waited  # trio's sockets are non-blocking
        except BlockingIOError:
            pass
        except OSError:  # reset
            raise CarrierClosed from None
        try:
            await trio.lowlevel.wait_readable(stream.socket)
        except (trio.ClosedResourceError, OSError):
            raise CarrierClosed from None
        waited = True
