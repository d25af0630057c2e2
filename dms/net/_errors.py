"""The failures the network layer reports, one class per thing that went wrong.

Every message names the peer (did:key) or the address involved, so a user reading a
log line knows which connection to look at.
"""

from __future__ import annotations


class NetError(Exception):
    """Base of every network-layer failure."""


class LinkClosed(NetError):
    """The link is closed (by either side, or because a frame was rejected)."""

    def __init__(self, peer: str, reason: str = "closed") -> None:
        super().__init__(f"link to {peer} closed: {reason}")
        self.peer = peer
        self.reason = reason


class LinkBusy(NetError):
    """The link's bounded send buffer is full; the frame was not queued.

    Raised instead of blocking so that one slow peer cannot stall its sender.
    """

    def __init__(self, peer: str, buffered: int, buffered_bytes: int = 0) -> None:
        super().__init__(
            f"send buffer to {peer} is full ({buffered} frames, {buffered_bytes} bytes "
            f"waiting); frame not sent"
        )
        self.peer = peer
        self.buffered = buffered
        self.buffered_bytes = buffered_bytes


class FrameTooLarge(NetError):
    """A frame exceeds the maximum frame size (sending or receiving)."""

    def __init__(self, peer: str, size: int, limit: int) -> None:
        super().__init__(f"frame for {peer} is {size} bytes, the limit is {limit}")
        self.peer = peer
        self.size = size
        self.limit = limit


class HandshakeFailed(NetError):
    """The secure handshake did not complete: bad message, bad signature, wrong state."""


class HandshakeTimeout(HandshakeFailed):
    """The secure handshake did not complete in time."""

    def __init__(self, address: str, timeout: float) -> None:
        super().__init__(f"handshake with {address} did not complete within {timeout} s")
        self.address = address


class PeerMismatch(HandshakeFailed):
    """The peer at an address proved a different key than the one the dialer expected."""

    def __init__(self, address: str, expected: str, actual: str) -> None:
        super().__init__(f"{address} proved to be {actual}, expected {expected}")
        self.address = address
        self.expected = expected
        self.actual = actual


class ConnectFailed(NetError):
    """No connection could be opened to an address (refused, unreachable, bad address)."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"cannot connect to {address}: {reason}")
        self.address = address
        self.reason = reason


class BadAddress(ConnectFailed):
    """An address this transport cannot parse or does not serve."""

    def __init__(self, address: str, reason: str) -> None:
        NetError.__init__(self, f"bad address {address!r}: {reason}")
        self.address = address
        self.reason = reason


class ListenFailed(NetError):
    """An address could not be listened on (port in use, not this machine's, no such host)."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"cannot listen on {address}: {reason}")
        self.address = address
        self.reason = reason


class TransportNotOpen(NetError):
    """`connect` was called on a transport outside its `async with` block."""


class PeerUnreachable(NetError):
    """The mesh has no link to a peer and cannot open one."""

    def __init__(self, peer: str, reason: str) -> None:
        super().__init__(f"peer {peer} is unreachable: {reason}")
        self.peer = peer
        self.reason = reason


class MeshNotRunning(NetError):
    """A mesh operation that needs the running mesh was called before `run` started."""
