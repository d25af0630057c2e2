"""Socket I/O for carriers that take fewer task switches than `trio.SocketStream`'s:
`SendBuffer`, a socket's outgoing bytes kept in order whoever sends them (what a
`BufferedCarrier` writes through), and `read_some` / `read_into`, reads that are one
checkpoint only when they have to wait (the carrier adds a yield for a message that was
already there).

Bytes are added whole (a framed message, a websocket frame), so two messages never
interleave. `write_nowait` gives the socket what it takes without waiting, from any
task, as long as no `flush` is under way; `flush` sends everything, one task at a time
(what is added meanwhile goes out in the same flush, after what was there).
"""

from __future__ import annotations

import itertools
import os
from collections import deque

import trio

from dms.net._link import CarrierClosed

_MAX_PARTS = 512  # per writev, under every kernel's IOV_MAX (1024)


class SendBuffer:
    """The outgoing bytes of one `trio.SocketStream`, kept as the parts they were added
    as: a write gathers them (`writev`) instead of copying them into one buffer first."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._parts: deque[bytes | memoryview] = deque()
        self._size = 0
        self._lock = trio.Lock()

    def __len__(self) -> int:
        return self._size

    def add(self, *parts: bytes) -> None:
        """Queue `parts` in order (one message's: nothing else comes between them)."""
        for part in parts:
            if part:
                self._parts.append(part)
                self._size += len(part)

    def write_nowait(self) -> bool:
        """Write what the socket takes now; True when nothing is left to flush."""
        if self._lock.locked():  # a flush is under way and takes these bytes too
            return False
        if not self._parts:
            return True
        fd = self._stream.socket.fileno()
        if fd < 0:  # closed: the number may be another file's by now
            raise CarrierClosed
        try:  # trio's sockets are non-blocking
            sent = os.writev(fd, list(itertools.islice(self._parts, _MAX_PARTS)))
        except BlockingIOError:
            return False
        except OSError:  # reset, broken pipe: the connection is gone
            raise CarrierClosed from None
        self._drop_sent(sent)
        return not self._parts

    def _drop_sent(self, sent: int) -> None:
        self._size -= sent
        parts = self._parts
        while sent:
            first = parts[0]
            if len(first) <= sent:
                sent -= len(first)
                parts.popleft()
            else:
                parts[0] = memoryview(first)[sent:]
                break

    @property
    def flushing(self) -> bool:
        """A flush is under way (another task must not wait on this socket too)."""
        return self._lock.locked()

    async def flush(self) -> None:
        """Send every byte; `CarrierClosed` if the connection is gone."""
        async with self._lock:
            while self._parts:
                chunk = b"".join(self._parts)
                self._parts.clear()
                self._size = 0
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
        waited = await _wait_readable(stream)


async def read_into(stream: trio.SocketStream, buffer: memoryview) -> tuple[int, bool]:
    """`read_some` into `buffer` (no copy of the bytes in Python): (how many, whether
    it waited); 0 at the end of the stream."""
    waited = False
    while True:
        fd = stream.socket.fileno()
        if fd < 0:
            raise CarrierClosed
        try:
            return os.readv(fd, (buffer,)), waited
        except BlockingIOError:
            pass
        except OSError:
            raise CarrierClosed from None
        waited = await _wait_readable(stream)


async def _wait_readable(stream: trio.SocketStream) -> bool:
    try:
        await trio.lowlevel.wait_readable(stream.socket)
    except (trio.ClosedResourceError, OSError):
        raise CarrierClosed from None
    return True
