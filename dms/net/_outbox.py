"""A link's send buffer: bounded in frames and bytes, the node's own frames first.

Frames a node relays for others (flooded publications) and its own (unicast, its
publications, control) share a link. In one first-in-first-out buffer a relayed flood
filled it, and the node's replies to that peer were refused or waited behind hundreds
of relayed frames. Here relayed frames may fill only `relay_share` of the buffer, and
the writer takes the node's own frames first; each kind stays in its order.

`Outbox` is sans-IO apart from waking its one writer (a `trio.lowlevel.ParkingLot`).
Besides frames, it can hand the writer `FLUSH`: a frame was written to the carrier by
its sender directly (`Link.send_nowait`) and bytes of it are still to be pushed.
"""

from __future__ import annotations

from collections import deque

import trio


class Flush:
    """What `Outbox.take` gives when the writer should flush the carrier's buffer."""


FLUSH = Flush()


class Outbox:
    """Frames waiting to be sent on one link."""

    def __init__(self, frames: int, total_bytes: int, relay_share: float) -> None:
        self.frames = frames
        self.total_bytes = total_bytes
        self.relay_share = relay_share
        self._own: deque[bytes] = deque()
        self._relayed: deque[bytes] = deque()
        self._relayed_bytes = 0
        self.bytes = 0
        self._writer = trio.lowlevel.ParkingLot()
        self._closed = False
        self._flush = False

    def __len__(self) -> int:
        return len(self._own) + len(self._relayed)

    def put(self, frame: bytes, *, relayed: bool = False) -> bool:
        """Queue `frame`; False (nothing queued) when over the bounds: the whole buffer's,
        or for a relayed frame the relayed share of it. Closed: False too."""
        size = len(frame)
        if self._closed or len(self) >= self.frames or self.bytes + size > self.total_bytes:
            return False
        if relayed:
            if (len(self._relayed) >= self.relay_share * self.frames
                    or self._relayed_bytes + size > self.relay_share * self.total_bytes):
                return False
            self._relayed.append(frame)
            self._relayed_bytes += size
        else:
            self._own.append(frame)
        self.bytes += size
        self._writer.unpark()
        return True

    def request_flush(self) -> None:
        """Have the writer's next `take` be `FLUSH` (before any frame)."""
        self._flush = True
        self._writer.unpark()

    def close(self) -> None:
        """No more frames; the writer gets what is queued, then the end."""
        self._closed = True
        self._writer.unpark_all()

    async def take(self) -> bytes | Flush | None:
        """`FLUSH` if asked for, else the next frame to send, own frames first; None once
        closed and empty."""
        while True:
            if self._flush:
                self._flush = False
                return FLUSH
            if self._own:
                frame = self._own.popleft()
            elif self._relayed:
                frame = self._relayed.popleft()
                self._relayed_bytes -= len(frame)
            elif self._closed:
                return None
            else:
                await self._writer.park()
                continue
            self.bytes -= len(frame)
            return frame

    def take_nowait(self) -> bytes | None:
        """The next frame if one is waiting (own frames first), else None."""
        if self._own:
            frame = self._own.popleft()
        elif self._relayed:
            frame = self._relayed.popleft()
            self._relayed_bytes -= len(frame)
        else:
            return None
        self.bytes -= len(frame)
        return frame
